//! The session record (the ledger): an append-only JSON-lines record of what happened, one per
//! session (`.relay/<session>/ledger.jsonl`) and one for one-shot work (`.relay/ledger.jsonl`):
//! requests, handoffs and replies (written by relay as it writes them), notes, decisions and
//! evidence, final proposals and their sign-off, and Stop hook blocks. Any agent can re-read
//! it after a crash; a decision stays in force until a later one names it in `supersedes`.
//!
//! Many processes may append at once: each entry is one line written with one `write` under an
//! exclusive lock, after a line break if the file does not end with one (a torn last line from
//! a crashed writer is closed off, never joined). Readers skip lines that do not parse and say
//! how many. Secrets (API keys, tokens, private keys, `Authorization` values) are redacted
//! before anything is written.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::layout::RelayDir;

/// The ledger's file name.
pub const LEDGER: &str = "ledger.jsonl";

/// The longest entry text (after redaction): a note is a summary, evidence goes in files.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The most of a ledger relay reads.
pub const MAX_LEDGER_BYTES: u64 = 64 * 1024 * 1024;

/// What an entry is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// Anything worth keeping.
    #[default]
    Note,
    /// A decision: in force until a later decision supersedes it.
    Decision,
    /// What was checked and how it came out.
    Evidence,
    /// A request was written (`re` names it, `to` its peer).
    Request,
    /// A handoff was written: ownership moves to `to` (`back`: whether it returns).
    Handoff,
    /// A reply was written (`re` names the exchange; `status`, `a2a` how it came out).
    Reply,
    /// An agent proposes that the session is finished (`text` is the summary, with `evidence`
    /// and `risk`); a human signs it off.
    Final,
    /// A human signed off the final proposal (`forced` when it was approved from inside an
    /// agent).
    Signoff,
    /// The Stop hook kept an agent from stopping (`re`: the open request it named).
    HookBlock,
    /// A type this relay does not know (a later version's): kept out of every decision.
    #[serde(other)]
    Unknown,
}

impl EntryKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Note => "note",
            EntryKind::Decision => "decision",
            EntryKind::Evidence => "evidence",
            EntryKind::Request => "request",
            EntryKind::Handoff => "handoff",
            EntryKind::Reply => "reply",
            EntryKind::Final => "final",
            EntryKind::Signoff => "signoff",
            EntryKind::HookBlock => "hook-block",
            EntryKind::Unknown => "unknown",
        }
    }
}

/// An outcome an entry can report (ContextRelay's artifact states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    #[allow(missing_docs)]
    Passed,
    #[allow(missing_docs)]
    Failed,
    #[allow(missing_docs)]
    Blocked,
    #[allow(missing_docs)]
    Unknown,
    #[allow(missing_docs)]
    Skipped,
    #[allow(missing_docs)]
    TimedOut,
    /// The peer refused the task (out of scope).
    Refused,
}

impl EntryStatus {
    /// How a reply came out, as an entry status.
    pub fn of_reply(
        status: crate::Status,
        verify: crate::Verify,
        state: Option<crate::ErrorState>,
    ) -> EntryStatus {
        use crate::{ErrorState, Status, Verify};
        match (status, verify, state) {
            (Status::Error, _, Some(ErrorState::Blocked)) => EntryStatus::Blocked,
            (Status::Error, _, Some(ErrorState::Refused)) => EntryStatus::Refused,
            (Status::Error, _, None) | (Status::Done, Verify::Fail, _) => EntryStatus::Failed,
            (Status::Done, Verify::Pass, _) => EntryStatus::Passed,
            (Status::Done, Verify::Skip, _) => EntryStatus::Skipped,
        }
    }
}

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The ledger format (1).
    pub v: u32,
    /// `<UTC yyyymmdd-hhmmss>-<n>`: unique in its ledger, sortable.
    pub id: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// When, UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who wrote it (an agent, or `user`).
    pub author: String,
    /// The session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The exchange it is about (`<id>` or `<session>/<turn>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<String>,
    /// The text (secrets redacted).
    pub text: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EntryStatus>,
    /// Paths or commands that back it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Earlier decisions this one replaces (their ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<String>,
    /// A request or handoff: the agent it is addressed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A handoff: does the work go back to its sender when answered?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back: Option<bool>,
    /// A reply: its A2A task state (`completed`, `failed`, `input-required`, `rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<String>,
    /// A final proposal: the risks that remain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk: Vec<String>,
    /// A sign-off given from inside an agent, with `--force`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// What a new entry says (the id and time are given by [`append`]).
#[derive(Clone, Debug, Default)]
pub struct NewEntry {
    #[allow(missing_docs)]
    pub kind: EntryKind,
    #[allow(missing_docs)]
    pub author: String,
    #[allow(missing_docs)]
    pub session: Option<String>,
    #[allow(missing_docs)]
    pub re: Option<String>,
    #[allow(missing_docs)]
    pub text: String,
    #[allow(missing_docs)]
    pub status: Option<EntryStatus>,
    #[allow(missing_docs)]
    pub evidence: Vec<String>,
    #[allow(missing_docs)]
    pub supersedes: Vec<String>,
    #[allow(missing_docs)]
    pub to: Option<String>,
    #[allow(missing_docs)]
    pub back: Option<bool>,
    #[allow(missing_docs)]
    pub a2a: Option<String>,
    #[allow(missing_docs)]
    pub risk: Vec<String>,
    #[allow(missing_docs)]
    pub forced: bool,
}

/// The ledger of a session, or of one-shot work.
pub fn ledger_path(relay: &RelayDir, session: Option<&str>) -> PathBuf {
    match session {
        Some(s) => relay.session_dir(s).join(LEDGER),
        None => relay.path().join(LEDGER),
    }
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::InvalidInput { field, message }
}

/// Appends an entry (redacted, checked) and returns it as written.
pub fn append(relay: &RelayDir, new: &NewEntry, now: OffsetDateTime) -> Result<Entry> {
    crate::fields::check_slug(&new.author).map_err(|m| invalid("author", m))?;
    if let Some(s) = &new.session {
        crate::fields::check_slug(s).map_err(|m| invalid("session", m))?;
    }
    let text = redact(new.text.trim());
    if text.is_empty() {
        return Err(invalid("text", "the text is empty".into()));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            "text",
            format!(
                "{} bytes; at most {MAX_TEXT_BYTES}: keep the summary here and put the rest in a file named with --evidence",
                text.len()
            ),
        ));
    }
    relay.ensure()?;
    let path = ledger_path(relay, new.session.as_deref());
    if let Some(session) = &new.session {
        relay.subdir(session)?;
    }
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = crate::untrusted::open_append(&path).map_err(io)?;
    file.lock().map_err(io)?;
    let now = now
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    // Under the lock: the last entries tell the next id; a torn last line is closed off.
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .expect("a UTC date formats");
    let tail = read_tail(&mut file, &stamp).map_err(io)?;
    let n = tail.last_n.map_or(1, |m| m + 1);
    let entry = Entry {
        v: 1,
        id: format!("{stamp}-{n}"),
        kind: new.kind,
        time: now,
        author: new.author.clone(),
        session: new.session.clone(),
        re: new.re.clone(),
        text,
        status: new.status,
        evidence: new.evidence.iter().map(|e| redact(e)).collect(),
        supersedes: new.supersedes.clone(),
        to: new.to.clone(),
        back: new.back,
        a2a: new.a2a.clone(),
        risk: new.risk.iter().map(|r| redact(r)).collect(),
        forced: new.forced,
    };
    let mut line = String::new();
    if !tail.ends_complete {
        line.push('\n');
    }
    line.push_str(&serde_json::to_string(&entry).expect("an entry serializes"));
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(io)?;
    Ok(entry)
}

/// What the end of a ledger tells the next append.
struct Tail {
    /// The highest `n` of an id `<stamp>-<n>` in the last 64 KiB (entries are written with
    /// `"id"` second, so the id is read off the bytes without parsing a line).
    last_n: Option<u32>,
    /// Empty, or ends with a newline (else a torn last line is closed off first).
    ends_complete: bool,
}

/// Reads the last 64 KiB backwards in 8 KiB chunks through one small buffer, up to the first
/// chunk holding an id of this second: relay appends at
/// every request and reply, and a fresh 64 KiB buffer (plus a text copy of it) cost more in new
/// pages than the reading itself. Chunks overlap by the length of an id, so none is cut.
fn read_tail(file: &mut std::fs::File, stamp: &str) -> std::io::Result<Tail> {
    const WINDOW: u64 = 64 * 1024;
    const CHUNK: u64 = 8 * 1024;
    let len = file.metadata()?.len();
    let prefix = format!("\"id\":\"{stamp}-");
    // The prefix, the digits of a u32, the closing quote.
    let overlap = prefix.len() as u64 + 11;
    let floor = len.saturating_sub(WINDOW);
    let mut buf = vec![0u8; usize::try_from(CHUNK + overlap).unwrap_or(usize::MAX)];
    let mut tail = Tail {
        last_n: None,
        ends_complete: true,
    };
    let mut end = len;
    while end > floor {
        let start = end.saturating_sub(CHUNK).max(floor);
        let stop = (end + overlap).min(len);
        file.seek(SeekFrom::Start(start))?;
        let want = usize::try_from(stop - start)
            .unwrap_or(buf.len())
            .min(buf.len());
        let got = read_up_to(file, &mut buf[..want])?;
        let chunk = &buf[..got];
        if end == len {
            tail.ends_complete = chunk.last() == Some(&b'\n');
        }
        for at in memchr::memmem::find_iter(chunk, prefix.as_bytes()) {
            let digits = &chunk[at + prefix.len()..];
            let Some(close) = digits.iter().position(|b| *b == b'"') else {
                continue;
            };
            let n = std::str::from_utf8(&digits[..close])
                .ok()
                .and_then(|d| d.parse::<u32>().ok());
            tail.last_n = tail.last_n.max(n);
        }
        if tail.last_n.is_some() {
            // Appends are serialized and each takes the highest n so far plus one: the latest
            // id of this second is the highest, and older chunks cannot beat it.
            break;
        }
        end = start;
    }
    Ok(tail)
}

/// Reads until `buf` is full or the file ends; how many bytes it got.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Every entry of a ledger that parses, and how many lines did not (a torn or foreign line).
pub fn read(path: &Path) -> Result<(Vec<Entry>, usize)> {
    let bytes = match crate::untrusted::read_capped(path, MAX_LEDGER_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut bad = 0;
    let entries = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let e = serde_json::from_str::<Entry>(l).ok();
            bad += usize::from(e.is_none());
            e
        })
        .collect();
    Ok((entries, bad))
}

/// The decisions in force: every decision no later decision supersedes, oldest first.
pub fn decisions_in_force(entries: &[Entry]) -> Vec<&Entry> {
    let superseded: std::collections::HashSet<&str> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Decision)
        .flat_map(|e| e.supersedes.iter().map(String::as_str))
        .collect();
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::Decision && !superseded.contains(e.id.as_str()))
        .collect()
}

/// Who holds a session's work (spec §15.2), replayed from the record: the agent that wrote the
/// session's first request, until a handoff moves it to its peer; the reply to a handoff that
/// expects the work back returns it to the sender (unless the receiver handed it on first).
/// `answered` says whether a handoff has a reply on disk, for replies not written by relay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ownership {
    /// The owner, when the record names anyone.
    pub owner: Option<String>,
    /// The handoff that gave it to the owner, while it is open (`<session>/<turn>` or id).
    pub handoff: Option<String>,
}

/// Replays the record for its owner: see [`Ownership`].
pub fn ownership(entries: &[Entry], answered: impl Fn(&str) -> bool) -> Ownership {
    struct Pending<'a> {
        re: &'a str,
        from: &'a str,
        to: &'a str,
        back: bool,
    }
    let mut owner: Option<&str> = None;
    let mut holding: Option<&str> = None;
    let mut pending: Vec<Pending<'_>> = Vec::new();
    fn give_back<'a>(p: &Pending<'a>, owner: &mut Option<&'a str>, holding: &mut Option<&'a str>) {
        if p.back && *owner == Some(p.to) {
            *owner = Some(p.from);
        }
        if *holding == Some(p.re) {
            *holding = None;
        }
    }
    for e in entries {
        match (e.kind, e.re.as_deref(), e.to.as_deref()) {
            (EntryKind::Request, _, _) if owner.is_none() => owner = Some(&e.author),
            (EntryKind::Handoff, Some(re), Some(to)) => {
                owner = Some(to);
                holding = Some(re);
                pending.push(Pending {
                    re,
                    from: &e.author,
                    to,
                    back: e.back.unwrap_or(true),
                });
            }
            (EntryKind::Reply, Some(re), _) => {
                if let Some(i) = pending.iter().position(|p| p.re == re) {
                    let p = pending.remove(i);
                    give_back(&p, &mut owner, &mut holding);
                }
            }
            _ => {}
        }
    }
    // Replies written by hand, not through relay, are on disk only.
    for p in pending.iter().filter(|p| answered(p.re)) {
        give_back(p, &mut owner, &mut holding);
    }
    Ownership {
        owner: owner.map(str::to_owned),
        handoff: holding.map(str::to_owned),
    }
}

/// Whether a session is finished (spec §15.4): an agent proposes finality, a human signs it
/// off; a request or handoff written after either reopens the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Finality {
    /// No standing proposal.
    #[default]
    Open,
    /// An agent proposed that the work is finished; a human has not signed it off.
    Proposed {
        /// The `final` entry's id.
        id: String,
        /// Who proposed it.
        by: String,
        /// The summary.
        summary: String,
    },
    /// A human signed off the proposal.
    Approved {
        /// The `final` entry's id.
        id: String,
        /// Who signed it off.
        by: String,
        /// Signed off from inside an agent, with `--force`.
        forced: bool,
    },
}

impl Finality {
    /// `open`, `proposed`, `approved`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Finality::Open => "open",
            Finality::Proposed { .. } => "proposed",
            Finality::Approved { .. } => "approved",
        }
    }
}

/// Replays the record for its finality: see [`Finality`].
pub fn finality(entries: &[Entry]) -> Finality {
    let mut state = Finality::Open;
    for e in entries {
        state = match (e.kind, state) {
            (EntryKind::Final, _) => Finality::Proposed {
                id: e.id.clone(),
                by: e.author.clone(),
                summary: e.text.clone(),
            },
            (EntryKind::Signoff, Finality::Proposed { id, .. }) => Finality::Approved {
                id,
                by: e.author.clone(),
                forced: e.forced,
            },
            (EntryKind::Request | EntryKind::Handoff, _) => Finality::Open,
            (_, s) => s,
        };
    }
    state
}

/// Replaces secrets with `[REDACTED]`: private key blocks, `Authorization:` values, and
/// tokens with a known shape (OpenAI/Anthropic `sk-`, GitHub `ghp_`/`gho_`/`ghs_`/`ghu_`/
/// `github_pat_`, AWS `AKIA`/`ASIA`, Google `AIza`, Slack `xox?-`, npm `npm_`, JWTs), and the
/// value of `KEY=`/`TOKEN=`/`SECRET=`/`PASSWORD=` style assignments.
pub fn redact(text: &str) -> String {
    use std::sync::OnceLock;
    // Most texts hold nothing like a secret: a scan for the words and prefixes every rule
    // needs spares compiling the rules (a millisecond, at every request relay records).
    const HINTS: [&str; 14] = [
        "private key",
        "authorization",
        "sk-",
        "gh",
        "github_pat_",
        "akia",
        "asia",
        "aiza",
        "xox",
        "npm_",
        "eyj",
        "key",
        "token",
        "secret",
    ];
    let lower = text.to_ascii_lowercase();
    if !HINTS.iter().any(|h| lower.contains(h)) && !lower.contains("passw") {
        return text.to_owned();
    }
    static RULES: OnceLock<Vec<regex::Regex>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            r"(?i)(authorization\s*[:=]\s*)(bearer\s+|basic\s+|token\s+)?[^\s,;]+",
            r"\bsk-(ant-|proj-)?[A-Za-z0-9_-]{16,}",
            r"\b(ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20,}",
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
            r"\bAIza[0-9A-Za-z_-]{35}",
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
            r"\bnpm_[A-Za-z0-9]{36}",
            r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
            r"(?i)\b([A-Z0-9_]*(API_KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD)[A-Z0-9_]*\s*[=:]\s*)[^\s,;]+",
        ]
        .iter()
        .map(|r| regex::Regex::new(r).expect("a valid pattern"))
        .collect()
    });
    let mut out = text.to_owned();
    for (i, re) in rules.iter().enumerate() {
        out = match i {
            // Keep the name, hide the value.
            1 | 10 => re.replace_all(&out, "${1}[REDACTED]").into_owned(),
            _ => re.replace_all(&out, "[REDACTED]").into_owned(),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuv here",
                "key [REDACTED] here",
            ),
            (
                "Authorization: Bearer abc.def.ghi",
                "Authorization: [REDACTED]",
            ),
            (
                "export OPENAI_API_KEY=sk-123 and go",
                "export OPENAI_API_KEY=[REDACTED] and go",
            ),
            (
                "token ghp_0123456789abcdefghijABCDEFGHIJ",
                "token [REDACTED]",
            ),
            ("aws AKIAABCDEFGHIJKLMNOP done", "aws [REDACTED] done"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\nafter",
                "[REDACTED]\nafter",
            ),
            ("plain text stays", "plain text stays"),
            ("db_password: hunter2", "db_password: [REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    /// The next id comes from the highest `n` of this second in the last 64 KiB, wherever the
    /// 8 KiB chunks it is read in cut the lines; other seconds and older bytes do not count.
    #[test]
    fn the_tail_gives_the_highest_id_of_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let line = |stamp: &str, n: u32| {
            format!(
                "{{\"v\":1,\"id\":\"{stamp}-{n}\",\"kind\":\"note\",\"text\":\"{}\"}}\n",
                "x".repeat(n as usize % 97)
            )
        };
        let tail_of = |text: &str, stamp: &str| {
            std::fs::write(&path, text).unwrap();
            let mut f = std::fs::File::open(&path).unwrap();
            let t = read_tail(&mut f, stamp).unwrap();
            (t.last_n, t.ends_complete)
        };
        assert_eq!(tail_of("", "20260101-000000"), (None, true));
        // 400 lines of one second (~50 KiB): every chunk boundary falls somewhere in a line.
        let mut text: String = (1..=400).map(|n| line("20260101-000000", n)).collect();
        assert!(text.len() > 40 * 1024 && text.len() < 64 * 1024);
        assert_eq!(tail_of(&text, "20260101-000000"), (Some(400), true));
        assert_eq!(tail_of(&text, "20260101-000001"), (None, true));
        // The latest id of the second decides (serialized appends only ever count up): the
        // read stops at the first chunk that has one. A later second does not mix in.
        let mut early = line("20260101-000000", 9000);
        early.push_str(&text);
        early.push_str(&line("20260101-000001", 3));
        assert_eq!(tail_of(&early, "20260101-000000"), (Some(400), true));
        assert_eq!(tail_of(&early, "20260101-000001"), (Some(3), true));
        // Only in the oldest chunk of the window: still found.
        let mut first_only = line("20260101-000002", 5);
        first_only.push_str(&text);
        assert_eq!(tail_of(&first_only, "20260101-000002"), (Some(5), true));
        // A torn last line.
        text.push_str("{\"v\":1,\"id\":\"2026");
        assert_eq!(tail_of(&text, "20260101-000000"), (Some(400), false));
        // Beyond the last 64 KiB: not read.
        let mut old = line("20260101-000000", 7777);
        old.push_str(&"y".repeat(70 * 1024));
        old.push('\n');
        assert_eq!(tail_of(&old, "20260101-000000"), (None, true));
    }

    fn entry(kind: EntryKind, author: &str, re: Option<&str>, to: Option<&str>) -> Entry {
        Entry {
            v: 1,
            id: String::new(),
            kind,
            time: OffsetDateTime::UNIX_EPOCH,
            author: author.into(),
            session: None,
            re: re.map(str::to_owned),
            text: "t".into(),
            status: None,
            evidence: vec![],
            supersedes: vec![],
            to: to.map(str::to_owned),
            back: None,
            a2a: None,
            risk: vec![],
            forced: false,
        }
    }

    #[test]
    fn ownership_follows_handoffs_and_their_replies() {
        use EntryKind::{Handoff, Reply, Request};
        let start = entry(Request, "claude", Some("s/001"), Some("codex"));
        let to_codex = entry(Handoff, "claude", Some("s/002"), Some("codex"));
        let back = entry(Reply, "codex", Some("s/002"), Some("claude"));
        let owner = |es: &[Entry], answered: &[&str]| {
            let o = ownership(es, |re| answered.contains(&re));
            (o.owner.unwrap_or_default(), o.handoff)
        };
        assert_eq!(
            owner(std::slice::from_ref(&start), &[]),
            ("claude".into(), None)
        );
        let handed = [start.clone(), to_codex.clone()];
        assert_eq!(owner(&handed, &[]), ("codex".into(), Some("s/002".into())));
        // Back by a reply relay wrote, or by one only on disk.
        assert_eq!(
            owner(&[start.clone(), to_codex.clone(), back.clone()], &[]).0,
            "claude"
        );
        assert_eq!(owner(&handed, &["s/002"]).0, "claude");
        // Handed on before replying: the reply does not take it back from gemini.
        let onward = entry(Handoff, "codex", Some("s/003"), Some("gemini"));
        assert_eq!(
            owner(&[start.clone(), to_codex.clone(), onward, back], &[]).0,
            "gemini"
        );
        // back: no keeps it with the receiver.
        let mut keep = to_codex;
        keep.back = Some(false);
        assert_eq!(owner(&[start, keep], &["s/002"]).0, "codex");
    }

    #[test]
    fn finality_is_proposed_approved_and_reopened() {
        let mut fin = entry(EntryKind::Final, "codex", None, None);
        fin.id = "f1".into();
        let sign = entry(EntryKind::Signoff, "user", None, None);
        let more = entry(EntryKind::Request, "claude", Some("x"), Some("codex"));
        assert_eq!(finality(&[fin.clone()]).as_str(), "proposed");
        assert_eq!(finality(&[fin.clone(), sign.clone()]).as_str(), "approved");
        assert_eq!(finality(std::slice::from_ref(&sign)).as_str(), "open");
        assert_eq!(finality(&[fin, sign, more]).as_str(), "open");
    }

    #[test]
    fn in_force_means_not_superseded() {
        let e = |id: &str, kind, sup: &[&str]| Entry {
            v: 1,
            id: id.into(),
            kind,
            time: OffsetDateTime::UNIX_EPOCH,
            author: "a".into(),
            session: None,
            re: None,
            text: id.into(),
            status: None,
            evidence: vec![],
            supersedes: sup.iter().map(|s| (*s).to_owned()).collect(),
            to: None,
            back: None,
            a2a: None,
            risk: vec![],
            forced: false,
        };
        let all = [
            e("1", EntryKind::Decision, &[]),
            e("2", EntryKind::Note, &[]),
            e("3", EntryKind::Decision, &["1"]),
            e("4", EntryKind::Decision, &[]),
        ];
        let ids: Vec<&str> = decisions_in_force(&all)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(ids, ["3", "4"]);
    }
}
