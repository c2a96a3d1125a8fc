//! What a new user meets first: names that resolve exactly, quiet pipes, errors said once with
//! their documented exit codes.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use crate::common::{FAKE_PEER, TestEnv, code};
use insta::assert_snapshot;

fn call(env: &TestEnv, name: &str, mode: &str, bg: bool) -> std::process::Output {
    let peer = format!("{FAKE_PEER} {mode}");
    let mut args = vec!["call", "--to", "fake", "--name", name, "--peer-cmd", &peer];
    if bg {
        args.push("--bg");
    }
    args.push("Do it.");
    env.run(&args)
}

#[test]
fn a_name_means_its_newest_exchange_never_a_longer_name() {
    let env = TestEnv::new();
    for name in ["review", "ro-review", "review", "review-old"] {
        let out = call(&env, name, "instant", false);
        assert_eq!(code(&out), 0, "{}", env.render(&out));
    }
    // Same second, same name: the second call is `review-2`, and `review` means it.
    let wait = |name: &str| {
        let out = env.run(&["wait", name, "--json"]);
        assert_eq!(code(&out), 0, "{}", env.render(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["exchange"].as_str().unwrap().to_owned()
    };
    assert_eq!(wait("review"), "20261121-163000-review-2");
    assert_eq!(wait("ro-review"), "20261121-163000-ro-review");
    assert_eq!(wait("review-old"), "20261121-163000-review-old");
    assert_eq!(wait("review-2"), "20261121-163000-review-2");
    let out = env.run(&["status", "view"]);
    assert_eq!(code(&out), 4, "{}", env.render(&out));
}

#[test]
fn two_running_calls_with_one_name_are_ambiguous() {
    let env = TestEnv::new();
    for _ in 0..2 {
        let out = call(&env, "job", "hang", true);
        assert_eq!(code(&out), 0, "{}", env.render(&out));
    }
    let out = env.run(&["wait", "job", "--timeout", "1"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: `job` is ambiguous: it matches 20261121-163000-job, 20261121-163000-job-2
    hint: name one of them by its full id
    [exit status: 2]
    ");
    for id in ["20261121-163000-job", "20261121-163000-job-2"] {
        let out = env.run(&["cancel", id]);
        assert_eq!(code(&out), 0, "{}", env.render(&out));
    }
    // Both finished now: the name means the newest again.
    let out = env.run(&["wait", "job", "--json"]);
    assert_eq!(code(&out), 130, "{}", env.render(&out));
}

#[test]
fn status_and_cancel_without_a_run_record_answer_like_wait() {
    let env = TestEnv::new();
    env.ok(&["req", "--from", "a", "--to", "b", "--name", "manual", "t"]);
    for cmd in ["status", "cancel", "wait"] {
        let out = env.run(&[cmd, "manual"]);
        assert_snapshot!(format!("{cmd}-no-record"), env.render(&out));
    }
}

#[test]
fn a_missing_body_file_is_not_found_and_said_once() {
    let env = TestEnv::new();
    let out = env.run(&[
        "req",
        "--from",
        "a",
        "--to",
        "b",
        "--name",
        "x",
        "--body-file",
        "nope.md",
    ]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: cannot read --body-file nope.md: No such file or directory
    hint: pass an existing file, or the body itself as the last argument
    [exit status: 4]
    ");
    assert!(env.relay_files().is_empty());
}

/// `relay list --json | head -1`: the reader leaves early; relay exits 0 and says nothing.
#[test]
fn a_closed_pipe_ends_quietly() {
    let env = TestEnv::new();
    let dir = env.relay_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Far more than a pipe buffer (64 KiB) of JSON, so relay is still writing when it closes.
    for i in 0..600 {
        let id = format!("20261121-163000-n{i}");
        std::fs::write(
            dir.join(format!("{id}.req.md")),
            format!("---\nrelay: 6\nid: \"{id}\"\nfrom: a\nto: b\n---\n\ntask {i}\n"),
        )
        .unwrap();
    }
    for args in [&["list", "--json"][..], &["list"][..]] {
        let mut child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn req_detects_the_calling_agent_like_call() {
    let env = TestEnv::new();
    for (var, want) in [
        ("CLAUDECODE", "claude"),
        ("CODEX_THREAD_ID", "codex"),
        ("GEMINI_CLI", "gemini"),
    ] {
        let name = format!("from-{want}");
        let out = env
            .cmd(&["req", "--to", "peer", "--name", &name, "t"])
            .env(var, "1")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", env.render(&out));
        let text = env.read(&format!(".relay/20261121-163000-{name}.req.md"));
        assert!(text.contains(&format!("\nfrom: {want}\n")), "{text}");
    }
    let text = {
        env.ok(&["req", "--to", "peer", "--name", "plain", "t"]);
        env.read(".relay/20261121-163000-plain.req.md")
    };
    assert!(text.contains("\nfrom: user\n"), "{text}");
}

#[test]
fn hints_for_the_common_mistakes() {
    let env = TestEnv::new();
    for (name, args) in [
        (
            "unquoted-task",
            &[
                "call", "--to", "codex", "--name", "x", "Review", "the", "code",
            ][..],
        ),
        ("peer-as-positional", &["call", "codex", "Review it"][..]),
        ("no-name", &["call", "--to", "codex", "Review it"][..]),
        ("req-no-name", &["req", "--to", "codex", "Review it"][..]),
    ] {
        let out = env.run(args);
        assert_snapshot!(format!("hint-{name}"), env.render(&out));
    }
    assert!(env.relay_files().is_empty());
}

#[test]
fn a_session_name_close_to_an_existing_one_gets_a_note() {
    let env = TestEnv::new();
    env.ok(&["req", "--to", "b", "--session", "auth-refactor", "one"]);
    let out = env.run(&["req", "--to", "b", "--session", "auth-refactr", "two"]);
    assert_snapshot!(env.render(&out), @"
    $ROOT/.relay/auth-refactr/001.req.md
    ------- stderr -------
    relay: note: starting a new session `auth-refactr`; `auth-refactor` exists (pass --session auth-refactor to continue it)
    ");
    // Continuing the session itself, or a clearly different name: no note.
    for s in ["auth-refactor", "docs"] {
        let out = env.run(&["req", "--to", "b", "--session", s, "three"]);
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{s}");
    }
}

#[test]
fn durations_out_of_range_are_usage_errors_not_panics() {
    let env = TestEnv::new();
    for bad in ["1e30", "99999999999h", "nan", "0", "-1s", "soon"] {
        let out = env.run(&["call", "--to", "x", "--name", "n", "--timeout", bad, "t"]);
        assert_eq!(code(&out), 2, "{bad}: {}", env.render(&out));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{bad}"
        );
    }
    let out = env.run(&["call", "--to", "x", "--name", "n", "--timeout", "1e30", "t"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: invalid value '1e30' for '--timeout <DURATION>': `1e30` is more than a year

    For more information, try '--help'.
    [exit status: 2]
    ");
}

/// `--body-file` and the config file: regular files only (a FIFO or device never blocks or
/// fills memory), bounded.
#[test]
fn body_and_config_files_must_be_regular_and_bounded() {
    let env = TestEnv::new();
    let req =
        |body_file: &str| env.run(&["req", "--to", "b", "--name", "x", "--body-file", body_file]);
    for (path, want) in [("/dev/zero", 2), ("/", 2), ("/dev/null", 2)] {
        let out = req(path);
        assert_eq!(code(&out), want, "{path}: {}", env.render(&out));
    }
    let fifo = env.root.parent().unwrap().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = req(fifo.to_str().unwrap());
    assert_snapshot!(env.render(&out).replace(fifo.to_str().unwrap(), "$FIFO"), @"
    ------- stderr -------
    relay: cannot read --body-file $HOME/fifo: not a regular file
    hint: for a pipe or a device, pass `-` and send it to stdin: cmd | relay req ... -
    [exit status: 2]
    ");
    let big = env.root.parent().unwrap().join("big.md");
    std::fs::write(&big, vec![b'a'; relay_core::MAX_BODY_BYTES + 1]).unwrap();
    let out = req(big.to_str().unwrap());
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    assert!(env.relay_files().is_empty());
    let out = env
        .cmd(&["call", "--to", "codex", "--name", "x", "t"])
        .env("RELAY_CONFIG", &fifo)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", env.render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}
