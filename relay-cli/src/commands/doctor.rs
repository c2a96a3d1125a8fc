//! `relay doctor`: which peers are installed and usable, and which environment traps apply.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_core::exit;
use serde::Serialize;

use crate::input;
use crate::peer::{self, PeerSpec};
use crate::supervise::{self, Limits, Spawn, StopFlags};

/// Check the peer CLIs, their versions and flags, and the environment relay runs in.
///
/// For each peer: is it on PATH, which version, does its help mention every flag relay passes
/// it, and can it actually answer: relay asks each one a one-line question (in parallel,
/// read-only, in an empty directory; one small model call each, skip with --no-probe), so a
/// peer that is not logged in, has no API key or cannot reach its model is reported with its
/// own error line and the fix. Then environment traps, each with the fix. Exits 0 when at
/// least one peer is usable and nothing is broken, 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay doctor
  relay doctor --no-probe              # offline: installed and flags only
  relay doctor --json | jq '.peers[] | select(.ok | not)'")]
pub struct DoctorArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,

    /// Only check that the peers are installed and offer the flags relay uses; ask no model.
    #[arg(long)]
    pub no_probe: bool,

    /// How long each peer may take to answer the probe (90, 90s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::commands::call::parse_duration_arg)]
    pub probe_timeout: Duration,

    /// (internal) Check this one peer and print its result as JSON: the parallel half of doctor.
    #[arg(long, hide = true, value_name = "PEER")]
    pub check_peer: Option<String>,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PeerCheck {
    name: String,
    program: String,
    path: Option<PathBuf>,
    version: Option<String>,
    missing_flags: Vec<String>,
    /// Did the peer answer a one-line prompt (`None`: not asked)?
    answers: Option<bool>,
    /// The peer's own words when it could not answer (`Not logged in`, a network error, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
    /// How long the probe took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_ms: Option<u64>,
    pub ok: bool,
    pub fix: Option<String>,
}

/// What the probe asks: one word back, no tools, no files.
const PROBE_PROMPT: &str = "This is a connectivity check from relay doctor. Reply with the single word: ready. Use no tools.";

struct Probe {
    answered: bool,
    error: Option<String>,
    millis: u64,
}

/// Asks the peer one line, read-only, in an empty directory, as `relay call` would run it.
fn probe(path: &Path, spec: &PeerSpec, timeout: Duration) -> Probe {
    let failed = |error: String, millis| Probe {
        answered: false,
        error: Some(error),
        millis,
    };
    let Ok(dir) = tempfile::tempdir() else {
        return failed("cannot create a temporary directory".into(), 0);
    };
    let vars = peer::Vars {
        prompt: PROBE_PROMPT,
        request: &dir.path().join("probe.req.md"),
        reply: &dir.path().join("probe.res.md"),
        root: dir.path(),
        mode: peer::Mode::ReadOnly,
        model: None,
        effort: None,
        peer_session: None,
    };
    let mut env_set: Vec<(String, String)> = spec.env.clone().into_iter().collect();
    env_set.push(("NO_COLOR".into(), "1".into()));
    let t0 = Instant::now();
    let Some((outcome, stdout, stderr)) =
        run_quiet(path, &spec.argv(&vars), dir.path(), env_set, timeout)
    else {
        return failed(format!("could not start {}", path.display()), 0);
    };
    let millis = crate::engine::millis(t0.elapsed());
    let report = peer::read_report(spec.output, &stdout, &stderr);
    if outcome.end != supervise::End::Exited {
        let why = peer::activity(spec.output, &stdout, &stderr)
            .filter(|a| a != "waiting for the model")
            .map_or(String::new(), |a| format!(" (last: {a})"));
        return failed(
            format!("no answer within {}s{why}", timeout.as_secs()),
            millis,
        );
    }
    let answered = outcome.exit_code == Some(0)
        && report.error.is_none()
        && report
            .final_message
            .as_deref()
            .is_some_and(|m| !m.trim().is_empty());
    if answered {
        return Probe {
            answered,
            error: None,
            millis,
        };
    }
    let error = report
        .error
        .or_else(|| {
            peer::activity(spec.output, &stdout, &stderr).filter(|a| a != "waiting for the model")
        })
        .unwrap_or_else(|| {
            format!(
                "exited with code {} and no answer",
                outcome.exit_code.map_or("-".into(), |c| c.to_string())
            )
        });
    failed(error, millis)
}

/// `relay doctor --json`.
#[derive(Serialize)]
struct DoctorJson<'a> {
    ok: bool,
    peers: &'a [PeerCheck],
    environment: &'a [EnvCheck],
}

#[derive(Debug, Serialize)]
struct EnvCheck {
    level: &'static str,
    what: String,
    fix: Option<String>,
}

/// Runs a short command (a version or help query) with a 10 s limit; stdout and stderr joined.
fn query(program: &Path, args: &[String]) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let env = vec![("NO_COLOR".into(), "1".into())];
    let (_, out, err) = run_quiet(program, args, dir.path(), env, Duration::from_secs(10))?;
    Some(format!("{out}{err}"))
}

/// Runs `program` supervised (own process group, killed at `timeout`) in `cwd`, with its
/// output captured in a temporary directory; returns how it ended, stdout and stderr.
fn run_quiet(
    program: &Path,
    args: &[String],
    cwd: &Path,
    env_set: Vec<(String, String)>,
    timeout: Duration,
) -> Option<(supervise::Outcome, String, String)> {
    let logs = tempfile::tempdir().ok()?;
    let spawn = Spawn {
        program: program.to_path_buf(),
        args: args.iter().map(Into::into).collect(),
        cwd: cwd.to_path_buf(),
        env_set,
        env_remove: peer::scrub_env(),
        stdout: logs.path().join("out"),
        stderr: logs.path().join("err"),
        stdin_text: None,
    };
    let limits = Limits {
        timeout,
        idle: None,
        grace: Duration::from_millis(500),
        settle: Duration::ZERO,
        log_cap: 4 * 1024 * 1024,
    };
    let child = supervise::start(&spawn).ok()?;
    let nowhere = logs.path().join("none");
    let outcome = supervise::supervise(
        child,
        &spawn,
        &limits,
        &StopFlags::default(),
        &nowhere,
        Instant::now(),
        &mut |_| {},
    )
    .ok()?;
    let out =
        String::from_utf8_lossy(&std::fs::read(&spawn.stdout).unwrap_or_default()).into_owned();
    let err =
        String::from_utf8_lossy(&std::fs::read(&spawn.stderr).unwrap_or_default()).into_owned();
    Some((outcome, out, err))
}

/// Checks one peer: installed, the flags relay uses, and (with a timeout) that it answers a
/// one-line prompt.
pub fn check_peer(name: &str, spec: &PeerSpec, probe_timeout: Option<Duration>) -> PeerCheck {
    let program = spec.program().to_owned();
    let Ok(path) = which::which(&program) else {
        return PeerCheck {
            name: name.to_owned(),
            program,
            path: None,
            version: None,
            missing_flags: Vec::new(),
            answers: None,
            probe_error: None,
            probe_ms: None,
            ok: false,
            fix: Some(spec.install_hint.clone().map_or(
                "install it, or fix its command in the config file".into(),
                |h| format!("install it: {h}"),
            )),
        };
    };
    let version = query(&path, &["--version".to_owned()]).and_then(|v| {
        v.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    });
    let help = if spec.help_args.is_empty() {
        None
    } else {
        query(&path, &spec.help_args)
    };
    let missing_flags: Vec<String> = match &help {
        Some(h) => spec
            .required_flags
            .iter()
            .filter(|f| !h.contains(f.as_str()))
            .cloned()
            .collect(),
        None if spec.help_args.is_empty() => Vec::new(),
        None => spec.required_flags.clone(),
    };
    let flags_ok = missing_flags.is_empty();
    let probed = probe_timeout
        .filter(|_| flags_ok)
        .map(|t| probe(&path, spec, t));
    let answers = probed.as_ref().map(|p| p.answered);
    let ok = flags_ok && answers != Some(false);
    let fix = if !flags_ok {
        Some(format!(
            "this {program} does not offer {}: upgrade it{}",
            missing_flags.join(", "),
            spec.install_hint
                .as_ref()
                .map_or(String::new(), |h| format!(" ({h})"))
        ))
    } else if answers == Some(false) {
        Some(spec.login_hint.clone().unwrap_or_else(|| {
            format!("run `{program}` by hand: it must be logged in (or have its API key) and reach its model")
        }))
    } else {
        None
    };
    PeerCheck {
        name: name.to_owned(),
        program,
        path: Some(path),
        version,
        missing_flags,
        answers,
        probe_error: probed.as_ref().and_then(|p| p.error.clone()),
        probe_ms: probed.as_ref().map(|p| p.millis),
        ok,
        fix,
    }
}

/// Every peer checked at once: each probe is a model round trip of seconds. Each check runs in
/// a `relay doctor --check-peer` process of its own, because a supervisor owns all of its
/// descendants (one peer per supervising process; see `supervise`).
fn check_all(
    peers: &std::collections::BTreeMap<String, PeerSpec>,
    timeout: Option<Duration>,
) -> Vec<PeerCheck> {
    let exe = std::env::current_exe().ok();
    let children: Vec<_> = peers
        .keys()
        .map(|name| {
            let mut cmd = std::process::Command::new(exe.as_deref()?);
            cmd.args(["doctor", "--check-peer", name])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            match timeout {
                Some(t) => cmd
                    .arg("--probe-timeout")
                    .arg(format!("{}s", t.as_secs_f64())),
                None => cmd.arg("--no-probe"),
            };
            cmd.spawn().ok()
        })
        .collect();
    peers
        .iter()
        .zip(children)
        .map(|((name, spec), child)| {
            child
                .and_then(|c| c.wait_with_output().ok())
                .and_then(|o| serde_json::from_slice(&o.stdout).ok())
                // A check process that failed: do it here instead.
                .unwrap_or_else(|| check_peer(name, spec, timeout))
        })
        .collect()
}

fn env_checks(relay_root: Option<&Path>) -> Vec<EnvCheck> {
    let mut out = Vec::new();
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("CODEX_SANDBOX_NETWORK_DISABLED") {
        out.push(EnvCheck {
            level: "error",
            what: "running inside Codex's sandbox with the network disabled: a peer relay starts here cannot reach its model API".into(),
            fix: Some("start codex with `-c sandbox_workspace_write.network_access=true` (or `--dangerously-bypass-approvals-and-sandbox` in a disposable environment)".into()),
        });
    }
    if set("CLAUDECODE") {
        out.push(EnvCheck {
            level: "info",
            what: "running inside Claude Code (CLAUDECODE is set)".into(),
            fix: Some("nothing to do: relay removes Claude Code's nested-session variables from every peer's environment".into()),
        });
    }
    #[cfg(unix)]
    if rustix::process::geteuid().is_root() {
        out.push(EnvCheck {
            level: "info",
            what: "running as root: claude refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1".into(),
            fix: Some("nothing to do: relay sets IS_SANDBOX=1 for claude in --mode full only".into()),
        });
    }
    let (depth, max) = crate::engine::nesting();
    if depth > 0 {
        out.push(EnvCheck {
            level: if depth >= max { "error" } else { "info" },
            what: format!("running inside a relay call (RELAY_DEPTH={depth}, limit {max})"),
            fix: (depth >= max).then(|| "relay call will refuse to nest further; raise RELAY_MAX_DEPTH if that is intended".into()),
        });
    }
    match peer::config_path() {
        Some(p) if p.exists() => match peer::all_peers() {
            Ok(_) => out.push(EnvCheck {
                level: "info",
                what: format!("config file {} is valid", p.display()),
                fix: None,
            }),
            Err(e) => out.push(EnvCheck {
                level: "error",
                what: format!("config file: {e:#}"),
                fix: Some("fix the file (see README, \"Peers\")".into()),
            }),
        },
        Some(p) => out.push(EnvCheck {
            level: "info",
            what: format!("no config file at {} (built-in peers only)", p.display()),
            fix: None,
        }),
        None => {}
    }
    for (level, what, fix) in crate::commands::skill::doctor_notes() {
        out.push(EnvCheck { level, what, fix });
    }
    for (level, what, fix) in crate::commands::hook::doctor_notes(relay_root) {
        out.push(EnvCheck { level, what, fix });
    }
    if let Some(root) = relay_root {
        out.push(EnvCheck {
            level: "info",
            what: format!("project root {}", root.display()),
            fix: None,
        });
    }
    out
}

pub fn run(root: Option<&PathBuf>, args: &DoctorArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root).ok();
    let peers = peer::all_peers().unwrap_or_else(|_| {
        peer::BUILTINS
            .iter()
            .map(|n| ((*n).to_owned(), peer::builtin(n).expect("built-in")))
            .collect()
    });
    let timeout = (!args.no_probe).then_some(args.probe_timeout);
    if let Some(name) = &args.check_peer {
        let spec = peers
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("unknown peer `{name}`"))?;
        crate::output::json(&check_peer(name, spec, timeout))?;
        return Ok(exit::OK);
    }
    let checks = check_all(&peers, timeout);
    let env = env_checks(relay.as_ref().map(relay_core::RelayDir::root));
    let healthy = checks.iter().any(|c| c.ok) && !env.iter().any(|e| e.level == "error");
    if args.json {
        crate::output::json(&DoctorJson {
            ok: healthy,
            peers: &checks,
            environment: &env,
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "peers:")?;
        for c in &checks {
            let state = match (&c.path, c.missing_flags.is_empty(), c.answers) {
                (None, _, _) => "missing",
                (Some(_), false, _) => "outdated",
                (Some(_), true, Some(false)) => "no-answer",
                (Some(_), true, _) => "ok",
            };
            let where_ = c
                .path
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string());
            writeln!(
                out,
                "  {state:<9} {:<8} {:<28} {where_}",
                c.name,
                c.version.as_deref().unwrap_or("-")
            )?;
            if let Some(e) = &c.probe_error {
                writeln!(out, "            said: {}", crate::output::clean_line(e))?;
            }
            if let Some(fix) = &c.fix {
                writeln!(out, "            fix: {fix}")?;
            }
        }
        writeln!(out, "environment:")?;
        for e in &env {
            writeln!(out, "  {:<9} {}", e.level, e.what)?;
            if let Some(fix) = &e.fix {
                writeln!(out, "            fix: {fix}")?;
            }
        }
    }
    Ok(if healthy { exit::OK } else { exit::FAILURE })
}
