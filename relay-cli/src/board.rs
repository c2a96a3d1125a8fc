//! The board: per session (and for one-shot work) who owns the work, who must act next, what
//! is open, running or blocked, the last decision and whether the work is finished. Built from
//! directory listings, the inbox cache, the run records of calls without a reply, and each
//! session's record; shared by `relay board`, `relay takeover` and `relay close`.

use std::path::PathBuf;

use relay_core::ledger::{self, Entry, EntryKind, Finality};
use relay_core::{DirSurvey, RelayDir};
use serde::Serialize;
use time::OffsetDateTime;

use crate::commands::inbox::{self, Open};

/// One session's line of the board (`session: None` is one-shot work).
#[derive(Debug, Serialize)]
pub struct SessionBoard {
    pub session: Option<String>,
    /// Who holds the work (see [`ledger::ownership`]).
    pub owner: Option<String>,
    /// The open handoff that gave it to the owner.
    pub handoff: Option<String>,
    /// Who must act next: the agents open requests are addressed to, the agents a blocked
    /// peer waits on, `user` for a final proposal to sign off; else the owner.
    pub next: Vec<String>,
    pub open: Vec<Item>,
    pub running: Vec<Item>,
    /// Replies that say `state: blocked`: the peer waits for an answer from `to`.
    pub blocked: Vec<Item>,
    pub last_decision: Option<Decision>,
    pub finality: Finality,
    /// The work as ACP plan entries (what Zed and acpx render): open and blocked work
    /// `pending`, running calls `in_progress`; stale and blocked work `high` priority.
    pub plan: Vec<PlanEntry>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
    /// Lines of the record that did not parse.
    #[serde(skip_serializing_if = "crate::output::is_zero")]
    pub skipped_lines: usize,
    #[serde(skip)]
    pub entries: Vec<Entry>,
}

/// An exchange on the board, with its A2A task state (`submitted`, `working`,
/// `input-required`).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub exchange: String,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub a2a: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    pub age_s: Option<i64>,
    pub stale: bool,
    /// The first line of the task (or the handoff's ask, or the blocked peer's question).
    pub title: String,
    pub request: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct PlanEntry {
    pub content: String,
    pub priority: &'static str,
    pub status: &'static str,
}

impl PlanEntry {
    fn of(i: &Item, status: &'static str) -> PlanEntry {
        let who = if i.a2a == "input-required" {
            format!("{} waits on {}", i.from, i.to)
        } else {
            format!("{} -> {}", i.from, i.to)
        };
        PlanEntry {
            content: format!("{} ({who}): {}", i.exchange, i.title),
            priority: if i.stale || i.a2a == "input-required" {
                "high"
            } else {
                "medium"
            },
            status,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub id: String,
    pub author: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// Builds the board of a project. `stale`: an open item older than this is flagged.
pub fn build(
    relay: &RelayDir,
    now: OffsetDateTime,
    stale: time::Duration,
) -> anyhow::Result<Vec<SessionBoard>> {
    let survey = relay_core::survey(relay)?;
    let open = inbox::open_all(relay, &survey);
    let mut out = Vec::with_capacity(survey.len());
    for dir in &survey {
        let mut board = session_board(relay, dir, &open, now, stale)?;
        board.plan = board
            .blocked
            .iter()
            .chain(&board.open)
            .map(|i| PlanEntry::of(i, "pending"))
            .chain(
                board
                    .running
                    .iter()
                    .map(|i| PlanEntry::of(i, "in_progress")),
            )
            .collect();
        out.push(board);
    }
    Ok(out)
}

fn session_board(
    relay: &RelayDir,
    dir: &DirSurvey,
    open: &[Open],
    now: OffsetDateTime,
    stale: time::Duration,
) -> anyhow::Result<SessionBoard> {
    let (entries, skipped_lines) = if dir.has_record {
        ledger::read(&ledger::ledger_path(relay, dir.session.as_deref()))?
    } else {
        (Vec::new(), 0)
    };
    let age = |created: Option<OffsetDateTime>| created.map(|c| (now - c).whole_seconds());
    let item = |o: &Open, a2a: &'static str| Item {
        exchange: o.exchange.clone(),
        kind: o.kind.clone(),
        from: o.from.clone().unwrap_or_default(),
        to: o.to.clone(),
        a2a,
        created: o.created,
        age_s: age(o.created),
        stale: o.created.is_some_and(|c| now - c > stale),
        title: if o.title.is_empty() {
            title_of(&entries, &o.exchange)
        } else {
            o.title.clone()
        },
        request: o.request.clone(),
    };
    let here =
        |o: &&Open| o.request.parent() == Some(dir_path(relay, dir.session.as_deref()).as_path());
    let open_items: Vec<Item> = open
        .iter()
        .filter(here)
        .map(|o| item(o, "submitted"))
        .collect();
    let running: Vec<Item> = dir
        .called
        .iter()
        .filter(|r| {
            relay_core::read_run_summary(r)
                .is_some_and(|s| crate::run::summary_state(&s) == "running")
        })
        .filter_map(|r| match relay_core::read_header(r) {
            Ok(relay_core::Message::Request(req)) => Some(Open {
                title: String::new(),
                exchange: req.reference(),
                from: Some(req.from),
                to: req.to,
                kind: req.kind.unwrap_or_else(|| "task".into()),
                created: req.created,
                request: r.clone(),
                reply: relay_core::reply_path(r),
            }),
            _ => None,
        })
        .map(|o| item(&o, "working"))
        .collect();
    let blocked = blocked_replies(&entries, dir, relay, now, stale);
    let mut own = ledger::ownership(&entries, |re| {
        relay
            .locate(re)
            .is_ok_and(|req| relay_core::reply_path(&req).exists())
    });
    // One-shot exchanges are separate pieces of work: only a handoff gives them an owner.
    if dir.session.is_none() && !entries.iter().any(|e| e.kind == EntryKind::Handoff) {
        own = ledger::Ownership::default();
    }
    let finality = ledger::finality(&entries);
    let mut next: Vec<String> = Vec::new();
    for who in open_items
        .iter()
        .map(|i| &i.to)
        .chain(blocked.iter().map(|b| &b.to))
    {
        if !next.contains(who) {
            next.push(who.clone());
        }
    }
    if next.is_empty() && matches!(finality, Finality::Proposed { .. }) {
        next.push("user".into());
    }
    if next.is_empty()
        && running.is_empty()
        && !matches!(finality, Finality::Approved { .. })
        && let Some(o) = &own.owner
    {
        next.push(o.clone());
    }
    let last_decision = ledger::decisions_in_force(&entries)
        .last()
        .map(|e| Decision {
            id: e.id.clone(),
            author: e.author.clone(),
            text: e.text.clone(),
            time: e.time,
        });
    let last_activity = entries
        .last()
        .map(|e| e.time)
        .into_iter()
        .chain(open_items.iter().filter_map(|i| i.created))
        .max();
    Ok(SessionBoard {
        plan: Vec::new(),
        session: dir.session.clone(),
        owner: own.owner,
        handoff: own.handoff,
        next,
        open: open_items,
        running,
        blocked,
        last_decision,
        finality,
        last_activity,
        skipped_lines,
        entries,
    })
}

fn dir_path(relay: &RelayDir, session: Option<&str>) -> PathBuf {
    match session {
        Some(s) => relay.session_dir(s),
        None => relay.path().to_path_buf(),
    }
}

/// What the record says a request asked (its request or handoff entry).
fn title_of(entries: &[Entry], exchange: &str) -> String {
    entries
        .iter()
        .rev()
        .find(|e| {
            matches!(e.kind, EntryKind::Request | EntryKind::Handoff)
                && e.re.as_deref() == Some(exchange)
        })
        .map(|e| e.text.clone())
        .unwrap_or_default()
}

/// Replies recorded as blocked whose asker has not written to that peer since.
fn blocked_replies(
    entries: &[Entry],
    dir: &DirSurvey,
    relay: &RelayDir,
    now: OffsetDateTime,
    stale: time::Duration,
) -> Vec<Item> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.kind != EntryKind::Reply || e.a2a.as_deref() != Some("input-required") {
            continue;
        }
        let asker = e.to.clone().unwrap_or_default();
        let answered = entries[i + 1..].iter().any(|later| {
            matches!(later.kind, EntryKind::Request | EntryKind::Handoff)
                && later.author == asker
                && later.to.as_deref() == Some(e.author.as_str())
        });
        if answered {
            continue;
        }
        let re = e.re.clone().unwrap_or_default();
        let request = relay.locate(&re).unwrap_or_else(|_| {
            dir_path(relay, dir.session.as_deref()).join(format!("{re}.req.md"))
        });
        out.push(Item {
            exchange: re,
            kind: "reply".into(),
            from: e.author.clone(),
            to: asker,
            a2a: "input-required",
            created: Some(e.time),
            age_s: Some((now - e.time).whole_seconds()),
            stale: now - e.time > stale,
            title: e.text.clone(),
            request,
        });
    }
    out
}

impl SessionBoard {
    /// The session's name as the board prints it.
    pub fn label(&self) -> &str {
        self.session.as_deref().unwrap_or("(one-shot)")
    }

    /// Is there anything to show without `--all`: open, running or blocked work, a standing
    /// proposal, or a session record that is not signed off.
    pub fn is_active(&self) -> bool {
        !self.open.is_empty()
            || !self.running.is_empty()
            || !self.blocked.is_empty()
            || matches!(self.finality, Finality::Proposed { .. })
            || (self.session.is_some()
                && !self.entries.is_empty()
                && !matches!(self.finality, Finality::Approved { .. }))
    }
}
