//! Handoffs and verified calls end to end with the real CLIs (through peer-sim; skipped
//! without it): a handoff
//! claude -> codex run by relay comes back to claude, with the board showing the owner at each
//! step; and a real CLI, told "HANDOFF" by its user, runs `relay next` through its installed
//! skill, then answers the handoff, which hands the work back.

use crate::test_e2e_peers::harness;
use crate::test_e2e_skills::{Setup, text};

fn owner(s: &Setup) -> String {
    let out = s.relay(&["board", "--all", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["session"] == "auth")
        .and_then(|b| b["owner"].as_str())
        .unwrap_or("-")
        .to_owned()
}

#[test]
fn a_handoff_to_real_codex_comes_back_to_claude() {
    let Some(sim) = harness() else { return };
    let s = Setup::new();
    assert!(
        s.relay(&[
            "req",
            "--from",
            "claude",
            "--to",
            "codex",
            "--session",
            "auth",
            "Plan the refresh."
        ])
        .status
        .success()
    );
    assert!(
        s.relay(&[
            "res",
            "--request",
            "auth/001",
            "--status",
            "done",
            "--verify",
            "skip",
            "Planned."
        ])
        .status
        .success()
    );
    assert_eq!(owner(&s), "claude");
    // In the background, so the board can be read while codex holds the work; all in one
    // peer-sim run (the mock lives as long as the command it runs).
    let during = s.home.join("board-during.json");
    let script = format!(
        "relay handoff --from claude --to codex --session auth --ask 'Write a one-line summary of the plan.' \
         --acceptance 'one line' --run --bg >/dev/null && relay board --all --json > {} && relay wait auth/002",
        during.display()
    );
    let out = s.sim(&sim, &[], &["bash", "-c", &script]);
    let ctx = text(&out);
    assert!(out.status.success(), "{ctx}");
    assert!(ctx.contains("outcome=ok status=done"), "{ctx}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&during).unwrap()).unwrap();
    assert_eq!(v["sessions"][1]["session"], "auth", "{v}");
    assert_eq!(v["sessions"][1]["owner"], "codex", "{v}");
    assert_eq!(v["sessions"][1]["running"][0]["a2a"], "working", "{v}");
    assert_eq!(owner(&s), "claude", "{ctx}");
    let log = String::from_utf8(s.relay(&["log", "--session", "auth"]).stdout).unwrap();
    assert!(
        log.contains("claude     handoff ->codex    [auth/002]"),
        "{log}"
    );
    assert!(
        log.contains("codex      reply ->claude     [auth/002] (passed)"),
        "{log}"
    );
}

#[test]
fn handoff_means_relay_next_to_a_real_cli() {
    let Some(sim) = harness() else { return };
    for agent in ["claude", "codex"] {
        let s = Setup::new();
        let out = s.relay(&["skill", "install", "--agent", agent, "--allow"]);
        assert!(out.status.success(), "{}", text(&out));
        let from = if agent == "claude" { "codex" } else { "claude" };
        let out = s.relay(&[
            "handoff",
            "--from",
            from,
            "--to",
            agent,
            "--session",
            "auth",
            "--ask",
            "Reply with a one-line greeting.",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(owner(&s), agent);
        // The CLI as the caller: the user says HANDOFF; its model loads the skill and runs
        // exactly the command the skill maps that word to.
        let caller = |cmd: &str, prompt: &str| {
            let argv: Vec<&str> = match agent {
                "claude" => vec!["claude", "-p", "--permission-mode", "default", prompt],
                _ => vec![
                    "codex",
                    "exec",
                    "-s",
                    "workspace-write",
                    "--skip-git-repo-check",
                    prompt,
                ],
            };
            s.as_caller(&sim, cmd, &argv)
        };
        let out = caller("relay next", "HANDOFF");
        let ctx = format!("{agent}: {}", text(&out));
        assert!(out.status.success(), "{ctx}");
        assert!(
            ctx.contains(&format!("relay next: id=auth/001 from={from} kind=handoff")),
            "{ctx}"
        );
        assert!(ctx.contains("Reply with a one-line greeting."), "{ctx}");
        // It answers the way `relay next` said, and the work goes back.
        let out = caller(
            "relay res --request auth/001 --status done --verify skip 'Hello from the other side.'",
            "Answer the handoff as relay next said.",
        );
        let ctx = format!("{agent}: {}", text(&out));
        assert!(out.status.success(), "{ctx}");
        assert!(s.repo.join(".relay/auth/001.res.md").is_file(), "{ctx}");
        assert_eq!(owner(&s), from, "{ctx}");
    }
}

/// A real peer that claims its checks pass while relay's own run of them fails: the call ends
/// verify-mismatch (exit 18), for each CLI; and the files it wrote are the evidence.
#[test]
fn a_real_peer_claiming_pass_is_checked_by_relay() {
    let Some(sim) = harness() else { return };
    for peer in ["codex", "claude", "gemini"] {
        let s = Setup::new();
        std::fs::write(s.repo.join("README.md"), "r\n").unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(&s.repo)
                .status()
                .unwrap();
            assert!(ok.success());
        };
        git(&["add", "-A"]);
        git(&["commit", "-qm", "start"]);
        let out = s.sim(
            &sim,
            &[],
            &[
                "relay",
                "call",
                "--to",
                peer,
                "--name",
                "claims",
                "--verify-cmd",
                "test -f does-not-exist",
                "Add a greeting to the README. Run the checks.",
            ],
        );
        let ctx = format!("{peer}: {}", text(&out));
        assert_eq!(out.status.code(), Some(18), "{ctx}");
        assert!(
            ctx.contains("outcome=verify-mismatch status=done verify=pass checked=fail"),
            "{ctx}"
        );
        let show = s.relay(&["show", "claims", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(v["call"]["verified_by"], "relay", "{ctx}");
        assert_eq!(
            v["call"]["workspace"]["head_before"], v["call"]["workspace"]["head_after"],
            "{ctx}"
        );
    }
}
