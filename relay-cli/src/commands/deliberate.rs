//! `relay deliberate`: one round of independent second opinion on a question.

use std::path::PathBuf;

use anyhow::Context as _;
use relay_core::review::{DELIBERATION_SECTIONS, FORMAT_DELIBERATION, KindReply};
use relay_core::{NewRequest, Target, exit};

use crate::commands::call::RunArgs;
use crate::engine::{Call, CallPlan};
use crate::input;
use crate::peer::Mode;
use crate::run::{Outcome, RunRecord};
use crate::supervise::StopFlags;

/// Put a question and your position to a peer; get its independent view in fixed sections.
///
/// The peer runs read-only and answers in five sections, which relay checks: its independent
/// view, where it agrees with your position, where it disagrees, the evidence and what it is
/// unsure of, and the decision it proposes. One round, never a loop: you weigh the answer and
/// decide. Exit codes are those of `relay call` (12 when a section is missing or empty).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay deliberate --with codex 'Should the cache be per-user or global?' \\
    --position 'Per-user: simpler invalidation. Strongest reason: no cross-user leaks. Unsure: memory at 10k users.'
  relay deliberate --with gemini --session storage 'Keep SQLite or move to Postgres?' --position 'Keep SQLite until writes contend.' --json")]
pub struct DeliberateArgs {
    /// The peer to ask.
    #[arg(long, value_name = "PEER")]
    pub with: String,

    /// Your view: what you think, your strongest reason, and what you are unsure of.
    #[arg(long, value_name = "TEXT")]
    pub position: String,

    /// Name of the exchange (a slug).
    #[arg(long, value_name = "SLUG", conflicts_with = "session")]
    pub name: Option<String>,

    /// Add it as the next turn of this session instead.
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Reasoning-effort hint for the peer.
    #[arg(long, value_name = "LEVEL")]
    pub effort: Option<String>,

    /// Run this shell command as the peer instead.
    #[arg(long, value_name = "CMD")]
    pub peer_cmd: Option<String>,

    #[command(flatten)]
    pub run: RunArgs,

    /// Print the result (the run record and the sections) as JSON.
    #[arg(long)]
    pub json: bool,

    /// The question.
    #[arg(value_name = "QUESTION")]
    pub question: String,
}

/// `--json`: the run record and the checked sections.
#[derive(serde::Serialize)]
struct DeliberationJson<'a> {
    #[serde(flatten)]
    record: &'a RunRecord,
    /// Heading -> text, in the fixed order; absent without a valid answer.
    sections: Option<serde_json::Map<String, serde_json::Value>>,
}

pub fn run(root: Option<&PathBuf>, args: &DeliberateArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    for (flag, text) in [("QUESTION", &args.question), ("--position", &args.position)] {
        if text.trim().is_empty() {
            return Err(crate::error::usage(
                format!("{flag} is empty"),
                "state the question, and your view with its strongest reason and your uncertainty",
            ));
        }
    }
    let plan = CallPlan::prepare(
        &args.with,
        args.peer_cmd.clone(),
        Mode::ReadOnly,
        args.effort.clone(),
        &args.run,
    )?;
    let target = match (&args.session, &args.name) {
        (Some(s), _) => Target::Session(s.clone()),
        (None, Some(n)) => Target::Name(n.clone()),
        (None, None) => Target::Name("deliberate".into()),
    };
    let new = NewRequest {
        back: None,
        from: plan.from.clone(),
        to: plan.peer.clone(),
        target,
        kind: Some("deliberate".into()),
        format: Some(FORMAT_DELIBERATION.into()),
        effort: args.effort.clone(),
        body: body(&args.question, &args.position, &plan.from) + &plan.checks_note(),
        final_message: true,
        attachment: None,
    };
    let request = crate::record::create_request(&relay, &new, input::now()?)?.path;
    let stop = StopFlags::install().context("installing signal handlers")?;
    let call = Call {
        relay: &relay,
        plan: &plan,
        quiet: args.json,
    };
    let record = call.execute(&request, &stop)?;
    if args.json {
        let sections = sections(&record).map(|s| {
            s.into_iter()
                .map(|(h, t)| (h, serde_json::Value::String(t)))
                .collect()
        });
        crate::output::json(&DeliberationJson {
            record: &record,
            sections,
        })?;
    } else {
        crate::result::print(&record, false)?;
        if record.outcome == Some(Outcome::Ok) {
            eprintln!(
                "relay: weigh it and decide; record the decision: relay note --kind decision --re {} 'what you decided, and why'",
                record.exchange
            );
        }
    }
    Ok(record.exit_code.unwrap_or(exit::FAILURE))
}

fn body(question: &str, position: &str, from: &str) -> String {
    let mut b = format!(
        "Question: {}\n\nMy position ({from}): {}\n\n",
        question.trim(),
        position.trim()
    );
    b.push_str(
        "Think the question through on your own first, then weigh my position against your view. Disagreement with reasons is what I need; agreement for its own sake is not. Do not change any file. Answer in these sections:\n",
    );
    for h in DELIBERATION_SECTIONS {
        b.push_str(&format!("- ## {h}\n"));
    }
    b
}

/// The checked sections of a valid answer.
fn sections(record: &RunRecord) -> Option<Vec<(String, String)>> {
    match crate::review::structured_reply(record, FORMAT_DELIBERATION)? {
        KindReply::Deliberation(d) => Some(d.sections),
        KindReply::Review(_) => None,
    }
}
