//! Trust but verify: relay runs `--verify-cmd` checks itself and weighs them against the peer's
//! word, records what the peer changed (as git sees it, only the peer's changes) with a patch,
//! and holds the peer to `--writes` and a handoff's scope.

use crate::common::{TestEnv, code};
use serde_json::Value;

/// A peer (a shell command) that runs `work` in the project, then writes a valid reply
/// saying `verify`.
fn peer(work: &str, verify: &str) -> String {
    format!(
        "{work}\nid=$(basename \"$RELAY_REPLY\" .res.md)\nprintf -- '---\\nrelay: 7\\nre: \"%s\"\\nfrom: fake\\nto: user\\nstatus: done\\nverify: {verify}\\n---\\n\\nDone.\\n' \"$id\" > \"$RELAY_REPLY\""
    )
}

fn call(env: &TestEnv, name: &str, peer_cmd: &str, extra: &[&str]) -> (i32, String, Value) {
    let mut args = vec![
        "call",
        "--to",
        "fake",
        "--name",
        name,
        "--peer-cmd",
        peer_cmd,
    ];
    args.extend(extra);
    args.push("Do it.");
    let out = env.run(&args);
    let text = env.render(&out);
    let show = env.run(&["show", name, "--json"]);
    let v: Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
    (code(&out), text, v["call"].clone())
}

#[test]
fn relay_runs_the_checks_and_a_disagreement_is_its_own_outcome() {
    let env = TestEnv::new();
    // The peer says pass; relay's run fails: mismatch, exit 18, and the header says so.
    let (c, text, rec) = call(
        &env,
        "lies",
        &peer("", "pass"),
        &["--verify-cmd", "echo checking; exit 3"],
    );
    assert_eq!(c, 18, "{text}");
    assert!(
        text.contains("outcome=verify-mismatch status=done verify=pass checked=fail"),
        "{text}"
    );
    assert!(text.contains("fake said verify pass, but relay ran the checks: `echo checking; exit 3` failed (exit 3)"), "{text}");
    assert_eq!(rec["verified_by"], "relay");
    assert_eq!(rec["checks"][0]["exit_code"], 3);
    assert!(
        rec["checks"][0]["tail"]
            .as_str()
            .unwrap()
            .contains("checking")
    );
    let log = env.read(".relay/20261121-163000-lies.verify.log");
    assert!(
        log.starts_with("$ echo checking; exit 3\nchecking\n"),
        "{log}"
    );
    // The request named the check.
    let req = env.read(".relay/20261121-163000-lies.req.md");
    assert!(
        req.contains("relay runs these checks itself") && req.contains("- `echo checking; exit 3`"),
        "{req}"
    );
    // The other way round: the peer says fail, relay's run passes.
    let (c, text, _) = call(&env, "modest", &peer("", "fail"), &["--verify-cmd", "true"]);
    assert_eq!(c, 18, "{text}");
    assert!(
        text.contains("fake said verify fail, but relay ran the checks and they passed"),
        "{text}"
    );
    // The peer skipped: relay's verdict decides (a failure is verify-failed, a pass is ok).
    let (c, text, _) = call(
        &env,
        "skipped",
        &peer("", "skip"),
        &["--verify-cmd", "false"],
    );
    assert_eq!(c, 10, "{text}");
    let (c, text, _) = call(
        &env,
        "agreed",
        &peer("", "pass"),
        &["--verify-cmd", "true", "--verify-cmd", "test -d .relay"],
    );
    assert_eq!(c, 0, "{text}");
    assert!(text.contains("verify=pass checked=pass"), "{text}");
    // A check that hangs is killed at --verify-timeout, with everything it started.
    let t0 = std::time::Instant::now();
    let (c, text, rec) = call(
        &env,
        "hangs",
        &peer("", "pass"),
        &[
            "--verify-cmd",
            "sleep 30 & sleep 30",
            "--verify-timeout",
            "1",
        ],
    );
    assert_eq!(c, 18, "{text}");
    assert!(t0.elapsed().as_secs() < 15);
    assert_eq!(rec["checks"][0]["killed"], true);
    assert!(
        text.contains("was killed after --verify-timeout 1s"),
        "{text}"
    );
    // No checks after a call that did not end with the peer's answer.
    let (c, _, rec) = call(
        &env,
        "slow",
        "sleep 30",
        &["--timeout", "1", "--verify-cmd", "true"],
    );
    assert_eq!(c, 124);
    assert!(rec["checks"].is_null());
}

#[test]
fn the_peers_changes_are_evidence_even_in_a_dirty_tree() {
    let env = TestEnv::new();
    env.git_init(&[
        ("src/a.rs", "a\n"),
        ("src/old.rs", "old name\n"),
        ("README.md", "r\n"),
    ]);
    // Dirty before the call: a modified tracked file and an untracked one. Not the peer's.
    env.write("README.md", "edited by the user\n");
    env.write("notes.txt", "user's\n");
    let objects = || env.git(&["count-objects"]);
    let before = objects();
    let work = "printf 'b\\n' >> src/a.rs && git mv src/old.rs src/new.rs && printf '\\000\\001\\002' > src/blob.bin";
    let (c, text, rec) = call(&env, "edits", &peer(work, "skip"), &[]);
    assert_eq!(c, 0, "{text}");
    let w = &rec["workspace"];
    assert_eq!(w["dirty_before"], true);
    let changed: Vec<String> = w["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c["status"].as_str().unwrap(),
                c["from"]
                    .as_str()
                    .map(|f| format!("{f} -> "))
                    .unwrap_or_default(),
                c["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changed,
        ["M src/a.rs", "A src/blob.bin", "R src/old.rs -> src/new.rs"]
    );
    assert_eq!(w["index_changed"], true, "git mv stages");
    let patch = env.read(".relay/20261121-163000-edits.changes.patch");
    assert!(
        patch.contains("GIT binary patch") && patch.contains("rename from src/old.rs"),
        "{patch}"
    );
    assert!(!patch.contains("edited by the user"), "{patch}");
    // Nothing was written to the repository's own object store, and the scratch store is gone.
    assert_eq!(objects(), before);
    assert!(
        !env.relay_dir().join(".cache").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("git-"))
    );
    let show = env.ok(&["show", "edits"]);
    assert!(show.contains("changes  3 file(s), index changed (the tree was dirty before; only the peer's changes count)"), "{show}");
    assert!(show.contains("  R src/old.rs -> src/new.rs"), "{show}");
}

#[test]
fn outside_git_the_record_says_there_is_no_evidence() {
    let env = TestEnv::new();
    let (c, _, rec) = call(&env, "nogit", &peer("", "pass"), &[]);
    assert_eq!(c, 0);
    assert!(rec["workspace"].is_null());
    assert_eq!(
        rec["workspace_note"],
        "not a git work tree: no evidence of what the peer changed"
    );
}

#[test]
fn writes_and_a_handoffs_scope_hold_the_peer() {
    let env = TestEnv::new();
    env.git_init(&[("src/a.rs", "a\n"), ("docs/x.md", "x\n")]);
    let (c, text, _) = call(
        &env,
        "inside",
        &peer("echo b >> src/a.rs", "pass"),
        &["--writes", "src/**"],
    );
    assert_eq!(c, 0, "{text}");
    let (c, text, rec) = call(
        &env,
        "outside",
        &peer("echo y >> docs/x.md; echo b >> src/a.rs", "pass"),
        &["--writes", "src/**"],
    );
    assert_eq!(c, 13, "{text}");
    assert!(
        text.contains(
            "out of scope (may change only src/**): 1 path changed while the peer ran: docs/x.md"
        ),
        "{text}"
    );
    assert_eq!(rec["changed_outside"], serde_json::json!(["docs/x.md"]));
    // A handoff run now: its off limits hold the receiver.
    env.write("migrations/1.sql", "create\n");
    env.git(&["add", "-A"]);
    let cmd = peer("echo drop >> migrations/1.sql", "pass");
    let out = env.run(&[
        "handoff",
        "--from",
        "claude",
        "--to",
        "fake",
        "--name",
        "h",
        "--ask",
        "Fix it.",
        "--off-limits",
        "migrations/**",
        "--run",
        "--peer-cmd",
        &cmd,
    ]);
    assert_eq!(code(&out), 13, "{}", env.render(&out));
    assert!(env.render(&out).contains("out of scope (off limits: migrations/**): 1 path changed while the peer ran: migrations/1.sql"));
    // A bad glob is a usage error before anything is written.
    let out = env.run(&[
        "call",
        "--to",
        "fake",
        "--name",
        "bad",
        "--writes",
        "src/[",
        "--peer-cmd",
        "true",
        "x",
    ]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
}

#[test]
fn stats_sum_the_call_log_by_peer_and_session() {
    let env = TestEnv::new();
    assert_eq!(
        env.ok(&["stats"]),
        format!("no calls in {}/.relay/calls.jsonl", env.root.display())
    );
    let (c, _, _) = call(&env, "one", &peer("", "pass"), &[]);
    assert_eq!(c, 0);
    let out = env.run(&[
        "call",
        "--to",
        "fake",
        "--session",
        "s",
        "--peer-cmd",
        "sleep 30",
        "--timeout",
        "1",
        "x",
    ]);
    assert_eq!(code(&out), 124);
    // A call a peer CLI reported usage for, and a line that is not a call record.
    let mut log = env.read(".relay/calls.jsonl");
    log.push_str(r#"{"time":"2026-11-21T16:30:00Z","exchange":"s/009","peer":"claude","outcome":"ok","elapsed_ms":4000,"usage":{"input_tokens":1200,"output_tokens":300,"cost_usd":0.25}}"#);
    log.push_str("\nnot json\n");
    env.write(".relay/calls.jsonl", &log);
    let v: Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    assert_eq!(v["calls"], 3);
    assert_eq!(v["skipped_lines"], 1);
    let peers: Vec<(String, u64)> = v["by_peer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["calls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(peers, [("claude".into(), 1), ("fake".into(), 2)]);
    assert_eq!(v["by_peer"][0]["cost_usd"], 0.25);
    assert_eq!(
        v["by_peer"][1]["outcomes"],
        serde_json::json!({"ok": 1, "timeout": 1})
    );
    assert_eq!(v["by_session"][1]["key"], "s");
    assert_eq!(v["by_session"][1]["calls"], 2);
    let s: Value = serde_json::from_str(&env.ok(&["stats", "--json", "--session", "s"])).unwrap();
    assert_eq!(s["calls"], 2);
    // --since: the clock is the fixed test clock; the planted call is at that time.
    let mut later = env.cmd(&["stats", "--json", "--since", "1h"]);
    later.env("RELAY_NOW", "2026-11-21T18:00:00Z");
    let v: Value = serde_json::from_slice(&later.output().unwrap().stdout).unwrap();
    assert_eq!(v["calls"], 0);
}

#[test]
fn git_history_is_the_coordinators_to_write() {
    let env = TestEnv::new();
    env.git_init(&[("a.txt", "a\n")]);
    let out = env.ok(&["init", "--agents", "codex", "--coordinator", "claude"]);
    assert!(out.contains("AGENTS.md created"), "{out}");
    assert!(
        env.read("AGENTS.md")
            .contains("Git history is claude's to write")
    );
    let commit = "git -c user.name=p -c user.email=p@x commit -qam 'peer commit'";
    let work = format!("echo b >> a.txt && {commit} && git branch side");
    let (c, text, rec) = call(&env, "commits", &peer(&work, "pass"), &[]);
    assert_eq!(c, 13, "{text}");
    assert!(text.contains("git history is claude's to write (relay init --coordinator), but its state changed while the peer ran: moved HEAD, refs/heads/"), "{text}");
    assert!(text.contains("refs/heads/side created"), "{text}");
    assert!(
        rec["workspace"]["refs_changed"].as_array().unwrap().len() == 2,
        "{rec}"
    );
    // Staging alone counts too; file edits do not.
    let (c, text, _) = call(
        &env,
        "stages",
        &peer("echo c >> a.txt && git add a.txt", "pass"),
        &[],
    );
    assert_eq!(c, 13, "{text}");
    assert!(text.contains("changed the index"), "{text}");
    let (c, text, _) = call(&env, "edits", &peer("echo d >> a.txt", "pass"), &[]);
    assert_eq!(c, 0, "{text}");
    // The coordinator itself may.
    let out = env.run(&[
        "call",
        "--to",
        "claude",
        "--name",
        "own",
        "--peer-cmd",
        &peer(commit, "pass"),
        "Commit.",
    ]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
}
