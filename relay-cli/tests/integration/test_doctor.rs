//! `relay doctor`: peers found or not, flags supported or not, environment traps.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;

/// A stub CLI in `dir` that prints `version` for --version and `help` for anything else.
fn stub(dir: &std::path::Path, name: &str, version: &str, help: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{version}'; else echo '{help}'; fi\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn doctor_reports_peers_and_traps() {
    let env = TestEnv::new();
    let bin = env.root.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    stub(
        &bin,
        "codex",
        "codex-cli 9.9.9",
        "--json --skip-git-repo-check --sandbox --cd",
    );
    stub(
        &bin,
        "claude",
        "1.0.0 (Claude Code)",
        "--print --output-format only",
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = env
        .cmd(&["doctor"])
        .env("PATH", &path)
        .env("CODEX_SANDBOX_NETWORK_DISABLED", "1")
        .output()
        .unwrap();
    let text = env.render(&out).replace(&bin.display().to_string(), "$BIN");
    // Root or not changes one informational line; drop it.
    let text: String = text
        .split_inclusive('\n')
        .filter(|l| !l.contains("as root") && !l.contains("IS_SANDBOX"))
        .collect();
    assert_snapshot!(text, @"
    peers:
      outdated claude   1.0.0 (Claude Code)          $HOME/bin/claude
               fix: this claude does not offer --permission-mode, --resume: upgrade it (npm install -g @anthropic-ai/claude-code)
      ok       codex    codex-cli 9.9.9              $HOME/bin/codex
      missing  gemini   -                            
               fix: install it: npm install -g @google/gemini-cli
    environment:
      error    running inside Codex's sandbox with the network disabled: a peer relay starts here cannot reach its model API
               fix: start codex with `-c sandbox_workspace_write.network_access=true` (or `--dangerously-bypass-approvals-and-sandbox` in a disposable environment)
      info     no config file at $HOME/.config/relay/config.yaml (built-in peers only)
      info     claude skill missing: $HOME/.claude/skills/relay/SKILL.md
               fix: `relay skill install --agent claude` teaches claude to use relay
      info     codex skill missing: $HOME/.codex/skills/relay/SKILL.md
               fix: `relay skill install --agent codex` teaches codex to use relay
      info     gemini skill missing: $HOME/.gemini/skills/relay/SKILL.md
               fix: `relay skill install --agent gemini` teaches gemini to use relay
      info     project root $ROOT
    [exit status: 1]
    ");
    let out = env
        .cmd(&["doctor", "--json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "codex is usable and nothing is broken");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let peers = v["peers"].as_array().unwrap();
    let codex = peers.iter().find(|p| p["name"] == "codex").unwrap();
    assert_eq!(
        (codex["ok"].as_bool(), codex["version"].as_str()),
        (Some(true), Some("codex-cli 9.9.9"))
    );
}
