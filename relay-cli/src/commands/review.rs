//! `relay review`: a read-only code review by one or more peers, with findings as data.

use std::path::PathBuf;

use anyhow::Context as _;
use relay_core::{Attachment, NewRequest, Target, exit};

use crate::commands::call::RunArgs;
use crate::engine::{Call, CallPlan};
use crate::fan;
use crate::findings_out::{FailOn, Format, Report};
use crate::input;
use crate::peer::Mode;
use crate::review::{self, Scope};
use crate::supervise::StopFlags;

/// Ask one or more peers for a code review: findings as data, a verdict to gate on.
///
/// The reviewer runs read-only (its sandbox or permission flags), and relay checks afterwards
/// that nothing outside .relay/ changed (exit 13 if it did). The request names what to review
/// by reference: the patch is saved beside it (`<id>.patch`), the files are the project's own.
/// The reply must carry its findings as one JSON object (Codex's review format: title, body,
/// priority 0-3, confidence, file and line range, the verdict); relay says exactly what is
/// wrong with one that does not, flags findings on files or lines that do not exist, and saves
/// the checked findings beside the exchange (`<id>.findings.json`).
///
/// Several reviewers (`--with codex,claude,gemini`) run concurrently and blind (each its own
/// request, none sees another's answer); their findings are grouped ("found by 2 of 3") and
/// `--quorum K` sets how many must pass. Exit: 0 pass, 14 rejected (verdict fail, a finding at
/// `--fail-on`, quorum not met), else the failed call's code (12 no valid review, 124 timeout, ...).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay review --with codex                        # the uncommitted changes
  relay review --with claude --base main 'error handling and tests'
  relay review --with gemini --commit HEAD --fail-on warning
  relay review --with codex --files src/auth.rs src/session.rs
  relay review --with codex,claude,gemini --base main --quorum 2 --format sarif > review.sarif
  relay review --with codex --base origin/main --format rdjsonl | reviewdog -f=rdjsonl -reporter=github-pr-review")]
pub struct ReviewArgs {
    /// The reviewer, or several, comma-separated (run concurrently and independently).
    #[arg(long, value_name = "PEER[,PEER...]", required = true)]
    pub with: Vec<String>,

    /// Review what changed since this branch left REF (merge base), uncommitted changes too.
    #[arg(long, value_name = "REF", conflicts_with_all = ["commit", "files"])]
    pub base: Option<String>,

    /// Review one commit.
    #[arg(long, value_name = "SHA", conflicts_with = "files")]
    pub commit: Option<String>,

    /// Review these files whole, as they are (no git needed; give FOCUS before this flag).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub files: Vec<PathBuf>,

    /// Name of the exchange (several reviewers: `<name>-<peer>` each).
    #[arg(long, value_name = "SLUG", default_value = "review")]
    pub name: String,

    /// Output: text, json, sarif (2.1.0), rdjsonl (reviewdog), github (annotations).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Fail (exit 14) when a finding is at least this severe, whatever the verdict.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,

    /// Several reviewers: how many must pass (default: all), and how many must raise a finding
    /// for it to count toward --fail-on (default: 1).
    #[arg(long, value_name = "K")]
    pub quorum: Option<usize>,

    /// Several reviewers: how many run at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_parallel: usize,

    /// Reasoning-effort hint for the reviewer.
    #[arg(long, value_name = "LEVEL")]
    pub effort: Option<String>,

    /// Run this shell command as the (single) reviewer instead.
    #[arg(long, value_name = "CMD")]
    pub peer_cmd: Option<String>,

    #[command(flatten)]
    pub run: RunArgs,

    /// What to look at especially (security, error handling, the migration, ...).
    #[arg(value_name = "FOCUS")]
    pub focus: Option<String>,
}

pub fn run(root: Option<&PathBuf>, args: &ReviewArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let format = if args.json { Format::Json } else { args.format };
    let Some(report) = review_report(&relay, args, format != Format::Text)? else {
        return nothing_to_review(format, &relay, args);
    };
    if format == Format::Github {
        append_step_summary(&report.markdown());
    }
    match report.print(format, &args.name) {
        Err(e) if crate::error::is_broken_pipe(&e) => {}
        other => other?,
    }
    Ok(report.exit_code)
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY` (GitHub's own file, appended to as GitHub
/// documents), when it is set.
pub fn append_step_summary(markdown: &str) {
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write as _;
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(markdown.as_bytes()));
        if let Err(e) = appended {
            eprintln!("relay: warning: could not append to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
}

/// Runs the review and decides its report; None when there is nothing to review.
pub fn review_report(
    relay: &relay_core::RelayDir,
    args: &ReviewArgs,
    quiet: bool,
) -> anyhow::Result<Option<Report>> {
    let peers = fan::peer_list(&args.with)?;
    check_fan_options(&peers, args.quorum, args.peer_cmd.is_some())?;
    relay_core::fields::check_slug(&args.name).map_err(|m| {
        crate::error::usage(format!("--name {m}"), "names are slugs such as auth-review")
    })?;
    let material = review::gather(relay.root(), &scope_of(args))?;
    // Every peer is checked (installed, known) before anything is written.
    let plans = peers
        .iter()
        .map(|p| {
            CallPlan::prepare(
                p,
                args.peer_cmd.clone(),
                Mode::ReadOnly,
                args.effort.clone(),
                &args.run,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if material.is_empty() {
        return Ok(None);
    }
    let new = NewRequest {
        back: None,
        from: String::new(),
        to: String::new(),
        target: Target::Name(args.name.clone()),
        kind: Some("review".into()),
        format: Some(relay_core::review::FORMAT_FINDINGS.into()),
        effort: args.effort.clone(),
        body: review::request_body(&material, args.focus.as_deref())
            + &plans.first().map(CallPlan::checks_note).unwrap_or_default(),
        final_message: true,
        attachment: material.patch.clone().map(|text| Attachment {
            suffix: relay_core::BESIDE_PATCH,
            label: "The patch to review (a unified diff; read this file)".into(),
            text,
        }),
    };
    let (records, saved) = if let [plan] = plans.as_slice() {
        let mut req = new;
        req.from = plan.from.clone();
        req.to = plan.peer.clone();
        let request = crate::record::create_request(relay, &req, input::now()?)?.path;
        let stop = StopFlags::install().context("installing signal handlers")?;
        let call = Call { relay, plan, quiet };
        let record = call.execute(&request, &stop)?;
        (
            vec![record],
            relay_core::beside(&request, relay_core::BESIDE_FINDINGS),
        )
    } else {
        let (members, records) = fan::run(
            relay,
            &args.name,
            plans,
            &new,
            args.max_parallel,
            !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )?;
        let first = &members[0];
        (
            records,
            fan::summary_path(&first.request, &first.plan.peer, "review.json"),
        )
    };
    let reviews = records
        .into_iter()
        .map(|r| review::judge(relay.root(), r))
        .collect();
    let mut report = Report::decide(reviews, args.quorum, args.fail_on);
    fan::save_report(&mut report, |r| &mut r.saved, &saved);
    Ok(Some(report))
}

fn scope_of(args: &ReviewArgs) -> Scope {
    match (&args.base, &args.commit, args.files.is_empty()) {
        (Some(b), _, _) => Scope::Base(b.clone()),
        (_, Some(c), _) => Scope::Commit(c.clone()),
        (_, _, false) => Scope::Files(args.files.clone()),
        _ => Scope::Uncommitted,
    }
}

/// `--quorum` and `--peer-cmd` against the number of peers.
pub fn check_fan_options(
    peers: &[String],
    quorum: Option<usize>,
    peer_cmd: bool,
) -> anyhow::Result<()> {
    if peer_cmd && peers.len() > 1 {
        return Err(crate::error::usage(
            "--peer-cmd runs one peer; several were named",
            "name one peer with --peer-cmd, or define the others in the config file",
        ));
    }
    if let Some(k) = quorum
        && (k == 0 || k > peers.len())
    {
        return Err(crate::error::usage(
            format!("--quorum {k} with {} peer(s)", peers.len()),
            format!("the quorum is between 1 and {}", peers.len()),
        ));
    }
    Ok(())
}

/// An empty change: nothing for a reviewer to do, which is a pass (CI on a change that only
/// touches `.relay/`, say); stderr says so.
fn nothing_to_review(
    format: Format,
    relay: &relay_core::RelayDir,
    args: &ReviewArgs,
) -> anyhow::Result<u8> {
    let report = empty_report(&review::gather(relay.root(), &scope_of(args))?);
    if format == Format::Text {
        println!("relay review: outcome=nothing-to-review verdict=pass findings=0");
        eprintln!("relay: {}; no peer was called", report.reason);
    } else {
        report.print(format, "review")?;
    }
    Ok(exit::OK)
}

/// The report of an empty change: a pass.
pub fn empty_report(m: &review::Material) -> Report {
    Report {
        verdict: "pass",
        exit_code: exit::OK,
        reason: format!("nothing to review: no change in {}", m.what),
        quorum: 0,
        finding_quorum: 0,
        fail_on: None,
        peers: Vec::new(),
        findings: Vec::new(),
        verdicts_disagree: false,
        saved: None,
    }
}
