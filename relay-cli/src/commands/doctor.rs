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
/// For each peer: is it on PATH, which version, and does its help mention every flag relay
/// passes it. Then environment traps, each with the fix. Exits 0 when at least one peer is
/// usable and nothing is broken, 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay doctor
  relay doctor --json | jq '.peers[] | select(.ok | not)'")]
pub struct DoctorArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct PeerCheck {
    name: String,
    program: String,
    path: Option<PathBuf>,
    version: Option<String>,
    missing_flags: Vec<String>,
    ok: bool,
    fix: Option<String>,
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
    let spawn = Spawn {
        program: program.to_path_buf(),
        args: args.iter().map(Into::into).collect(),
        cwd: dir.path().to_path_buf(),
        env_set: vec![("NO_COLOR".into(), "1".into())],
        env_remove: peer::SCRUB_ENV.iter().map(|s| (*s).to_owned()).collect(),
        stdout: dir.path().join("out"),
        stderr: dir.path().join("err"),
        stdin_text: None,
    };
    let limits = Limits {
        timeout: Duration::from_secs(10),
        idle: None,
        grace: Duration::from_millis(500),
        settle: Duration::ZERO,
        log_cap: 4 * 1024 * 1024,
    };
    let child = supervise::start(&spawn).ok()?;
    let nowhere = dir.path().join("none");
    supervise::supervise(
        child,
        &spawn,
        &limits,
        &StopFlags::default(),
        &nowhere,
        Instant::now(),
        &mut |_| {},
    )
    .ok()?;
    let out = std::fs::read_to_string(&spawn.stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&spawn.stderr).unwrap_or_default();
    Some(format!("{out}{err}"))
}

fn check_peer(name: &str, spec: &PeerSpec) -> PeerCheck {
    let program = spec.program().to_owned();
    let Ok(path) = which::which(&program) else {
        return PeerCheck {
            name: name.to_owned(),
            program,
            path: None,
            version: None,
            missing_flags: Vec::new(),
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
    let ok = missing_flags.is_empty();
    let fix = (!ok).then(|| {
        format!(
            "this {program} does not offer {}: upgrade it{}",
            missing_flags.join(", "),
            spec.install_hint
                .as_ref()
                .map_or(String::new(), |h| format!(" ({h})"))
        )
    });
    PeerCheck {
        name: name.to_owned(),
        program,
        path: Some(path),
        version,
        missing_flags,
        ok,
        fix,
    }
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
    let (depth, max) = crate::commands::call::nesting();
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
    let checks: Vec<PeerCheck> = peers.iter().map(|(n, s)| check_peer(n, s)).collect();
    let env = env_checks(relay.as_ref().map(relay_core::RelayDir::root));
    let healthy = checks.iter().any(|c| c.ok) && !env.iter().any(|e| e.level == "error");
    if args.json {
        crate::output::json(
            &serde_json::json!({ "ok": healthy, "peers": checks, "environment": env }),
        )?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "peers:")?;
        for c in &checks {
            let state = match (&c.path, c.ok) {
                (None, _) => "missing",
                (Some(_), true) => "ok",
                (Some(_), false) => "outdated",
            };
            let where_ = c
                .path
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string());
            writeln!(
                out,
                "  {state:<8} {:<8} {:<28} {where_}",
                c.name,
                c.version.as_deref().unwrap_or("-")
            )?;
            if let Some(fix) = &c.fix {
                writeln!(out, "           fix: {fix}")?;
            }
        }
        writeln!(out, "environment:")?;
        for e in &env {
            writeln!(out, "  {:<8} {}", e.level, e.what)?;
            if let Some(fix) = &e.fix {
                writeln!(out, "           fix: {fix}")?;
            }
        }
    }
    Ok(if healthy { exit::OK } else { exit::FAILURE })
}
