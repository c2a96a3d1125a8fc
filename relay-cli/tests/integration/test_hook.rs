//! `relay inbox`, `relay next` and `relay hook`: what is addressed to an agent, and the Stop
//! hook that keeps it from walking away from that work (fails open, yields to
//! `stop_hook_active`, blocks at most twice per agent session), installed into each CLI's own
//! settings without disturbing anything else.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;
use serde_json::{Value, json};

fn stop(env: &TestEnv, agent: &str, payload: &str) -> (i32, String) {
    let out = env.run_stdin(&["hook", "stop", "--agent", agent], payload.as_bytes());
    (code(&out), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn inbox_and_next_show_open_requests_newest_first() {
    let mut env = TestEnv::new();
    env.ok(&[
        "req",
        "--from",
        "codex",
        "--to",
        "claude",
        "--name",
        "old",
        "The older task.",
    ]);
    env.now = "2026-11-21T17:00:00Z".into();
    env.ok(&[
        "req",
        "--from",
        "gemini",
        "--to",
        "claude",
        "--name",
        "new",
        "The newer task.",
    ]);
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--name",
        "theirs",
        "Not for claude.",
    ]);
    // Answered: no longer open.
    env.ok(&[
        "req",
        "--from",
        "codex",
        "--to",
        "claude",
        "--name",
        "done",
        "Done already.",
    ]);
    env.ok(&[
        "res",
        "--request",
        "done",
        "--status",
        "done",
        "--verify",
        "skip",
        "Did it.",
    ]);
    assert_snapshot!(env.normalize(&env.ok(&["inbox", "--for", "claude"])), @"
    EXCHANGE             FROM      KIND          AGE  REQUEST
    20261121-170000-new  gemini    task           0s  $ROOT/.relay/20261121-170000-new.req.md
    20261121-163000-old  codex     task          30m  $ROOT/.relay/20261121-163000-old.req.md
    ");
    assert_snapshot!(env.normalize(&env.ok(&["next", "--for", "claude"])), @"
    relay next: id=20261121-170000-new from=gemini kind=task open=2 request=$ROOT/.relay/20261121-170000-new.req.md

    The newer task.

    Do the task, then answer (status error with the reason if you cannot; verify fail or skip as it is):
      relay res --request $ROOT/.relay/20261121-170000-new.req.md --status done --verify pass 'what you did and how you checked it'
    ");
    let v: Value = serde_json::from_str(&env.ok(&["next", "--for", "codex", "--json"])).unwrap();
    assert_eq!(v["exchange"], "20261121-170000-theirs");
    assert_eq!(
        env.ok(&["next", "--for", "gemini"]),
        "relay next: nothing open for gemini"
    );
    // Outside an agent, whose inbox it is must be said.
    let out = env.run(&["inbox"]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
}

#[test]
fn the_stop_hook_blocks_on_open_work_at_most_twice_and_fails_open() {
    let env = TestEnv::new();
    // Nothing under .relay/ at all: never block.
    assert_eq!(
        stop(&env, "claude", r#"{"session_id": "s1"}"#),
        (0, String::new())
    );
    env.ok(&[
        "req", "--from", "codex", "--to", "claude", "--name", "fix", "Fix it.",
    ]);
    let (c, out) = stop(&env, "claude", r#"{"session_id": "s1"}"#);
    assert_eq!(c, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "block");
    let reason = v["reason"].as_str().unwrap();
    let request = env.root.join(".relay/20261121-163000-fix.req.md");
    assert!(
        reason.contains(&format!("relay res --request {}", request.display())),
        "{reason}"
    );
    // The host's own loop guard is respected.
    let active = r#"{"session_id": "s1", "stop_hook_active": true}"#;
    assert_eq!(stop(&env, "claude", active), (0, String::new()));
    // relay's own cap: twice per agent session, then the agent may stop.
    assert!(
        stop(&env, "claude", r#"{"session_id": "s1"}"#)
            .1
            .contains("block")
    );
    assert_eq!(
        stop(&env, "claude", r#"{"session_id": "s1"}"#),
        (0, String::new())
    );
    assert!(
        stop(&env, "claude", r#"{"session_id": "s2"}"#)
            .1
            .contains("block")
    );
    // Each block is in the record, naming the request.
    let blocks: Vec<Value> = env
        .ok(&["log", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["type"] == "hook-block")
        .collect();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0]["author"], "claude");
    assert_eq!(blocks[0]["re"], "20261121-163000-fix");
    // Gemini's words: deny, or `{}` to allow; other agents' work does not block.
    let (_, out) = stop(&env, "gemini", r#"{"session_id": "g"}"#);
    assert_eq!(out.trim(), "{}");
    // Answered: no block.
    env.ok(&[
        "res",
        "--request",
        "fix",
        "--status",
        "done",
        "--verify",
        "skip",
        "Fixed.",
    ]);
    assert_eq!(
        stop(&env, "claude", r#"{"session_id": "s3"}"#),
        (0, String::new())
    );
    // Fails open on a payload that is not JSON, for every agent.
    env.ok(&[
        "req",
        "--from",
        "codex",
        "--to",
        "gemini",
        "--name",
        "g",
        "For gemini.",
    ]);
    assert_eq!(stop(&env, "gemini", "not json").1.trim(), "{}");
    assert_eq!(stop(&env, "codex", "not json"), (0, String::new()));
    let (_, out) = stop(&env, "gemini", r#"{"session_id": "g2"}"#);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["decision"],
        "deny"
    );
}

/// A `.relay/.hooks` planted as a link out of the project is not written through: the hook
/// fails open instead.
#[cfg(unix)]
#[test]
fn a_planted_hooks_link_is_not_followed() {
    let env = TestEnv::new();
    env.ok(&[
        "req", "--from", "codex", "--to", "claude", "--name", "fix", "Fix it.",
    ]);
    let outside = env.root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.relay_dir().join(".hooks")).unwrap();
    assert_eq!(
        stop(&env, "claude", r#"{"session_id": "s1"}"#),
        (0, String::new())
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// A request a `relay call` runs (or ran) is relay's to supervise, not the peer's inbox.
#[test]
fn calls_relay_supervises_are_not_in_the_inbox() {
    let env = TestEnv::new();
    let peer = format!("{} garbage", crate::common::FAKE_PEER);
    let out = env.run(&[
        "call",
        "--to",
        "claude",
        "--name",
        "c",
        "--peer-cmd",
        &peer,
        "x",
    ]);
    assert_eq!(code(&out), 12);
    assert_eq!(
        env.ok(&["inbox", "--for", "claude"]),
        "nothing open for claude"
    );
}

#[test]
fn install_merges_into_each_clis_settings_and_uninstall_removes_only_relays() {
    let env = TestEnv::new();
    let home = env.root.parent().unwrap();
    let claude = home.join(".claude/settings.json");
    std::fs::create_dir_all(claude.parent().unwrap()).unwrap();
    let theirs = r#"{
  // the user's own comment
  "model": "opus",
  "hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "notify-send done"}]}]}
}
"#;
    std::fs::write(&claude, theirs).unwrap();
    for agent in ["claude", "codex", "gemini"] {
        let out = env.run(&["hook", "install", "--agent", agent, "--json"]);
        assert_eq!(code(&out), 0, "{}", env.render(&out));
        // Twice is the same as once.
        let again: Value = serde_json::from_slice(
            &env.run(&["hook", "install", "--agent", agent, "--json"])
                .stdout,
        )
        .unwrap();
        assert_eq!(again["changed"], false, "{agent}");
    }
    let text = std::fs::read_to_string(&claude).unwrap();
    assert!(
        text.contains("// the user's own comment") && text.contains("notify-send done"),
        "{text}"
    );
    let stops: Value =
        jsonc_parser::parse_to_serde_value::<Value>(&text, &Default::default()).unwrap();
    assert_eq!(stops["hooks"]["Stop"].as_array().unwrap().len(), 2);
    let codex: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".codex/hooks.json")).unwrap())
            .unwrap();
    // codex refuses a hooks.json root with any key but `description` and `hooks`.
    assert_eq!(
        codex.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["hooks"]
    );
    let command = codex["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(
        command.starts_with('/') && command.ends_with(" hook stop --agent codex"),
        "{command}"
    );
    let gemini: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".gemini/settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        gemini["hooks"]["AfterAgent"][0]["hooks"][0]["timeout"],
        json!(30000)
    );
    // relay doctor reports each installed hook (codex: with the trust it needs).
    let doctor: Value =
        serde_json::from_slice(&env.run(&["doctor", "--no-probe", "--json"]).stdout).unwrap();
    let notes: Vec<&str> = doctor["environment"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .filter(|w| w.contains("Stop hook"))
        .collect();
    assert_eq!(notes.len(), 3, "{doctor:#}");
    for agent in ["claude", "codex", "gemini"] {
        assert_eq!(code(&env.run(&["hook", "uninstall", "--agent", agent])), 0);
    }
    // The user's settings as they were (comments too; relay's entry gone, whitespace aside).
    let after = std::fs::read_to_string(&claude).unwrap();
    let parse =
        |t: &str| jsonc_parser::parse_to_serde_value::<Value>(t, &Default::default()).unwrap();
    assert_eq!(parse(&after), parse(theirs), "{after}");
    assert!(after.contains("// the user's own comment"), "{after}");
    // Nothing of relay's left behind, not even the directories it made.
    assert!(!home.join(".codex").exists());
    assert!(!home.join(".gemini").exists());
    // A settings file that is not JSON is refused whole.
    std::fs::write(&claude, "{ not json").unwrap();
    let out = env.run(&["hook", "install", "--agent", "claude"]);
    assert_ne!(code(&out), 0);
    assert!(
        env.render(&out).contains("relay leaves it alone"),
        "{}",
        env.render(&out)
    );
    assert_eq!(std::fs::read_to_string(&claude).unwrap(), "{ not json");
}

/// The inbox cache follows the files: new requests appear, answered ones go, and a cache that
/// does not parse (or lies about a file that is gone) changes nothing.
#[test]
fn the_inbox_cache_follows_the_files() {
    let env = TestEnv::new();
    env.ok(&[
        "req", "--from", "codex", "--to", "claude", "--name", "one", "First.",
    ]);
    assert!(env.ok(&["inbox", "--for", "claude"]).contains("-one"));
    assert!(env.root.join(".relay/.cache/inbox.json").exists());
    env.ok(&[
        "req", "--from", "codex", "--to", "claude", "--name", "two", "Second.",
    ]);
    let listed = env.ok(&["inbox", "--for", "claude"]);
    assert!(
        listed.contains("-one") && listed.contains("-two"),
        "{listed}"
    );
    env.ok(&[
        "res",
        "--request",
        "one",
        "--status",
        "done",
        "--verify",
        "skip",
        "Done.",
    ]);
    let listed = env.ok(&["inbox", "--for", "claude"]);
    assert!(
        !listed.contains("-one") && listed.contains("-two"),
        "{listed}"
    );
    env.write(".relay/.cache/inbox.json", "{ not json");
    assert!(env.ok(&["inbox", "--for", "claude"]).contains("-two"));
    let cache = serde_json::json!({"v": 2, "entries": {"20261121-163000-gone.req.md": {
        "exchange": "20261121-163000-gone", "to": "claude", "from": "x", "kind": "task", "created": null}}});
    env.write(".relay/.cache/inbox.json", &cache.to_string());
    let listed = env.ok(&["inbox", "--for", "claude"]);
    assert!(
        !listed.contains("-gone") && listed.contains("-two"),
        "{listed}"
    );
}

/// The open list the hook reads is kept with the directories' modification times: used while
/// nothing under `.relay/` changed (settled for a second), never once a reply, a request or a
/// run record appears, and never when it names a path outside `.relay/`.
#[test]
fn the_stamped_open_list_is_used_only_while_nothing_changed() {
    let env = TestEnv::new();
    env.ok(&[
        "req", "--from", "codex", "--to", "claude", "--name", "fix", "Fix it.",
    ]);
    let settle = || {
        let ok = std::process::Command::new("touch")
            .args(["-m", "-d", "-10 seconds"])
            .arg(env.relay_dir())
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let kinds = || -> Vec<String> {
        let v: Value =
            serde_json::from_str(&env.ok(&["inbox", "--for", "claude", "--json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    // The first answer creates .relay/.cache/ (a change); once settled, the next is stamped.
    assert_eq!(kinds(), ["task"]);
    settle();
    assert_eq!(kinds(), ["task"]);
    // Settled: the stamp stands in for the listing (a planted kind shows it was read).
    let stamp = env.relay_dir().join(".cache/open-claude.json");
    let text = std::fs::read_to_string(&stamp).unwrap();
    std::fs::write(
        &stamp,
        text.replace("\"kind\":\"task\"", "\"kind\":\"planted\""),
    )
    .unwrap();
    assert_eq!(kinds(), ["planted"]);
    // A stamp naming a request outside .relay/ is not believed.
    let text = std::fs::read_to_string(&stamp).unwrap();
    let outside = text.replace(env.relay_dir().to_str().unwrap(), "/etc");
    std::fs::write(&stamp, outside).unwrap();
    assert_eq!(kinds(), ["task"]);
    // A reply changes .relay/: the request is answered at once.
    env.ok(&[
        "res",
        "--request",
        "fix",
        "--status",
        "done",
        "--verify",
        "skip",
        "Fixed.",
    ]);
    assert_eq!(kinds(), Vec::<String>::new());
    let (_, out) = stop(&env, "claude", r#"{"session_id": "s9"}"#);
    assert_eq!(out, "");
}
