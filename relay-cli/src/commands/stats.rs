//! `relay stats`: what the calls cost and how they ended, from the call log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use relay_core::exit;
use serde::{Deserialize, Serialize};

use crate::input;
use crate::peer::Usage;

/// Summarize the calls relay ran, by peer and by session: how many, how they ended, how long
/// they took, tokens and cost.
///
/// Reads `.relay/calls.jsonl`, one line per finished call (`relay call`, and each peer of
/// `review`, `fan`, `deliberate`, `handoff --run`). Tokens and cost are what the peer CLI
/// reported (codex, claude and gemini report tokens; claude also reports its cost).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay stats
  relay stats --since 7d --json
  relay stats --session auth")]
pub struct StatsArgs {
    /// Only the calls of this session.
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Only calls that ended this recently (90s, 20m, 2h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::call::parse_duration_arg)]
    pub since: Option<std::time::Duration>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What stats reads of a call log line (other fields are ignored).
#[derive(Deserialize)]
struct Line {
    #[serde(default, with = "time::serde::rfc3339::option")]
    time: Option<time::OffsetDateTime>,
    exchange: String,
    peer: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    elapsed_ms: u64,
    #[serde(default)]
    usage: Usage,
}

/// One row: a peer's or a session's calls.
#[derive(Debug, Default, Serialize)]
struct Row {
    key: String,
    calls: u64,
    outcomes: BTreeMap<String, u64>,
    median_ms: u64,
    p90_ms: u64,
    total_ms: u64,
    input_tokens: u64,
    output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(skip)]
    times: Vec<u64>,
}

impl Row {
    fn add(&mut self, l: &Line) {
        self.calls += 1;
        *self
            .outcomes
            .entry(l.outcome.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        self.times.push(l.elapsed_ms);
        self.total_ms += l.elapsed_ms;
        self.input_tokens += l.usage.input_tokens.unwrap_or(0);
        self.output_tokens += l.usage.output_tokens.unwrap_or(0);
        if let Some(c) = l.usage.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }

    fn finish(mut self) -> Row {
        self.times.sort_unstable();
        let at = |q: f64| {
            let i = ((self.times.len() as f64 - 1.0) * q).round() as usize;
            self.times.get(i).copied().unwrap_or(0)
        };
        (self.median_ms, self.p90_ms) = (at(0.5), at(0.9));
        self
    }
}

#[derive(Serialize)]
struct Stats {
    calls: u64,
    by_peer: Vec<Row>,
    by_session: Vec<Row>,
    #[serde(skip_serializing_if = "crate::output::is_zero")]
    skipped_lines: usize,
}

pub fn run(root: Option<&PathBuf>, args: &StatsArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let now = input::now()?;
    let path = relay.path().join(relay_core::CALL_LOG);
    let bytes = match relay_core::untrusted::read_capped(&path, 256 * 1024 * 1024) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    let since = args
        .since
        .and_then(|d| time::Duration::try_from(d).ok())
        .map(|d| now - d);
    let (mut by_peer, mut by_session) = (BTreeMap::new(), BTreeMap::new());
    let (mut calls, mut skipped) = (0, 0);
    for line in String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let Ok(l) = serde_json::from_str::<Line>(line) else {
            skipped += 1;
            continue;
        };
        let session = l.exchange.split_once('/').map(|(s, _)| s.to_owned());
        if args.session.is_some() && session != args.session {
            continue;
        }
        if let (Some(since), Some(t)) = (since, l.time)
            && t < since
        {
            continue;
        }
        calls += 1;
        let row = |map: &mut BTreeMap<String, Row>, key: &str| {
            map.entry(key.to_owned())
                .or_insert_with(|| Row {
                    key: key.to_owned(),
                    ..Row::default()
                })
                .add(&l);
        };
        row(&mut by_peer, &l.peer);
        row(&mut by_session, session.as_deref().unwrap_or("(one-shot)"));
    }
    let stats = Stats {
        calls,
        by_peer: by_peer.into_values().map(Row::finish).collect(),
        by_session: by_session.into_values().map(Row::finish).collect(),
        skipped_lines: skipped,
    };
    if skipped > 0 {
        eprintln!(
            "relay: warning: {} skipped {skipped} line(s) that are not call records",
            path.display()
        );
    }
    if args.json {
        crate::output::json(&stats)?;
        return Ok(exit::OK);
    }
    let mut out = String::new();
    if calls == 0 {
        let _ = writeln!(out, "no calls in {}", path.display());
    }
    for (title, rows) in [("PEER", &stats.by_peer), ("SESSION", &stats.by_session)] {
        if rows.is_empty() {
            continue;
        }
        let w = rows
            .iter()
            .map(|r| r.key.len())
            .max()
            .unwrap_or(0)
            .max(title.len());
        let _ = writeln!(
            out,
            "{title:<w$}  {:>5}  {:>7}  {:>7}  {:>9}  {:>10}  {:>8}  OUTCOMES",
            "CALLS", "MEDIAN", "P90", "TOKENS IN", "TOKENS OUT", "COST"
        );
        for r in rows {
            let outcomes: Vec<String> =
                r.outcomes.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let _ = writeln!(
                out,
                "{:<w$}  {:>5}  {:>6.1}s  {:>6.1}s  {:>9}  {:>10}  {:>8}  {}",
                crate::output::clean_line(&r.key),
                r.calls,
                r.median_ms as f64 / 1000.0,
                r.p90_ms as f64 / 1000.0,
                r.input_tokens,
                r.output_tokens,
                r.cost_usd.map_or("-".into(), |c| format!("${c:.2}")),
                outcomes.join(" "),
            );
        }
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.trim_end().as_bytes())?;
    stdout.write_all(b"\n")?;
    Ok(exit::OK)
}
