//! `relay list` and `relay show`.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;
use std::io::Write as _;

/// One of everything: answered, pending, failed, session turns, a broken reply, an orphan.
fn populated() -> TestEnv {
    let mut env = TestEnv::new();
    let a = env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--name",
        "auth-review",
        "--kind",
        "review",
        "Review src/auth.py.",
    ]);
    env.ok(&[
        "res",
        "--request",
        &a,
        "--status",
        "done",
        "--verify",
        "pass",
        "Found 2 issues; fixed; 12 tests pass.",
    ]);
    env.now = "2026-11-21T17:00:00Z".into();
    let b = env.ok(&[
        "req",
        "--from",
        "codex",
        "--to",
        "claude",
        "--name",
        "cache-plan",
        "Second opinion on docs/cache.md.",
    ]);
    env.ok(&[
        "res",
        "--request",
        &b,
        "--status",
        "error",
        "--verify",
        "skip",
        "docs/cache.md does not exist.",
    ]);
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "gemini",
        "--name",
        "pending-one",
        "Summarize the README.",
    ]);
    env.now = "2026-11-21T18:00:00Z".into();
    for turn in ["Refactor the session store.", "Now fix test_expiry."] {
        env.ok(&[
            "req",
            "--from",
            "claude",
            "--to",
            "codex",
            "--session",
            "auth-refactor",
            turn,
        ]);
    }
    env.ok(&[
        "res",
        "--request",
        "auth-refactor/1",
        "--status",
        "done",
        "--verify",
        "fail",
        "11 of 12 pass.",
    ]);
    env.write(
        ".relay/20261121-180000-broken.req.md",
        &env.read(".relay/20261121-170000-pending-one.req.md")
            .replace("20261121-170000-pending-one", "20261121-180000-broken"),
    );
    env.write(".relay/20261121-180000-broken.res.md", "not a reply\n");
    env.write(".relay/20261121-120000-orphan.res.md", "---\nrelay: 4\nre: 20261121-120000-orphan\nfrom: codex\nto: claude\nstatus: done\nverify: pass\n---\n\nold\n");
    // No `created` field: its age comes from the file's mtime, pinned so the snapshot is stable.
    let noon = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_262_400); // 2026-11-21T12:00:00Z
    let orphan = env.relay_dir().join("20261121-120000-orphan.res.md");
    std::fs::File::options()
        .write(true)
        .open(orphan)
        .unwrap()
        .set_modified(noon)
        .unwrap();
    env.now = "2026-11-22T19:30:00Z".into();
    env
}

#[test]
fn list_table() {
    let env = populated();
    let out = env.run(&["list"]);
    assert_snapshot!(env.render(&out), @"
    EXCHANGE                     KIND    FROM->TO        STATUS   VERIFY  AGE
    20261121-120000-orphan       task    claude->codex   done     pass    1d
    20261121-163000-auth-review  review  claude->codex   done     pass    1d
    20261121-170000-cache-plan   task    codex->claude   error    skip    1d
    20261121-170000-pending-one  task    claude->gemini  pending  -       1d
    20261121-180000-broken       task    claude->gemini  invalid  -       1d
    auth-refactor/001            task    claude->codex   done     fail    1d
    auth-refactor/002            task    claude->codex   pending  -       1d
    ");
    let out = env.run(&["list", "--session", "auth-refactor"]);
    assert_snapshot!(env.render(&out), @"
    EXCHANGE           KIND  FROM->TO       STATUS   VERIFY  AGE
    auth-refactor/001  task  claude->codex  done     fail    1d
    auth-refactor/002  task  claude->codex  pending  -       1d
    ");
}

#[test]
fn list_json() {
    let env = populated();
    let out = env.run(&["list", "--json", "--session", "auth-refactor"]);
    assert_snapshot!(env.render(&out), @r#"
    [
      {
        "exchange": "auth-refactor/001",
        "id": "001",
        "session": "auth-refactor",
        "kind": "task",
        "from": "claude",
        "to": "codex",
        "answered": true,
        "status": "done",
        "verify": "fail",
        "salvaged": false,
        "call": null,
        "reply_state": {
          "state": "answered",
          "status": "done",
          "verify": "fail",
          "salvaged": false
        },
        "request_problem": null,
        "created": "2026-11-21T18:00:00Z",
        "age_seconds": 91800,
        "request": "$ROOT/.relay/auth-refactor/001.req.md",
        "reply": "$ROOT/.relay/auth-refactor/001.res.md"
      },
      {
        "exchange": "auth-refactor/002",
        "id": "002",
        "session": "auth-refactor",
        "kind": "task",
        "from": "claude",
        "to": "codex",
        "answered": false,
        "status": null,
        "verify": null,
        "salvaged": false,
        "call": null,
        "reply_state": {
          "state": "pending"
        },
        "request_problem": null,
        "created": "2026-11-21T18:00:00Z",
        "age_seconds": 91800,
        "request": "$ROOT/.relay/auth-refactor/002.req.md",
        "reply": "$ROOT/.relay/auth-refactor/002.res.md"
      }
    ]
    "#);
    let out = env.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 7);
    let pending: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["answered"] == false)
        .map(|r| r["exchange"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        ["20261121-170000-pending-one", "auth-refactor/002"]
    );
}

/// Rewrites a reply's `verify: pass` as `fail` in place: same inode, the directory untouched,
/// as an editor that writes in place does.
fn fail_in_place(reply: &std::path::Path) {
    let edited = std::fs::read_to_string(reply)
        .unwrap()
        .replace("verify: pass", "verify: fail");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(reply)
        .unwrap()
        .write_all(edited.as_bytes())
        .unwrap();
}

/// What a listing read is cached in `.relay/.cache/list.tsv` once its files have settled
/// (two seconds), and used only while the files and directories are the same: an edit in
/// place, a new exchange or a damaged cache shows at once; a cache is never written through a
/// link out of `.relay/`.
#[test]
fn the_listing_cache_is_used_only_while_the_files_are_the_same() {
    let env = populated();
    let list = || env.ok(&["list"]);
    let first = list();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(list(), first, "the listing that writes the cache");
    let cache = env.relay_dir().join(".cache/list.tsv");
    let text = std::fs::read_to_string(&cache).unwrap();
    assert_eq!(
        text.lines().filter(|l| !l.starts_with("D\t")).count(),
        8,
        "{text}"
    );
    // Settled: the cache stands in for the files (a planted agent shows it was read).
    std::fs::write(&cache, text.replace("=gemini", "=planted")).unwrap();
    assert!(list().contains("claude->planted"), "{}", list());
    // An edit in place (same inode, same directory) is seen at once.
    fail_in_place(&env.relay_dir().join("20261121-163000-auth-review.res.md"));
    let out = list();
    let row = out
        .lines()
        .find(|l| l.starts_with("20261121-163000-auth-review"))
        .unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "20261121-163000-auth-review",
            "review",
            "claude->codex",
            "done",
            "fail",
            "1d"
        ]
    );
    // A new exchange changes the directory: it is listed, and the planted row is read again
    // only if its files changed (they did not), so it still shows.
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--name",
        "late",
        "Late one.",
    ]);
    let out = list();
    assert!(
        out.contains("late") && out.contains("claude->planted"),
        "{out}"
    );
    // A damaged cache is ignored, row by row or whole.
    std::fs::write(&cache, "relay-list-cache 2 0.1.0\n\tgarbage\n").unwrap();
    let out = list();
    assert!(!out.contains("planted") && out.contains("late"), "{out}");
    std::fs::write(&cache, "not a cache").unwrap();
    assert_eq!(list(), out);
    // A cache directory that leads out of .relay/ is neither read nor written.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("list.tsv"), text).unwrap();
    std::fs::remove_dir_all(env.relay_dir().join(".cache")).unwrap();
    std::os::unix::fs::symlink(outside.path(), env.relay_dir().join(".cache")).unwrap();
    assert_eq!(list(), out);
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["list.tsv"], "nothing written outside");
}

/// A directory of more than a thousand exchanges that changed since its rows were cached (a
/// new request, a removed one, a reply edited in place): its files are checked while it is
/// listed again, and the listing is what is there now.
#[test]
fn a_big_directory_changed_since_it_was_cached_lists_what_is_there_now() {
    let env = TestEnv::new();
    let tpl = env.ok(&[
        "req", "--from", "claude", "--to", "codex", "--name", "tpl", "Task.",
    ]);
    env.ok(&[
        "res",
        "--request",
        &tpl,
        "--status",
        "done",
        "--verify",
        "pass",
        "Done.",
    ]);
    let req = env.read(".relay/20261121-163000-tpl.req.md");
    let res = env.read(".relay/20261121-163000-tpl.res.md");
    for k in 0..1200 {
        let id = format!("20261121-163000-x{k}");
        let at = |ext: &str| format!(".relay/{id}.{ext}");
        env.write(&at("req.md"), &req.replace("20261121-163000-tpl", &id));
        if k % 2 == 0 {
            env.write(&at("res.md"), &res.replace("20261121-163000-tpl", &id));
        }
    }
    let statuses = |out: &str| {
        let mut n = std::collections::BTreeMap::new();
        for line in out.lines().skip(1) {
            let cells: Vec<&str> = line.split_whitespace().collect();
            *n.entry(format!("{} {}", cells[3], cells[4])).or_insert(0) += 1;
        }
        n
    };
    let first = env.ok(&["list"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        env.ok(&["list"]),
        first,
        "the listing that writes the cache"
    );
    fail_in_place(&env.relay_dir().join("20261121-163000-x0.res.md"));
    std::fs::remove_file(env.relay_dir().join("20261121-163000-x1.req.md")).unwrap();
    env.ok(&[
        "req", "--from", "claude", "--to", "codex", "--name", "late", "Late.",
    ]);
    let out = env.ok(&["list"]);
    assert_eq!(
        statuses(&out),
        [
            ("done fail".to_owned(), 1),
            ("done pass".to_owned(), 600),
            ("pending -".to_owned(), 600),
        ]
        .into_iter()
        .collect(),
    );
    assert!(!out.contains("-x1 ") && out.contains("-late "), "{out}");
}

#[test]
fn list_empty_and_missing_session() {
    let env = TestEnv::new();
    let out = env.run(&["list"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: no exchanges under $ROOT/.relay
    ");
    let out = env.run(&["list", "--session", "nope"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: session not found: $ROOT/.relay/nope
    [exit status: 4]
    ");
}

#[test]
fn list_is_not_confused_by_big_bodies_or_temp_files() {
    let env = TestEnv::new();
    let big = "x".repeat(5_000_000);
    let out = env.run_stdin(
        &["req", "--from", "a", "--to", "b", "--name", "big", "-"],
        big.as_bytes(),
    );
    assert_eq!(code(&out), 0);
    env.write(".relay/.tmp-abc123", "partial");
    let out = env.run(&["list"]);
    assert_snapshot!(env.render(&out), @"
    EXCHANGE             KIND  FROM->TO  STATUS   VERIFY  AGE
    20261121-163000-big  task  a->b      pending  -       0s
    ");
}

#[test]
fn show_text() {
    let env = populated();
    let out = env.run(&["show", "auth-review"]);
    assert_snapshot!(env.render(&out), @"
    exchange 20261121-163000-auth-review
    request  $ROOT/.relay/20261121-163000-auth-review.req.md
    from     claude
    to       codex
    kind     review
    created  2026-11-21T16:30:00Z (1d ago)
    reply    $ROOT/.relay/20261121-163000-auth-review.res.md
    status   done
    verify   pass
    answered 2026-11-21T16:30:00Z (1d ago)

    --- request ---
    Review src/auth.py.
    --- reply ---
    Found 2 issues; fixed; 12 tests pass.
    ");
    let out = env.run(&["show", "auth-refactor/2"]);
    assert_snapshot!(env.render(&out), @"
    exchange auth-refactor/002
    request  $ROOT/.relay/auth-refactor/002.req.md
    from     claude
    to       codex
    kind     task
    created  2026-11-21T18:00:00Z (1d ago)
    reply    pending: $ROOT/.relay/auth-refactor/002.res.md

    --- request ---
    Now fix test_expiry.
    ");
    let out = env.run(&["show", "broken"]);
    assert_snapshot!(env.render(&out), @"
    exchange 20261121-180000-broken
    request  $ROOT/.relay/20261121-180000-broken.req.md
    from     claude
    to       gemini
    kind     task
    created  2026-11-21T17:00:00Z (1d ago)
    reply    $ROOT/.relay/20261121-180000-broken.res.md
    problem  $ROOT/.relay/20261121-180000-broken.res.md:1: frontmatter: the file must start with a line that is exactly `---`

    --- request ---
    Summarize the README.
    ");
}

#[test]
fn show_json() {
    let env = populated();
    let out = env.run(&["show", "--json", "auth-refactor/001"]);
    assert_snapshot!(env.render(&out), @r#"
    {
      "request": {
        "path": "$ROOT/.relay/auth-refactor/001.req.md",
        "request": {
          "version": 7,
          "id": "001",
          "from": "claude",
          "to": "codex",
          "session": "auth-refactor",
          "created": "2026-11-21T18:00:00Z",
          "body": "Refactor the session store.\n",
          "footer": {
            "reply": "$ROOT/.relay/auth-refactor/001.res.md",
            "context": []
          }
        }
      },
      "answered": true,
      "reply": {
        "path": "$ROOT/.relay/auth-refactor/001.res.md",
        "valid": true,
        "diagnostics": [],
        "response": {
          "version": 7,
          "re": "001",
          "from": "codex",
          "to": "claude",
          "status": "done",
          "verify": "fail",
          "session": "auth-refactor",
          "created": "2026-11-21T18:00:00Z",
          "body": "11 of 12 pass.\n"
        }
      },
      "call": null
    }
    "#);
}

#[test]
fn show_errors() {
    let env = populated();
    env.ok(&["req", "--from", "a", "--to", "b", "--name", "review", "one"]);
    env.ok(&[
        "req",
        "--from",
        "a",
        "--to",
        "b",
        "--name",
        "auth-review",
        "two",
    ]);
    // A bare name means the newest exchange with exactly that name: `auth-review` is the one
    // created last, and `review` is never `auth-review`.
    let newest = env.ok(&["show", "auth-review", "--json"]);
    let newest: serde_json::Value = serde_json::from_str(&newest).unwrap();
    assert_eq!(
        newest["request"]["request"]["id"], "20261122-193000-auth-review",
        "{newest:#}"
    );
    let review = env.ok(&["show", "review", "--json"]);
    let review: serde_json::Value = serde_json::from_str(&review).unwrap();
    assert_eq!(
        review["request"]["request"]["id"], "20261122-193000-review",
        "{review:#}"
    );
    let out = env.run(&["show", "auth-refactor"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: exchange: `auth-refactor` is a session; name one turn, e.g. `auth-refactor/1`, or run `relay list --session auth-refactor`
    [exit status: 2]
    ");
    let out = env.run(&["show", "nothing-here"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: no exchange matches `nothing-here` in $ROOT/.relay
    hint: `relay list` shows the exchanges that exist
    [exit status: 4]
    ");
    let out = env.run(&["show", "auth-refactor/9"]);
    assert_eq!(code(&out), 4);
}

/// `relay call` with the fake peer in `mode`, named `name` unless `extra` names a session;
/// returns the exit code.
fn fake_call(env: &TestEnv, name: &str, mode: &str, extra: &[&str]) -> i32 {
    let peer = format!("{} {mode}", crate::common::FAKE_PEER);
    let mut args = vec!["call", "--to", "fake", "--peer-cmd", &peer];
    if !extra.contains(&"--session") {
        args.extend(["--name", name]);
    }
    args.extend(extra);
    args.push("Do it.");
    let out = env
        .cmd(&args)
        .env("RELAY_KILL_GRACE_MS", "200")
        .output()
        .unwrap();
    code(&out)
}

/// `list` and `show` tell what happened to each call from its run record: never `pending` for
/// a call that timed out, crashed, was cancelled or is still running.
#[test]
fn list_and_show_read_the_run_record() {
    let env = TestEnv::new();
    let call = |name: &str, mode: &str, extra: &[&str]| fake_call(&env, name, mode, extra);
    assert_eq!(call("ok", "instant", &[]), 0);
    assert_eq!(call("timed", "hang", &["--timeout", "1"]), 124);
    assert_eq!(call("crashed", "crash", &[]), 12);
    assert_eq!(call("printed", "stdout-only", &[]), 12);
    assert_eq!(call("running", "hang", &["--bg"]), 0);
    // A record left `running` by a supervisor that died (pid 0 is never a relay of ours).
    env.ok(&["req", "--to", "fake", "--name", "lost", "t"]);
    let lost = env.relay_dir().join("20261121-163000-lost.run.json");
    let running =
        std::fs::read_to_string(env.relay_dir().join("20261121-163000-running.run.json")).unwrap();
    let mut rec: serde_json::Value = serde_json::from_str(&running).unwrap();
    rec["supervisor_pid"] = 999_999_999u32.into();
    std::fs::write(&lost, rec.to_string()).unwrap();
    env.ok(&["req", "--to", "fake", "--name", "manual", "t"]);
    // Wait until the background call is really running.
    let t0 = std::time::Instant::now();
    while !{
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["status", "running", "--json"])).unwrap_or_default();
        v["live_state"] == "running" && v["pid"].is_u64()
    } {
        assert!(t0.elapsed().as_secs() < 20);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status_in = |list: &str, name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("20261121-163000-{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{list}"))
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_owned()
    };
    let list = env.ok(&["list"]);
    let status_of = |name: &str| status_in(&list, name);
    assert_eq!(status_of("ok"), "done");
    assert_eq!(status_of("timed"), "timeout");
    assert_eq!(status_of("crashed"), "no-reply");
    assert_eq!(status_of("printed"), "salvaged");
    assert_eq!(status_of("running"), "running");
    assert_eq!(status_of("lost"), "lost");
    assert_eq!(status_of("manual"), "pending");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).unwrap();
    let row = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == format!("20261121-163000-{name}"))
            .unwrap()
            .clone()
    };
    assert_eq!(row("printed")["salvaged"], true);
    assert_eq!(row("timed")["call"], "timeout");
    assert_eq!(row("manual")["call"], serde_json::Value::Null);
    // show says it in words.
    let show = env.ok(&["show", "timed"]);
    assert!(
        show.contains("call     timeout · fake · timed out after 1s"),
        "{show}"
    );
    assert!(show.contains("reply    none: "), "{show}");
    let show = env.ok(&["show", "printed"]);
    assert!(show.contains("(salvaged: final-message;"), "{show}");
    let show = env.ok(&["show", "running"]);
    assert!(show.contains("call     running · fake"), "{show}");
    assert!(show.contains("reply    not yet: "), "{show}");
    let out = env.run(&["cancel", "running"]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    assert_eq!(status_in(&env.ok(&["list"]), "running"), "terminated");
}

/// `relay clean` removes finished exchanges with every file beside them, never an unanswered
/// request (unless told) or a running call, and a session only as a whole.
#[test]
fn clean_removes_finished_exchanges_only() {
    let env = TestEnv::new();
    let call = |name: &str, mode: &str, extra: &[&str]| fake_call(&env, name, mode, extra);
    assert_eq!(call("done", "instant", &[]), 0);
    assert_eq!(call("timed", "hang", &["--timeout", "1"]), 124);
    assert_eq!(call("s", "instant", &["--session", "s"]), 0);
    assert_eq!(call("s", "instant", &["--session", "s"]), 0);
    assert_eq!(call("t", "instant", &["--session", "t"]), 0);
    env.ok(&["req", "--to", "fake", "--session", "t", "unanswered turn"]);
    env.ok(&["req", "--to", "fake", "--name", "manual", "t"]);
    assert_eq!(call("bg", "hang", &["--bg"]), 0);
    let t0 = std::time::Instant::now();
    // Running, and its peer started (its logs exist).
    while !{
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["status", "bg", "--json"])).unwrap_or_default();
        v["live_state"] == "running" && v["pid"].is_u64()
    } {
        assert!(t0.elapsed().as_secs() < 20);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The running call's supervisor rewrites its record through a `.tmp-` file meanwhile.
    let settled = || -> Vec<String> {
        env.relay_files()
            .into_iter()
            .filter(|f| !f.contains(".tmp-"))
            .collect()
    };
    let before = settled();
    let dry = env.ok(&["clean", "--dry-run"]);
    assert_snapshot!(dry, @"
    kept 20261121-163000-bg: a call is running (relay cancel it first)
    would remove 20261121-163000-done (5 files)
    kept 20261121-163000-manual: no reply (pass --unanswered)
    kept 20261121-163000-timed: no reply (pass --unanswered)
    would remove s/ (11 files)
    kept t/: no reply (pass --unanswered)
    would remove 2, kept 4
    ");
    assert_eq!(settled(), before, "--dry-run removed something");
    let out = env.ok(&["clean"]);
    assert!(out.ends_with("removed 2, kept 4"), "{out}");
    let files = env.relay_files();
    assert!(
        !files
            .iter()
            .any(|f| f.contains("-done.") || f.starts_with("s/")),
        "{files:#?}"
    );
    assert!(!env.relay_dir().join("s").exists());
    assert!(
        files.iter().any(|f| f.contains("-timed.req.md")),
        "{files:#?}"
    );
    assert!(files.iter().any(|f| f.starts_with("t/001.")), "{files:#?}");
    // --unanswered: the timed-out call and the manual request go; the running call stays.
    let out = env.ok(&["clean", "--unanswered"]);
    assert!(
        out.contains("kept 20261121-163000-bg: a call is running"),
        "{out}"
    );
    let files = env.relay_files();
    assert!(files.iter().any(|f| f.contains("-bg.req.md")), "{files:#?}");
    assert!(
        !files
            .iter()
            .any(|f| f.contains("-timed.") || f.contains("-manual.")),
        "{files:#?}"
    );
    assert!(!env.relay_dir().join("t").exists(), "{files:#?}");
    let out = env.run(&["cancel", "bg"]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    // --older-than, two days after the exchanges were made.
    let later = |age: &str| {
        let out = env
            .cmd(&["clean", "--unanswered", "--older-than", age])
            .env("RELAY_NOW", "2026-11-23T16:30:00Z")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = later("3d");
    assert!(
        out.contains("kept 20261121-163000-bg: newer than --older-than"),
        "{out}"
    );
    let out = later("1d");
    assert!(out.contains("removed 20261121-163000-bg"), "{out}");
    let files = env.relay_files();
    assert!(!files.iter().any(|f| f.contains("-bg.")), "{files:#?}");
}
