//! `relay board`, `relay log`, `relay close` and `relay takeover`: the state of the work, read
//! from the files and the session records.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use relay_core::ledger::{self, EntryKind, Finality, NewEntry};
use relay_core::{RelayDir, exit};

use crate::board::{self, Item, SessionBoard};
use crate::error::ExpectedError;
use crate::input;
use crate::output::clean_line;

/// Show who owns what and what is open: per session and for one-shot work.
///
/// For each session: the owner (moved by handoffs), who must act next, open handoffs and
/// requests with their age (stale ones flagged), running calls, peers blocked on a question,
/// the last decision in force, and whether the work is proposed or signed off as finished.
/// Sessions signed off with nothing open are left out unless --all.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay board
  relay board --stale 2h --json
  relay board --md HANDOFF.md          # a Markdown board an agent without relay can read
  relay board --workspace ~/src/app ~/src/api")]
pub struct BoardArgs {
    /// Flag open work older than this (90s, 20m, 2h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::commands::call::parse_duration_arg)]
    pub stale: std::time::Duration,

    /// Also show sessions that are signed off and have nothing open.
    #[arg(long)]
    pub all: bool,

    /// Print JSON: one object per session (A2A task states on every item).
    #[arg(long, conflicts_with = "md")]
    pub json: bool,

    /// Print the board as Markdown, or write it to FILE (only over a file relay wrote).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub md: Option<PathBuf>,

    /// One line per project, across these project roots (and the config file's `workspace:`).
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with = "md")]
    pub workspace: Vec<PathBuf>,
}

/// Print a session's record: requests, handoffs, replies, notes, decisions, finality.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay log --session auth
  relay log                       # one-shot work
  relay log --session auth --json | jq 'select(.type == \"decision\")'")]
pub struct LogArgs {
    /// The session (default: one-shot work).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Only the last N entries.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,

    /// Print the entries as JSON lines, as stored.
    #[arg(long)]
    pub json: bool,
}

/// Propose that a session is finished, or (a human) sign the proposal off.
///
/// An agent proposes finality with a summary, the evidence and the risks that remain; refused
/// while a request or handoff in the session is open or running. The human signs it off with
/// --approve, which relay refuses from inside an agent (Claude Code, Codex, Gemini CLI) unless
/// --force, and records as forced. A later request or handoff reopens the session.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay close auth --summary 'Token refresh done; 214 tests pass.' --evidence 'cargo test' \\
    --risk 'Refresh under clock skew is untested.'
  relay close auth --approve      # the human, in their own terminal")]
pub struct CloseArgs {
    /// The session.
    #[arg(value_name = "SESSION")]
    pub session: String,

    /// What was done (the proposal).
    #[arg(long, value_name = "TEXT", required_unless_present = "approve")]
    pub summary: Option<String>,

    /// A path or command that backs it (repeatable).
    #[arg(long, value_name = "PATH|CMD", conflicts_with = "approve")]
    pub evidence: Vec<String>,

    /// A risk that remains (repeatable).
    #[arg(long, value_name = "TEXT", conflicts_with = "approve")]
    pub risk: Vec<String>,

    /// Sign off the standing proposal (a human's call).
    #[arg(long, conflicts_with = "summary")]
    pub approve: bool,

    /// With --approve: sign off even from inside an agent (recorded as forced).
    #[arg(long, requires = "approve")]
    pub force: bool,

    /// Who proposes (default: detected, as for `relay call`).
    #[arg(long, value_name = "AGENT", env = "RELAY_FROM")]
    pub from: Option<String>,

    /// Print the entry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Print a paste-ready prompt that lets another agent (one without relay, such as a local
/// model) take the work over: goal, next steps, files that matter, blockers, decisions.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay takeover --for aider --session auth | pbcopy
  relay takeover --for ollama")]
pub struct TakeoverArgs {
    /// The agent taking over (named in the prompt).
    #[arg(long = "for", value_name = "AGENT")]
    pub agent: String,

    /// The session (default: the most recently active one with open work).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,
}

fn stale_of(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

pub fn board(root: Option<&PathBuf>, args: &BoardArgs) -> anyhow::Result<u8> {
    let now = input::now()?;
    let stale = stale_of(args.stale);
    let mut roots = args.workspace.clone();
    if !roots.is_empty() {
        roots.extend(crate::peer::workspace_roots()?);
        return workspace(&roots, now, stale, args.json);
    }
    let relay = input::relay_dir(root)?;
    let boards = board::build(&relay, now, stale)?;
    let shown: Vec<&SessionBoard> = boards
        .iter()
        .filter(|b| args.all || b.is_active())
        .collect();
    if args.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            project: &'a Path,
            sessions: &'a [&'a SessionBoard],
        }
        crate::output::json(&Json {
            project: relay.root(),
            sessions: &shown,
        })?;
        return Ok(exit::OK);
    }
    if let Some(md) = &args.md {
        let text = markdown(&relay, &shown, now);
        if md.as_os_str() == "-" {
            std::io::stdout().lock().write_all(text.as_bytes())?;
        } else {
            write_md(md, &text)?;
            println!("relay board: wrote {}", md.display());
        }
        return Ok(exit::OK);
    }
    let mut out = String::new();
    if shown.is_empty() {
        let _ = writeln!(out, "nothing open in {}", relay.root().display());
    }
    for b in &shown {
        text_session(&mut out, b, now);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(exit::OK)
}

fn text_session(out: &mut String, b: &SessionBoard, now: time::OffsetDateTime) {
    let _ = write!(out, "{}:", b.label());
    if let Some(o) = &b.owner {
        let _ = write!(out, " owner={o}");
    }
    if !b.next.is_empty() {
        let _ = write!(out, " next={}", b.next.join(","));
    }
    if b.session.is_some() {
        let _ = write!(out, " final={}", b.finality.as_str());
    }
    if b.last_activity.is_some() {
        let _ = write!(
            out,
            " active={} ago",
            crate::output::age(now, b.last_activity)
        );
    }
    out.push('\n');
    let w = b
        .open
        .iter()
        .chain(&b.running)
        .chain(&b.blocked)
        .map(|i| i.exchange.len())
        .max()
        .unwrap_or(0);
    let line = |out: &mut String, what: &str, i: &Item, route: String| {
        let _ = writeln!(
            out,
            "  {what:<8}  {:<w$}  {:<8}  {route:<16}  {:>5}{}  {}",
            i.exchange,
            i.kind,
            crate::output::age(now, i.created),
            if i.stale { " STALE" } else { "" },
            clean_line(&i.title),
        );
    };
    for i in &b.open {
        line(out, "open", i, format!("{}->{}", i.from, i.to));
    }
    for i in &b.running {
        line(out, "running", i, format!("{}->{}", i.from, i.to));
    }
    for i in &b.blocked {
        line(out, "blocked", i, format!("{} waits on {}", i.from, i.to));
    }
    if let Finality::Proposed { by, summary, .. } = &b.finality {
        let _ = writeln!(out, "  proposed  by {by}: {}", clean_line(summary));
    }
    if let Some(d) = &b.last_decision {
        let _ = writeln!(
            out,
            "  decision  {} ({}): {}",
            d.id,
            d.author,
            clean_line(&d.text)
        );
    }
    if b.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "  warning   {} record line(s) did not parse",
            b.skipped_lines
        );
    }
}

/// The board as a Markdown task board (AgentRelay's AGENT-HANDOFF.md, CodeRelay's HANDOFF.md):
/// readable by an agent that has no relay.
fn markdown(relay: &RelayDir, boards: &[&SessionBoard], now: time::OffsetDateTime) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MD_MARK}");
    let name = relay
        .root()
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let _ = writeln!(out, "# Board: {name}\n");
    let _ = writeln!(
        out,
        "Written by `relay board --md` at {}. Each open item is a request file: read it, do the task, and write the reply file its footer names (`relay next` does this for agents with relay).\n",
        crate::output::time(Some(now.replace_nanosecond(0).unwrap_or(now)))
    );
    if boards.is_empty() {
        out.push_str("Nothing is open.\n");
    }
    let rel = |p: &Path| {
        p.strip_prefix(relay.root())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    for b in boards {
        let _ = writeln!(out, "## {}\n", b.label());
        if let Some(o) = &b.owner {
            let _ = writeln!(out, "- **Owner:** {o}");
        }
        if !b.next.is_empty() {
            let _ = writeln!(out, "- **Next:** {}", b.next.join(", "));
        }
        if b.session.is_some() {
            let _ = writeln!(out, "- **Finality:** {}", b.finality.as_str());
        }
        if let Finality::Proposed { by, summary, .. } = &b.finality {
            let _ = writeln!(
                out,
                "- **Proposed as finished** by {by}: {}",
                clean_line(summary)
            );
        }
        for (what, items) in [
            ("Open", &b.open),
            ("Running", &b.running),
            ("Blocked", &b.blocked),
        ] {
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(out, "- **{what}:**");
            for i in items {
                let _ = writeln!(
                    out,
                    "  - [ ] `{}` ({}, {} -> {}, {}{}): {} (`{}`)",
                    i.exchange,
                    i.kind,
                    i.from,
                    i.to,
                    crate::output::age(now, i.created),
                    if i.stale { ", stale" } else { "" },
                    clean_line(&i.title),
                    rel(&i.request)
                );
            }
        }
        let decisions = ledger::decisions_in_force(&b.entries);
        if !decisions.is_empty() {
            let _ = writeln!(out, "- **Decisions in force:**");
            for d in decisions {
                let _ = writeln!(out, "  - {} ({}): {}", d.id, d.author, clean_line(&d.text));
            }
        }
        out.push('\n');
    }
    out
}

/// The first line of every Markdown board relay writes: it only ever overwrites its own.
const MD_MARK: &str = "<!-- written by `relay board --md`: edits here are overwritten -->";

fn write_md(path: &Path, text: &str) -> anyhow::Result<()> {
    match crate::input::read_user_file(path, 16 * 1024 * 1024) {
        Ok(old) if !old.starts_with(MD_MARK) => {
            return Err(crate::error::usage(
                format!(
                    "{} exists and was not written by relay board",
                    path.display()
                ),
                "name another file, or move that one away",
            ));
        }
        Err(e) if path.exists() || path.is_symlink() => {
            return Err(crate::error::usage(
                format!("{}: {}", path.display(), e.why),
                "name a regular file relay board wrote, or a new one",
            ));
        }
        _ => {}
    }
    relay_core::write_replace(path, text.as_bytes())?;
    Ok(())
}

fn workspace(
    roots: &[PathBuf],
    now: time::OffsetDateTime,
    stale: time::Duration,
    json: bool,
) -> anyhow::Result<u8> {
    #[derive(serde::Serialize)]
    struct Project {
        project: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        sessions: Vec<SessionBoard>,
    }
    let mut projects = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let root = root.canonicalize().unwrap_or_else(|_| root.clone());
        if !seen.insert(root.clone()) {
            continue;
        }
        let built = RelayDir::at_root(&root)
            .map_err(anyhow::Error::from)
            .and_then(|relay| board::build(&relay, now, stale));
        let (sessions, error) = match built {
            Ok(s) => (
                s.into_iter().filter(SessionBoard::is_active).collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(crate::error::render(&e))),
        };
        projects.push(Project {
            project: root,
            error,
            sessions,
        });
    }
    // The most recently active first.
    let active = |p: &Project| p.sessions.iter().filter_map(|s| s.last_activity).max();
    projects.sort_by_key(|p| std::cmp::Reverse(active(p)));
    if json {
        crate::output::json(&projects)?;
        return Ok(exit::OK);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32}  {:>6}  {:>4}  {:>7}  {:>7}  {:<20}  NEXT",
        "PROJECT", "ACTIVE", "OPEN", "RUNNING", "BLOCKED", "OWNERS"
    );
    for p in &projects {
        if let Some(e) = &p.error {
            let _ = writeln!(out, "{:<32}  {}", p.project.display(), clean_line(e));
            continue;
        }
        let count = |f: fn(&SessionBoard) -> usize| p.sessions.iter().map(f).sum::<usize>();
        let owners: Vec<String> = p
            .sessions
            .iter()
            .filter_map(|s| Some(format!("{}:{}", s.label(), s.owner.as_deref()?)))
            .collect();
        let mut next: Vec<&str> = p
            .sessions
            .iter()
            .flat_map(|s| &s.next)
            .map(String::as_str)
            .collect();
        next.sort_unstable();
        next.dedup();
        let _ = writeln!(
            out,
            "{:<32}  {:>6}  {:>4}  {:>7}  {:>7}  {:<20}  {}",
            p.project.display(),
            crate::output::age(now, active(p)),
            count(|s| s.open.len()),
            count(|s| s.running.len()),
            count(|s| s.blocked.len()),
            if owners.is_empty() {
                "-".into()
            } else {
                owners.join(",")
            },
            if next.is_empty() {
                "-".into()
            } else {
                next.join(",")
            },
        );
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(exit::OK)
}

pub fn log(root: Option<&PathBuf>, args: &LogArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let (path, entries) = crate::record::read(&relay, args.session.as_deref())?;
    let from = args.last.map_or(0, |n| entries.len().saturating_sub(n));
    let entries = &entries[from..];
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        for e in entries {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        writeln!(out, "nothing recorded in {}", path.display())?;
    }
    for e in entries {
        let time = crate::output::time(Some(e.time));
        let mut what = e.kind.as_str().to_owned();
        if let Some(to) = &e.to {
            what = format!("{what} ->{to}");
        }
        let mut line = format!("{time}  {:<10} {:<18}", e.author, what);
        if let Some(re) = &e.re {
            line.push_str(&format!(" [{re}]"));
        }
        if let Some(s) = e.status {
            line.push_str(&format!(
                " ({})",
                serde_json::to_value(s)?.as_str().unwrap_or("")
            ));
        }
        line.push_str(&format!(" {}", clean_line(&e.text)));
        if e.kind == EntryKind::Handoff && e.back == Some(false) {
            line.push_str(" (not back)");
        }
        if e.forced {
            line.push_str(" (forced)");
        }
        for ev in &e.evidence {
            line.push_str(&format!("\n    evidence: {}", clean_line(ev)));
        }
        for r in &e.risk {
            line.push_str(&format!("\n    risk: {}", clean_line(r)));
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(exit::OK)
}

pub fn close(root: Option<&PathBuf>, args: &CloseArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(Some(&args.session))?;
    if !relay.session_dir(&args.session).is_dir() {
        return Err(relay_core::Error::NotFound {
            what: "session",
            path: relay.session_dir(&args.session),
        }
        .into());
    }
    let now = input::now()?;
    let boards = board::build(&relay, now, time::Duration::MAX)?;
    let b = boards
        .iter()
        .find(|b| b.session.as_deref() == Some(args.session.as_str()))
        .expect("the session directory exists, so the survey lists it");
    let new = if args.approve {
        let Finality::Proposed { .. } = &b.finality else {
            return Err(ExpectedError::NothingToApprove {
                session: args.session.clone(),
                state: format!("finality is {}", b.finality.as_str()),
            }
            .into());
        };
        let agent = crate::peer::detect_caller();
        if agent != "user" && !args.force {
            return Err(ExpectedError::ApproveInsideAgent {
                session: args.session.clone(),
                agent: agent.to_owned(),
            }
            .into());
        }
        NewEntry {
            kind: EntryKind::Signoff,
            author: "user".into(),
            session: Some(args.session.clone()),
            text: if agent == "user" {
                "approved".into()
            } else {
                format!("approved from inside {agent} with --force")
            },
            forced: agent != "user",
            ..NewEntry::default()
        }
    } else {
        let open: Vec<&Item> = b.open.iter().chain(&b.running).collect();
        if !open.is_empty() {
            return Err(ExpectedError::OpenWork {
                session: args.session.clone(),
                list: open
                    .iter()
                    .map(|i| format!("{} ({} -> {}, {})", i.exchange, i.from, i.to, i.a2a))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        NewEntry {
            kind: EntryKind::Final,
            author: args
                .from
                .clone()
                .unwrap_or_else(|| crate::peer::detect_caller().to_owned()),
            session: Some(args.session.clone()),
            text: args.summary.clone().unwrap_or_default(),
            evidence: args.evidence.clone(),
            risk: args.risk.clone(),
            ..NewEntry::default()
        }
    };
    let entry = ledger::append(&relay, &new, now)?;
    if args.json {
        crate::output::json(&entry)?;
    } else if args.approve {
        println!(
            "relay close: {} signed off{}",
            args.session,
            if entry.forced { " (forced)" } else { "" }
        );
    } else {
        println!(
            "relay close: {} proposed as finished by {} (id={}); a human signs it off: relay close {} --approve",
            args.session, entry.author, entry.id, args.session
        );
    }
    Ok(exit::OK)
}

pub fn takeover(root: Option<&PathBuf>, args: &TakeoverArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let now = input::now()?;
    let boards = board::build(&relay, now, time::Duration::MAX)?;
    let b = match &args.session {
        Some(s) => boards
            .iter()
            .find(|b| b.session.as_deref() == Some(s.as_str()))
            .ok_or_else(|| relay_core::Error::NotFound {
                what: "session",
                path: relay.session_dir(s),
            })?,
        None => boards
            .iter()
            .filter(|b| b.is_active())
            .max_by_key(|b| b.last_activity)
            .ok_or_else(|| {
                crate::error::usage(
                    "nothing is open to take over",
                    "name a session with --session (`relay board --all` lists them)",
                )
            })?,
    };
    std::io::stdout()
        .lock()
        .write_all(takeover_prompt(&relay, b, &args.agent).as_bytes())?;
    Ok(exit::OK)
}

/// CodeRelay's takeover prompt: the goal, where it stands, the next steps, the files that
/// matter, blockers and decisions; nothing a `git log` already says.
fn takeover_prompt(relay: &RelayDir, b: &SessionBoard, agent: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are {agent}, taking over work in the project at {} ({}).",
        relay.root().display(),
        match &b.session {
            Some(s) => format!("session `{s}`"),
            None => "one-shot work".into(),
        }
    );
    let goal = b
        .entries
        .iter()
        .find(|e| matches!(e.kind, EntryKind::Request | EntryKind::Handoff))
        .map(|e| e.text.clone())
        .or_else(|| b.open.first().map(|i| i.title.clone()));
    if let Some(goal) = goal {
        let _ = writeln!(out, "\n## Goal\n{}", clean_line(&goal));
    }
    let _ = writeln!(out, "\n## Where it stands");
    if let Some(o) = &b.owner {
        let _ = writeln!(out, "- Owner until now: {o}");
    }
    let _ = writeln!(out, "- Finality: {}", b.finality.as_str());
    for e in b
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::Reply | EntryKind::Evidence | EntryKind::Note
            )
        })
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            e.author,
            e.kind.as_str(),
            clean_line(&e.text)
        );
    }
    let _ = writeln!(out, "\n## Next steps");
    let steps: Vec<&Item> = b.open.iter().chain(&b.blocked).take(3).collect();
    if steps.is_empty() {
        let _ = writeln!(
            out,
            "1. Nothing is open: check the goal is met, then say so."
        );
    }
    for (n, i) in steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. {} (asked by {}; the request is {})",
            n + 1,
            clean_line(&i.title),
            i.from,
            i.request.display()
        );
    }
    let mut files: Vec<String> = Vec::new();
    let mut off: Vec<String> = Vec::new();
    let mut acceptance: Vec<String> = Vec::new();
    for i in b.open.iter().chain(&b.running) {
        if i.kind == relay_core::HANDOFF
            && let Ok(req) = relay_core::read_request(&i.request)
            && let Ok(h) = relay_core::handoff::Handoff::parse(&req.body)
        {
            files.extend(h.refs.into_iter().chain(h.scope));
            off.extend(h.off_limits);
            acceptance.extend(h.acceptance);
        }
    }
    files.dedup();
    for (title, list) in [
        ("Files that matter", &files),
        ("Off limits", &off),
        ("Done means", &acceptance),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n## {title}");
            for f in list {
                let _ = writeln!(out, "- {}", clean_line(f));
            }
        }
    }
    let blockers: Vec<String> = b
        .blocked
        .iter()
        .map(|i| format!("{} waits on {}: {}", i.from, i.to, clean_line(&i.title)))
        .chain(b.open.iter().filter(|i| i.stale).map(|i| {
            format!(
                "{} is stale (open since {})",
                i.exchange,
                crate::output::time(i.created)
            )
        }))
        .collect();
    if !blockers.is_empty() {
        let _ = writeln!(out, "\n## Blockers");
        for bl in blockers {
            let _ = writeln!(out, "- {bl}");
        }
    }
    let decisions = ledger::decisions_in_force(&b.entries);
    if !decisions.is_empty() {
        let _ = writeln!(
            out,
            "\n## Decisions (settled: do not reopen without saying why)"
        );
        for d in decisions {
            let _ = writeln!(out, "- {}", clean_line(&d.text));
        }
    }
    let _ = writeln!(
        out,
        "\nWhen you finish a step, write its reply file (the path after `Reply:` at the end of each request), starting with the frontmatter the request's `Format:` shows."
    );
    out
}
