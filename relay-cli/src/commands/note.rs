//! `relay note` and `relay decisions`: the ledger of notes, decisions and evidence.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::ledger::{self, EntryKind, EntryStatus, NewEntry};

use crate::input;

/// Record a note, a decision or evidence in the ledger, for any agent to re-read later.
///
/// The ledger is `.relay/<session>/ledger.jsonl` (or `.relay/ledger.jsonl` for one-shot work):
/// one JSON line per entry, appended safely by many processes at once. Secrets (API keys,
/// tokens, private keys, Authorization values) are redacted before anything is written. A
/// decision stays in force until a later decision names it with `--supersedes`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay note --kind decision --re deliberate 'Global cache; revisit at 10k users (gemini agreed on invalidation).'
  relay note --kind evidence --status passed --evidence 'cargo test' 'All 214 tests pass on the fix.'
  relay note --session auth 'Token refresh is out of scope for this session.'
  relay note --kind decision --supersedes 20261121-163000-1 'Per-user cache after all: memory is fine.'")]
pub struct NoteArgs {
    /// What the entry is.
    #[arg(long, value_enum, default_value_t = KindArg::Note)]
    pub kind: KindArg,

    /// How what it reports came out.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,

    /// A path or command that backs it (repeatable).
    #[arg(long, value_name = "PATH|CMD")]
    pub evidence: Vec<String>,

    /// The exchange it is about (an id, a name, or session/turn).
    #[arg(long, value_name = "EXCHANGE")]
    pub re: Option<String>,

    /// Earlier decisions this one replaces (their ids, from `relay decisions`).
    #[arg(long, value_name = "ID")]
    pub supersedes: Vec<String>,

    /// The session's ledger (default: the exchange's session, else one-shot work).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Who writes it (default: detected, as for `relay call`).
    #[arg(long, value_name = "AGENT", env = "RELAY_FROM")]
    pub from: Option<String>,

    /// Print the entry as JSON.
    #[arg(long)]
    pub json: bool,

    /// The text. `-` reads stdin.
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Note,
    Decision,
    Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Passed,
    Failed,
    Blocked,
    Unknown,
    Skipped,
    TimedOut,
}

pub fn run(root: Option<&PathBuf>, args: &NoteArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let text = input::body(args.text.as_deref(), None)?;
    // The exchange must exist; a session turn puts the entry in its session's ledger.
    let (re, re_session) = match &args.re {
        Some(r) => {
            let request = relay.locate(r)?;
            let req = relay_core::read_header(&request)?;
            match req {
                relay_core::Message::Request(req) => (Some(req.reference()), req.session),
                relay_core::Message::Response(_) => unreachable!("locate returns a request"),
            }
        }
        None => (None, None),
    };
    let session = args.session.clone().or(re_session);
    let kind = match args.kind {
        KindArg::Note => EntryKind::Note,
        KindArg::Decision => EntryKind::Decision,
        KindArg::Evidence => EntryKind::Evidence,
    };
    if !args.supersedes.is_empty() {
        if kind != EntryKind::Decision {
            return Err(crate::error::usage(
                "--supersedes is for decisions",
                "add --kind decision",
            ));
        }
        let (entries, _) = ledger::read(&ledger::ledger_path(&relay, session.as_deref()))?;
        for id in &args.supersedes {
            if !entries
                .iter()
                .any(|e| &e.id == id && e.kind == EntryKind::Decision)
            {
                return Err(crate::error::usage(
                    format!("--supersedes {id}: no such decision in this ledger"),
                    "`relay decisions` lists the decisions in force with their ids",
                ));
            }
        }
    }
    let new = NewEntry {
        kind,
        author: args
            .from
            .clone()
            .unwrap_or_else(|| crate::peer::detect_caller().to_owned()),
        session,
        re,
        text,
        status: args.status.map(|s| match s {
            StatusArg::Passed => EntryStatus::Passed,
            StatusArg::Failed => EntryStatus::Failed,
            StatusArg::Blocked => EntryStatus::Blocked,
            StatusArg::Unknown => EntryStatus::Unknown,
            StatusArg::Skipped => EntryStatus::Skipped,
            StatusArg::TimedOut => EntryStatus::TimedOut,
        }),
        evidence: args.evidence.clone(),
        supersedes: args.supersedes.clone(),
        ..NewEntry::default()
    };
    let entry = ledger::append(&relay, &new, input::now()?)?;
    if args.json {
        crate::output::json(&entry)?;
    } else {
        println!(
            "relay note: id={} kind={} ledger={}",
            entry.id,
            entry.kind.as_str(),
            ledger::ledger_path(&relay, entry.session.as_deref()).display()
        );
    }
    Ok(relay_core::exit::OK)
}

/// List the decisions in force: every decision no later one supersedes.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay decisions
  relay decisions --session auth --json")]
pub struct DecisionsArgs {
    /// The session's ledger (default: one-shot work).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Also list the superseded ones, marked.
    #[arg(long)]
    pub all: bool,

    /// Print them as JSON (one array).
    #[arg(long)]
    pub json: bool,
}

pub fn decisions(root: Option<&PathBuf>, args: &DecisionsArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let (path, entries) = crate::record::read(&relay, args.session.as_deref())?;
    let in_force = ledger::decisions_in_force(&entries);
    let shown: Vec<&ledger::Entry> = if args.all {
        entries
            .iter()
            .filter(|e| e.kind == EntryKind::Decision)
            .collect()
    } else {
        in_force.clone()
    };
    if args.json {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            entry: &'a ledger::Entry,
            in_force: bool,
        }
        let rows: Vec<Row<'_>> = shown
            .iter()
            .map(|e| Row {
                entry: e,
                in_force: in_force.iter().any(|f| f.id == e.id),
            })
            .collect();
        crate::output::json(&rows)?;
        return Ok(relay_core::exit::OK);
    }
    let mut out = std::io::stdout().lock();
    if shown.is_empty() {
        writeln!(out, "no decisions in {}", path.display())?;
    }
    for e in shown {
        let mark = if in_force.iter().any(|f| f.id == e.id) {
            ""
        } else {
            " (superseded)"
        };
        let re =
            e.re.as_deref()
                .map(|r| format!(" re={r}"))
                .unwrap_or_default();
        writeln!(
            out,
            "{} {} {}{re}{mark}: {}",
            e.id,
            crate::output::time(Some(e.time)),
            e.author,
            crate::output::clean_line(&e.text)
        )?;
    }
    out.flush()?;
    Ok(relay_core::exit::OK)
}
