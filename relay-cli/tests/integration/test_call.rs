//! `relay call` against the hermetic fake peer: every way a peer can behave, each ending with
//! the right outcome, exit code and files, and no process left behind.

use std::path::PathBuf;
use std::process::Output;

use crate::common::{FAKE_PEER, TestEnv, alive, code, no_times};
use insta::assert_snapshot;

struct Call {
    env: TestEnv,
    pids: PathBuf,
}

impl Call {
    fn new() -> Call {
        let env = TestEnv::new();
        let pids = env.root.parent().unwrap().join("pids.txt");
        Call { env, pids }
    }

    /// `relay call --to fake --name NAME --peer-cmd 'relay-fake-peer MODE' ...EXTRA 'the task'`
    fn run(&self, mode: &str, extra: &[&str], envs: &[(&str, &str)]) -> Output {
        let peer_cmd = format!("{FAKE_PEER} {mode}");
        let mut args = vec![
            "call",
            "--to",
            "fake",
            "--name",
            mode,
            "--peer-cmd",
            &peer_cmd,
        ];
        args.extend(extra);
        args.push("Do the task.");
        let mut cmd = self.env.cmd(&args);
        cmd.env("FAKE_PEER_PIDS", &self.pids)
            .env("RELAY_KILL_GRACE_MS", "300")
            .env("RELAY_SETTLE_MS", "3000");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn render(&self, out: &Output) -> String {
        no_times(&self.env.render(out))
    }

    /// Every process the fake peer started is gone.
    fn assert_no_survivors(&self) {
        let pids = std::fs::read_to_string(&self.pids).unwrap_or_default();
        let started: Vec<u32> = pids.lines().filter_map(|l| l.parse().ok()).collect();
        assert!(!started.is_empty(), "the fake peer recorded no pid");
        let alive: Vec<u32> = started.iter().copied().filter(|p| alive(*p)).collect();
        assert!(
            alive.is_empty(),
            "processes left behind: {alive:?} of {started:?}"
        );
    }

    /// Starts `relay call` with a hanging fake peer (and its grandchild) named `name`, and
    /// returns once both processes run.
    fn spawn_hanging(&self, name: &str, extra: &[&str]) -> std::process::Child {
        let peer = format!("{FAKE_PEER} hang");
        let mut args = vec!["call", "--to", "fake", "--name", name, "--peer-cmd", &peer];
        args.extend(extra);
        args.push("Hang.");
        let child = self
            .env
            .cmd(&args)
            .env("FAKE_PEER_PIDS", &self.pids)
            .env("RELAY_KILL_GRACE_MS", "300")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while std::fs::read_to_string(&self.pids).map_or(0, |p| p.lines().count()) < 2 {
            assert!(t0.elapsed().as_secs() < 20, "the fake peer never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    /// Have all processes the fake peer started exited?
    fn started_all_dead(&self) -> bool {
        let pids = std::fs::read_to_string(&self.pids).unwrap_or_default();
        pids.lines()
            .filter_map(|l| l.parse().ok())
            .all(|p: u32| !alive(p))
    }

    fn record(&self, mode: &str) -> serde_json::Value {
        let path = self
            .env
            .relay_dir()
            .join(format!("20261121-163000-{mode}.run.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

#[test]
fn instant_reply() {
    let c = Call::new();
    let out = c.run("instant", &[], &[]);
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-instant outcome=ok status=done verify=pass peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-instant.res.md

    Fake peer answer for 20261121-163000-instant.
    ");
    assert_eq!(
        c.env.relay_files(),
        [
            ".gitignore",
            "20261121-163000-instant.req.md",
            "20261121-163000-instant.res.md",
            "20261121-163000-instant.run.json",
            "20261121-163000-instant.stderr.log",
            "20261121-163000-instant.stdout.log",
            "calls.jsonl",
            "ledger.jsonl"
        ]
    );
    let r = c.record("instant");
    assert_eq!(
        (
            r["state"].as_str(),
            r["outcome"].as_str(),
            r["exit_code"].as_u64()
        ),
        (Some("finished"), Some("ok"), Some(0))
    );
    let ledger = c.env.read(".relay/calls.jsonl");
    assert_eq!(ledger.lines().count(), 1);
    assert!(ledger.contains("\"outcome\":\"ok\""), "{ledger}");
    c.assert_no_survivors();
}

#[test]
fn slow_reply() {
    let c = Call::new();
    let out = c.run("slow", &[], &[("FAKE_PEER_DELAY_MS", "400")]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    c.assert_no_survivors();
}

#[test]
fn hang_with_a_grandchild_holding_the_pipes_is_killed_at_the_deadline() {
    let c = Call::new();
    let out = c.run("hang", &["--timeout", "1"], &[]);
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-hang outcome=timeout status=- verify=- peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-hang.res.md
    ------- stderr -------
    relay: timed out after 1s; the peer's process tree was killed
    hint: the peer's output is in $ROOT/.relay/20261121-163000-hang.stdout.log and $ROOT/.relay/20261121-163000-hang.stderr.log
    [exit status: 124]
    ");
    let r = c.record("hang");
    assert_eq!(r["outcome"], "timeout");
    assert!(
        r["kill_ms"].is_u64(),
        "the record says how the tree was killed: {r}"
    );
    c.assert_no_survivors();
}

#[test]
fn a_grandchild_that_left_the_process_group_is_killed_too() {
    let c = Call::new();
    let out = c.run("hang-escaped", &["--timeout", "1"], &[]);
    assert_eq!(code(&out), 124, "{}", c.render(&out));
    c.assert_no_survivors();
}

#[test]
fn a_peer_ignoring_sigterm_gets_sigkill() {
    let c = Call::new();
    let out = c.run("ignore-term", &["--timeout", "1"], &[]);
    assert_eq!(code(&out), 124, "{}", c.render(&out));
    // SIGKILL only comes after the grace period (300 ms here), so the kill cannot be quicker.
    let kill_ms = c.record("ignore-term")["kill_ms"].as_u64().unwrap();
    assert!(
        kill_ms >= 300,
        "killed after {kill_ms} ms, before the grace period ended"
    );
    c.assert_no_survivors();
}

#[test]
fn idle_timeout() {
    let c = Call::new();
    let out = c.run("hang", &["--idle-timeout", "1"], &[]);
    assert_eq!(code(&out), 124, "{}", c.render(&out));
    assert_eq!(c.record("hang")["outcome"], "idle-timeout");
    c.assert_no_survivors();
}

#[test]
fn crash() {
    let c = Call::new();
    let out = c.run("crash", &[], &[]);
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-crash outcome=no-reply status=- verify=- peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-crash.res.md
    ------- stderr -------
    relay: fake exited with code 3 without writing the reply
    hint: the peer's output is in $ROOT/.relay/20261121-163000-crash.stdout.log and $ROOT/.relay/20261121-163000-crash.stderr.log
    [exit status: 12]
    ");
    assert!(
        !c.env
            .relay_dir()
            .join("20261121-163000-crash.res.md")
            .exists()
    );
    c.assert_no_survivors();
}

#[test]
fn garbage_reply() {
    let c = Call::new();
    let out = c.run("garbage", &[], &[]);
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-garbage outcome=invalid-reply status=- verify=- peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-garbage.res.md
    ------- stderr -------
    relay: the reply is not valid: line 1: frontmatter: the file must start with a line that is exactly `---`
    relay: $ROOT/.relay/20261121-163000-garbage.res.md:1: frontmatter: the file must start with a line that is exactly `---`
    hint: the peer's output is in $ROOT/.relay/20261121-163000-garbage.stdout.log and $ROOT/.relay/20261121-163000-garbage.stderr.log
    [exit status: 12]
    ");
    c.assert_no_survivors();
}

#[test]
fn partial_reply() {
    let c = Call::new();
    let out = c.run("partial", &[], &[]);
    assert_eq!(code(&out), 12, "{}", c.render(&out));
    assert_eq!(c.record("partial")["outcome"], "invalid-reply");
    c.assert_no_survivors();
}

#[test]
fn reply_to_the_wrong_id() {
    let c = Call::new();
    let out = c.run("wrong-id", &[], &[]);
    assert_snapshot!(c.render(&out), @r#"
    relay call: id=20261121-163000-wrong-id outcome=invalid-reply status=- verify=- peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-wrong-id.res.md

    Fake peer answer for 20200101-000000-someone-else.
    ------- stderr -------
    relay: the reply is not valid: line 3: re: is "20200101-000000-someone-else" but the file is "20261121-163000-wrong-id.res.md": the re must be the file name without .res.md
    relay: $ROOT/.relay/20261121-163000-wrong-id.res.md:3: re: is "20200101-000000-someone-else" but the file is "20261121-163000-wrong-id.res.md": the re must be the file name without .res.md
    hint: the peer's output is in $ROOT/.relay/20261121-163000-wrong-id.stdout.log and $ROOT/.relay/20261121-163000-wrong-id.stderr.log
    [exit status: 12]
    "#);
    c.assert_no_survivors();
}

#[test]
fn answer_on_stdout_only_is_salvaged() {
    let c = Call::new();
    let out = c.run("stdout-only", &[], &[]);
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-stdout-only outcome=salvaged status=done verify=skip peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-stdout-only.res.md salvaged=final-message

    I did the task but only printed the answer here.
    ------- stderr -------
    relay: fake wrote no reply file; relay saved its final message as the reply (salvaged, verify skip)
    hint: the peer's output is in $ROOT/.relay/20261121-163000-stdout-only.stdout.log and $ROOT/.relay/20261121-163000-stdout-only.stderr.log
    [exit status: 12]
    ");
    let reply = c.env.read(".relay/20261121-163000-stdout-only.res.md");
    assert_snapshot!(reply, @r#"
    ---
    relay: 7
    re: "20261121-163000-stdout-only"
    from: fake
    to: user
    status: done
    verify: skip
    salvaged: final-message
    created: "2026-11-21T16:30:00Z"
    ---

    I did the task but only printed the answer here.
    "#);
    let v = c
        .env
        .run(&["validate", ".relay/20261121-163000-stdout-only.res.md"]);
    assert_eq!(
        code(&v),
        0,
        "a salvaged reply is a valid reply: {}",
        c.env.render(&v)
    );
    c.assert_no_survivors();
}

#[test]
fn reply_written_late_by_a_grandchild_after_the_peer_exits() {
    let c = Call::new();
    let out = c.run("late", &[], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    assert_eq!(c.record("late")["outcome"], "ok");
    c.assert_no_survivors();
}

#[test]
fn read_only_peer_answers_as_final_message() {
    let c = Call::new();
    let out = c.run("final-reply", &["--mode", "read-only"], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let req = c.env.read(".relay/20261121-163000-final-reply.req.md");
    assert!(req.contains(relay_core::FINAL_MESSAGE_RULE), "{req}");
    let reply = c.env.read(".relay/20261121-163000-final-reply.res.md");
    assert!(
        reply.starts_with("---\nrelay: 6\nre: \"20261121-163000-final-reply\""),
        "{reply}"
    );
    assert!(
        !reply.contains("salvaged"),
        "a complete reply is not salvaged"
    );
}

#[test]
fn a_read_only_peer_that_changes_the_project_is_out_of_scope() {
    let c = Call::new();
    c.env
        .git_init(&[("src/lib.rs", "fn main() {}\n"), ("dirty.txt", "before\n")]);
    // Dirty before the call: only the peer's own changes count.
    c.env.write("dirty.txt", "dirty before the call\n");
    let target = c.env.root.join("src/lib.rs");
    let out = c.run(
        "write-outside",
        &["--mode", "read-only"],
        &[("FAKE_PEER_TARGET", target.to_str().unwrap())],
    );
    assert_eq!(code(&out), 13, "{}", c.render(&out));
    let record = c.record("write-outside");
    assert_eq!(record["outcome"], "out-of-scope");
    assert_eq!(record["changed_outside"], serde_json::json!(["src/lib.rs"]));
    assert_snapshot!(c.render(&out), @"
    relay call: id=20261121-163000-write-outside outcome=out-of-scope status=done verify=pass peer=fake time=[T] reply=$ROOT/.relay/20261121-163000-write-outside.res.md

    Fake peer answer for 20261121-163000-write-outside.
    ------- stderr -------
    relay: read-only, but 1 path outside .relay/ changed while the peer ran: src/lib.rs
    hint: review the changes with `git status` and `git diff`; relay undoes nothing (they are listed in $ROOT/.relay/20261121-163000-write-outside.run.json)
    [exit status: 13]
    ");
    // The same peer that leaves the project alone is fine, even with a dirty tree.
    let out = c.run("final-reply", &["--mode", "read-only"], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
}

#[test]
fn status_and_verify_map_to_exit_codes() {
    for (status, verify, want) in [
        ("done", "pass", 0),
        ("done", "skip", 0),
        ("done", "fail", 10),
        ("error", "skip", 11),
        ("error", "fail", 11),
    ] {
        let c = Call::new();
        let out = c.run(
            "instant",
            &[],
            &[("FAKE_PEER_STATUS", status), ("FAKE_PEER_VERIFY", verify)],
        );
        assert_eq!(code(&out), want, "{status}/{verify}: {}", c.render(&out));
        let header = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .to_owned();
        assert!(
            header.contains(&format!("status={status} verify={verify}")),
            "{header}"
        );
    }
}

#[test]
fn json_result() {
    let c = Call::new();
    let out = c.run("instant", &["--json"], &[]);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "exchange",
        "outcome",
        "status",
        "verify",
        "reply",
        "request",
        "stdout_log",
        "stderr_log",
        "elapsed_ms",
        "usage",
        "body",
        "salvaged",
        "reason",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["body"], "Fake peer answer for 20261121-163000-instant.\n");
}

#[test]
fn ctrl_c_kills_the_tree_and_exits_130() {
    let c = Call::new();
    let child = c.spawn_hanging("hang", &[]);
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 130, "{}", c.render(&out));
    assert_eq!(c.record("hang")["outcome"], "interrupted");
    c.assert_no_survivors();
}

#[test]
fn peer_not_found_writes_nothing() {
    let env = TestEnv::new();
    let out = env.run(&["call", "--to", "codex", "--name", "x", "task"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: `codex` not found on PATH
    hint: install it (npm install -g @openai/codex), or name another program with --peer-cmd; `relay doctor` checks every peer
    [exit status: 127]
    ");
    assert!(env.relay_files().is_empty());
    let out = env.run(&["call", "--to", "nosuch", "--name", "x", "task"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: unknown peer `nosuch`
    hint: built in: codex, claude, gemini; add others in $HOME/.config/relay/config.yaml or pass --peer-cmd
    [exit status: 2]
    ");
}

#[test]
fn recursion_is_bounded() {
    let env = TestEnv::new();
    let out = env
        .cmd(&[
            "call",
            "--to",
            "fake",
            "--name",
            "x",
            "--peer-cmd",
            "true",
            "task",
        ])
        .env("RELAY_DEPTH", "2")
        .output()
        .unwrap();
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: refusing to nest relay calls deeper than 2 (RELAY_DEPTH=2)
    hint: a peer asked relay to call another peer; answer the task yourself, or raise RELAY_MAX_DEPTH
    [exit status: 6]
    ");
    assert!(env.relay_files().is_empty());
    // A peer calling relay again: with RELAY_MAX_DEPTH=1 the inner call is refused (exit 6),
    // and the outer call still completes with the peer's reply.
    let c = Call::new();
    let inner = format!(
        "{} call --to fake --name inner --peer-cmd '{FAKE_PEER} instant' 'inner task'",
        env!("CARGO_BIN_EXE_relay")
    );
    let out = c.run(
        "recurse",
        &[],
        &[("FAKE_PEER_INNER", &inner), ("RELAY_MAX_DEPTH", "1")],
    );
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let reply = c.env.read(".relay/20261121-163000-recurse.res.md");
    assert!(
        reply.contains("inner exit 6: relay: refusing to nest relay calls deeper than 1"),
        "{reply}"
    );
}

#[test]
fn peer_environment_is_scrubbed_and_marked() {
    let c = Call::new();
    let peer_cmd = "env > \"$RELAY_REPLY.env\"; printf -- '---\\nrelay: 6\\nre: \"%s\"\\nfrom: fake\\nto: user\\nstatus: done\\nverify: skip\\n---\\n\\nok\\n' \"$(basename \"$RELAY_REQUEST\" .req.md)\" > \"$RELAY_REPLY\"";
    let out = c
        .env
        .cmd(&[
            "call",
            "--to",
            "fake",
            "--name",
            "env",
            "--peer-cmd",
            peer_cmd,
            "task",
        ])
        .env("CLAUDECODE", "1")
        .env("CLAUDE_CODE_ENTRYPOINT", "cli")
        .env("CODEX_SANDBOX", "seatbelt")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let env = c.env.read(".relay/20261121-163000-env.res.md.env");
    for gone in ["CLAUDECODE=", "CLAUDE_CODE_ENTRYPOINT=", "CODEX_SANDBOX="] {
        assert!(
            !env.lines().any(|l| l.starts_with(gone)),
            "{gone} leaked into the peer"
        );
    }
    for set in ["RELAY_DEPTH=1", "RELAY_PEER=fake", "NO_COLOR=1"] {
        assert!(env.lines().any(|l| l == set), "{set} missing");
    }
    // The caller was detected from the environment (Codex wins over a leaked CLAUDECODE).
    assert!(
        c.env
            .read(".relay/20261121-163000-env.req.md")
            .contains("from: codex")
    );
}

#[test]
fn session_turns_list_the_history_and_continue() {
    let c = Call::new();
    for _ in 0..2 {
        let peer_cmd = format!("{FAKE_PEER} instant");
        let out = c
            .env
            .cmd(&[
                "call",
                "--to",
                "fake",
                "--session",
                "s",
                "--peer-cmd",
                &peer_cmd,
                "next step",
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", c.render(&out));
    }
    let second = c.env.read(".relay/s/002.req.md");
    assert!(
        second.contains("Context: read these earlier turns of the session first, in order:\n  "),
        "{second}"
    );
    assert!(
        second.contains("/.relay/s/001.req.md\n  ") && second.contains("/.relay/s/001.res.md\n"),
        "{second}"
    );
}

#[test]
fn background_call_wait_status_cancel() {
    let c = Call::new();
    // A slow peer in the background: wait prints the result with the call's exit code.
    let out = c.run("slow", &["--bg"], &[("FAKE_PEER_DELAY_MS", "300")]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("relay call: id=20261121-163000-slow outcome=started")
    );
    let out = c.env.run(&["wait", "slow"]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("outcome=ok"));
    // A hanging one: status says running, cancel kills the tree, wait reports it.
    let out = c.run("hang", &["--bg"], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let t0 = std::time::Instant::now();
    loop {
        let st = c.env.run(&["status", "hang", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        if v["live_state"] == "running" && v["pid"].is_u64() {
            break;
        }
        assert!(
            t0.elapsed().as_secs() < 20,
            "never running: {}",
            c.render(&st)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = c.env.run(&["cancel", "hang"]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let out = c.env.run(&["wait", "hang"]);
    assert_eq!(code(&out), 130, "{}", c.render(&out));
    let table = c.env.run(&["status"]);
    assert_snapshot!(no_elapsed(&c.render(&table)), @"
    EXCHANGE              STATE          PEER           PID    ELAPSED  ACTIVITY
    20261121-163000-hang terminated fake
    20261121-163000-slow ok fake
    ");
    c.assert_no_survivors();
}

/// The status table's pid and elapsed columns vary.
fn no_elapsed(s: &str) -> String {
    s.lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() >= 5 && cols[0] != "EXCHANGE" {
                format!("{} {} {}", cols[0], cols[1], cols[2])
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// On a terminal, a spinner on stderr shows the peer, elapsed/timeout and its latest output;
/// piped (every other test here), nothing decorative at all.
#[test]
fn spinner_on_a_terminal_only() {
    let Ok(script) = which_script() else {
        eprintln!("skipping: no `script` to give relay a terminal");
        return;
    };
    let c = Call::new();
    let cmd = format!(
        "{} call --to fake --name spin --peer-cmd '{FAKE_PEER} slow' 'task'",
        env!("CARGO_BIN_EXE_relay")
    );
    let out = std::process::Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(&c.env.root)
        .env("FAKE_PEER_DELAY_MS", "600")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("fake · 0s / 1800s · working"), "{screen}");
    assert!(screen.contains("outcome=ok"), "{screen}");
}

fn which_script() -> Result<PathBuf, ()> {
    ["/usr/bin/script", "/bin/script"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn a_broken_config_file_is_named_with_its_line() {
    let c = Call::new();
    let cfg = c.env.root.parent().unwrap().join("bad.yaml");
    std::fs::write(&cfg, "peers:\n  mine:\n    command: [x]\n    colour: red\n").unwrap();
    let out = c
        .env
        .cmd(&["call", "--to", "mine", "--name", "x", "task"])
        .env("RELAY_CONFIG", &cfg)
        .output()
        .unwrap();
    let text = c.render(&out).replace(cfg.to_str().unwrap(), "$CONFIG");
    assert_snapshot!(text, @"
    ------- stderr -------
    relay: $HOME/bad.yaml:4: peers.mine: unknown field `colour`, expected one of `command`, `modes`, `model`, `effort`, `resume`, `env`, `full_env`, `unset_env`, `output`, `install_hint`, `login_hint`, `help_args`, `required_flags`, `request_on_stdin`, `markers`, `instructions`, `config_dir`, `config_dir_env` at line 4 column 5
    [exit status: 1]
    ");
    assert!(c.env.relay_files().is_empty());
}

/// A peer whose file tools cannot read `.relay/` (Gemini CLI's read_file refuses ignored paths)
/// gets the request's text on stdin, byte for byte, and a prompt that says it is above.
#[test]
fn request_on_stdin_feeds_the_request_text() {
    let c = Call::new();
    let got = c.env.root.parent().unwrap().join("stdin.txt");
    let cfg = c.env.root.parent().unwrap().join("peers.yaml");
    std::fs::write(
        &cfg,
        format!(
            "peers:\n  piped:\n    command: [sh, -c, 'cat > \"$0\"; printf %s \"$RELAY_PROMPT\" > \"$0.prompt\"; exec {FAKE_PEER} instant', '{}']\n    request_on_stdin: true\n",
            got.display()
        ),
    )
    .unwrap();
    let out = c
        .env
        .cmd(&["call", "--to", "piped", "--name", "piped", "Do the task."])
        .env("RELAY_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let request = c.env.read(".relay/20261121-163000-piped.req.md");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), request);
    let prompt = std::fs::read_to_string(got.with_extension("txt.prompt")).unwrap();
    assert_eq!(
        c.env.normalize(&prompt),
        "The text above is the relay request $ROOT/.relay/20261121-163000-piped.req.md (already read for you; do not read it again): do the task it describes, then write your reply to the exact file its footer names, in the format it shows."
    );
}

/// A pid in a run record is acted on only while it is still the process relay started (same
/// start time): a record whose supervisor and peer pids now belong to a stranger is marked
/// stale, the stranger is never signalled, and `wait` does not hang on it.
#[test]
fn a_reused_pid_is_never_signalled() {
    use std::os::unix::process::CommandExt as _;
    let c = Call::new();
    let out = c.run("instant", &[], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    // A stranger whose command line mentions `call`, as relay's does, leading a group of its own.
    let mut stranger = std::process::Command::new("sh")
        .args(["-c", "sleep 60", "call"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = stranger.id();
    let path = c.env.relay_dir().join("20261121-163000-instant.run.json");
    let mut rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    rec["state"] = "running".into();
    rec["outcome"] = serde_json::Value::Null;
    rec["supervisor_pid"] = pid.into();
    rec["supervisor_start"] = 1.into();
    rec["pid"] = pid.into();
    rec["peer_start"] = 1.into();
    std::fs::write(&path, rec.to_string()).unwrap();
    let st: serde_json::Value =
        serde_json::from_slice(&c.env.run(&["status", "instant", "--json"]).stdout).unwrap();
    assert_eq!(st["live_state"], "lost", "{st:#}");
    let out = c.env.run(&["wait", "instant", "--timeout", "10"]);
    assert_eq!(code(&out), 1, "{}", c.render(&out));
    let out = c.env.run(&["cancel", "instant"]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("marked stale"),
        "{}",
        c.render(&out)
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was signalled"
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(rec["state"], "stale");
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// The supervisor of a background call is SIGKILLed: `cancel` still takes the peer's whole
/// group down, because the peer's pid and start time still match the record.
#[test]
fn cancel_after_the_supervisor_died_kills_the_peer() {
    let c = Call::new();
    let out = c.run("hang", &["--bg"], &[]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let t0 = std::time::Instant::now();
    let rec = loop {
        let v = c.record("hang");
        if v["pid"].is_u64() && v["peer_start"].is_u64() {
            break v;
        }
        assert!(t0.elapsed().as_secs() < 20, "never started: {v:#}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let sup = rec["supervisor_pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &sup.to_string()])
        .status()
        .unwrap();
    while alive(u32::try_from(sup).unwrap()) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = c.env.run(&["cancel", "hang"]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("relay: cancelled"));
    let t0 = std::time::Instant::now();
    while !c.started_all_dead() {
        assert!(t0.elapsed().as_secs() < 10, "the peer's group survived");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(c.record("hang")["outcome"], "terminated");
}

/// Every way a call can end after the peer started gives a documented exit code and a
/// finished run record; what the peer printed is kept; nothing outside `.relay/` is touched.
#[test]
fn hostile_reply_paths_end_as_invalid_with_a_finished_record() {
    let c = Call::new();
    let outside = c.env.root.parent().unwrap().join("outside.md");
    // A FIFO at the reply path must not make relay block on it.
    for mode in ["dir-reply", "link-reply", "dangling-reply", "fifo-reply"] {
        let out = c.run(
            mode,
            &["--json"],
            &[("FAKE_PEER_TARGET", outside.to_str().unwrap())],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(code(&out), 12, "{mode}: {v:#}");
        assert_eq!(v["outcome"], "invalid-reply", "{mode}: {v:#}");
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("the reply path holds "),
            "{mode}: {v:#}"
        );
        assert_eq!(c.record(mode)["state"], "finished", "{mode}");
    }
    // The link's target outside the project was read by nobody and changed by nobody.
    assert!(
        std::fs::read_to_string(&outside)
            .unwrap()
            .contains("Fake peer answer")
    );
    c.assert_no_survivors();
}

#[test]
fn a_nul_in_the_final_message_is_still_saved() {
    let c = Call::new();
    let out = c.run("nul-final", &[], &[]);
    assert_eq!(code(&out), 12, "{}", c.render(&out));
    let reply = c.env.read(".relay/20261121-163000-nul-final.res.md");
    assert!(
        reply.contains("An answer with a NUL \u{FFFD} byte in it."),
        "{reply}"
    );
    assert_eq!(c.record("nul-final")["outcome"], "salvaged");
}

#[test]
fn a_peer_that_deletes_the_request_loses_nothing() {
    let c = Call::new();
    let out = c.run("delete-request", &[], &[]);
    assert_eq!(code(&out), 12, "{}", c.render(&out));
    let rec = c.record("delete-request");
    assert_eq!(rec["state"], "finished");
    assert_eq!(rec["outcome"], "no-reply");
    assert_eq!(
        rec["final_message"],
        "I removed the request, then answered here."
    );
}

/// Links planted where relay writes (a log, `.relay` itself) are refused, never followed.
#[test]
fn planted_symlinks_are_never_followed() {
    let c = Call::new();
    let outside = c.env.root.parent().unwrap().join("victim.txt");
    std::fs::write(&outside, "precious\n").unwrap();
    std::fs::create_dir_all(c.env.relay_dir()).unwrap();
    std::os::unix::fs::symlink(
        &outside,
        c.env.relay_dir().join("20261121-163000-instant.stdout.log"),
    )
    .unwrap();
    let out = c.run("instant", &["--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(code(&out), 12, "{v:#}");
    assert!(
        v["reason"].as_str().unwrap().contains("symbolic links"),
        "{v:#}"
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    assert_eq!(c.record("instant")["state"], "finished");
    // `.relay` itself a link: every command refuses, naming it.
    let env = crate::common::TestEnv::new();
    let elsewhere = env.root.parent().unwrap().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.relay_dir()).unwrap();
    for args in [&["list"][..], &["req", "--to", "b", "--name", "n", "t"][..]] {
        let out = env.run(args);
        assert_snapshot!(format!("relay-dir-link-{}", args[0]), env.render(&out));
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// SIGKILL the foreground `relay call`: its watchdog still ends the peer's whole group at
/// `--timeout`, so no peer outlives its deadline because relay died.
#[test]
fn the_deadline_holds_when_relay_is_killed() {
    let c = Call::new();
    let t0 = std::time::Instant::now();
    let mut relay = c.spawn_hanging("orphan", &["--timeout", "2"]);
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert!(
        !c.started_all_dead(),
        "the peer died with relay: nothing to test"
    );
    // The deadline is 2 s after the start, plus 0.3 s of grace; allow plenty on a slow machine.
    while !c.started_all_dead() {
        assert!(
            t0.elapsed().as_secs() < 30,
            "the peer outlived its deadline after relay was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!(
        "peer tree dead {:?} after the call started (deadline 2 s)",
        t0.elapsed()
    );
}

/// A watchdog whose supervisor died before giving it a group (end of input, no orders), or
/// whose group is already gone, has nothing to guard and exits at once.
#[test]
fn a_watchdog_without_a_live_group_exits() {
    let env = TestEnv::new();
    for orders in ["", "garbage\n", "4000000 99999999999999 10\n"] {
        let out = env.run_stdin(&["__watchdog"], orders.as_bytes());
        assert_eq!(code(&out), 0, "{orders:?}: {}", env.render(&out));
    }
}

/// A background supervisor starts work only at the end of its stdin, which the relay that
/// started it holds until the run record names the supervisor: that relay's write can never
/// land over one of the supervisor's (it once replaced a finished record with `running`).
#[test]
fn a_supervisor_waits_at_its_gate() {
    use std::io::Write as _;
    let env = TestEnv::new();
    let mut sup = env.cmd(&["__supervise", ".relay/missing.req.md"]);
    let mut child = sup
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut gate = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the supervisor went on before its gate opened"
    );
    // Bytes on the gate are not an opening; its end is.
    gate.write_all(b"x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none());
    drop(gate);
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "a missing request is an error");
}

/// `--bg`: the supervisor runs the plan stored in the run record, so values that look like
/// flags or hold spaces and quotes arrive exactly as given (no command line is re-built).
#[test]
fn a_background_call_runs_exactly_the_plan_it_was_given() {
    let c = Call::new();
    let out = c.run(
        "instant",
        &["--bg", "--model=--dangerously-skip-permissions 'x' \"y\""],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let out = c.env.run(&["wait", "instant", "--json"]);
    assert_eq!(code(&out), 0, "{}", c.render(&out));
    let rec = c.record("instant");
    assert_eq!(
        rec["plan"]["model"],
        "--dangerously-skip-permissions 'x' \"y\""
    );
    assert_eq!(rec["outcome"], "ok");
    // The peer's table entry is looked up again, never stored (a config peer's env may hold
    // secrets).
    assert!(rec["plan"].get("spec").is_none(), "{rec:#}");
}

/// A peer that fills the disk: the salvage cannot be written and no new file can be made,
/// yet the call ends with its documented code, the record is `finished` (rewritten in place)
/// and the peer's answer is kept in it. Runs on a 1 MiB tmpfs in a user and mount namespace
/// of its own; where none can be made, the test says so and checks nothing.
#[test]
fn a_full_disk_still_finishes_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=1m tmpfs '{mnt}' || exit 77
mkdir -p '{mnt}/p/.git' && cd '{mnt}/p'
set +e
RELAY_NOW=2026-11-21T16:30:00Z '{relay}' call --to fake --name full --peer-cmd '{fake} fill-disk' 'Do it.' >/dev/null 2>'{mnt}/../err.txt'
echo "rc=$?"
cat .relay/20261121-163000-full.run.json"#,
        mnt = mnt.display(),
        relay = env!("CARGO_BIN_EXE_relay"),
        fake = FAKE_PEER,
    );
    let out = match std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", tmp.path())
        .output()
    {
        // Only a run that got as far as relay reports its exit code counts.
        Ok(o) if o.stdout.starts_with(b"rc=") => o,
        other => {
            eprintln!("skipping: cannot mount a tmpfs in a namespace here: {other:?}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = std::fs::read_to_string(tmp.path().join("err.txt")).unwrap_or_default();
    let (rc, record) = text.split_once('\n').expect("rc line");
    assert_eq!(rc, "rc=12", "{text}\n{stderr}");
    let rec: serde_json::Value = serde_json::from_str(record.trim()).expect("a whole record");
    assert_eq!(rec["state"], "finished", "{rec:#}");
    assert_eq!(rec["outcome"], "no-reply", "{rec:#}");
    assert_eq!(
        rec["final_message"].as_str().map(str::trim),
        Some("I filled the disk, then answered here."),
        "{rec:#}"
    );
}

/// A request too large for a stdin peer's limit (Gemini CLI: 8 MiB) is not cut silently: the
/// call ends no-reply with the reason, before the peer runs.
#[test]
fn a_request_too_large_for_stdin_is_refused_with_the_reason() {
    let c = Call::new();
    let cfg = c.env.root.parent().unwrap().join("peers.yaml");
    std::fs::write(
        &cfg,
        format!(
            "peers:\n  piped:\n    command: [{FAKE_PEER}, instant]\n    request_on_stdin: true\n"
        ),
    )
    .unwrap();
    let body = c.env.root.parent().unwrap().join("big.md");
    std::fs::write(&body, "x".repeat(9 * 1024 * 1024)).unwrap();
    let out = c
        .env
        .cmd(&[
            "call",
            "--to",
            "piped",
            "--name",
            "big",
            "--json",
            "--body-file",
            body.to_str().unwrap(),
        ])
        .env("RELAY_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(code(&out), 12, "{}", c.render(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("reads at most 8388608 from stdin"),
        "{v:#}"
    );
    assert_eq!(
        v["pid"],
        serde_json::Value::Null,
        "the peer must not have run"
    );
}
