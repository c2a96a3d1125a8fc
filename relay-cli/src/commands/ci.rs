//! `relay ci`: a review of a branch's diff, relay's own checks and the verdict, for a CI job.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use relay_core::exit;

use crate::commands::review::{self, ReviewArgs};
use crate::engine::CallPlan;
use crate::findings_out::{FailOn, Format};
use crate::input;
use crate::peer::Mode;
use crate::supervise::StopFlags;

/// Review a branch's changes in CI: non-interactive, files for the pipeline, a verdict to
/// gate on.
///
/// Reviews the diff against --base (default: origin/$GITHUB_BASE_REF in a pull request, else
/// main) with one peer or several (`--quorum`), runs --verify-cmd checks itself, and writes
/// into --out (default .relay/ci/): summary.md (also appended to $GITHUB_STEP_SUMMARY),
/// relay.sarif (SARIF 2.1.0, for code scanning or reviewdog) and result.json. On GitHub
/// Actions the findings are also printed as annotations. Exit: 0 pass, 14 rejected (verdict
/// fail, --fail-on, quorum), 10 a check failed, 19 a peer is not available here (its CLI is
/// missing: a pipeline can skip the review instead of failing), else the failed call's code.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay ci --with codex
  relay ci --with codex,claude,gemini --quorum 2 --base origin/main --verify-cmd 'cargo test'
  relay ci --with codex --fail-on warning --out ci-out")]
pub struct CiArgs {
    /// The reviewer, or several, comma-separated.
    #[arg(long, value_name = "PEER[,PEER...]", required = true)]
    pub with: Vec<String>,

    /// Review what changed since the branch left REF.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,

    /// Several reviewers: how many must pass (default: all).
    #[arg(long, value_name = "K")]
    pub quorum: Option<usize>,

    /// Fail (exit 14) when a finding is at least this severe.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,

    /// A check relay runs itself in the project root (repeatable); a failure is exit 10.
    #[arg(long, value_name = "CMD")]
    pub verify_cmd: Vec<String>,

    /// Kill a check after this long.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = crate::commands::call::parse_duration_arg)]
    pub verify_timeout: std::time::Duration,

    /// Kill a reviewer after this long.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::commands::call::parse_duration_arg)]
    pub timeout: std::time::Duration,

    /// Skip asking each reviewer a one-line prompt first (which tells a reviewer that is not
    /// logged in, or cannot reach its model, from one that fails the review).
    #[arg(long)]
    pub no_probe: bool,

    /// Where the summary, SARIF and JSON go (default: .relay/ci/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// What to look at especially.
    #[arg(value_name = "FOCUS")]
    pub focus: Option<String>,
}

/// `result.json`.
#[derive(serde::Serialize)]
struct CiResult<'a> {
    verdict: &'a str,
    exit_code: u8,
    reason: String,
    base: &'a str,
    review: Option<&'a crate::findings_out::Report>,
    checks: &'a [crate::run::Check],
    unavailable: Vec<String>,
}

pub fn run(root: Option<&PathBuf>, args: &CiArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let base = args.base.clone().unwrap_or_else(|| {
        std::env::var("GITHUB_BASE_REF")
            .ok()
            .filter(|b| !b.is_empty())
            .map_or_else(|| "main".to_owned(), |b| format!("origin/{b}"))
    });
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => {
            relay.ensure()?;
            relay.path().join("ci")
        }
    };
    std::fs::create_dir_all(&out_dir)?;
    let run_args = crate::commands::call::RunArgs {
        from: Some("ci".into()),
        model: None,
        timeout: args.timeout,
        idle_timeout: None,
        verify_cmd: Vec::new(),
        verify_timeout: args.verify_timeout,
        writes: Vec::new(),
    };
    // A peer this machine cannot run (no CLI, no network; not logged in, unless --no-probe) is
    // said once, with its own exit code, before any request is written.
    let peers = crate::fan::peer_list(&args.with)?;
    let all = crate::peer::all_peers()?;
    let mut unavailable = Vec::new();
    for p in &peers {
        if let Err(e) = CallPlan::prepare(p, None, Mode::ReadOnly, None, &run_args) {
            let missing = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<crate::error::ExpectedError>(),
                    Some(
                        crate::error::ExpectedError::PeerNotFound { .. }
                            | crate::error::ExpectedError::NoNetwork { .. }
                    )
                )
            });
            if !missing {
                return Err(e);
            }
            unavailable.push(format!("{p}: {}", crate::error::render(&e)));
        } else if !args.no_probe
            && let Some(spec) = all.get(p)
        {
            let check = crate::commands::doctor::check_peer(
                p,
                spec,
                Some(std::time::Duration::from_secs(90)),
            );
            if !check.ok {
                unavailable.push(format!(
                    "{p}: {}{}",
                    check
                        .probe_error
                        .unwrap_or_else(|| "it does not answer".into()),
                    check
                        .fix
                        .map(|f| format!(" (fix: {f})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    let (report, exit_code, reason) = if unavailable.is_empty() {
        let review_args = ReviewArgs {
            with: args.with.clone(),
            base: Some(base.clone()),
            commit: None,
            files: Vec::new(),
            name: "ci".into(),
            format: Format::Json,
            json: false,
            fail_on: args.fail_on,
            quorum: args.quorum,
            max_parallel: 8,
            effort: None,
            peer_cmd: None,
            run: run_args,
            focus: args.focus.clone(),
        };
        match review::review_report(&relay, &review_args, true)? {
            Some(r) => {
                let (code, why) = (r.exit_code, r.reason.clone());
                (Some(r), code, why)
            }
            None => (None, exit::OK, format!("nothing to review since {base}")),
        }
    } else {
        (
            None,
            exit::UNAVAILABLE,
            format!("not available here: {}", unavailable.join("; ")),
        )
    };
    // relay's own checks run whatever the reviewers said.
    let stop = StopFlags::install()?;
    let log = out_dir.join("checks.log");
    let _ = std::fs::remove_file(&log);
    let checked = crate::engine::run_checks(
        relay.root(),
        &args.verify_cmd,
        args.verify_timeout,
        &stop,
        &log,
    );
    if let Some((o, why)) = &checked.stopped {
        eprintln!("relay ci: {why}");
        return Ok(o.exit_code());
    }
    let (exit_code, reason) = match (&checked.failed, exit_code) {
        (Some(why), exit::OK) => (exit::VERIFY_FAILED, format!("{reason}; {why}")),
        (Some(why), code) => (code, format!("{reason}; {why}")),
        (None, code) => (code, reason),
    };
    let verdict = match exit_code {
        exit::OK => "pass",
        exit::UNAVAILABLE => "unavailable",
        _ => "fail",
    };
    let result = CiResult {
        verdict,
        exit_code,
        reason: reason.clone(),
        base: &base,
        review: report.as_ref(),
        checks: &checked.checks,
        unavailable,
    };
    let mut summary = format!(
        "## relay ci: {verdict}\n\n{}\n\n",
        crate::output::clean_line(&reason)
    );
    for c in &checked.checks {
        summary.push_str(&format!(
            "- check `{}`: {}\n",
            c.cmd,
            match (c.exit_code, c.killed) {
                (_, true) => "killed".to_owned(),
                (Some(0), _) => "passed".to_owned(),
                (code, _) => format!(
                    "failed (exit {})",
                    code.map_or("?".into(), |c| c.to_string())
                ),
            }
        ));
    }
    if let Some(r) = &report {
        summary.push('\n');
        summary.push_str(&r.markdown());
        if std::env::var_os("GITHUB_ACTIONS").is_some() {
            let mut stdout = std::io::stdout().lock();
            for line in r.github() {
                writeln!(stdout, "{line}")?;
            }
        }
    }
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        let path = out_dir.join(name);
        relay_core::write_replace(&path, bytes)?;
        Ok(path)
    };
    let md = write("summary.md", summary.as_bytes())?;
    let json = write("result.json", &serde_json::to_vec_pretty(&result)?)?;
    let sarif = match &report {
        Some(r) => Some(write(
            "relay.sarif",
            &serde_json::to_vec_pretty(&r.sarif())?,
        )?),
        None => None,
    };
    review::append_step_summary(&summary);
    let shown = |p: &Path| p.display().to_string();
    println!(
        "relay ci: verdict={verdict} exit={exit_code} findings={} summary={} sarif={} json={}",
        report.as_ref().map_or(0, |r| r.findings.len()),
        shown(&md),
        sarif.as_deref().map_or("-".into(), shown),
        shown(&json)
    );
    eprintln!("relay ci: {}", crate::output::clean_line(&reason));
    Ok(exit_code)
}
