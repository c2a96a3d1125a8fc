//! Help, version and completions: what a newcomer sees first.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;

#[test]
fn top_level_help() {
    let env = TestEnv::new();
    let out = env.run(&["--help"]);
    let text = env.render(&out);
    // The first thing after the one-line summary is a `relay call` a newcomer can copy.
    let first_command = text
        .lines()
        .find(|l| l.trim_start().starts_with("relay "))
        .unwrap();
    assert!(
        first_command.trim_start().starts_with("relay call "),
        "{text}"
    );
    // Nothing points at a file only a checkout has.
    assert!(!text.contains("spec/PROTOCOL.md"), "{text}");
    assert_snapshot!("help_top", text);
}

#[test]
fn subcommand_help() {
    let env = TestEnv::new();
    for cmd in [
        "call",
        "review",
        "ci",
        "fan",
        "deliberate",
        "handoff",
        "board",
        "log",
        "close",
        "takeover",
        "init",
        "note",
        "decisions",
        "inbox",
        "next",
        "hook",
        "hook stop",
        "hook install",
        "hook uninstall",
        "wait",
        "status",
        "stats",
        "cancel",
        "req",
        "res",
        "validate",
        "list",
        "show",
        "clean",
        "doctor",
        "skill",
        "skill install",
        "skill status",
        "skill uninstall",
        "skill show",
        "spec",
        "completions",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let out = env.run(&args);
        assert_eq!(code(&out), 0);
        let text = env.render(&out);
        // Every command teaches by example, and no help text names a path only a checkout has.
        assert!(text.contains("\nExamples:\n"), "{cmd}:\n{text}");
        assert!(!text.contains("spec/"), "{cmd}:\n{text}");
        insta::assert_snapshot!(format!("help_{}", cmd.replace(' ', "_")), text);
    }
}

#[test]
fn version() {
    let env = TestEnv::new();
    assert_eq!(
        env.ok(&["--version"]),
        format!("relay {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.ok(&["completions", shell]);
        assert!(
            script.contains("relay") && script.contains("validate"),
            "{shell}"
        );
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.run(&[]);
    assert_eq!(code(&out), 2);
}

#[test]
fn spec_prints_the_protocol() {
    let env = TestEnv::new();
    let text = env.ok(&["spec"]);
    assert!(text.starts_with("# "), "{}", &text[..80]);
    assert!(text.contains("## 9. Exit codes"));
}
