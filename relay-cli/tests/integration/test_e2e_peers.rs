//! End to end against the REAL codex, claude and gemini CLIs, offline, through peer-sim
//! (../shared/peer-sim: a scripted mock model server plus wrappers around the pinned CLIs).
//!
//! The harness is found at `$RELAY_PEER_SIM` or `<repo>/../shared/peer-sim`. Without it (or
//! without the CLIs it needs) these tests print why and pass, so a fresh clone's `cargo test`
//! passes; `.ci/run` installs everything and sets `RELAY_E2E_REQUIRED=1`, which turns a missing
//! harness into a failure instead.

use std::path::PathBuf;
use std::process::Command;

pub fn harness() -> Option<PathBuf> {
    // Checked once per test binary: every e2e test asks.
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    match FOUND.get_or_init(find_harness) {
        Ok(h) => Some(h.clone()),
        Err(why) => {
            assert!(
                std::env::var_os("RELAY_E2E_REQUIRED").is_none(),
                "RELAY_E2E_REQUIRED is set but {why}"
            );
            eprintln!("skipping the real-CLI end-to-end tests: {why}");
            None
        }
    }
}

fn find_harness() -> Result<PathBuf, String> {
    let candidates = [
        std::env::var_os("RELAY_PEER_SIM").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peer-sim")),
    ];
    let h = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("with-peer-sim").is_file())
        .ok_or("peer-sim not found (set RELAY_PEER_SIM or put it at ../shared/peer-sim)")?;
    // with-peer-sim puts its wrappers on PATH whether or not the real CLIs exist; it names the
    // real ones in PEER_SIM_REAL_* (empty when missing).
    let out = Command::new(h.join("with-peer-sim"))
        .args(["--quiet", "--", "sh", "-c"])
        .arg(r#"for c in "$PEER_SIM_REAL_CODEX" "$PEER_SIM_REAL_CLAUDE" "$PEER_SIM_REAL_GEMINI"; do [ -x "$c" ] || exit 1; done"#)
        .output()
        .map_err(|e| format!("cannot run {}/with-peer-sim: {e}", h.display()))?;
    if out.status.success() {
        Ok(h)
    } else {
        Err(format!(
            "the peer CLIs are not installed (run {}/install-clis)",
            h.display()
        ))
    }
}

/// A git repo of its own for one test.
pub struct Repo {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl Repo {
    pub fn new() -> Repo {
        let tmp = tempfile::Builder::new()
            .prefix("relay-e2e-")
            .tempdir()
            .unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        assert!(
            Command::new("git")
                .args(["init", "-q"])
                .current_dir(&root)
                .status()
                .unwrap()
                .success()
        );
        Repo { _tmp: tmp, root }
    }

    /// Writes `files` and commits them (with an identity of its own).
    pub fn commit(&self, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = self.root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        for args in [
            &["add", "-A"][..],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                "start",
            ],
        ] {
            assert!(
                Command::new("git")
                    .args(args)
                    .current_dir(&self.root)
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }

    /// `git status --porcelain` of everything outside `.relay/`.
    pub fn git_status(&self) -> String {
        let out = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(&self.root)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// `with-peer-sim --quiet OPTS -- relay ARGS --json`, in the repo. Returns (exit code, JSON).
    pub fn relay(
        &self,
        sim: &std::path::Path,
        sim_opts: &[&str],
        args: &[&str],
    ) -> (i32, serde_json::Value) {
        let out = Command::new(sim.join("with-peer-sim"))
            .arg("--quiet")
            .args(sim_opts)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_relay"))
            .args(args)
            .arg("--json")
            .current_dir(&self.root)
            .env_remove("RELAY_ROOT")
            .env_remove("RELAY_FROM")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "relay {args:?} printed no JSON ({e}):\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), json)
    }
}

/// One peer x one mock mode: the outcome and exit code relay reports, and the files it leaves.
fn case(peer: &str, sim_opts: &[&str], extra: &[&str], want_outcome: &str, want_code: i32) {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    let mut args = vec!["call", "--to", peer, "--name", "e2e"];
    args.extend(extra);
    args.push("Review the README and report. Run nothing.");
    let (code, r) = repo.relay(&sim, sim_opts, &args);
    let ctx = format!("{peer} {sim_opts:?} {extra:?}: {r:#}");
    assert_eq!(r["outcome"], want_outcome, "{ctx}");
    assert_eq!(code, want_code, "{ctx}");
    let reply = PathBuf::from(r["reply"].as_str().unwrap());
    match want_outcome {
        "ok" | "verify-failed" | "status-error" | "salvaged" => {
            let v = Command::new(env!("CARGO_BIN_EXE_relay"))
                .arg("validate")
                .arg(&reply)
                .output()
                .unwrap();
            assert!(
                v.status.success(),
                "{ctx}\n{}",
                String::from_utf8_lossy(&v.stdout)
            );
        }
        "invalid-reply" => assert!(!r["diagnostics"].as_array().unwrap().is_empty(), "{ctx}"),
        _ => assert!(!reply.exists(), "{ctx}"),
    }
    // Nothing changed outside `.relay/`, which stays out of `git status` by itself.
    let status = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(&repo.root)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "{ctx}");
    // Every call is in the call log, with the run record beside the exchange.
    let ledger = std::fs::read_to_string(repo.root.join(".relay/calls.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ctx}");
    assert!(
        PathBuf::from(r["request"].as_str().unwrap())
            .with_extension("")
            .with_extension("run.json")
            .exists()
    );
}

macro_rules! e2e {
    ($($name:ident: $peer:literal, $opts:expr, $extra:expr => $outcome:literal, $code:literal;)*) => {
        $(
            #[test]
            fn $name() {
                case($peer, &$opts, &$extra, $outcome, $code);
            }
        )*
    };
}

e2e! {
    codex_ok: "codex", ["--mode", "ok"], [] => "ok", 0;
    claude_ok: "claude", ["--mode", "ok"], [] => "ok", 0;
    gemini_ok: "gemini", ["--mode", "ok"], [] => "ok", 0;
    codex_no_response: "codex", ["--mode", "no-response"], [] => "salvaged", 12;
    claude_no_response: "claude", ["--mode", "no-response"], [] => "salvaged", 12;
    gemini_no_response: "gemini", ["--mode", "no-response"], [] => "salvaged", 12;
    codex_garbage: "codex", ["--mode", "garbage"], [] => "invalid-reply", 12;
    claude_garbage: "claude", ["--mode", "garbage"], [] => "invalid-reply", 12;
    gemini_garbage: "gemini", ["--mode", "garbage"], [] => "invalid-reply", 12;
    codex_api_error: "codex", ["--mode", "error"], [] => "no-reply", 12;
    claude_api_error: "claude", ["--mode", "error"], [] => "no-reply", 12;
    gemini_api_error: "gemini", ["--mode", "error"], [] => "no-reply", 12;
    codex_hang: "codex", ["--mode", "hang"], ["--timeout", "4"] => "timeout", 124;
    claude_hang: "claude", ["--mode", "hang"], ["--timeout", "4"] => "timeout", 124;
    gemini_hang: "gemini", ["--mode", "hang"], ["--timeout", "4"] => "timeout", 124;
    codex_status_error: "codex", ["--env", "MOCKLLM_STATUS=error", "--env", "MOCKLLM_VERIFY=fail"], [] => "status-error", 11;
    claude_status_error: "claude", ["--env", "MOCKLLM_STATUS=error", "--env", "MOCKLLM_VERIFY=fail"], [] => "status-error", 11;
    gemini_status_error: "gemini", ["--env", "MOCKLLM_STATUS=error", "--env", "MOCKLLM_VERIFY=fail"], [] => "status-error", 11;
    codex_verify_fail: "codex", ["--env", "MOCKLLM_VERIFY=fail"], [] => "verify-failed", 10;
    claude_verify_fail: "claude", ["--env", "MOCKLLM_VERIFY=fail"], [] => "verify-failed", 10;
    gemini_verify_fail: "gemini", ["--env", "MOCKLLM_VERIFY=fail"], [] => "verify-failed", 10;
    codex_verify_skip: "codex", ["--env", "MOCKLLM_VERIFY=skip"], [] => "ok", 0;
    // Read-only: a model that follows the request answers with the reply as its final
    // message (MOCKLLM_REPLY_VIA=auto), and relay writes it: a valid reply, exit 0.
    codex_read_only: "codex", ["--env", "MOCKLLM_REPLY_VIA=auto"], ["--mode", "read-only"] => "ok", 0;
    claude_read_only: "claude", ["--env", "MOCKLLM_REPLY_VIA=auto"], ["--mode", "read-only"] => "ok", 0;
    gemini_read_only: "gemini", ["--env", "MOCKLLM_REPLY_VIA=auto"], ["--mode", "read-only"] => "ok", 0;
    // A model that tries to write anyway is refused by each CLI's own sandbox or permission
    // mode, then says so; relay salvages that final message.
    codex_read_only_refused: "codex", [], ["--mode", "read-only"] => "salvaged", 12;
    claude_read_only_refused: "claude", [], ["--mode", "read-only"] => "salvaged", 12;
    gemini_read_only_refused: "gemini", [], ["--mode", "read-only"] => "salvaged", 12;
    codex_full: "codex", [], ["--mode", "full"] => "ok", 0;
    claude_full: "claude", [], ["--mode", "full"] => "ok", 0;
    gemini_full: "gemini", [], ["--mode", "full"] => "ok", 0;
}

/// Two turns in one peer HOME: the second resumes the peer's own session; a third in a fresh
/// HOME (the session is gone) falls back to the file history and says so.
fn session(peer: &str) {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    let home = repo.root.join(".peer-home");
    let home_arg = home.display().to_string();
    let turn = |opts: &[&str], task: &str| {
        let (code, r) = repo.relay(
            &sim,
            opts,
            &["call", "--to", peer, "--session", "e2e", task],
        );
        assert_eq!(
            (code, r["outcome"].as_str()),
            (0, Some("ok")),
            "{peer}: {r:#}"
        );
        r
    };
    let one = turn(&["--home", &home_arg], "First step.");
    let two = turn(&["--home", &home_arg], "Second step.");
    assert!(
        one["peer_session"].is_string(),
        "{peer}: no peer session recorded: {one:#}"
    );
    assert_eq!(
        two["resumed"], one["peer_session"],
        "{peer}: turn 2 did not resume turn 1's session"
    );
    assert_eq!(two["resume_fallback"], false);
    let three = turn(&[], "Third step, on another machine.");
    assert_eq!(three["resumed"], two["peer_session"]);
    assert_eq!(three["resume_fallback"], true, "{peer}: {three:#}");
    let req = std::fs::read_to_string(repo.root.join(".relay/e2e/003.req.md")).unwrap();
    for earlier in ["001.req.md", "001.res.md", "002.req.md", "002.res.md"] {
        assert!(
            req.contains(&format!("/.relay/e2e/{earlier}\n")),
            "turn 3 does not list {earlier}:\n{req}"
        );
    }
}

#[test]
fn codex_session() {
    session("codex");
}

#[test]
fn claude_session() {
    session("claude");
}

#[test]
fn gemini_session() {
    session("gemini");
}

/// `relay doctor` asks each real CLI one line: all three answer through the mock, and an API
/// error is reported with the CLI's own words instead of `ok`.
#[test]
fn doctor_probes_the_real_clis() {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    for (mode, answers) in [("ok", true), ("error", false)] {
        let (code, v) = repo.relay(&sim, &["--mode", mode], &["doctor"]);
        for name in ["codex", "claude", "gemini"] {
            let p = v["peers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap();
            assert_eq!(p["answers"], answers, "{mode} {name}: {p:#}");
            if !answers {
                let said = p["probe_error"].as_str().unwrap_or_default();
                assert!(said.contains("injected error 400"), "{name}: {p:#}");
                assert!(p["fix"].as_str().unwrap().contains("API"), "{name}: {p:#}");
            }
        }
        assert_eq!(code, if answers { 0 } else { 1 }, "{mode}: {v:#}");
    }
}
