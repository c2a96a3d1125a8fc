//! `relay status`: running and finished calls, from their run records.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::exit;

use crate::input;
use crate::run::{self, RunRecord, State};

/// Show running and finished calls.
///
/// One line per call: state (running, or its outcome), peer, pid, elapsed time, latest
/// activity. With an exchange, that call's run record.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay status                  # every call under .relay/
  relay status big-job --json   # one call's run record")]
pub struct StatusArgs {
    /// One exchange (an id, a unique name, session/turn, or a request path).
    #[arg(value_name = "EXCHANGE")]
    pub exchange: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(root: Option<&PathBuf>, args: &StatusArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let now = input::now()?;
    let elapsed = |r: &RunRecord| match r.state {
        State::Running => (now - r.started).whole_seconds().max(0) as f64,
        State::Finished | State::Stale => r.elapsed_ms as f64 / 1000.0,
    };
    let records = match &args.exchange {
        Some(e) => vec![RunRecord::load_started(&run::locate_call(&relay, e)?)?],
        None => run::all_records(&relay),
    };
    if args.json {
        let rows: Vec<run::LiveRecord<'_>> = records
            .iter()
            .map(|r| run::LiveRecord {
                elapsed_s: Some(elapsed(r)),
                ..run::LiveRecord::of(r)
            })
            .collect();
        match (&args.exchange, rows.first()) {
            (Some(_), Some(one)) => crate::output::json(one)?,
            _ => crate::output::json(&rows)?,
        }
        return Ok(exit::OK);
    }
    if records.is_empty() {
        eprintln!("relay: no calls under {}", relay.path().display());
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    let w = records
        .iter()
        .map(|r| r.exchange.len())
        .max()
        .unwrap_or(8)
        .max(8);
    writeln!(
        out,
        "{:<w$}  {:<13}  {:<8}  {:>8}  {:>9}  ACTIVITY",
        "EXCHANGE", "STATE", "PEER", "PID", "ELAPSED"
    )?;
    for r in &records {
        let pid = r.pid.map_or("-".to_owned(), |p| p.to_string());
        let activity: String = crate::output::clean_line(r.activity.as_deref().unwrap_or(""))
            .chars()
            .take(60)
            .collect();
        writeln!(
            out,
            "{:<w$}  {:<13}  {:<8}  {pid:>8}  {:>8.1}s  {activity}",
            r.exchange,
            r.live_state(),
            r.peer,
            elapsed(r)
        )?;
    }
    Ok(exit::OK)
}
