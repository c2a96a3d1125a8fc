//! Requests and responses: the typed view of a protocol file, how to read one (collecting every
//! problem with its line) and how to write one.

use std::fmt::Write as _;
use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Diagnostic, InvalidFile, Severity};
use crate::fields::{check_slug, check_token, shown};
use crate::frontmatter::{self, Frontmatter, SplitError, scalar, strip_eol};

/// The protocol version relay writes.
pub const VERSION: u32 = 7;
/// The oldest protocol version relay reads (the published bash relay v4).
pub const MIN_VERSION: u32 = 4;
/// The largest body relay writes or reads: 16 MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The largest protocol file relay reads: a maximal body plus room for frontmatter and footer.
pub const MAX_FILE_BYTES: usize = MAX_BODY_BYTES + 1024 * 1024;
/// The most top-level frontmatter keys a protocol file may have (relay writes about ten):
/// past it the file is invalid and its YAML is not parsed at all, so a hostile file costs
/// milliseconds.
pub const MAX_FRONTMATTER_KEYS: usize = 256;
/// The request `kind` of a handoff (see [`crate::handoff`]).
pub const HANDOFF: &str = "handoff";
/// The request kinds this relay knows (spec §3.1); another is read as a task, with a warning.
pub const KINDS: [&str; 5] = ["task", "question", "review", HANDOFF, "deliberate"];
/// The placeholder in the reply template (kept from v4, which peers already know).
pub const RESPONSE_PLACEHOLDER: &str = "{your response}";

/// `status` of a reply: did the peer do the task?
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The task was carried out (its checks may still have failed: see [`Verify`]).
    Done,
    /// The peer could not carry out the task; the body says why.
    Error,
}

/// `verify` of a reply: did the checks the task names pass?
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// The checks ran and passed.
    Pass,
    /// The checks ran and failed.
    Fail,
    /// No checks were named, or they could not be run (the body says why).
    Skip,
}

/// `state` of an error reply (v7): why the task was not carried out, when that is not a
/// failure. Maps to A2A's task states `input-required` and `rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorState {
    /// The peer cannot go on without an answer from the caller; the body asks the question.
    Blocked,
    /// The peer will not do the task: outside its scope or what it may do; the body says why.
    Refused,
}

impl ErrorState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorState::Blocked => "blocked",
            ErrorState::Refused => "refused",
        }
    }
}

impl std::str::FromStr for ErrorState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "blocked" => Ok(ErrorState::Blocked),
            "refused" => Ok(ErrorState::Refused),
            _ => Err(format!("must be `blocked` or `refused`, got {}", shown(s))),
        }
    }
}

/// The A2A task state of an exchange (spec §15.3): `completed`, `failed`, `input-required`,
/// `rejected` for a reply.
pub fn a2a_state(status: Status, state: Option<ErrorState>) -> &'static str {
    match (status, state) {
        (Status::Done, _) => "completed",
        (Status::Error, None) => "failed",
        (Status::Error, Some(ErrorState::Blocked)) => "input-required",
        (Status::Error, Some(ErrorState::Refused)) => "rejected",
    }
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Error => "error",
        }
    }
}

impl Verify {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verify::Pass => "pass",
            Verify::Fail => "fail",
            Verify::Skip => "skip",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "done" => Ok(Status::Done),
            "error" => Ok(Status::Error),
            _ => Err(format!("must be `done` or `error`, got {}", shown(s))),
        }
    }
}

impl std::str::FromStr for Verify {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pass" => Ok(Verify::Pass),
            "fail" => Ok(Verify::Fail),
            "skip" => Ok(Verify::Skip),
            _ => Err(format!(
                "must be `pass`, `fail` or `skip`, got {}",
                shown(s)
            )),
        }
    }
}

/// The footer of a request: where to reply, and what to read first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Footer {
    /// The `Reply:` path, as written (absolute since v6; relative `.relay/...` in v4).
    pub reply: String,
    /// Earlier session turn files the peer must read first, in order (v6 `Context:` list).
    pub context: Vec<String>,
    /// The peer cannot write files in this run (read-only mode): it gives the whole reply as
    /// its final message and relay writes the file. Only changes the footer's instruction.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub final_message: bool,
}

/// A request: `<id>.req.md`, or `<session>/<turn>.req.md`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// Protocol version (`relay:`).
    pub version: u32,
    /// Request id; equals the file name stem (`<id>.req.md`; the turn number in a session).
    pub id: String,
    /// The calling agent.
    pub from: String,
    /// The peer agent asked to do the task.
    pub to: String,
    /// The session this turn belongs to (v6; v4 session files leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What kind of exchange this is (`task`, `review`, `question`, ...; v6, optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The shape the reply's body must have (`findings`, `deliberation`; v6, optional): see
    /// [`crate::review`]. Absent: free markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Reasoning effort hint (later v4; optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// A handoff: does the sender expect the work back (`back: yes`, the default, or `no`; v7)?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back: Option<bool>,
    /// When the request was written, UTC (v6, optional on read).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub created: Option<OffsetDateTime>,
    /// The task, in natural language, without the footer.
    pub body: String,
    /// Where and how to reply (required in a valid request).
    pub footer: Option<Footer>,
}

/// A response: `<id>.res.md`, or `<session>/<turn>.res.md`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    /// Protocol version (`relay:`).
    pub version: u32,
    /// The id of the request this answers.
    pub re: String,
    /// The responding agent (the request's `to`).
    pub from: String,
    /// The agent the reply goes back to (the request's `from`).
    pub to: String,
    /// Did the peer do the task?
    pub status: Status,
    /// Did the task's checks pass?
    pub verify: Verify,
    /// Why an error reply is not a failure: the peer is blocked or refuses (v7, optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ErrorState>,
    /// The session of the turn (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the reply was written, UTC (optional).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub created: Option<OffsetDateTime>,
    /// Set when relay wrote this reply from what the peer printed, because the peer wrote no
    /// reply file: where the text came from (`final-message`). Absent in a peer's own reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salvaged: Option<String>,
    /// Free markdown: findings, changes, evidence.
    pub body: String,
}

/// Which side of an exchange a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// `*.req.md`
    Request,
    /// `*.res.md`
    Response,
}

impl FileKind {
    /// From the file name: `*.req.md` or `*.res.md`.
    pub fn of_path(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".req.md") {
            Some(FileKind::Request)
        } else if name.ends_with(".res.md") {
            Some(FileKind::Response)
        } else {
            None
        }
    }

    /// The file-name suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            FileKind::Request => ".req.md",
            FileKind::Response => ".res.md",
        }
    }
}

/// A parsed protocol file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The outcome of reading one file: what could be read, and every problem found.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// Request or response, when it could be told.
    pub kind: Option<FileKind>,
    /// The message, when every required field could be read (it may still carry errors).
    pub message: Option<Message>,
    /// Problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Does any diagnostic have error severity?
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// The message if the file is valid, else every problem.
    pub fn into_result(self) -> Result<Message, InvalidFile> {
        match self.message {
            Some(m) if !self.has_errors() => Ok(m),
            _ => Err(InvalidFile {
                diagnostics: self.diagnostics,
            }),
        }
    }
}

/// How much of a file to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Frontmatter only (listing thousands of exchanges).
    Header,
    /// Everything: frontmatter, body, footer.
    Full,
}

/// Reads a protocol file's text. `path` names the file in diagnostics and decides, by its
/// suffix, whether a request or a response is expected; the file stem must equal the id.
pub fn parse(path: &Path, text: &str) -> Parsed {
    parse_at(path, text, Depth::Full)
}

pub(crate) fn parse_at(path: &Path, text: &str, depth: Depth) -> Parsed {
    let mut diags = Vec::new();
    let mut kind = FileKind::of_path(path);
    let split = match frontmatter::split(text) {
        Ok(s) => s,
        Err(e) => {
            let (line, msg) = match e {
                SplitError::MissingOpen => {
                    (1, "the file must start with a line that is exactly `---`")
                }
                SplitError::MissingClose => (
                    1,
                    "no closing `---` line: the frontmatter opened on line 1 never ends",
                ),
            };
            diags.push(Diagnostic::error(path, line, "frontmatter", msg));
            return Parsed {
                kind,
                message: None,
                diagnostics: diags,
            };
        }
    };
    let fm = frontmatter::parse(path, split.yaml, &mut diags);
    if !fm.ok {
        // Field checks on unparsable YAML would only repeat the YAML error.
        return Parsed {
            kind,
            message: None,
            diagnostics: diags,
        };
    }
    if kind.is_none() {
        kind = if fm.has("re") {
            Some(FileKind::Response)
        } else if fm.has("id") {
            Some(FileKind::Request)
        } else {
            None
        };
    }
    let mut cx = Cx {
        path,
        fm: &fm,
        diags: &mut diags,
    };
    let message = match kind {
        None => {
            cx.error(
                1,
                "file",
                "cannot tell a request from a response: name it *.req.md or *.res.md",
            );
            None
        }
        Some(FileKind::Request) => cx
            .request(split.body, split.close_line, depth)
            .map(Message::Request),
        Some(FileKind::Response) => cx.response(split.body, depth).map(Message::Response),
    };
    diags.sort_by_key(|d| d.line);
    Parsed {
        kind,
        message,
        diagnostics: diags,
    }
}

/// Field checks for one file.
struct Cx<'a> {
    path: &'a Path,
    fm: &'a Frontmatter,
    diags: &'a mut Vec<Diagnostic>,
}

impl Cx<'_> {
    fn error(&mut self, line: usize, field: &str, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(self.path, line, field, msg));
    }

    fn field_error(&mut self, field: &str, msg: impl Into<String>) {
        let line = self.fm.line_of(field);
        self.error(line, field, msg);
    }

    /// A required field: present, not null, and passing `check`.
    fn required(
        &mut self,
        field: &str,
        value: Option<&String>,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        match value {
            None if self.fm.bad.iter().any(|b| b == field) => {}
            None if self.fm.has(field) => {
                self.field_error(field, "is empty or null; it needs a value");
            }
            None => self.error(1, field, "required field is missing"),
            Some(v) => match check(v) {
                Ok(()) => return Some(v.clone()),
                Err(msg) => self.field_error(field, msg),
            },
        }
        None
    }

    /// An optional field: absent is fine, present must pass `check`.
    fn optional(
        &mut self,
        field: &str,
        value: Option<&String>,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let v = value?;
        match check(v) {
            Ok(()) => Some(v.clone()),
            Err(msg) => {
                self.field_error(field, msg);
                None
            }
        }
    }

    fn version(&mut self) -> Option<u32> {
        let raw = self.required("relay", self.fm.fields.relay.as_ref(), |_| Ok(()))?;
        let Ok(v) = raw.parse::<u32>() else {
            self.field_error(
                "relay",
                format!(
                    "must be a protocol version number like `{VERSION}`, got {}",
                    shown(&raw)
                ),
            );
            return None;
        };
        if v < MIN_VERSION {
            self.field_error(
                "relay",
                format!(
                    "protocol version {v} is not supported (relay reads {MIN_VERSION} to {VERSION})"
                ),
            );
            return None;
        }
        if v > VERSION {
            let line = self.fm.line_of("relay");
            self.diags.push(Diagnostic::warning(
                self.path,
                line,
                "relay",
                format!("protocol version {v} is newer than this relay ({VERSION}); fields it does not know are ignored"),
            ));
        }
        Some(v)
    }

    fn created(&mut self) -> Option<OffsetDateTime> {
        let raw = self.fm.fields.created.as_ref()?;
        match OffsetDateTime::parse(raw, &Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                self.field_error(
                    "created",
                    format!(
                        "must be an RFC 3339 time like `2026-11-21T16:30:00Z`, got {}",
                        shown(raw)
                    ),
                );
                None
            }
        }
    }

    /// The id (or `re`) must name the file: `<id>.req.md` / `<id>.res.md`.
    fn matches_file_name(&mut self, field: &str, id: &str) {
        let Some(kind) = FileKind::of_path(self.path) else {
            return;
        };
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = &name[..name.len() - kind.suffix().len()];
        if stem != id {
            self.field_error(
                field,
                format!(
                    "is {} but the file is {}: the {field} must be the file name without {}",
                    shown(id),
                    shown(name),
                    kind.suffix()
                ),
            );
        }
    }

    /// A `session:` field must name the directory the turn is in.
    fn matches_session_dir(&mut self, session: Option<&str>) {
        let Some(session) = session else { return };
        let dir = self
            .path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        if FileKind::of_path(self.path).is_some() && dir != Some(session) {
            self.field_error(
                "session",
                format!(
                    "is {} but the file is not in a directory of that name",
                    shown(session)
                ),
            );
        }
    }

    fn request(&mut self, body: &str, close_line: usize, depth: Depth) -> Option<Request> {
        let f = &self.fm.fields;
        let version = self.version();
        let id = self.required("id", f.id.as_ref(), check_token);
        let from = self.required("from", f.from.as_ref(), check_token);
        let to = self.required("to", f.to.as_ref(), check_token);
        let session = self.optional("session", f.session.as_ref(), check_slug);
        let kind = self.optional("kind", f.kind.as_ref(), check_slug);
        let format = self.optional("format", f.format.as_ref(), check_slug);
        if let Some(fmt) = &format
            && !crate::review::FORMATS.contains(&fmt.as_str())
        {
            let line = self.fm.line_of("format");
            self.diags.push(Diagnostic::warning(
                self.path,
                line,
                "format",
                format!("`{fmt}` is not a reply format this relay knows; the reply is read as free markdown"),
            ));
        }
        if let Some(k) = &kind
            && !KINDS.contains(&k.as_str())
        {
            let line = self.fm.line_of("kind");
            self.diags.push(Diagnostic::warning(
                self.path,
                line,
                "kind",
                format!(
                    "`{k}` is not a kind this relay knows ({}); the request is read as a task",
                    KINDS.join(", ")
                ),
            ));
        }
        let effort = self.optional("effort", f.effort.as_ref(), check_slug);
        let back = self
            .optional("back", f.back.as_ref(), |b| match b {
                "yes" | "no" => Ok(()),
                _ => Err(format!("must be `yes` or `no`, got {}", shown(b))),
            })
            .map(|b| b == "yes");
        let created = self.created();
        if let Some(id) = &id {
            self.matches_file_name("id", id);
        }
        self.matches_session_dir(session.as_deref());
        let (task, footer) = if depth == Depth::Full {
            self.request_body(body, close_line, id.as_deref(), session.as_deref())
        } else {
            (String::new(), None)
        };
        if depth == Depth::Full
            && kind.as_deref() == Some(HANDOFF)
            && let Err(e) = crate::handoff::Handoff::parse(&task)
        {
            // The body's first line, as request_body counts it.
            let first =
                close_line + 1 + usize::from(strip_leading_blank_line(body).len() != body.len());
            self.error(first + e.line - 1, "body", e.message);
        }
        Some(Request {
            version: version?,
            id: id?,
            from: from?,
            to: to?,
            session,
            kind,
            format,
            effort,
            back,
            created,
            body: task,
            footer,
        })
    }

    fn request_body(
        &mut self,
        raw_body: &str,
        close_line: usize,
        id: Option<&str>,
        session: Option<&str>,
    ) -> (String, Option<Footer>) {
        let body = strip_leading_blank_line(raw_body);
        let first_line = close_line + 1 + usize::from(body.len() != raw_body.len());
        let Some((fence, fence_line)) = find_footer(body) else {
            self.error(
                first_line,
                "footer",
                "no footer: the request must end with a `---` line and `Reply: <path>` telling \
                 the peer where to write the reply",
            );
            return (body.to_owned(), None);
        };
        let task = strip_trailing_blank_line(&body[..fence]);
        if task.trim().is_empty() {
            self.error(
                first_line,
                "body",
                "the request has no task: the body is empty",
            );
        }
        let footer = parse_footer(&body[fence..]);
        // The peer writes where the footer says; relay reads the path derived from the request
        // path. They must agree, or the reply is lost.
        let reply = Path::new(footer.reply.trim());
        let name = reply.file_name().and_then(|n| n.to_str());
        let dir = reply
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        if let Some(id) = id {
            let want = format!("{id}.res.md");
            let wrong_dir = session.is_some_and(|s| dir != Some(s));
            if name != Some(want.as_str()) || wrong_dir {
                let want = match session {
                    Some(s) => format!("{s}/{want}"),
                    None => want,
                };
                self.error(
                    first_line + fence_line + 1,
                    "footer",
                    format!(
                        "`Reply:` points at {}, but the reply to this request is {}",
                        shown(&footer.reply),
                        shown(&want)
                    ),
                );
            }
        }
        (task.to_owned(), Some(footer))
    }

    fn response(&mut self, body: &str, depth: Depth) -> Option<Response> {
        let f = &self.fm.fields;
        let version = self.version();
        let re = self.required("re", f.re.as_ref(), check_token);
        let from = self.required("from", f.from.as_ref(), check_token);
        let to = self.required("to", f.to.as_ref(), check_token);
        let status = self.required("status", f.status.as_ref(), |s| {
            s.parse::<Status>().map(drop)
        });
        let verify = self.required("verify", f.verify.as_ref(), |s| {
            s.parse::<Verify>().map(drop)
        });
        let state = self.optional("state", f.state.as_ref(), |s| {
            s.parse::<ErrorState>().map(drop)
        });
        if let (Some(st), Some("done")) = (&state, status.as_deref()) {
            self.field_error(
                "state",
                format!("is `{st}`, which goes with `status: error` (the task was not carried out), not `done`"),
            );
        }
        let session = self.optional("session", f.session.as_ref(), check_slug);
        let salvaged = self.optional("salvaged", f.salvaged.as_ref(), check_slug);
        let created = self.created();
        if let Some(re) = &re {
            self.matches_file_name("re", re);
        }
        self.matches_session_dir(session.as_deref());
        let body = strip_leading_blank_line(body);
        if depth == Depth::Full && body.trim().is_empty() {
            let line = self.fm.keys.last().map_or(1, |k| k.1) + 2;
            self.diags.push(Diagnostic::warning(
                self.path,
                line,
                "body",
                "the reply body is empty",
            ));
        }
        Some(Response {
            version: version?,
            re: re?,
            from: from?,
            to: to?,
            status: status?.parse().ok()?,
            verify: verify?.parse().ok()?,
            state: state.and_then(|s| s.parse().ok()),
            session,
            created,
            salvaged,
            body: if depth == Depth::Full {
                body.to_owned()
            } else {
                String::new()
            },
        })
    }
}

fn strip_leading_blank_line(s: &str) -> &str {
    s.strip_prefix("\r\n")
        .or_else(|| s.strip_prefix('\n'))
        .unwrap_or(s)
}

fn strip_trailing_blank_line(s: &str) -> &str {
    if s.ends_with("\n\r\n") {
        &s[..s.len() - 2]
    } else if s.ends_with("\n\n") {
        &s[..s.len() - 1]
    } else {
        s
    }
}

/// The byte offset and 0-based line index of the footer fence: the last line that is exactly
/// `---` followed by a `Reply:` line. The last one wins, so a body that quotes another request
/// cannot take over the footer.
fn find_footer(body: &str) -> Option<(usize, usize)> {
    let mut found = None;
    let mut at = 0;
    let mut lines = body.split_inclusive('\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if strip_eol(line) == "---"
            && lines
                .peek()
                .is_some_and(|(_, next)| next.starts_with("Reply:"))
        {
            found = Some((at, i));
        }
        at += line.len();
    }
    found
}

fn parse_footer(footer: &str) -> Footer {
    let mut out = Footer::default();
    let mut in_context = false;
    for line in footer.split_inclusive('\n').skip(1).map(strip_eol) {
        if let Some(reply) = line.strip_prefix("Reply:") {
            out.reply = reply.trim().to_owned();
            in_context = false;
        } else if line.starts_with("Context:") {
            in_context = true;
        } else if in_context && line.starts_with("  ") {
            out.context.push(line.trim().to_owned());
        } else {
            in_context = false;
        }
    }
    out
}

/// Ensures text ends with a line break (files are text; a body without one gets one).
fn push_text(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        out.push('\n');
    }
}

fn push_field(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key}: {}", scalar(value));
}

fn push_time(out: &mut String, key: &str, t: Option<OffsetDateTime>) {
    if let Some(t) = t.and_then(|t| t.format(&Rfc3339).ok()) {
        push_field(out, key, &t);
    }
}

/// The footer line telling the peer to write the reply file itself.
pub const WRITE_FILE_RULE: &str = "Write your whole reply to exactly that file, in the format below; relay reads only that file, and your final message may be discarded.";
/// The footer line for a read-only run: the reply comes back as the final message.
pub const FINAL_MESSAGE_RULE: &str = "You cannot write files in this run: give your whole reply, in the format below, as your final message, and relay writes it to that file.";

/// The error states (v7), stated in every request: how to say "blocked" and "refused".
pub const STATE_RULE: &str = "State: if you cannot go on without an answer from the caller, reply status: error with the line `state: blocked` and your question in the body; if the task is outside what you may or should do, status: error with `state: refused` and why.";

/// The verify rule, stated in every request so the peer need not know relay's skill.
pub const VERIFY_RULE: &str = "Verify: pass = you ran the checks the task asks for and they passed; fail = they ran and failed; skip = the task names no check or you could not run it (say why in the body).";

impl Request {
    /// How relay's commands name this exchange: the id, or `session/turn` for a session turn.
    pub fn reference(&self) -> String {
        match &self.session {
            Some(s) => format!("{s}/{}", self.id),
            None => self.id.clone(),
        }
    }

    /// The file text relay writes for this request (frontmatter, body, footer).
    ///
    /// `footer` must be set: a request without one does not tell the peer where to reply.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 1024);
        out.push_str("---\n");
        let _ = writeln!(out, "relay: {}", self.version);
        push_field(&mut out, "id", &self.id);
        push_field(&mut out, "from", &self.from);
        push_field(&mut out, "to", &self.to);
        for (key, value) in [
            ("session", &self.session),
            ("kind", &self.kind),
            ("format", &self.format),
            ("effort", &self.effort),
        ] {
            if let Some(v) = value {
                push_field(&mut out, key, v);
            }
        }
        if let Some(back) = self.back {
            push_field(&mut out, "back", if back { "yes" } else { "no" });
        }
        push_time(&mut out, "created", self.created);
        out.push_str("---\n\n");
        push_text(&mut out, &self.body);
        let footer = self.footer.clone().unwrap_or_default();
        out.push_str("\n---\n");
        let _ = writeln!(out, "Reply: {}", footer.reply);
        out.push_str(if footer.final_message {
            FINAL_MESSAGE_RULE
        } else {
            WRITE_FILE_RULE
        });
        out.push('\n');
        if !footer.context.is_empty() {
            out.push_str("Context: read these earlier turns of the session first, in order:\n");
            for file in &footer.context {
                let _ = writeln!(out, "  {file}");
            }
        }
        out.push_str(VERIFY_RULE);
        out.push('\n');
        out.push_str(STATE_RULE);
        out.push_str("\nFormat:\n  ---\n");
        let _ = writeln!(out, "  relay: {}", self.version);
        let _ = writeln!(out, "  re: {}", scalar(&self.id));
        let _ = writeln!(out, "  from: {}", scalar(&self.to));
        let _ = writeln!(out, "  to: {}", scalar(&self.from));
        out.push_str("  status: done | error\n  verify: pass | fail | skip\n  ---\n  ");
        out.push_str(RESPONSE_PLACEHOLDER);
        out.push('\n');
        if let Some(format) = crate::review::footer_format(self.format.as_deref()) {
            out.push_str(&format);
            out.push('\n');
        }
        out
    }
}

impl Response {
    /// The file text relay writes for this response.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 256);
        out.push_str("---\n");
        let _ = writeln!(out, "relay: {}", self.version);
        push_field(&mut out, "re", &self.re);
        push_field(&mut out, "from", &self.from);
        push_field(&mut out, "to", &self.to);
        push_field(&mut out, "status", self.status.as_str());
        push_field(&mut out, "verify", self.verify.as_str());
        if let Some(s) = self.state {
            push_field(&mut out, "state", s.as_str());
        }
        if let Some(s) = &self.session {
            push_field(&mut out, "session", s);
        }
        if let Some(s) = &self.salvaged {
            push_field(&mut out, "salvaged", s);
        }
        push_time(&mut out, "created", self.created);
        out.push_str("---\n\n");
        push_text(&mut out, &self.body);
        out
    }
}

/// Checks a body before relay writes it: not empty, not too large, no NUL.
pub fn check_body(body: &str) -> Result<(), String> {
    if body.trim().is_empty() {
        return Err("is empty: say what the peer should do".into());
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "is {} bytes; the limit is {MAX_BODY_BYTES} bytes (16 MiB): put large material in a file and refer to it",
            body.len()
        ));
    }
    if body.contains('\0') {
        return Err("contains a NUL byte; bodies are text".into());
    }
    Ok(())
}

/// The byte offset just past the frontmatter's closing fence, if the text has one.
pub(crate) fn header_end(text: &str) -> Option<usize> {
    frontmatter::split(text)
        .ok()
        .map(|s| text.len() - s.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_is_the_last_fence_followed_by_reply() {
        let body = "task\n---\nReply: fake\n\n---\nReply: real\nFormat:\n";
        let (at, line) = find_footer(body).unwrap();
        assert_eq!(&body[at..at + 16], "---\nReply: real\n");
        assert_eq!(line, 4);
    }

    #[test]
    fn footer_context_list() {
        let f = parse_footer(
            "---\nReply: /r/.relay/s/003.res.md\nWrite...\nContext: read:\n  /a/001.req.md\n  /a/001.res.md\nVerify: x\nFormat:\n  ---\n",
        );
        assert_eq!(f.reply, "/r/.relay/s/003.res.md");
        assert_eq!(f.context, ["/a/001.req.md", "/a/001.res.md"]);
    }
}
