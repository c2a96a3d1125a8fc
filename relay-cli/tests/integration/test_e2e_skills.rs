//! The skills end to end with the real CLIs (through peer-sim; skipped without it, like
//! test_e2e_peers): the commands they show run against real peers, each CLI started in a HOME
//! where `relay skill install` put the skill lists it to its model, and a real `claude -p`
//! acting as the caller runs `relay call` through the installed skill without a prompt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::test_e2e_peers::harness;
use crate::test_skills::{AGENTS, any_command_body, commands, repo_with_a_change, skill_path};

/// A git repo and a HOME for the CLIs, outside /tmp (codex dislikes a HOME under /tmp).
pub struct Setup {
    _tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
}

impl Setup {
    pub fn new() -> Setup {
        let base = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache");
        std::fs::create_dir_all(&base).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix("relay-e2e-skills-")
            .tempdir_in(base)
            .unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let (repo, home) = (root.join("repo"), root.join("home"));
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        assert!(
            Command::new("git")
                .args(["init", "-q"])
                .current_dir(&repo)
                .status()
                .unwrap()
                .success()
        );
        Setup {
            _tmp: tmp,
            repo,
            home,
        }
    }

    /// relay's directory first on PATH, as after `cargo install`.
    pub fn path(&self) -> String {
        let bin = Path::new(env!("CARGO_BIN_EXE_relay"))
            .parent()
            .unwrap()
            .display()
            .to_string();
        format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
    }

    pub fn relay(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(args)
            .current_dir(&self.repo)
            .env("HOME", &self.home)
            .output()
            .unwrap()
    }

    /// The CLI (`argv`) as the caller, in this HOME: peer-sim's caller script loads the relay
    /// skill, runs exactly `cmd` and quotes its output.
    pub fn as_caller(&self, sim: &Path, cmd: &str, argv: &[&str]) -> Output {
        let home = self.home.display().to_string();
        let cmd = format!("MOCKLLM_CALLER_CMD={cmd}");
        self.sim(
            sim,
            &[
                "--home",
                &home,
                "--env",
                "MOCKLLM_SCRIPT=caller",
                "--env",
                "MOCKLLM_CALLER_SKILL=relay",
                "--env",
                &cmd,
            ],
            argv,
        )
    }

    /// `with-peer-sim --quiet OPTS -- CMD...` in the repo.
    pub fn sim(&self, sim: &Path, opts: &[&str], cmd: &[&str]) -> Output {
        Command::new(sim.join("with-peer-sim"))
            .arg("--quiet")
            .args(opts)
            .arg("--")
            .args(cmd)
            .current_dir(&self.repo)
            .env("PATH", self.path())
            .env_remove("RELAY_ROOT")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every command shown in each SKILL.md, run in order against the real peer CLIs.
#[test]
fn skill_commands_run_against_the_real_clis() {
    let Some(sim) = harness() else { return };
    for agent in AGENTS {
        let s = Setup::new();
        std::fs::remove_dir_all(s.repo.join(".git")).unwrap();
        repo_with_a_change(
            |args| {
                let ok = Command::new("git")
                    .args(args)
                    .current_dir(&s.repo)
                    .status()
                    .unwrap();
                assert!(ok.success(), "git {args:?}");
            },
            |path, text| {
                let p = s.repo.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            },
        );
        let req = s.relay(&[
            "req",
            "--from",
            "someone",
            "--to",
            agent,
            "--name",
            "incoming",
            "Fix the token check.",
        ]);
        assert!(req.status.success(), "{}", text(&req));
        let req = String::from_utf8(req.stdout).unwrap().trim().to_owned();
        let script = format!(
            "set -e\nREQ='{req}'\n{}\n",
            commands(&std::fs::read_to_string(skill_path(agent)).unwrap()).join("\n")
        );
        // A model that follows each request: the review and deliberation formats, and the
        // reply as its final message where the request asks for that (read-only).
        let body = format!("MOCKLLM_BODY={}", any_command_body());
        let opts = ["--env", "MOCKLLM_REPLY_VIA=auto", "--env", &body];
        let out = s.sim(&sim, &opts, &["bash", "-c", &script]);
        assert!(
            out.status.success(),
            "{agent} skill commands:\n{}",
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.matches("outcome=ok").count() >= 3,
            "{agent}:\n{stdout}"
        );
    }
}

/// Each real CLI started in a HOME with the installed skills sends the skill's description to
/// its model (read from the mock's request log).
#[test]
fn real_clis_list_the_installed_skill() {
    let Some(sim) = harness() else { return };
    let s = Setup::new();
    let out = s.relay(&["skill", "install"]);
    assert!(out.status.success(), "{}", text(&out));
    let home = s.home.display().to_string();
    for (agent, cli) in [
        (
            "claude",
            &["claude", "-p", "--permission-mode", "default", "hi"][..],
        ),
        (
            "codex",
            &["codex", "exec", "--skip-git-repo-check", "hi"][..],
        ),
        ("gemini", &["gemini", "--skip-trust", "-p", "hi"][..]),
    ] {
        let log = s.home.join(format!("{agent}-requests.jsonl"));
        let log_arg = log.display().to_string();
        let out = s.sim(&sim, &["--home", &home, "--log", &log_arg], cli);
        assert!(out.status.success(), "{agent}: {}", text(&out));
        let sent = std::fs::read_to_string(&log).unwrap();
        let skill = std::fs::read_to_string(skill_path(agent)).unwrap();
        let description = skill
            .lines()
            .find_map(|l| l.strip_prefix("description: "))
            .unwrap();
        // The logged request bodies are JSON: compare with the description as JSON escapes it.
        let needle = serde_json::to_string(description).unwrap();
        assert!(
            sent.contains(needle.trim_matches('"')),
            "{agent} never sent relay's skill description to its model"
        );
    }
}

/// A real `claude -p`, as the calling agent, invokes the installed skill and runs `relay call`
/// under its default permission mode, without a prompt, once `relay skill install --allow` has
/// added the permissions; without them, the same run is refused.
#[test]
fn claude_as_caller_runs_relay_through_the_skill() {
    let Some(sim) = harness() else { return };
    let call = "relay call --to codex --name via-skill 'Review the README. Run nothing.'";
    let caller = |s: &Setup| {
        s.as_caller(
            &sim,
            call,
            &[
                "claude",
                "-p",
                "--permission-mode",
                "default",
                "Ask codex for a review of the README",
            ],
        )
    };
    // Without the permissions: claude refuses to run the skill, so relay never runs.
    let s = Setup::new();
    assert!(
        s.relay(&["skill", "install", "--agent", "claude"])
            .status
            .success()
    );
    let out = caller(&s);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("outcome=ok"),
        "ran without permission:\n{}",
        text(&out)
    );
    assert!(!s.repo.join(".relay").exists());
    // With them: the skill loads, its allowed-tools let `relay call` run, and codex answers.
    let s = Setup::new();
    let out = s.relay(&["skill", "install", "--agent", "claude", "--allow"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = caller(&s);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("mockllm caller: the command finished"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("outcome=ok status=done verify=pass peer=codex"),
        "{}",
        text(&out)
    );
    let replies: Vec<_> = std::fs::read_dir(s.repo.join(".relay"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-via-skill.res.md")
        })
        .collect();
    assert_eq!(replies.len(), 1);
}

/// The Stop hook `relay hook install` puts into each real CLI's settings (in a test HOME)
/// blocks the stop exactly once while a request addressed to it is unanswered; the CLI then
/// answers it, and the hook lets go.
#[test]
fn the_stop_hook_keeps_each_real_cli_on_its_open_request() {
    let Some(sim) = harness() else { return };
    for (agent, cli) in [
        (
            "claude",
            &[
                "claude",
                "-p",
                "--permission-mode",
                "acceptEdits",
                "Say hello.",
            ][..],
        ),
        (
            "codex",
            &[
                "codex",
                "exec",
                "-s",
                "workspace-write",
                "--skip-git-repo-check",
                "--dangerously-bypass-hook-trust",
                "Say hello.",
            ][..],
        ),
        (
            "gemini",
            &[
                "gemini",
                "--skip-trust",
                "--approval-mode",
                "auto_edit",
                "-p",
                "Say hello.",
            ][..],
        ),
    ] {
        let s = Setup::new();
        let req = s.relay(&[
            "req",
            "--from",
            "someone",
            "--to",
            agent,
            "--name",
            "waiting",
            "Reply with a one-line greeting.",
        ]);
        assert!(req.status.success(), "{}", text(&req));
        let request = PathBuf::from(String::from_utf8(req.stdout).unwrap().trim());
        let out = s.relay(&["hook", "install", "--agent", agent]);
        assert!(out.status.success(), "{agent}: {}", text(&out));
        let home = s.home.display().to_string();
        let mut cmd = Command::new(sim.join("with-peer-sim"));
        cmd.args(["--quiet", "--home", &home, "--"])
            .args(cli)
            .current_dir(&s.repo)
            .env("PATH", s.path())
            .env_remove("RELAY_ROOT")
            .stdin(std::process::Stdio::null());
        if agent == "gemini" {
            // peer-sim writes Gemini CLI's settings itself; relay's hook goes in through it.
            let path = s.home.join(".gemini/settings.json");
            let settings = std::fs::read_to_string(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            cmd.env("PEER_SIM_GEMINI_SETTINGS", settings);
        }
        let out = cmd.output().unwrap();
        let ctx = format!("{agent}: {}", text(&out));
        assert!(out.status.success(), "{ctx}");
        let reply = relay_core::reply_path(&request);
        let valid = s.relay(&["validate", reply.to_str().unwrap()]);
        assert!(valid.status.success(), "{ctx}\nreply: {}", text(&valid));
        // Blocked exactly once: one session's counter, at 1.
        let hooks: Vec<String> = std::fs::read_dir(s.repo.join(".relay/.hooks"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(hooks, ["1\n"], "{ctx}");
        assert_eq!(
            String::from_utf8(s.relay(&["inbox", "--for", agent]).stdout)
                .unwrap()
                .trim(),
            format!("nothing open for {agent}"),
            "{ctx}"
        );
    }
}
