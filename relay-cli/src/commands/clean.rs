//! `relay clean`: remove finished exchanges and the files beside them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use relay_core::{Exchange, ReplyState, exit, scan};
use serde::Serialize;

use crate::input;

/// Remove finished exchanges and the files beside them (run records, logs).
///
/// An exchange is finished when it has a reply and no call is running for it. A session goes
/// as a whole, once every turn in it is finished. Requests without a reply stay unless
/// `--unanswered` is given; a running call always stays (`relay cancel` it first). A fan-out's
/// or review's summary goes with the last of its exchanges. The call log (`.relay/calls.jsonl`)
/// and the ledgers are kept.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay clean --dry-run                 # what would go
  relay clean --older-than 7d           # finished exchanges created a week ago or earlier
  relay clean --session auth-refactor   # one finished session
  relay clean --unanswered --older-than 30d --json")]
pub struct CleanArgs {
    /// Only exchanges created at least this long ago (90s, 20m, 2h, 7d).
    #[arg(long, value_name = "AGE", value_parser = crate::commands::call::parse_duration_arg)]
    pub older_than: Option<Duration>,

    /// Only this session (its turns go together).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Also remove requests that have no reply (never one whose call is running).
    #[arg(long)]
    pub unanswered: bool,

    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One exchange or session, removed or kept.
#[derive(Debug, Serialize)]
struct Unit {
    /// An exchange id, or `session/` for a whole session.
    exchange: String,
    removed: bool,
    /// Why it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_because: Option<&'static str>,
    files: Vec<PathBuf>,
}

pub fn run(root: Option<&PathBuf>, args: &CleanArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let now = input::now()?;
    let exchanges = scan(&relay, args.session.as_deref(), relay_core::CacheWrite::No)?;
    // One-shots stand alone; a session's turns are one unit.
    let mut units: BTreeMap<String, Vec<&Exchange>> = BTreeMap::new();
    for e in &exchanges {
        let key = match &e.session {
            Some(s) => format!("{s}/"),
            None => e.id().to_owned(),
        };
        units.entry(key).or_default().push(e);
    }
    let mut report = Vec::new();
    for (key, turns) in &units {
        let kept = turns.iter().find_map(|e| keep_reason(e, args, now));
        let mut files = Vec::new();
        for e in turns {
            let request = e.request();
            let beside_of = request.clone().unwrap_or_else(|| {
                relay_core::swap_suffix(&e.reply(), relay_core::FileKind::Request)
            });
            files.extend(request);
            files.push(e.reply());
            files.extend(
                relay_core::BESIDE_ALL
                    .iter()
                    .map(|ext| relay_core::beside(&beside_of, ext)),
            );
        }
        let session_dir = key.strip_suffix('/').map(|s| relay.session_dir(s));
        // A session goes as a whole, its record with it.
        files.extend(
            session_dir
                .as_ref()
                .map(|d| d.join(relay_core::ledger::LEDGER)),
        );
        // Only what is there, and never a directory.
        files.retain(|f| std::fs::symlink_metadata(f).is_ok_and(|m| !m.is_dir()));
        if kept.is_none() && !args.dry_run {
            for f in &files {
                std::fs::remove_file(f).map_err(|e| {
                    anyhow::anyhow!(
                        "removing {}: {}",
                        f.display(),
                        crate::error::strip_os_error(&e.to_string())
                    )
                })?;
            }
            if let Some(dir) = &session_dir {
                // The lock file goes with the session; the directory only if nothing else is in it.
                let _ = std::fs::remove_file(dir.join(".lock"));
                let _ = std::fs::remove_dir(dir);
            }
        }
        report.push(Unit {
            exchange: key.clone(),
            removed: kept.is_none() && !args.dry_run,
            kept_because: kept,
            files,
        });
    }
    report.extend(summaries(&relay, &report, args)?);
    print(&report, args)?;
    Ok(exit::OK)
}

/// The summaries of fan-outs and reviews of several peers (`*.fan.json`, `*.review.json`) go
/// with the last of their exchanges: one whose every exchange is gone (or going now) is removed.
fn summaries(
    relay: &relay_core::RelayDir,
    report: &[Unit],
    args: &CleanArgs,
) -> anyhow::Result<Vec<Unit>> {
    let going: std::collections::HashSet<&str> = report
        .iter()
        .filter(|u| u.kept_because.is_none())
        .map(|u| u.exchange.as_str())
        .collect();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(relay.path()) else {
        return Ok(out);
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".fan.json") || name.ends_with(".review.json")) {
            continue;
        }
        let path = entry.path();
        // Untrusted: bounded, never through a link; a file that does not parse stays.
        let Ok(Some(bytes)) = relay_core::untrusted::read_bounded(&path, 16 * 1024 * 1024) else {
            continue;
        };
        let Ok(summary) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let exchanges: Vec<&str> = summary["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["exchange"].as_str())
            .collect();
        let gone =
            |x: &&str| going.contains(*x) || !relay.path().join(format!("{x}.req.md")).exists();
        if exchanges.is_empty() || !exchanges.iter().all(gone) {
            continue;
        }
        if !args.dry_run {
            std::fs::remove_file(&path)
                .map_err(|e| anyhow::anyhow!("removing {}: {e}", path.display()))?;
        }
        out.push(Unit {
            exchange: name,
            removed: !args.dry_run,
            kept_because: None,
            files: vec![path],
        });
    }
    Ok(out)
}

/// Why an exchange must stay, or `None` when it may go.
fn keep_reason(e: &Exchange, args: &CleanArgs, now: time::OffsetDateTime) -> Option<&'static str> {
    let running = e
        .run
        .as_ref()
        .is_some_and(|r| crate::run::summary_state(r) == "running");
    if running {
        return Some("a call is running (relay cancel it first)");
    }
    if matches!(e.reply_state, ReplyState::Pending) && !args.unanswered {
        return Some("no reply (pass --unanswered)");
    }
    if let Some(age) = args.older_than {
        let old_enough = e.created.is_some_and(|c| {
            (now - c).whole_seconds() >= i64::try_from(age.as_secs()).unwrap_or(i64::MAX)
        });
        if !old_enough {
            return Some("newer than --older-than");
        }
    }
    None
}

fn print(report: &[Unit], args: &CleanArgs) -> anyhow::Result<()> {
    if args.json {
        #[derive(Serialize)]
        struct CleanJson<'a> {
            dry_run: bool,
            exchanges: &'a [Unit],
        }
        return crate::output::json(&CleanJson {
            dry_run: args.dry_run,
            exchanges: report,
        });
    }
    let mut out = std::io::stdout().lock();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut gone = 0;
    for u in report {
        match u.kept_because {
            None => {
                gone += 1;
                writeln!(out, "{verb} {} ({} files)", u.exchange, u.files.len())?;
            }
            Some(why) => writeln!(out, "kept {}: {why}", u.exchange)?,
        }
    }
    writeln!(out, "{verb} {gone}, kept {}", report.len() - gone)?;
    Ok(())
}
