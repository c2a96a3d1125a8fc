//! The session record as relay writes it (spec §13): an entry for every request, handoff and
//! reply relay writes, beside the notes, decisions and evidence agents add. Best effort: the
//! files are the truth and the record is their history, so a record that cannot be written
//! draws a warning and never fails the exchange it describes.

use std::path::{Path, PathBuf};

use relay_core::handoff::Handoff;
use relay_core::ledger::{self, EntryKind, EntryStatus, NewEntry};
use relay_core::{Created, NewRequest, NewResponse, RelayDir, Request, Response};
use time::OffsetDateTime;

/// Writes a request ([`relay_core::create_request`]) and records it.
pub fn create_request(
    relay: &RelayDir,
    new: &NewRequest,
    now: OffsetDateTime,
) -> relay_core::Result<Created> {
    let created = relay_core::create_request(relay, new, now)?;
    request(relay, &created.request, now);
    Ok(created)
}

/// Writes a reply ([`relay_core::write_response`]) and records it.
pub fn write_response(
    relay: &RelayDir,
    request: &Path,
    new: &NewResponse,
    force: bool,
    now: OffsetDateTime,
) -> relay_core::Result<(Response, PathBuf)> {
    let (response, path) = relay_core::write_response(relay, request, new, force, now)?;
    let exchange = match &response.session {
        Some(s) => format!("{s}/{}", response.re),
        None => response.re.clone(),
    };
    reply(relay, &response, &exchange);
    Ok((response, path))
}

/// What a request asks, in one line: a handoff's ask, else the task's first line.
pub fn title(req: &Request) -> String {
    let ask = (req.kind.as_deref() == Some(relay_core::HANDOFF))
        .then(|| Handoff::parse(&req.body).ok())
        .flatten()
        .map(|h| h.ask);
    first_line(ask.as_deref().unwrap_or(&req.body))
}

/// Records a request or, for a handoff, the move of ownership to its peer.
pub fn request(relay: &RelayDir, req: &Request, now: OffsetDateTime) {
    let handoff = req.kind.as_deref() == Some(relay_core::HANDOFF);
    append(
        relay,
        NewEntry {
            kind: if handoff {
                EntryKind::Handoff
            } else {
                EntryKind::Request
            },
            author: req.from.clone(),
            session: req.session.clone(),
            re: Some(req.reference()),
            text: title(req),
            to: Some(req.to.clone()),
            back: handoff.then(|| req.back.unwrap_or(true)),
            ..NewEntry::default()
        },
        now,
    );
}

/// Records a reply to `exchange` (`<session>/<turn>` or an id): how it came out, as an entry
/// status and an A2A task state. The session comes from the exchange, not the reply, which a
/// peer may have written without its optional `session` field.
pub fn reply(relay: &RelayDir, r: &Response, exchange: &str) {
    append(
        relay,
        NewEntry {
            kind: EntryKind::Reply,
            author: r.from.clone(),
            session: exchange.split_once('/').map(|(s, _)| s.to_owned()),
            re: Some(exchange.to_owned()),
            text: first_line(&r.body),
            to: Some(r.to.clone()),
            status: Some(EntryStatus::of_reply(r.status, r.verify, r.state)),
            a2a: Some(relay_core::a2a_state(r.status, r.state).to_owned()),
            ..NewEntry::default()
        },
        crate::input::now().unwrap_or_else(|_| OffsetDateTime::now_utc()),
    );
}

/// Appends an entry relay writes on its own; a failure is a warning. Agent names read from
/// files are tokens (`Codex`); the record keeps slugs, so they are lowercased, and an entry
/// whose author is no agent name at all is left out.
pub fn append(relay: &RelayDir, mut new: NewEntry, now: OffsetDateTime) {
    new.author = new.author.to_ascii_lowercase();
    new.to = new.to.map(|t| t.to_ascii_lowercase());
    if relay_core::fields::check_slug(&new.author).is_err() {
        return;
    }
    if new.text.trim().is_empty() {
        new.text = format!("({})", new.kind.as_str());
    }
    if let Err(e) = ledger::append(relay, &new, now) {
        eprintln!(
            "relay: warning: the session record was not updated: {}",
            crate::error::render(&e.into())
        );
    }
}

/// A session's record (or one-shot work's), with a warning on stderr for lines that did not
/// parse; its path for messages.
pub fn read(
    relay: &RelayDir,
    session: Option<&str>,
) -> anyhow::Result<(PathBuf, Vec<ledger::Entry>)> {
    crate::input::check_session(session)?;
    let path = ledger::ledger_path(relay, session);
    let (entries, bad) = ledger::read(&path)?;
    if bad > 0 {
        eprintln!(
            "relay: warning: {} skipped {bad} line(s) that are not record entries",
            path.display()
        );
    }
    Ok((path, entries))
}

/// The first non-empty line of a text, at most 200 characters: what a record line shows.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_owned(),
    }
}
