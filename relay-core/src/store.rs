//! Writing and finding exchanges: exclusive request creation, session turns numbered under a
//! lock, replies that never silently overwrite, atomic writes, and the scan behind `relay list`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::{Error, InvalidFile, IoResultExt, Result};
use crate::fields::{check_slug, check_token, is_slug, is_turn_stem};
use crate::layout::{BESIDE_RUN_RECORD, RUN_RECORD_SUFFIX, RelayDir, beside, reply_path};

use crate::message::{
    self, Depth, FileKind, Footer, MAX_FILE_BYTES, Message, Request, Response, Status, VERSION,
    Verify, check_body,
};

mod list_cache;

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename), failing
/// with [`Error::AlreadyExists`] if `path` exists: a reader sees no file or the whole file, and
/// no request or reply is ever overwritten by accident.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_in(path, bytes)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source: e.error,
            }
        }
    })?;
    Ok(())
}

/// Writes `bytes` to `path` atomically, replacing any existing file (state files, `--force`).
pub fn write_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_in(path, bytes)?;
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn temp_in(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // Dot-prefixed so a crash leaves nothing `relay list` would mistake for an exchange.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // tempfile creates 0600; protocol files are ordinary project files that peers (maybe
    // another user, or a sandbox) must read.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).at(dir)?;
    // No fsync: the rename makes the file appear whole or not at all to every reader, which is
    // the guarantee exchanges need; power-loss durability of a scratch exchange is not worth
    // the 0.4 ms per write it costs (measured, see bench/).
    tmp.write_all(bytes).at(tmp.path())?;
    Ok(tmp)
}

/// Where a new request goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// A one-shot exchange; the id is `<UTC yyyymmdd-hhmmss>-<name>`.
    Name(String),
    /// The next turn of a session.
    Session(String),
}

/// What the caller wants to ask.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// The calling agent (a slug).
    pub from: String,
    /// The peer (a slug).
    pub to: String,
    /// One-shot name or session.
    pub target: Target,
    /// Optional exchange kind (a slug: `task`, `review`, `question`, ...).
    pub kind: Option<String>,
    /// Optional reply format (`findings`, `deliberation`: see [`crate::review`]).
    pub format: Option<String>,
    /// Optional reasoning-effort hint (a slug).
    pub effort: Option<String>,
    /// A handoff: whether the sender expects the work back (`None`: not said, which means yes).
    pub back: Option<bool>,
    /// The task.
    pub body: String,
    /// The peer will run read-only: ask for the reply as its final message (see [`Footer`]).
    pub final_message: bool,
    /// A file written beside the request (a review's patch), named at the end of the body.
    pub attachment: Option<Attachment>,
}

/// A file that goes with a request: `<stem>.<suffix>` beside it, written before the request
/// (so a peer never sees a request whose material is missing) and named at the end of its body
/// as `<label>: <absolute path>`.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The file name suffix after the stem (e.g. [`crate::BESIDE_PATCH`]).
    pub suffix: &'static str,
    /// What it is, for the body line (e.g. `The patch to review`).
    pub label: String,
    /// Its content.
    pub text: String,
}

/// A request relay wrote.
#[derive(Clone, Debug)]
pub struct Created {
    /// The request as written.
    pub request: Request,
    /// Its file.
    pub path: PathBuf,
    /// Where the reply must be written.
    pub reply: PathBuf,
}

/// `now` as relay stamps files: UTC, whole seconds.
fn stamp(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

fn invalid_input(field: &'static str) -> impl FnOnce(String) -> Error {
    move |message| Error::InvalidInput { field, message }
}

/// Writes a new request. Nothing is overwritten: a one-shot id taken in the same second gets a
/// `-2`, `-3`, ... suffix; a session turn is max+1 under the session's lock.
pub fn create_request(relay: &RelayDir, new: &NewRequest, now: OffsetDateTime) -> Result<Created> {
    check_slug(&new.from).map_err(invalid_input("from"))?;
    check_slug(&new.to).map_err(invalid_input("to"))?;
    if let Some(kind) = &new.kind {
        check_slug(kind).map_err(invalid_input("kind"))?;
        if !crate::message::KINDS.contains(&kind.as_str()) {
            return Err(invalid_input("kind")(format!(
                "`{kind}` is not a kind (known: {})",
                crate::message::KINDS.join(", ")
            )));
        }
    }
    if let Some(format) = &new.format
        && !crate::review::FORMATS.contains(&format.as_str())
    {
        return Err(invalid_input("format")(format!(
            "`{format}` is not a reply format (known: {})",
            crate::review::FORMATS.join(", ")
        )));
    }
    if let Some(effort) = &new.effort {
        check_slug(effort).map_err(invalid_input("effort"))?;
    }
    check_body(&new.body).map_err(invalid_input("body"))?;
    let handoff = new.kind.as_deref() == Some(crate::message::HANDOFF);
    if handoff && let Err(e) = crate::handoff::Handoff::parse(&new.body) {
        return Err(invalid_input("body")(format!(
            "line {}: {}",
            e.line, e.message
        )));
    }
    if new.back.is_some() && !handoff {
        return Err(invalid_input("back")(
            "only a handoff says whether the work goes back".into(),
        ));
    }
    let now = stamp(now);
    let mut request = Request {
        version: VERSION,
        id: String::new(),
        from: new.from.clone(),
        to: new.to.clone(),
        session: None,
        kind: new.kind.clone(),
        format: new.format.clone(),
        effort: new.effort.clone(),
        back: new.back,
        created: Some(now),
        body: new.body.clone(),
        footer: None,
    };
    match &new.target {
        Target::Name(name) => check_slug(name).map_err(invalid_input("name"))?,
        Target::Session(session) => check_slug(session).map_err(invalid_input("session"))?,
    }
    // Only now, with every input checked, does anything touch the disk.
    relay.ensure()?;
    match &new.target {
        Target::Name(name) => create_one_shot(relay, request, name, now, new),
        Target::Session(session) => {
            request.session = Some(session.clone());
            create_turn(relay, request, session, new)
        }
    }
}

fn create_one_shot(
    relay: &RelayDir,
    mut request: Request,
    name: &str,
    now: OffsetDateTime,
    new: &NewRequest,
) -> Result<Created> {
    let stamp = now
        .format(format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .expect("a UTC date formats");
    for n in 1..=10_000u32 {
        let id = if n == 1 {
            format!("{stamp}-{name}")
        } else {
            format!("{stamp}-{name}-{n}")
        };
        if let Some(created) = claim(relay.path(), &mut request, id, &[], new)? {
            return Ok(created);
        }
    }
    Err(Error::AlreadyExists {
        path: relay.path().join(format!("{stamp}-{name}.req.md")),
    })
}

fn create_turn(
    relay: &RelayDir,
    mut request: Request,
    session: &str,
    new: &NewRequest,
) -> Result<Created> {
    let dir = relay.session_dir(session);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Io {
                path: dir,
                source: e,
            });
        }
    }
    // A session directory that is a symlink out of .relay/ is refused, not followed.
    let dir = relay.contain(&dir)?;
    let lock_path = dir.join(".lock");
    let lock = crate::untrusted::open_append(&lock_path).at(&lock_path)?;
    lock.lock().at(&lock_path)?;
    let turns = session_turns(&dir)?;
    let next = turns.last().map_or(1, |t| t.number + 1);
    // Keep the width the session already uses (v4 wrote `01`), at least 3 for new sessions, so
    // `ls` order matches turn order up to 999 turns; the footer's explicit list is normative.
    let width = turns.iter().map(|t| t.stem.len()).max().unwrap_or(3);
    let mut context = Vec::new();
    for t in &turns {
        for (present, kind) in [
            (t.request, FileKind::Request),
            (t.response, FileKind::Response),
        ] {
            if present {
                context.push(
                    dir.join(format!("{}{}", t.stem, kind.suffix()))
                        .display()
                        .to_string(),
                );
            }
        }
    }
    for number in next..next + 1000 {
        let stem = format!("{number:0width$}");
        if let Some(created) = claim(&dir, &mut request, stem, &context, new)? {
            return Ok(created);
        }
    }
    Err(Error::AlreadyExists { path: dir })
    // The lock is released when `lock` drops.
}

/// Writes `request` as `<dir>/<id>.req.md` unless the id is taken (by a request, or by a stale
/// reply that would be read as the answer to this one): the one place ids are claimed.
/// `Ok(None)`: taken, try the next id.
fn claim(
    dir: &Path,
    request: &mut Request,
    id: String,
    context: &[String],
    new: &NewRequest,
) -> Result<Option<Created>> {
    let path = dir.join(format!("{id}.req.md"));
    let reply = reply_path(&path);
    // A taken id costs two stats, not a rendered request and a temporary file created and
    // removed: a name asked for many times in one second tries every suffix before its own.
    // `write_new` below still refuses an id taken in between.
    if reply.exists() || fs::symlink_metadata(&path).is_ok() {
        return Ok(None);
    }
    let attached = match &new.attachment {
        Some(a) => {
            let at = crate::layout::beside(&path, a.suffix);
            match write_new(&at, a.text.as_bytes()) {
                Ok(()) => {}
                Err(Error::AlreadyExists { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
            request.body = format!("{}\n\n{}: {}\n", new.body.trim_end(), a.label, at.display());
            Some(at)
        }
        None => None,
    };
    request.id = id;
    request.footer = Some(Footer {
        reply: reply.display().to_string(),
        context: context.to_vec(),
        final_message: new.final_message,
    });
    match write_new(&path, request.render().as_bytes()) {
        Ok(()) => Ok(Some(Created {
            request: request.clone(),
            path,
            reply,
        })),
        Err(e) => {
            // The id is taken after all (or the write failed): the attachment written for it
            // is this call's own, so it goes too.
            if let Some(at) = attached {
                let _ = fs::remove_file(at);
            }
            match e {
                Error::AlreadyExists { .. } => Ok(None),
                e => Err(e),
            }
        }
    }
}

/// One turn of a session directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// The turn number.
    pub number: u64,
    /// The file stem as written (`01`, `003`).
    pub stem: String,
    /// `<stem>.req.md` exists.
    pub request: bool,
    /// `<stem>.res.md` exists.
    pub response: bool,
}

/// The turns in a session directory, in numeric order (an empty list if it does not exist).
pub fn session_turns(dir: &Path) -> Result<Vec<Turn>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut turns: Vec<Turn> = Vec::new();
    for entry in rd {
        let entry = entry.at(dir)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(kind) = FileKind::of_path(Path::new(&name)) else {
            continue;
        };
        let stem = &name[..name.len() - kind.suffix().len()];
        if !is_turn_stem(stem) {
            continue;
        }
        let number: u64 = stem.parse().expect("digits");
        let turn = match turns.iter_mut().find(|t| t.stem == stem) {
            Some(t) => t,
            None => {
                turns.push(Turn {
                    number,
                    stem: stem.to_owned(),
                    request: false,
                    response: false,
                });
                turns.last_mut().expect("just pushed")
            }
        };
        match kind {
            FileKind::Request => turn.request = true,
            FileKind::Response => turn.response = true,
        }
    }
    turns.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.stem.cmp(&b.stem)));
    Ok(turns)
}

/// A reply to write.
#[derive(Clone, Debug)]
pub struct NewResponse {
    /// The request id the caller says this answers; checked against the request if given.
    pub re: Option<String>,
    /// The responder; must be the request's `to` if given (defaults to it).
    pub from: Option<String>,
    /// The original caller; must be the request's `from` if given (defaults to it).
    pub to: Option<String>,
    /// Did the task get done?
    pub status: Status,
    /// Did its checks pass?
    pub verify: Verify,
    /// An error reply's state: blocked (needs an answer) or refused; only with `Status::Error`.
    pub state: Option<crate::message::ErrorState>,
    /// The reply body.
    pub body: String,
    /// Set when relay writes the reply from what the peer printed (a slug naming where from,
    /// `final-message`); `None` for a peer's own reply.
    pub salvaged: Option<String>,
}

/// Reads a request file that relay is about to act on; it must exist and its frontmatter must
/// be valid (a reply needs its id and both agents).
pub fn read_request(path: &Path) -> Result<Request> {
    let text = read_text(path, FileKind::Request)?;
    let parsed = message::parse(path, &text);
    match parsed.message {
        Some(Message::Request(r))
            if !parsed.diagnostics.iter().any(|d| {
                d.severity == crate::Severity::Error && d.field != "footer" && d.field != "body"
            }) =>
        {
            Ok(r)
        }
        _ => Err(Error::Invalid(InvalidFile {
            diagnostics: parsed.diagnostics,
        })),
    }
}

/// Reads a whole protocol file as text, with the size limit and a UTF-8 check that name the
/// line of the first bad byte.
pub fn read_text(path: &Path, what: FileKind) -> Result<String> {
    let bytes = match crate::untrusted::read_capped(path, MAX_FILE_BYTES as u64 + 1) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = match what {
                FileKind::Request => "request",
                FileKind::Response => "reply",
            };
            return Err(Error::NotFound {
                what,
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    decode(path, bytes).map_err(|d| {
        Error::Invalid(InvalidFile {
            diagnostics: vec![d],
        })
    })
}

/// Bytes to text, or the diagnostic saying why not.
pub(crate) fn decode(
    path: &Path,
    bytes: Vec<u8>,
) -> std::result::Result<String, crate::Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(crate::Diagnostic::error(
            path,
            1,
            "file",
            format!("is larger than the limit of {MAX_FILE_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        crate::Diagnostic::error(
            path,
            line,
            "file",
            format!("is not valid UTF-8 (byte {at})"),
        )
    })
}

/// Writes the reply to the request at `request_path` (which must be inside `.relay/`).
/// Refuses when the request is missing, the id or direction does not match, or a reply exists
/// (unless `force`).
pub fn write_response(
    relay: &RelayDir,
    request_path: &Path,
    new: &NewResponse,
    force: bool,
    now: OffsetDateTime,
) -> Result<(Response, PathBuf)> {
    let request_path = relay.contain(request_path)?;
    let request = read_request(&request_path)?;
    let mismatch = |message: String| Error::Mismatch {
        path: request_path.clone(),
        message,
    };
    if let Some(re) = &new.re {
        check_token(re).map_err(invalid_input("re"))?;
        if *re != request.id {
            return Err(mismatch(format!("its id is `{}`, not `{re}`", request.id)));
        }
    }
    for (field, given, want) in [
        ("from", &new.from, &request.to),
        ("to", &new.to, &request.from),
    ] {
        if let Some(given) = given {
            check_slug(given).map_err(invalid_input(field))?;
            if given != want {
                return Err(mismatch(format!(
                    "the request goes from `{}` to `{}`, so the reply's {field} must be `{want}`, not `{given}`",
                    request.from, request.to
                )));
            }
        }
    }
    check_body(&new.body).map_err(invalid_input("body"))?;
    if let (Some(state), Status::Done) = (new.state, new.status) {
        return Err(invalid_input("state")(format!(
            "`{}` goes with status error (the task was not carried out), not done",
            state.as_str()
        )));
    }
    if let Some(salvaged) = &new.salvaged {
        check_slug(salvaged).map_err(invalid_input("salvaged"))?;
    }
    let session = request.session.clone().or_else(|| {
        let parent = request_path.parent()?;
        (parent != relay.path())
            .then(|| parent.file_name()?.to_str().map(str::to_owned))
            .flatten()
            .filter(|s| is_slug(s))
    });
    let response = Response {
        version: VERSION,
        re: request.id.clone(),
        from: request.to.clone(),
        to: request.from.clone(),
        status: new.status,
        verify: new.verify,
        state: new.state,
        session,
        salvaged: new.salvaged.clone(),
        created: Some(stamp(now)),
        body: new.body.clone(),
    };
    let path = reply_path(&request_path);
    let text = response.render();
    if force {
        write_replace(&path, text.as_bytes())?;
    } else {
        write_new(&path, text.as_bytes())?;
    }
    Ok((response, path))
}

/// What `relay list` shows of a reply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ReplyState {
    /// No reply file yet.
    Pending,
    /// A valid reply.
    Answered {
        /// Its status.
        status: Status,
        /// Its verify.
        verify: Verify,
        /// relay wrote it from what the peer printed (`salvaged:` in the reply).
        salvaged: bool,
    },
    /// A reply file that does not parse.
    Invalid {
        /// The first problem.
        problem: String,
    },
}

/// One exchange, as `relay list` sees it (frontmatter only). Kept small: a listing holds
/// 100,000 of these at once, so texts many rows share (agents, kinds, the session) are shared,
/// and the id is kept only where it is not the file's stem.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request id, when it is not the file stem.
    id: Option<Box<str>>,
    /// The session, for a turn.
    pub session: Option<Arc<str>>,
    /// The file listed (`dir/name`): the request, or a reply whose request is gone.
    dir: Arc<Path>,
    name: Box<str>,
    has_request: bool,
    /// The calling agent.
    pub from: Option<Arc<str>>,
    /// The peer.
    pub to: Option<Arc<str>>,
    /// The request's kind (`None`: `task`).
    pub kind: Option<Arc<str>>,
    /// When the request was written (`created`, else the file's mtime).
    pub created: Option<OffsetDateTime>,
    /// The reply's state.
    pub reply_state: ReplyState,
    /// The request's first problem, if it does not parse.
    pub request_problem: Option<Box<str>>,
    /// The call that ran this exchange, from its run record (`None`: never run by `relay call`).
    pub run: Option<Box<RunSummary>>,
    sort_turn: u64,
}

impl Exchange {
    /// The request id (the file stem, if the request is missing or unreadable).
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_else(|| self.stem())
    }

    /// `id` for one-shots, `session/turn` for session turns.
    pub fn reference(&self) -> String {
        match &self.session {
            Some(s) => format!("{s}/{}", self.stem()),
            None => self.stem().to_owned(),
        }
    }

    fn stem(&self) -> &str {
        crate::layout::stem_of(&self.name)
    }

    /// The request file (`None` for a reply whose request is gone).
    pub fn request(&self) -> Option<PathBuf> {
        self.has_request.then(|| self.dir.join(&*self.name))
    }

    /// The reply file (it may not exist yet).
    pub fn reply(&self) -> PathBuf {
        self.dir
            .join(format!("{}{}", self.stem(), FileKind::Response.suffix()))
    }

    /// The request's kind, `task` when unset.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("task")
    }
}

/// Shares the texts many exchanges repeat (agent names, kinds): a listing of 100,000 holds a
/// handful of each, not 100,000 copies.
#[derive(Default)]
struct Names(Vec<Arc<str>>);

impl Names {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.iter().find(|a| ***a == *s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        // A directory of junk must not make every lookup slow: past a few dozen, no sharing.
        if self.0.len() < 64 {
            self.0.push(Arc::clone(&a));
        }
        a
    }
}

/// What a listing needs of a call's run record, `<stem>.run.json` beside the request (written
/// by `relay call`; spec section 1.3). Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// As the record says (a crashed supervisor leaves `running`).
    pub state: RunState,
    /// How the call ended (`ok`, `timeout`, `no-reply`, ...), once finished.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The relay process supervising the call.
    #[serde(default)]
    pub supervisor_pid: Option<u32>,
    /// When that process started (with the pid, its identity: pids are reused).
    #[serde(default)]
    pub supervisor_start: Option<u64>,
}

/// A call's state in its run record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// The supervisor has not finished the record.
    Running,
    /// The call is over.
    Finished,
    /// Its supervisor is gone and its peer could not be proven to be relay's.
    Stale,
}

/// The largest run record read; past it the record is ignored (a run record is ~2 KB).
pub const MAX_RUN_RECORD_BYTES: u64 = 256 * 1024;

/// The run record beside `request`, if there is a readable one.
pub fn read_run_summary(request: &Path) -> Option<RunSummary> {
    let path = beside(request, BESIDE_RUN_RECORD);
    let buf = crate::untrusted::read_bounded(&path, MAX_RUN_RECORD_BYTES).ok()??;
    serde_json::from_slice(&buf).ok()
}

impl Exchange {
    /// Has a reply file been written?
    pub fn answered(&self) -> bool {
        !matches!(self.reply_state, ReplyState::Pending)
    }
}

/// What the directory listings of `.relay/` say, per directory (one-shot work, then each
/// session): requests with no reply and no run record (open: nobody supervises them), requests
/// with a run record but no reply (a call, maybe running), and whether a record is there. Reads
/// no file: listings only, so it stays cheap with tens of thousands of exchanges.
#[derive(Clone, Debug, Default)]
pub struct DirSurvey {
    /// The session, or `None` for one-shot work in `.relay/` itself.
    pub session: Option<String>,
    /// Requests with neither a reply nor a run record.
    pub open: Vec<PathBuf>,
    /// Requests with a run record and no reply.
    pub called: Vec<PathBuf>,
    /// The directory holds a session record (`ledger.jsonl`).
    pub has_record: bool,
    /// The directory's modification time, read just before it was listed: while it is the
    /// same, the directory holds the same names (a cache may stand in for the listing).
    pub mtime: Option<std::time::SystemTime>,
}

/// Surveys `.relay/` and its session directories (see [`DirSurvey`]).
pub fn survey(relay: &RelayDir) -> Result<Vec<DirSurvey>> {
    fn names(dir: &Path) -> Result<Vec<(String, bool)>> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(dir),
        };
        Ok(rd
            .filter_map(|e| {
                let e = e.ok()?;
                // The entry's own type: a link to a directory is not a session.
                let is_dir = e.file_type().ok()?.is_dir();
                Some((e.file_name().into_string().ok()?, is_dir))
            })
            .collect())
    }
    fn pick(
        dir: &Path,
        session: Option<&str>,
        mtime: Option<std::time::SystemTime>,
        entries: &[(String, bool)],
    ) -> DirSurvey {
        let all: std::collections::HashSet<&str> =
            entries.iter().map(|(n, _)| n.as_str()).collect();
        let mut out = DirSurvey {
            session: session.map(str::to_owned),
            has_record: all.contains(crate::ledger::LEDGER),
            mtime,
            ..DirSurvey::default()
        };
        for (name, is_dir) in entries {
            let Some(stem) = name.strip_suffix(FileKind::Request.suffix()) else {
                continue;
            };
            if *is_dir || all.contains(format!("{stem}{}", FileKind::Response.suffix()).as_str()) {
                continue;
            }
            if all.contains(format!("{stem}.{BESIDE_RUN_RECORD}").as_str()) {
                out.called.push(dir.join(name));
            } else {
                out.open.push(dir.join(name));
            }
        }
        out
    }
    let mtime = |dir: &Path| fs::symlink_metadata(dir).and_then(|m| m.modified()).ok();
    let stamp = mtime(relay.path());
    let top = names(relay.path())?;
    let mut out = vec![pick(relay.path(), None, stamp, &top)];
    for (name, is_dir) in &top {
        if *is_dir && is_slug(name) {
            let dir = relay.path().join(name);
            let stamp = mtime(&dir);
            out.push(pick(&dir, Some(name), stamp, &names(&dir)?));
        }
    }
    Ok(out)
}

/// The requests with neither a reply nor a run record beside them, in `.relay/` and its session
/// directories, found from directory listings alone (no file is opened, nothing followed): the
/// candidates for an agent's inbox, cheap enough for a hook that runs at every stop.
pub fn unanswered_requests(relay: &RelayDir) -> Result<Vec<PathBuf>> {
    Ok(survey(relay)?.into_iter().flat_map(|d| d.open).collect())
}

/// Whether [`scan`] may write the listing cache (`relay list`) or must leave `.relay/` as it
/// is (`relay clean --dry-run`, and anything about to remove files anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheWrite {
    /// Write it when it changed.
    Yes,
    /// Only read it.
    No,
}

/// Every exchange under `.relay/` (or in one session), oldest first. What was read of each
/// exchange is cached (see `list_cache`): while its files are the same, a listing costs one
/// `stat` per file, and while a directory is the same, no listing of it.
pub fn scan(relay: &RelayDir, session: Option<&str>, write: CacheWrite) -> Result<Vec<Exchange>> {
    let now = SystemTime::now();
    let cache = list_cache::Cache::load(relay);
    // The cache's rows in key order, taken directory by directory as the jobs are made.
    let mut cached = cache.iter().flat_map(list_cache::Cache::rows).peekable();
    let mut jobs = Vec::new();
    let mut dirs = Vec::new();
    let mut each_dir = |dir: &Path, session: Option<&str>, jobs: &mut Vec<Job>| {
        let key = session.unwrap_or("");
        while cached.next_if(|r| r.key.0 < key).is_some() {}
        let mut rows = std::iter::from_fn(|| cached.next_if(|r| r.key.0 == key));
        dir_jobs(
            dir,
            session,
            cache.as_ref(),
            &mut rows,
            now,
            jobs,
            &mut dirs,
        )
    };
    match session {
        Some(s) => {
            let dir = relay.session_dir(s);
            if !dir.is_dir() {
                return Err(Error::NotFound {
                    what: "session",
                    path: dir,
                });
            }
            each_dir(&dir, Some(s), &mut jobs)?;
        }
        None => {
            for s in each_dir(relay.path(), None, &mut jobs)? {
                each_dir(&relay.path().join(&s), Some(&s), &mut jobs)?;
            }
        }
    }
    // Jobs come in key order (top level by stem, then sessions by name and turn); this is
    // only the guard for the cache, whose rows are written in the same order.
    if !jobs.is_sorted_by(|a, b| a.key() <= b.key()) {
        jobs.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    }
    let rows = summarize_all(jobs, cache.as_ref(), now);
    // Only a listing of everything rewrites the cache, and only when it changed: a row was
    // read from its files or went away, or a directory changed.
    if session.is_none() && write == CacheWrite::Yes {
        // A directory stands in for its listing only if every row in it is cached.
        for row in rows.iter().filter(|r| r.ident.is_none()) {
            let session = row.exchange.session.as_deref().unwrap_or("");
            for d in dirs.iter_mut().filter(|(s, _)| &**s == session) {
                d.1 = None;
            }
        }
        let changed = rows.iter().any(|r| r.reread)
            || cache
                .as_ref()
                .is_none_or(|c| c.row_count() != rows.len() || !c.same_dirs(&dirs));
        if changed {
            list_cache::save(relay, &dirs, &rows);
        }
    }
    let mut out: Vec<Exchange> = rows.into_iter().map(|r| r.exchange).collect();
    // A total order (the path breaks every tie), so the unstable sort, which needs no buffer
    // of half the list, is deterministic.
    out.sort_unstable_by(|a, b| {
        a.created
            .cmp(&b.created)
            .then_with(|| a.session.cmp(&b.session))
            .then_with(|| a.sort_turn.cmp(&b.sort_turn))
            .then_with(|| a.id().cmp(b.id()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// The jobs of one directory (`session`: `None` for `.relay/` itself), from its cached `rows`
/// while the directory is the one they were written from, else from a listing, with each
/// cached row put on its job; records the directory's identity in `dirs`. Returns the sessions
/// `.relay/` holds (none for a session directory).
fn dir_jobs<'c>(
    dir: &Path,
    session: Option<&str>,
    cache: Option<&list_cache::Cache>,
    rows: &mut dyn Iterator<Item = list_cache::RowRef<'c>>,
    now: SystemTime,
    jobs: &mut Vec<Job>,
    dirs: &mut Vec<(Arc<str>, Option<u64>)>,
) -> Result<Vec<String>> {
    // Taken before the listing: a change during it makes the next listing look again.
    let ident = list_cache::dir_identity(dir, now);
    let key = session.unwrap_or("");
    dirs.push((Arc::from(key), ident));
    if let Some(cache) = cache.filter(|c| c.unchanged(key, ident)) {
        let shared: Arc<Path> = Arc::from(dir);
        let session: Option<Arc<str>> = session.map(Arc::from);
        jobs.extend(rows.filter_map(|row| Job::from_row(&row, &shared, session.as_ref())));
        return Ok(if session.is_none() {
            cache
                .sessions()
                .filter(|s| is_slug(s))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        });
    }
    let rows: Vec<list_cache::RowRef<'_>> = rows.collect();
    let start = jobs.len();
    let list = |jobs: &mut Vec<Job>| match session {
        None => top_jobs(dir, jobs),
        Some(s) => session_jobs(dir, s, jobs).map(|()| Vec::new()),
    };
    // While the directory is listed (one core), the files its cached rows name are checked
    // (the others): most are still there and the same.
    #[cfg(unix)]
    let (sessions, idents) = if rows.len() >= 1024 {
        std::thread::scope(|scope| {
            let idents = scope.spawn(|| list_cache::identities(dir, &rows, now));
            let sessions = list(jobs);
            (sessions, idents.join().expect("a stat thread panicked"))
        })
    } else {
        (list(jobs), Vec::new())
    };
    #[cfg(not(unix))]
    let (sessions, idents) = (list(jobs), Vec::new());
    list_cache::attach(&rows, &idents, &mut jobs[start..]);
    sessions
}

/// The jobs of `.relay/` itself, in stem order; returns its session directories, by name.
fn top_jobs(relay: &Path, jobs: &mut Vec<Job>) -> Result<Vec<String>> {
    let rd = match fs::read_dir(relay) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(relay),
    };
    // Only the names that matter (protocol files, run records): each stem once in one buffer,
    // with which file it came from (0 request, 1 reply, 2 run record). At 250,000 names a
    // string each would be most of what a listing holds.
    let suffixes = [
        FileKind::Request.suffix(),
        FileKind::Response.suffix(),
        RUN_RECORD_SUFFIX,
    ];
    let mut stems = String::new();
    let mut names: Vec<(u32, u16, u8)> = Vec::new();
    let mut sessions = Vec::new();
    for entry in rd {
        let entry = entry.at(relay)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if entry.file_type().at(&entry.path())?.is_dir() {
            if is_slug(&name) {
                sessions.push(name);
            }
            continue;
        }
        let Some((kind, stem)) = (0u8..)
            .zip(suffixes)
            .find_map(|(k, suffix)| Some((k, name.strip_suffix(suffix)?)))
        else {
            continue;
        };
        let (Ok(start), Ok(len)) = (u32::try_from(stems.len()), u16::try_from(stem.len())) else {
            continue;
        };
        stems.push_str(stem);
        names.push((start, len, kind));
    }
    let stem = |&(start, len, _): &(u32, u16, u8)| &stems[start as usize..][..usize::from(len)];
    // By stem, then file: the files of one exchange are neighbours, found in one pass.
    names.sort_unstable_by(|a, b| stem(a).cmp(stem(b)).then(a.2.cmp(&b.2)));
    let dir: Arc<Path> = Arc::from(relay);
    for group in names.chunk_by(|a, b| stem(a) == stem(b)) {
        let has = |k: u8| group.iter().any(|n| n.2 == k);
        // A reply is listed with its request; only an orphan reply alone; a run record only
        // says a call ran.
        let kind = if has(0) {
            FileKind::Request
        } else if has(1) {
            FileKind::Response
        } else {
            continue;
        };
        let stem = stem(&group[0]);
        // Sized exactly: it becomes the exchange's boxed name without a copy.
        let mut name = String::with_capacity(stem.len() + kind.suffix().len());
        name.push_str(stem);
        name.push_str(kind.suffix());
        jobs.push(Job {
            dir: Arc::clone(&dir),
            name,
            kind,
            reply_exists: has(1),
            run_exists: kind == FileKind::Request && has(2),
            session: None,
            turn: 0,
            cached: None,
            ident: None,
        });
    }
    sessions.sort_unstable();
    Ok(sessions)
}

/// One exchange `scan` must list: the file it starts from, and what exists beside it (from
/// the directory listing, so a listing costs no `stat` per file to learn that).
struct Job {
    dir: Arc<Path>,
    name: String,
    kind: FileKind,
    reply_exists: bool,
    run_exists: bool,
    session: Option<Arc<str>>,
    turn: u64,
    /// The listing cache's row for this job: the identity of the files it was read from, and
    /// where it is in the cache's text.
    cached: Option<(u64, (usize, usize))>,
    /// The identity of its files now, when it was found while the directory was listed.
    ident: Option<u64>,
}

impl Job {
    /// Its place in the cache: top level by stem, then sessions by name, turn and stem.
    fn key(&self) -> list_cache::Key<'_> {
        (
            self.session.as_deref().unwrap_or(""),
            self.turn,
            crate::layout::stem_of(&self.name),
        )
    }

    /// Which files it has (see `list_cache::HAS_REQUEST`).
    fn files(&self) -> u8 {
        let mut files = 0;
        if self.kind == FileKind::Request {
            files |= list_cache::HAS_REQUEST;
        }
        if self.reply_exists || self.kind == FileKind::Response {
            files |= list_cache::HAS_REPLY;
        }
        if self.run_exists {
            files |= list_cache::HAS_RUN;
        }
        files
    }

    /// The job a cached row stands for, in an unchanged directory. The stem names a file in
    /// `dir`: one that could name anything else is ignored.
    fn from_row(
        row: &list_cache::RowRef<'_>,
        dir: &Arc<Path>,
        session: Option<&Arc<str>>,
    ) -> Option<Job> {
        let (_, turn, stem) = row.key;
        if stem.is_empty() || stem.contains(['/', '\0']) {
            return None;
        }
        let kind = if row.files & list_cache::HAS_REQUEST != 0 {
            FileKind::Request
        } else if row.files & list_cache::HAS_REPLY != 0 {
            FileKind::Response
        } else {
            return None;
        };
        // Sized exactly: it becomes the exchange's boxed name without a copy.
        let mut name = String::with_capacity(stem.len() + kind.suffix().len());
        name.push_str(stem);
        name.push_str(kind.suffix());
        Some(Job {
            dir: Arc::clone(dir),
            name,
            kind,
            reply_exists: row.files & list_cache::HAS_REPLY != 0,
            run_exists: row.files & list_cache::HAS_RUN != 0,
            session: session.cloned(),
            turn,
            cached: Some((row.ident, row.span)),
            ident: None,
        })
    }
}

fn session_jobs(dir: &Path, session: &str, jobs: &mut Vec<Job>) -> Result<()> {
    let records: std::collections::HashSet<String> = fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(RUN_RECORD_SUFFIX).map(str::to_owned))
        .collect();
    let shared: Arc<Path> = Arc::from(dir);
    let session: Arc<str> = Arc::from(session);
    for t in session_turns(dir)? {
        let kind = if t.request {
            FileKind::Request
        } else {
            FileKind::Response
        };
        jobs.push(Job {
            dir: Arc::clone(&shared),
            name: format!("{}{}", t.stem, kind.suffix()),
            kind,
            reply_exists: t.response,
            run_exists: t.request && records.contains(&t.stem),
            session: Some(Arc::clone(&session)),
            turn: t.number,
            cached: None,
            ident: None,
        });
    }
    Ok(())
}

/// A listed exchange, with the identity of its files when they have settled (for the cache),
/// which files it has, and whether it was read from them rather than from its cached row.
struct Row {
    exchange: Exchange,
    ident: Option<u64>,
    files: u8,
    reread: bool,
}

/// How many threads a listing uses: one per core, at most 8.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
}

/// Lists the jobs on every core: each is independent, and with thousands of exchanges the
/// `stat`s (and, for what changed, the open/read/parse) per file are what a listing costs.
fn summarize_all(
    mut jobs: Vec<Job>,
    cache: Option<&list_cache::Cache>,
    now: SystemTime,
) -> Vec<Row> {
    let threads = threads();
    let mut out: Vec<Option<Row>> = Vec::new();
    out.resize_with(jobs.len(), || None);
    if threads == 1 || jobs.len() < 256 {
        summarize_part(&mut jobs, &mut out, cache, now);
    } else {
        // Each thread fills its own part of one vector, moving each job's strings into its
        // exchange: no second copy of 100,000 of either.
        let chunk = jobs.len().div_ceil(threads);
        std::thread::scope(|scope| {
            for (part, slots) in jobs.chunks_mut(chunk).zip(out.chunks_mut(chunk)) {
                scope.spawn(move || summarize_part(part, slots, cache, now));
            }
        });
    }
    drop(jobs);
    out.into_iter()
        .map(|r| r.expect("every slot filled"))
        .collect()
}

/// One thread's share of [`summarize_all`]: a cached row while its files are the ones it was
/// read from, else the files themselves.
fn summarize_part(
    jobs: &mut [Job],
    slots: &mut [Option<Row>],
    cache: Option<&list_cache::Cache>,
    now: SystemTime,
) {
    let mut names = Names::default();
    #[cfg(unix)]
    let mut dir: Option<(Arc<Path>, Option<std::os::fd::OwnedFd>)> = None;
    #[cfg(unix)]
    let mut buf = String::new();
    for (job, slot) in jobs.iter_mut().zip(slots) {
        #[cfg(unix)]
        let ident = job.ident.or_else(|| {
            if dir.as_ref().is_none_or(|(d, _)| !Arc::ptr_eq(d, &job.dir)) {
                dir = Some((Arc::clone(&job.dir), list_cache::open_dir(&job.dir)));
            }
            let fd = dir.as_ref()?.1.as_ref()?;
            let key = (crate::layout::stem_of(&job.name), job.files());
            list_cache::identity(fd, key, now, &mut buf)
        });
        #[cfg(not(unix))]
        let ident: Option<u64> = {
            let _ = now;
            None
        };
        let files = job.files();
        let from_cache = match (job.cached, cache) {
            (Some((cached, span)), Some(cache)) if ident == Some(cached) => cache.exchange(
                span,
                &mut names,
                (
                    Arc::clone(&job.dir),
                    std::mem::take(&mut job.name).into_boxed_str(),
                    job.session.take(),
                ),
            ),
            _ => None,
        };
        *slot = Some(match from_cache {
            Some(exchange) => Row {
                exchange,
                ident,
                files,
                reread: false,
            },
            None => Row {
                exchange: summarize(job, &mut names),
                ident,
                files,
                reread: true,
            },
        });
    }
}

/// Reads one job's files into its exchange (taking the job's path and names).
fn summarize(job: &mut Job, names: &mut Names) -> Exchange {
    let kind = job.kind;
    let mut ex = Exchange {
        id: None,
        session: job.session.take(),
        dir: Arc::clone(&job.dir),
        name: std::mem::take(&mut job.name).into_boxed_str(),
        has_request: kind == FileKind::Request,
        from: None,
        to: None,
        kind: None,
        created: None,
        reply_state: ReplyState::Pending,
        request_problem: None,
        run: None,
        sort_turn: job.turn,
    };
    let path = ex.dir.join(&*ex.name);
    let reply = ex.reply();
    let reply_exists = match kind {
        FileKind::Request => {
            match read_header(&path) {
                Ok(Message::Request(r)) => {
                    if r.id != ex.stem() {
                        ex.id = Some(r.id.into_boxed_str());
                    }
                    ex.from = Some(names.get(&r.from));
                    ex.to = Some(names.get(&r.to));
                    ex.kind = r.kind.filter(|k| k != "task").map(|k| names.get(&k));
                    ex.created = r.created;
                }
                Ok(Message::Response(_)) => {
                    ex.request_problem = Some("a reply stored as a request".into());
                }
                Err(e) => ex.request_problem = Some(e.to_string().into_boxed_str()),
            }
            if ex.created.is_none() {
                ex.created = modified(&path);
            }
            // The record matters while there is no reply; beside a reply the call is over, and
            // the reply itself says how it went (a listing of answered exchanges reads no record).
            if job.run_exists && !job.reply_exists {
                ex.run = read_run_summary(&path).map(Box::new);
            } else if job.run_exists {
                ex.run = Some(Box::new(RunSummary {
                    state: RunState::Finished,
                    outcome: None,
                    supervisor_pid: None,
                    supervisor_start: None,
                }));
            }
            job.reply_exists
        }
        FileKind::Response => {
            ex.request_problem = Some("the request file is missing".into());
            true
        }
    };
    if reply_exists {
        ex.reply_state = match read_header(&reply) {
            Ok(Message::Response(r)) => {
                if ex.from.is_none() {
                    (ex.from, ex.to) = (Some(names.get(&r.to)), Some(names.get(&r.from)));
                    ex.created = r.created.or_else(|| modified(&reply));
                }
                ReplyState::Answered {
                    status: r.status,
                    verify: r.verify,
                    salvaged: r.salvaged.is_some(),
                }
            }
            Ok(Message::Request(_)) => ReplyState::Invalid {
                problem: "a request stored as a reply".into(),
            },
            Err(e) => ReplyState::Invalid {
                problem: e.to_string(),
            },
        };
    }
    ex
}

fn modified(path: &Path) -> Option<OffsetDateTime> {
    let t: SystemTime = fs::metadata(path).ok()?.modified().ok()?;
    OffsetDateTime::from(t).replace_nanosecond(0).ok()
}

/// Reads only as much of a file as its frontmatter needs (listing must not read 10 MB bodies)
/// and parses it.
pub fn read_header(path: &Path) -> Result<Message> {
    const FIRST: usize = 4096;
    const MAX_HEADER: u64 = 64 * 1024;
    let mut file = crate::untrusted::open(path).at(path)?;
    let mut buf = Vec::with_capacity(FIRST);
    // One read serves the usual file; only a header that does not end in it reads on.
    crate::untrusted::read_prefix(&mut file, &mut buf, FIRST).at(path)?;
    let mut text = header_text(&buf);
    if !buf.is_empty() && message::header_end(text).is_none() {
        file.take(MAX_HEADER).read_to_end(&mut buf).at(path)?;
        text = header_text(&buf);
    }
    let cut = message::header_end(text).unwrap_or(text.len());
    message::parse_at(path, &text[..cut], Depth::Header)
        .into_result()
        .map_err(Error::Invalid)
}

fn header_text(buf: &[u8]) -> &str {
    match std::str::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).expect("valid prefix"),
    }
}
