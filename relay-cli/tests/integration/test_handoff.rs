//! Handoffs move ownership; the board, the log, close/approve, takeover and init read and
//! keep the trail.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;
use serde_json::Value;

fn json(env: &TestEnv, args: &[&str]) -> Value {
    serde_json::from_str(&env.ok(args)).unwrap()
}

fn handoff(env: &TestEnv, from: &str, to: &str, ask: &str) -> Value {
    json(
        env,
        &[
            "handoff",
            "--from",
            from,
            "--to",
            to,
            "--session",
            "auth",
            "--ask",
            ask,
            "--json",
        ],
    )
}

fn owner(env: &TestEnv) -> (String, Value) {
    let b = json(env, &["board", "--all", "--json"]);
    let s = b["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session"] == "auth")
        .cloned()
        .unwrap_or_default();
    (s["owner"].as_str().unwrap_or("-").to_owned(), s)
}

#[test]
fn a_handoff_writes_the_packet_and_moves_ownership_there_and_back() {
    let env = TestEnv::new();
    env.write("src/auth.rs", "fn main() {}\n");
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--session",
        "auth",
        "Plan it.",
    ]);
    env.ok(&[
        "res",
        "--request",
        "auth/001",
        "--status",
        "done",
        "--verify",
        "skip",
        "Planned.",
    ]);
    assert_eq!(
        owner(&env).0,
        "claude",
        "the session's first writer owns it"
    );
    let h = json(
        &env,
        &[
            "handoff",
            "--from",
            "claude",
            "--to",
            "codex",
            "--session",
            "auth",
            "--ask",
            "Finish the refresh.",
            "--reason",
            "Out of context.",
            "--ref",
            "src/auth.rs",
            "--ref",
            "auth/001",
            "--acceptance",
            "cargo test passes",
            "--scope",
            "src/**",
            "--off-limits",
            "migrations/**",
            "--json",
        ],
    );
    assert_eq!(
        (h["exchange"].as_str(), h["owner"].as_str()),
        (Some("auth/002"), Some("codex"))
    );
    assert_snapshot!(env.normalize(&env.read(".relay/auth/002.req.md")).split("\n---\nReply:").next().unwrap(), @r#"
    ---
    relay: 7
    id: "002"
    from: claude
    to: codex
    session: auth
    kind: handoff
    back: "yes"
    created: "2026-11-21T16:30:00Z"
    ---

    Handoff from claude to codex: you own this work now. When it is done (or you are blocked), reply to this request and the work goes back to claude.

    ## Ask
    Finish the refresh.

    ## Reason
    Out of context.

    ## Context
    - src/auth.rs
    - auth/001

    ## Acceptance criteria
    - cargo test passes

    ## In scope
    - src/**

    ## Off limits
    - migrations/**
    "#);
    // The request validates, and the board shows the new owner and what it must do.
    env.ok(&["validate", ".relay/auth/002.req.md"]);
    let (who, s) = owner(&env);
    assert_eq!(who, "codex");
    assert_eq!(s["next"], serde_json::json!(["codex"]));
    assert_eq!(s["handoff"], "auth/002");
    assert_eq!(s["open"][0]["a2a"], "submitted");
    assert_eq!(s["open"][0]["title"], "Finish the refresh.");
    // ACP plan entries, for clients that render plans.
    assert_eq!(
        s["plan"],
        serde_json::json!([{"content": "auth/002 (claude -> codex): Finish the refresh.", "priority": "medium", "status": "pending"}])
    );
    assert_snapshot!(env.ok(&["board"]), @"
    auth: owner=codex next=codex final=open active=0s ago
      open      auth/002  handoff   claude->codex        0s  Finish the refresh.
    ");
    // codex sees it first in its inbox; its reply hands the work back.
    let next = env.ok(&["next", "--for", "codex"]);
    assert!(
        next.starts_with("relay next: id=auth/002 from=claude kind=handoff"),
        "{next}"
    );
    env.ok(&[
        "res",
        "--request",
        "auth/002",
        "--status",
        "done",
        "--verify",
        "pass",
        "Refresh done; tests pass.",
    ]);
    assert_eq!(owner(&env).0, "claude");
    // A handoff with --no-back stays with its receiver.
    env.ok(&[
        "handoff",
        "--from",
        "claude",
        "--to",
        "gemini",
        "--session",
        "auth",
        "--ask",
        "Own the docs.",
        "--no-back",
    ]);
    env.ok(&[
        "res",
        "--request",
        "auth/003",
        "--status",
        "done",
        "--verify",
        "skip",
        "Taken.",
    ]);
    assert_eq!(owner(&env).0, "gemini");
    assert_snapshot!(env.ok(&["log", "--session", "auth"]), @"
    2026-11-21T16:30:00Z  claude     request ->codex    [auth/001] Plan it.
    2026-11-21T16:30:00Z  codex      reply ->claude     [auth/001] (skipped) Planned.
    2026-11-21T16:30:00Z  claude     handoff ->codex    [auth/002] Finish the refresh.
    2026-11-21T16:30:00Z  codex      reply ->claude     [auth/002] (passed) Refresh done; tests pass.
    2026-11-21T16:30:00Z  claude     handoff ->gemini   [auth/003] Own the docs. (not back)
    2026-11-21T16:30:00Z  gemini     reply ->claude     [auth/003] (skipped) Taken.
    ");
}

#[test]
fn a_reply_written_by_hand_hands_the_work_back_too() {
    let env = TestEnv::new();
    handoff(&env, "claude", "codex", "Do it.");
    assert_eq!(owner(&env).0, "codex");
    env.write(
        ".relay/auth/001.res.md",
        "---\nrelay: 7\nre: \"001\"\nfrom: codex\nto: claude\nstatus: done\nverify: skip\n---\n\nDone.\n",
    );
    assert_eq!(owner(&env).0, "claude");
}

#[test]
fn blocked_and_refused_replies_are_states_the_board_and_call_know() {
    let env = TestEnv::new();
    handoff(&env, "claude", "codex", "Add the cache.");
    let out = env.run(&[
        "res",
        "--request",
        "auth/001",
        "--status",
        "blocked",
        "--verify",
        "skip",
        "Postgres or SQLite?",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    let reply = env.read(".relay/auth/001.res.md");
    assert!(
        reply.contains("status: error\nverify: skip\nstate: blocked\n"),
        "{reply}"
    );
    let (who, s) = owner(&env);
    assert_eq!(who, "claude");
    assert_eq!(s["blocked"][0]["a2a"], "input-required");
    assert_eq!(s["blocked"][0]["title"], "Postgres or SQLite?");
    assert_eq!(s["next"], serde_json::json!(["claude"]));
    // Answering with a new handoff clears it.
    handoff(&env, "claude", "codex", "SQLite.");
    let (_, s) = owner(&env);
    assert_eq!(s["blocked"], serde_json::json!([]));
    // `state` goes with error only; a bad one is named with its line.
    env.write(
        ".relay/bad.res.md",
        "---\nrelay: 7\nre: bad\nfrom: a\nto: b\nstatus: done\nverify: pass\nstate: blocked\n---\n\nx\n",
    );
    let out = env.run(&["validate", ".relay/bad.res.md"]);
    assert_eq!(code(&out), 3);
    assert_snapshot!(env.render(&out), @"
    .relay/bad.res.md:8: state: is `blocked`, which goes with `status: error` (the task was not carried out), not `done`
    [exit status: 3]
    ");
    // A call whose peer refuses exits 16; blocked exits 15.
    for (status, exit) in [("refused", 16), ("blocked", 15)] {
        let cmd = format!(
            "printf -- '---\\nrelay: 7\\nre: %s\\nfrom: fake\\nto: user\\nstatus: error\\nverify: skip\\nstate: {status}\\n---\\n\\nNo.\\n' \"$(basename \"$RELAY_REPLY\" .res.md)\" > \"$RELAY_REPLY\""
        );
        let out = env.run(&[
            "call",
            "--to",
            "fake",
            "--name",
            status,
            "--peer-cmd",
            &cmd,
            "x",
        ]);
        assert_eq!(code(&out), exit, "{}", env.render(&out));
        assert!(
            env.render(&out)
                .contains(&format!("outcome={status} status=error"))
        );
    }
}

#[test]
fn bad_handoffs_are_refused_before_anything_is_written() {
    let env = TestEnv::new();
    env.git_init(&[("a.txt", "a\n")]);
    for (args, want) in [
        (vec!["--ask", " "], "--ask"),
        (
            vec!["--ask", "x", "--ref", "nope.txt"],
            "--ref nope.txt: no such file in the project, exchange or commit",
        ),
        (
            vec!["--ask", "x", "--ref", "../outside"],
            "--ref ../outside",
        ),
        (
            vec!["--ask", "x", "--scope", "/etc/**"],
            "--scope /etc/**: must stay inside the project",
        ),
        (
            vec!["--ask", "x", "--off-limits", "src/[a"],
            "--off-limits src/[a",
        ),
        (
            vec!["--ask", "x", "--acceptance", ""],
            "--acceptance is empty",
        ),
    ] {
        let mut all = vec!["handoff", "--from", "claude", "--to", "codex"];
        all.extend(&args);
        let out = env.run(&all);
        let text = env.render(&out);
        assert_eq!(code(&out), 2, "{text}");
        assert!(text.contains(want), "{want}: {text}");
    }
    // An unknown kind is refused when writing; a handoff written with `req` needs its ask.
    let out = env.run(&[
        "req", "--to", "codex", "--name", "k", "--kind", "bogus", "x",
    ]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    assert!(
        env.render(&out)
            .contains("`bogus` is not a kind (known: task, question, review, handoff, deliberate)")
    );
    let out = env.run(&[
        "req", "--to", "codex", "--name", "k", "--kind", "handoff", "Take it.",
    ]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    assert!(
        env.render(&out)
            .contains("a handoff needs a `## Ask` section")
    );
    // Without --ask at all: clap says which flag is missing.
    let out = env.run(&["handoff", "--to", "codex"]);
    assert_eq!(code(&out), 2);
    assert!(env.render(&out).contains("--ask"));
    assert!(!env.relay_dir().join("ledger.jsonl").exists());
    // A commit is a ref; a hand-written handoff without an ask does not validate.
    let head = env.git(&["rev-parse", "HEAD"]);
    let h = json(
        &env,
        &[
            "handoff",
            "--from",
            "claude",
            "--to",
            "codex",
            "--ask",
            "x",
            "--ref",
            &head[..8],
            "--json",
        ],
    );
    assert_eq!(h["handoff"]["refs"][0], format!("commit {}", &head[..12]));
    env.write(
        ".relay/h.req.md",
        "---\nrelay: 7\nid: h\nfrom: a\nto: b\nkind: handoff\n---\n\nPlease take over.\n\n---\nReply: h.res.md\n",
    );
    let out = env.run(&["validate", ".relay/h.req.md"]);
    assert_eq!(code(&out), 3);
    // Reading, an unknown kind is a warning (must-ignore): the request is a task.
    env.write(
        ".relay/k.req.md",
        "---\nrelay: 7\nid: k\nfrom: a\nto: b\nkind: poem\n---\n\nWrite one.\n\n---\nReply: k.res.md\n",
    );
    let k = env.run(&["validate", ".relay/k.req.md"]);
    assert_eq!(code(&k), 0, "{}", env.render(&k));
    assert!(
        env.render(&k)
            .contains("6: kind: warning: `poem` is not a kind this relay knows"),
        "{}",
        env.render(&k)
    );
    assert!(
        env.render(&out)
            .contains(".relay/h.req.md:9: body: a handoff needs a `## Ask` section"),
        "{}",
        env.render(&out)
    );
}

#[test]
fn close_proposes_only_without_open_work_and_a_human_signs_off() {
    let env = TestEnv::new();
    handoff(&env, "claude", "codex", "Do it.");
    let out = env.run(&["close", "auth", "--from", "codex", "--summary", "Done."]);
    assert_eq!(code(&out), 17, "{}", env.render(&out));
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: auth has open work: auth/001 (claude -> codex, submitted)
    hint: answer or cancel them first (`relay board` shows them), then propose finality
    [exit status: 17]
    ");
    let out = env.run(&["close", "auth", "--approve"]);
    assert_eq!(code(&out), 17, "nothing proposed yet: {}", env.render(&out));
    env.ok(&[
        "res",
        "--request",
        "auth/001",
        "--status",
        "done",
        "--verify",
        "pass",
        "Done.",
    ]);
    env.ok(&[
        "close",
        "auth",
        "--from",
        "codex",
        "--summary",
        "Done.",
        "--evidence",
        "cargo test",
        "--risk",
        "clock skew",
    ]);
    let (_, s) = owner(&env);
    assert_eq!(s["finality"]["state"], "proposed");
    assert_eq!(s["next"], serde_json::json!(["user"]));
    // Inside an agent the sign-off is refused, unless forced (and then recorded so).
    let mut inside = env.cmd(&["close", "auth", "--approve"]);
    inside.env("CLAUDECODE", "1");
    let out = inside.output().unwrap();
    assert_eq!(code(&out), 5, "{}", env.render(&out));
    assert!(
        env.render(&out)
            .contains("refusing to sign off auth from inside claude")
    );
    let mut forced = env.cmd(&["close", "auth", "--approve", "--force", "--json"]);
    forced.env("CLAUDECODE", "1");
    let out = forced.output().unwrap();
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (e["type"].as_str(), e["forced"].as_bool()),
        (Some("signoff"), Some(true))
    );
    let (_, s) = owner(&env);
    assert_eq!(s["finality"]["state"], "approved");
    assert_eq!(s["finality"]["forced"], true);
    // Signed off with nothing open: off the board unless --all; new work reopens it.
    assert_snapshot!(env.normalize(&env.ok(&["board"])), @"nothing open in $ROOT");
    assert!(
        env.ok(&["board", "--all"])
            .contains("auth: owner=claude final=approved")
    );
    handoff(&env, "claude", "codex", "One more thing.");
    assert_eq!(owner(&env).1["finality"]["state"], "open");
    // A session that does not exist.
    let out = env.run(&["close", "nope", "--summary", "x"]);
    assert_eq!(code(&out), 4, "{}", env.render(&out));
}

#[test]
fn board_flags_stale_work_running_calls_and_writes_markdown() {
    let env = TestEnv::new();
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "gemini",
        "--name",
        "docs",
        "Write the docs.",
    ]);
    handoff(&env, "claude", "codex", "Do it.");
    // The clock moves on three hours: both are stale at --stale 2h, not at the default 24h.
    let later = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env("RELAY_NOW", "2026-11-21T19:30:00Z");
        let out = c.output().unwrap();
        assert_eq!(code(&out), 0, "{}", env.render(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(!later(&["board"]).contains("STALE"));
    assert_snapshot!(later(&["board", "--stale", "2h"]), @"
    (one-shot): next=gemini active=3h ago
      open      20261121-163000-docs  task      claude->gemini       3h STALE  Write the docs.
    auth: owner=codex next=codex final=open active=3h ago
      open      auth/001  handoff   claude->codex        3h STALE  Do it.
    ");
    let md = later(&["board", "--md"]);
    assert!(md.starts_with("<!-- written by `relay board --md`"), "{md}");
    assert!(
        md.contains(
            "- [ ] `auth/001` (handoff, claude -> codex, 3h): Do it. (`.relay/auth/001.req.md`)"
        ),
        "{md}"
    );
    // --md FILE writes it, over its own file only.
    env.ok(&["board", "--md", "HANDOFF.md"]);
    env.ok(&["board", "--md", "HANDOFF.md"]);
    env.write("NOTES.md", "mine\n");
    let out = env.run(&["board", "--md", "NOTES.md"]);
    assert_eq!(code(&out), 2);
    assert_eq!(env.read("NOTES.md"), "mine\n");
    // A call running in the background is on the board as working.
    let out = env.run(&[
        "call",
        "--to",
        "fake",
        "--session",
        "auth",
        "--bg",
        "--peer-cmd",
        "sleep 30",
        "Wait.",
    ]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    let t0 = std::time::Instant::now();
    loop {
        let (_, s) = owner(&env);
        if s["running"][0]["a2a"] == "working" {
            break;
        }
        assert!(t0.elapsed().as_secs() < 20, "{s}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.ok(&["cancel", "auth/002"]);
}

#[test]
fn workspace_board_spans_projects() {
    let a = TestEnv::new();
    let b = TestEnv::new();
    handoff(&a, "claude", "codex", "Do it.");
    let out = a.run(&[
        "board",
        "--json",
        "--workspace",
        a.root.to_str().unwrap(),
        b.root.to_str().unwrap(),
        "/nonexistent/project",
    ]);
    assert_eq!(code(&out), 0, "{}", a.render(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let projects = v.as_array().unwrap();
    assert_eq!(projects.len(), 3);
    assert_eq!(projects[0]["sessions"][0]["owner"], "codex");
    let text = a.ok(&["board", "--workspace", a.root.to_str().unwrap()]);
    assert!(text.contains("auth:codex"), "{text}");
    // Roots listed in the config file join those on the command line.
    let config = b.root.join("relay-config.yaml");
    std::fs::write(&config, format!("workspace:\n  - {}\n", a.root.display())).unwrap();
    let mut cmd = b.cmd(&["board", "--json", "--workspace", b.root.to_str().unwrap()]);
    cmd.env("RELAY_CONFIG", &config);
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", b.render(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn takeover_prints_a_paste_ready_prompt() {
    let env = TestEnv::new();
    env.write("src/auth.rs", "x\n");
    env.ok(&[
        "note",
        "--from",
        "claude",
        "--session",
        "auth",
        "--kind",
        "decision",
        "SQLite, not Postgres.",
    ]);
    env.ok(&[
        "handoff",
        "--from",
        "claude",
        "--to",
        "codex",
        "--session",
        "auth",
        "--ask",
        "Finish the refresh.",
        "--ref",
        "src/auth.rs",
        "--acceptance",
        "cargo test passes",
        "--off-limits",
        "migrations/**",
    ]);
    assert_snapshot!(env.normalize(&env.ok(&["takeover", "--for", "aider"])), @"
    You are aider, taking over work in the project at $ROOT (session `auth`).

    ## Goal
    Finish the refresh.

    ## Where it stands
    - Owner until now: codex
    - Finality: open

    ## Next steps
    1. Finish the refresh. (asked by claude; the request is $ROOT/.relay/auth/001.req.md)

    ## Files that matter
    - src/auth.rs

    ## Off limits
    - migrations/**

    ## Done means
    - cargo test passes

    ## Decisions (settled: do not reopen without saying why)
    - SQLite, not Postgres.

    When you finish a step, write its reply file (the path after `Reply:` at the end of each request), starting with the frontmatter the request's `Format:` shows.
    ");
    let out = env.run(&["takeover", "--for", "aider", "--session", "nope"]);
    assert_eq!(code(&out), 4, "{}", env.render(&out));
}

#[test]
fn init_manages_its_block_and_nothing_else() {
    let env = TestEnv::new();
    env.write("AGENTS.md", "# Rules\n\nBe brief.\n");
    std::os::unix::fs::symlink("AGENTS.md", env.root.join("CLAUDE.md")).unwrap();
    let out = env.normalize(&env.ok(&["init", "--handoff-file"]));
    assert_snapshot!(out, @"
    relay init: $ROOT/AGENTS.md (via $ROOT/CLAUDE.md) updated
    relay init: $ROOT/GEMINI.md created
    relay init: $ROOT/HANDOFF.md written (relay board --md)
    ");
    let agents = env.read("AGENTS.md");
    assert!(
        agents.starts_with("# Rules\n\nBe brief.\n\n<!-- relay:begin"),
        "{agents}"
    );
    assert_eq!(agents.matches("relay:begin").count(), 1);
    assert!(agents.contains("run `relay next`"));
    // Again: nothing changes.
    let again = env.normalize(&env.ok(&["init", "--handoff-file"]));
    assert!(
        again.contains("AGENTS.md (via $ROOT/CLAUDE.md) unchanged"),
        "{again}"
    );
    env.ok(&["init", "--remove"]);
    assert_eq!(env.read("AGENTS.md"), "# Rules\n\nBe brief.\n");
    assert!(!env.root.join("GEMINI.md").exists());
    assert!(!env.root.join("HANDOFF.md").exists());
    assert!(env.root.join("CLAUDE.md").is_symlink());
    // A link out of the project is refused.
    std::os::unix::fs::symlink("/etc/hostname", env.root.join("GEMINI.md")).unwrap();
    let out = env.run(&["init", "--agents", "gemini"]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    assert!(env.render(&out).contains("links out of the project"));
}
