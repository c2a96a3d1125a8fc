//! `relay note` and `relay decisions`: the ledger, written safely by many processes, redacted,
//! and read back with a decision in force until one supersedes it.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;
use serde_json::Value;

fn note(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["note", "--from", "claude", "--json"];
    all.extend(args);
    let out = env.run(&all);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn decisions_stay_in_force_until_superseded() {
    let env = TestEnv::new();
    let first = note(&env, &["--kind", "decision", "Global cache."]);
    assert_eq!(first["id"], "20261121-163000-1");
    assert_eq!(first["type"], "decision");
    note(&env, &["A note, not a decision."]);
    note(
        &env,
        &[
            "--kind",
            "evidence",
            "--status",
            "passed",
            "--evidence",
            "cargo test",
            "214 tests pass.",
        ],
    );
    let second = note(
        &env,
        &[
            "--kind",
            "decision",
            "--supersedes",
            "20261121-163000-1",
            "Per-user cache after all.",
        ],
    );
    assert_eq!(second["id"], "20261121-163000-4");
    assert_snapshot!(env.ok(&["decisions"]), @"20261121-163000-4 2026-11-21T16:30:00Z claude: Per-user cache after all.");
    assert_snapshot!(env.ok(&["decisions", "--all"]), @"
    20261121-163000-1 2026-11-21T16:30:00Z claude (superseded): Global cache.
    20261121-163000-4 2026-11-21T16:30:00Z claude: Per-user cache after all.
    ");
    let rows: Value = serde_json::from_str(&env.ok(&["decisions", "--all", "--json"])).unwrap();
    assert_eq!(rows[0]["in_force"], false);
    assert_eq!(rows[1]["in_force"], true);
    // Mistakes: superseding what is not a decision, or with a note.
    let out = env.run(&["note", "--kind", "decision", "--supersedes", "nope", "x"]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    let out = env.run(&["note", "--supersedes", "20261121-163000-4", "x"]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
    // Every line is one JSON entry.
    let ledger = env.read(".relay/ledger.jsonl");
    assert_eq!(ledger.lines().count(), 4);
    assert!(
        ledger
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
}

#[test]
fn secrets_never_reach_the_ledger() {
    let env = TestEnv::new();
    let e = note(
        &env,
        &[
            "--evidence",
            "curl -H 'Authorization: Bearer abcdef123456' https://api",
            "Ran with OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234 and ghp_0123456789abcdefghijABCDEFGHIJ.",
        ],
    );
    assert_eq!(
        e["text"],
        "Ran with OPENAI_API_KEY=[REDACTED] and [REDACTED]."
    );
    let ledger = env.read(".relay/ledger.jsonl");
    for secret in ["sk-proj-abc", "ghp_0123", "abcdef123456"] {
        assert!(!ledger.contains(secret), "{ledger}");
    }
}

#[test]
fn the_exchange_decides_the_ledger_and_must_exist() {
    let env = TestEnv::new();
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--session",
        "auth",
        "Task.",
    ]);
    let e = note(
        &env,
        &["--re", "auth/1", "Turn 1 settled the token format."],
    );
    assert_eq!(e["session"], "auth");
    assert_eq!(e["re"], "auth/001");
    assert!(env.root.join(".relay/auth/ledger.jsonl").exists());
    let out = env.run(&["note", "--re", "nosuch", "x"]);
    assert_eq!(code(&out), 4, "{}", env.render(&out));
}

#[test]
fn many_writers_and_a_torn_line() {
    let env = TestEnv::new();
    // A writer that crashed mid-line: the next entry starts on a line of its own.
    env.write(".relay/ledger.jsonl", "{\"v\":1,\"id\":\"torn");
    let children: Vec<_> = (0..12)
        .map(|i| {
            env.cmd(&["note", "--from", "codex", &format!("writer {i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let ledger = env.read(".relay/ledger.jsonl");
    let good: Vec<Value> = ledger
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(good.len(), 12, "{ledger}");
    let mut ids: Vec<&str> = good.iter().map(|v| v["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 12, "ids are unique: {ledger}");
    let out = env.run(&["decisions"]);
    assert_eq!(code(&out), 0);
    assert!(
        env.render(&out).contains("skipped 1 line(s)"),
        "{}",
        env.render(&out)
    );
}

#[cfg(unix)]
#[test]
fn a_planted_link_is_not_followed() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.relay_dir()).unwrap();
    let outside = env.root.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "").unwrap();
    std::os::unix::fs::symlink(&outside, env.relay_dir().join("ledger.jsonl")).unwrap();
    let out = env.run(&["note", "x"]);
    assert_ne!(code(&out), 0, "{}", env.render(&out));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "");
}

/// 16 writers, 50 entries each, at once: none lost, none torn, every id unique.
#[test]
fn sixteen_writers_fifty_entries_each() {
    let env = TestEnv::new();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_relay"));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let script = format!(
                "for i in $(seq 1 50); do {} note --from codex \"writer {w} entry $i\" >/dev/null || exit 1; done",
                bin.display()
            );
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&env.root)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("RELAY_NOW", &env.now)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    let ledger = env.read(".relay/ledger.jsonl");
    let entries: Vec<Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect();
    assert_eq!(entries.len(), 800);
    let mut texts: Vec<&str> = entries
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 800, "none lost");
    let mut ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 800, "ids are unique");
}
