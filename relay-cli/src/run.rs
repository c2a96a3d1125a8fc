//! The run record: `<stem>.run.json` beside the exchange, rewritten (atomically) while the peer
//! runs and once when it ends. `relay status`, `wait` and `cancel` read it; other agents can
//! poll it instead of reading logs. Plus the call log, `.relay/calls.jsonl`, one line per call.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use relay_core::{RelayDir, Status, Verify, exit};
use serde::{Deserialize, Serialize};

use crate::peer::{Mode, Usage};

/// How a call ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A valid reply: done with verify pass or skip.
    Ok,
    /// A valid reply: done, verify fail.
    VerifyFailed,
    /// A valid reply: status error.
    StatusError,
    /// The peer said its checks passed and relay's own run of them failed, or the other way
    /// round (`--verify-cmd`).
    VerifyMismatch,
    /// A valid reply: status error, state blocked (the peer needs an answer).
    Blocked,
    /// A valid reply: status error, state refused (out of the peer's scope).
    Refused,
    /// No reply file, and nothing printed to salvage.
    NoReply,
    /// A reply file that does not validate (or answers another request).
    InvalidReply,
    /// No reply file; relay wrote one from what the peer printed.
    Salvaged,
    /// The wall-clock limit passed; the peer was killed.
    Timeout,
    /// No output for `--idle-timeout`; the peer was killed.
    IdleTimeout,
    /// relay got Ctrl-C; the peer was killed.
    Interrupted,
    /// relay got SIGTERM/SIGHUP (e.g. `relay cancel`); the peer was killed.
    Terminated,
    /// The peer changed files outside `.relay/` that its mode forbids (read-only: any).
    OutOfScope,
}

impl Outcome {
    /// The peer answered with a valid reply, whatever it said (done, error, blocked, refused,
    /// verify fail, or a verify relay's checks contradict): its body is its answer.
    pub fn replied(self) -> bool {
        matches!(
            self,
            Outcome::Ok
                | Outcome::VerifyFailed
                | Outcome::StatusError
                | Outcome::Blocked
                | Outcome::Refused
                | Outcome::VerifyMismatch
        )
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => exit::OK,
            Outcome::VerifyFailed => exit::VERIFY_FAILED,
            Outcome::StatusError => exit::STATUS_ERROR,
            Outcome::Blocked => exit::BLOCKED,
            Outcome::VerifyMismatch => exit::VERIFY_MISMATCH,
            Outcome::Refused => exit::REFUSED,
            Outcome::NoReply | Outcome::InvalidReply | Outcome::Salvaged => exit::NO_REPLY,
            Outcome::Timeout | Outcome::IdleTimeout => exit::TIMEOUT,
            Outcome::Interrupted | Outcome::Terminated => exit::INTERRUPTED,
            Outcome::OutOfScope => exit::OUT_OF_SCOPE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::VerifyFailed => "verify-failed",
            Outcome::StatusError => "status-error",
            Outcome::Blocked => "blocked",
            Outcome::VerifyMismatch => "verify-mismatch",
            Outcome::Refused => "refused",
            Outcome::NoReply => "no-reply",
            Outcome::InvalidReply => "invalid-reply",
            Outcome::Salvaged => "salvaged",
            Outcome::Timeout => "timeout",
            Outcome::IdleTimeout => "idle-timeout",
            Outcome::Interrupted => "interrupted",
            Outcome::Terminated => "terminated",
            Outcome::OutOfScope => "out-of-scope",
        }
    }
}

/// One check relay ran itself (`--verify-cmd`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub cmd: String,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Killed at `--verify-timeout` (or by Ctrl-C).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
    pub duration_ms: u64,
    /// The last lines of its output (all checks' output is in `<stem>.verify.log`).
    pub tail: String,
}

/// Is the call still running? The state relay-core's `RunSummary` reads back (`stale`: left
/// `running` by a supervisor that is gone, whose peer cannot be proven to be relay's).
pub use relay_core::RunState as State;

/// Everything about one call. Paths are absolute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub exchange: String,
    pub id: String,
    pub session: Option<String>,
    pub from: String,
    pub peer: String,
    pub mode: Mode,
    pub model: Option<String>,
    pub effort: Option<String>,
    pub state: State,
    pub outcome: Option<Outcome>,
    /// relay's exit code for this call (set when finished).
    pub exit_code: Option<u8>,
    /// Why it ended, in words.
    pub reason: Option<String>,
    /// The relay process supervising the peer.
    pub supervisor_pid: u32,
    /// When it started (clock ticks after boot): with the pid, what proves it is still ours.
    #[serde(default)]
    pub supervisor_start: Option<u64>,
    /// The peer's pid (= its process group id).
    pub pid: Option<u32>,
    /// When the peer started: relay signals its group only while this still matches.
    #[serde(default)]
    pub peer_start: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended: Option<time::OffsetDateTime>,
    pub elapsed_ms: u64,
    pub timeout_s: u64,
    pub idle_timeout_s: Option<u64>,
    /// The peer's latest activity (last output line, summarized).
    pub activity: Option<String>,
    pub peer_exit_code: Option<i32>,
    pub peer_signal: Option<i32>,
    /// From the kill decision to the whole tree gone, when relay had to kill.
    pub kill_ms: Option<u64>,
    pub request: PathBuf,
    pub reply: PathBuf,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
    pub status: Option<Status>,
    pub verify: Option<Verify>,
    pub salvaged: bool,
    /// Problems with the reply (`path:line: field: message`).
    pub diagnostics: Vec<String>,
    /// The peer's own session id, for resuming the next turn.
    pub peer_session: Option<String>,
    /// The peer session this run resumed.
    pub resumed: Option<String>,
    /// Resuming failed and the turn ran again from the file history.
    pub resume_fallback: bool,
    pub peer_error: Option<String>,
    pub usage: Usage,
    /// Files outside `.relay/` the peer changed although its mode forbids it (read-only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_outside: Vec<String>,
    /// What the peer changed in the project (in a git work tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspace::Evidence>,
    /// Why there is no workspace evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_note: Option<String>,
    /// The checks relay ran itself after the peer (`--verify-cmd`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// `relay` when relay ran the checks; their verdict is `checked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<Verify>,
    /// The peer's final message, when relay could not save it as the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_message: Option<String>,
    /// What was asked: the background supervisor runs exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::engine::CallPlan>,
}

/// The request of the call the user named (`wait`, `status`, `cancel`): as
/// [`RelayDir::locate`] (a bare name means its newest exchange), except that a name shared by
/// two calls still running is ambiguous.
pub fn locate_call(relay: &RelayDir, reference: &str) -> anyhow::Result<PathBuf> {
    let path = relay.locate(reference)?;
    let running: Vec<PathBuf> = relay
        .named(reference)
        .into_iter()
        .filter(|p| RunRecord::load(p).is_ok_and(|r| r.live_state() == "running"))
        .collect();
    if running.len() > 1 {
        return Err(relay_core::Error::Ambiguous {
            reference: reference.to_owned(),
            candidates: running
                .iter()
                .filter_map(|p| Some(relay_core::stem_of(p.file_name()?.to_str()?).to_owned()))
                .collect(),
        }
        .into());
    }
    Ok(path)
}

/// Is the relay process a record names as supervisor still that process? (Same pid, same
/// start time, and a relay supervisor's command line: a reused pid does not count.)
pub fn supervisor_alive(pid: u32, start: Option<u64>) -> bool {
    crate::supervise::is_same_process(pid, start, crate::supervise::SUPERVISOR_ARGS)
}

/// What a call is now, for people: `running` (its supervisor still runs), `lost` (the record
/// says running but its supervisor is gone), `stale`, or how it ended (`ok`, `timeout`, ...).
pub fn live_state(
    state: State,
    outcome: Option<&str>,
    supervisor: Option<(u32, Option<u64>)>,
) -> &str {
    match (state, outcome) {
        (State::Running, _)
            if supervisor.is_some_and(|(pid, start)| supervisor_alive(pid, start)) =>
        {
            "running"
        }
        (State::Running, _) => "lost",
        (State::Stale, _) => "stale",
        (State::Finished, Some(o)) => o,
        (State::Finished, None) => "finished",
    }
}

/// [`live_state`] of a run record as `relay list` and `relay clean` read it.
pub fn summary_state(run: &relay_core::RunSummary) -> &str {
    live_state(
        run.state,
        run.outcome.as_deref(),
        run.supervisor_pid.map(|p| (p, run.supervisor_start)),
    )
}

impl RunRecord {
    /// [`live_state`] of this record.
    pub fn live_state(&self) -> &'static str {
        live_state(
            self.state,
            self.outcome.map(Outcome::as_str),
            Some((self.supervisor_pid, self.supervisor_start)),
        )
    }

    /// Is this record's supervisor still running (see [`supervisor_alive`])?
    pub fn supervisor_alive(&self) -> bool {
        supervisor_alive(self.supervisor_pid, self.supervisor_start)
    }
}

/// A run record as `status --json` and `show --json` print it: the record, then its live
/// state (see [`live_state`]) and, for `status`, the seconds so far.
#[derive(Serialize)]
pub struct LiveRecord<'a> {
    #[serde(flatten)]
    pub record: &'a RunRecord,
    pub live_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
}

impl<'a> LiveRecord<'a> {
    pub fn of(record: &'a RunRecord) -> Self {
        LiveRecord {
            record,
            live_state: record.live_state(),
            elapsed_s: None,
        }
    }
}

/// The run-record path of a request path: `<stem>.run.json`.
pub fn record_path(request: &Path) -> PathBuf {
    relay_core::beside(request, relay_core::BESIDE_RUN_RECORD)
}

impl RunRecord {
    /// Writes the record atomically (temp file + rename). On a full disk, where no new file
    /// can be made, it is rewritten in place instead: every record is padded with spaces to
    /// a whole 4 KiB block (JSON allows trailing whitespace), so a later version fits in the
    /// space the first one took, and the call still ends `finished`.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = record_path(&self.request);
        let text = self.to_padded_json()?;
        match relay_core::write_replace(&path, &text) {
            Ok(()) => Ok(()),
            Err(e) => self.save_in_place(&path).map_err(|_| e.into()),
        }
    }

    fn to_padded_json(&self) -> anyhow::Result<Vec<u8>> {
        const BLOCK: usize = 4096;
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        text.resize(text.len().div_ceil(BLOCK) * BLOCK, b' ');
        Ok(text)
    }

    /// Overwrites the existing record without allocating: the new text, shortened (a saved
    /// final message is cut) until it fits, padded to the file's length.
    fn save_in_place(&self, path: &Path) -> anyhow::Result<()> {
        let mut file = relay_core::untrusted::open_overwrite(path)?;
        let room = usize::try_from(file.metadata()?.len())?;
        let mut shorter = self.clone();
        let mut text = serde_json::to_vec_pretty(&shorter)?;
        while text.len() + 1 > room {
            let Some(m) = shorter.final_message.as_mut().filter(|m| !m.is_empty()) else {
                anyhow::bail!("the run record does not fit in its file");
            };
            let keep = m.len().saturating_sub(text.len() + 1 - room + 16);
            let mut at = keep;
            while !m.is_char_boundary(at) {
                at -= 1;
            }
            m.truncate(at);
            text = serde_json::to_vec_pretty(&shorter)?;
        }
        text.push(b'\n');
        text.resize(room, b' ');
        std::io::Write::write_all(&mut file, &text)?;
        Ok(())
    }

    /// The record of a call the user named (`wait`, `status`, `cancel`): an exchange that
    /// `relay call` never started is `not-found` (exit 4) with a hint, not an I/O error.
    pub fn load_started(request: &Path) -> anyhow::Result<RunRecord> {
        if !record_path(request).exists() {
            return Err(crate::error::ExpectedError::NoRunRecord {
                request: request.to_path_buf(),
            }
            .into());
        }
        RunRecord::load(request)
    }

    pub fn load(request: &Path) -> anyhow::Result<RunRecord> {
        let path = record_path(request);
        // Untrusted like everything under .relay/: no link followed, no FIFO, bounded.
        let text = relay_core::untrusted::read_bounded(&path, relay_core::MAX_RUN_RECORD_BYTES)
            .with_context(|| format!("reading {}", path.display()))?
            .with_context(|| {
                format!(
                    "{} is larger than {} bytes: not a run record relay wrote",
                    path.display(),
                    relay_core::MAX_RUN_RECORD_BYTES
                )
            })?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a run record", path.display()))
    }
}

/// Appends one line per finished call to `.relay/calls.jsonl` (one `write` of one line in
/// append mode, so concurrent calls do not interleave).
pub fn append_call_log(relay: &RelayDir, r: &RunRecord) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "time": r.ended.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "exchange": r.exchange,
        "from": r.from,
        "peer": r.peer,
        "mode": r.mode,
        "model": r.model,
        "outcome": r.outcome,
        "status": r.status,
        "verify": r.verify,
        "exit_code": r.exit_code,
        "elapsed_ms": r.elapsed_ms,
        "salvaged": r.salvaged,
        "peer_session": r.peer_session,
        "usage": r.usage,
    });
    let mut bytes = serde_json::to_vec(&line)?;
    bytes.push(b'\n');
    let path = relay.path().join(relay_core::CALL_LOG);
    let mut f = relay_core::untrusted::open_append(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(&bytes)
        .with_context(|| format!("appending to {}", path.display()))?;
    Ok(())
}

/// Every run record under `.relay/` (one-shots and session turns), oldest first.
pub fn all_records(relay: &RelayDir) -> Vec<RunRecord> {
    let mut out: Vec<RunRecord> = relay
        .files()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let stem = p.file_name()?.to_str()?.strip_suffix(".run.json")?;
            RunRecord::load(&p.with_file_name(format!("{stem}.req.md"))).ok()
        })
        .collect();
    out.sort_by(|a, b| {
        a.started
            .cmp(&b.started)
            .then_with(|| a.exchange.cmp(&b.exchange))
    });
    out
}
