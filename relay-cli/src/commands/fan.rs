//! `relay fan`: the same task to several peers at once, independently.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::NewRequest;

use crate::commands::call::RunArgs;
use crate::engine::CallPlan;
use crate::fan::{self, FanReport, PeerResult};
use crate::input;
use crate::peer::Mode;

/// Give the same task to several peers at once and compare their answers.
///
/// Each peer gets its own request (`<name>-<peer>`, none sees another's answer) and its own
/// supervisor, with its own timeout: one peer hanging or failing never stalls or hides the
/// others, and `relay wait`, `status` and `cancel` work per peer while it runs. The summary
/// (per peer: outcome, status, verify, time, tokens, cost) is printed and saved beside the
/// exchanges (`<stamp>-<name>.fan.json`). Exit 0 when at least `--quorum` peers (default:
/// all) answered done with verify pass or skip; 14 when that can no longer happen; else the
/// exit code of the first call that ended without an answer (124 timeout, 12 no reply, ...).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay fan --to codex,claude,gemini --name api-design --mode read-only 'Which API shape is simplest? Why?'
  relay fan --to codex,claude --name fix-flaky --timeout 20m 'Find why tests/test_sync.py is flaky.'
  relay fan --to codex,claude,gemini --name check --quorum 2 --json --body-file task.md")]
pub struct FanArgs {
    /// The peers, comma-separated (or --to repeated).
    #[arg(long, value_name = "PEER,PEER...", required = true)]
    pub to: Vec<String>,

    /// Name of the fan-out: each exchange is `<name>-<peer>`.
    #[arg(long, value_name = "SLUG", default_value = "fan")]
    pub name: String,

    /// What each peer may do (write: each edits the same tree, so prefer read-only).
    #[arg(long, value_enum, default_value_t = Mode::ReadOnly)]
    pub mode: Mode,

    /// How many peers pass for the fan-out to pass (default: all).
    #[arg(long, value_name = "K")]
    pub quorum: Option<usize>,

    /// How many peers run at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_parallel: usize,

    /// Kind of exchange, recorded in each request.
    #[arg(long, value_name = "SLUG")]
    pub kind: Option<String>,

    /// Reasoning-effort hint for the peers.
    #[arg(long, value_name = "LEVEL")]
    pub effort: Option<String>,

    /// Read the body from FILE instead of the BODY argument.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// The task, in natural language. `-` reads stdin.
    #[arg(value_name = "BODY")]
    pub body: Option<String>,
}

pub fn run(root: Option<&PathBuf>, args: &FanArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let peers = fan::peer_list(&args.to)?;
    crate::commands::review::check_fan_options(&peers, args.quorum, false)?;
    relay_core::fields::check_slug(&args.name).map_err(|m| {
        crate::error::usage(format!("--name {m}"), "names are slugs such as api-design")
    })?;
    let plans = peers
        .iter()
        .map(|p| CallPlan::prepare(p, None, args.mode, args.effort.clone(), &args.run))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewRequest {
        back: None,
        from: String::new(),
        to: String::new(),
        target: relay_core::Target::Name(args.name.clone()),
        kind: args.kind.clone(),
        format: None,
        effort: args.effort.clone(),
        body: input::body(args.body.as_deref(), args.body_file.as_deref())?
            + &plans.first().map(CallPlan::checks_note).unwrap_or_default(),
        final_message: args.mode == Mode::ReadOnly,
        attachment: None,
    };
    let progress = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (members, records) =
        fan::run(&relay, &args.name, plans, &new, args.max_parallel, progress)?;
    let results = records.iter().map(PeerResult::of).collect();
    let mut report = FanReport::decide(&args.name, results, args.quorum);
    let first = &members[0];
    let path = fan::summary_path(&first.request, &first.plan.peer, "fan.json");
    fan::save_report(&mut report, |r| &mut r.saved, &path);
    match print(&report, args.json) {
        Err(e) if crate::error::is_broken_pipe(&e) => {}
        other => other?,
    }
    Ok(report.exit_code)
}

fn print(r: &FanReport, json: bool) -> anyhow::Result<()> {
    if json {
        return crate::output::json(r);
    }
    let clean = crate::output::clean_line;
    let mut out = std::io::stdout().lock();
    let passed = r.peers.iter().filter(|p| p.passed()).count();
    writeln!(
        out,
        "relay fan: name={} verdict={} passed={passed}/{} quorum={}{}",
        r.name,
        r.verdict,
        r.peers.len(),
        r.quorum,
        r.saved
            .as_ref()
            .map(|p| format!(" summary={}", p.display()))
            .unwrap_or_default()
    )?;
    for p in &r.peers {
        let dash = |o: Option<&str>| o.unwrap_or("-").to_owned();
        let tokens = match (p.usage.input_tokens, p.usage.output_tokens) {
            (Some(i), Some(o)) => format!(" tokens={i}+{o}"),
            _ => String::new(),
        };
        let cost = p
            .usage
            .cost_usd
            .map(|c| format!(" cost=${c:.4}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<8} {:<14} status={:<5} verify={:<4} time={:.1}s{tokens}{cost} id={}",
            p.peer,
            p.outcome.as_str(),
            dash(p.status.map(relay_core::Status::as_str)),
            dash(p.verify.map(relay_core::Verify::as_str)),
            p.elapsed_ms as f64 / 1000.0,
            p.exchange
        )?;
    }
    for p in &r.peers {
        writeln!(
            out,
            "\n--- {} ({}): {}",
            p.peer,
            p.outcome.as_str(),
            p.reply.display()
        )?;
        match &p.body {
            Some(body) => {
                let body = crate::output::clean_text(body);
                write!(out, "{body}")?;
                if !body.ends_with('\n') {
                    writeln!(out)?;
                }
            }
            None => writeln!(
                out,
                "(no reply: {})",
                clean(p.reason.as_deref().unwrap_or("-"))
            )?,
        }
    }
    out.flush()?;
    if r.exit_code != relay_core::exit::OK {
        eprintln!("relay: fan {}: {}", r.verdict, clean(&r.reason));
    }
    Ok(())
}
