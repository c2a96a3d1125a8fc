//! Inputs shared by commands: the request body, the clock, the relay directory.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use relay_core::{NewRequest, RelayDir, Target};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::usage;

/// The body from exactly one source: the BODY argument, `-` (stdin), `--body-file`, or stdin
/// when it is piped and no BODY was given. Stdin is read to its end, however slow the writer.
pub fn body(arg: Option<&str>, file: Option<&Path>) -> anyhow::Result<String> {
    match (arg, file) {
        (Some(_), Some(_)) => Err(usage(
            "give the body once: as BODY or with --body-file",
            "drop one of them",
        )),
        (Some("-"), None) => read_stdin(),
        (Some(text), None) => Ok(text.to_owned()),
        (None, Some(path)) => body_file(path),
        (None, None) if !std::io::stdin().is_terminal() => read_stdin(),
        (None, None) => Err(usage(
            "the body is missing",
            "pass it as the last argument (quoted), as `-` to read stdin, or with --body-file FILE",
        )),
    }
}

/// Why a file the user named (`--body-file`, the config file) cannot be used.
#[derive(Debug)]
pub struct UserFileError {
    pub problem: crate::error::BodyFileProblem,
    /// In words, for the message.
    pub why: String,
}

/// Reads a file the user named: links are followed (it is theirs, not `.relay/`'s), but only
/// a regular file is opened (a FIFO or device could block or never end), at most `limit`
/// bytes, and it must be UTF-8.
pub fn read_user_file(path: &Path, limit: u64) -> Result<String, UserFileError> {
    use crate::error::BodyFileProblem as P;
    let fail = |problem, why: String| UserFileError { problem, why };
    let io = |e: &std::io::Error| {
        let problem = if e.kind() == std::io::ErrorKind::NotFound {
            P::Missing
        } else {
            P::Unreadable
        };
        fail(problem, crate::error::strip_os_error(&e.to_string()))
    };
    let meta = std::fs::metadata(path).map_err(|e| io(&e))?;
    if !meta.is_file() {
        return Err(fail(P::NotRegular, "not a regular file".into()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| io(&e))?;
    if bytes.len() as u64 > limit {
        return Err(fail(P::TooLarge, format!("more than {limit} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(
            P::NotUtf8,
            format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// `--body-file`: see [`read_user_file`]; at most the body limit.
fn body_file(path: &Path) -> anyhow::Result<String> {
    read_user_file(path, relay_core::MAX_BODY_BYTES as u64).map_err(|e| {
        let why = match e.problem {
            crate::error::BodyFileProblem::TooLarge => format!("{} (16 MiB)", e.why),
            _ => e.why,
        };
        crate::error::ExpectedError::BodyFile {
            path: path.to_path_buf(),
            why,
            problem: e.problem,
        }
        .into()
    })
}

fn read_stdin() -> anyhow::Result<String> {
    // If nothing arrives for a while, say what relay is waiting for: an agent that forgot the
    // body would otherwise see a silent hang on an inherited, never-closed stdin.
    let got_data = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&got_data);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        if !flag.load(Ordering::Relaxed) {
            eprintln!(
                "relay: waiting for the body on stdin (end it with EOF; or pass BODY or --body-file)"
            );
        }
    });
    let mut buf = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = stdin
            .read(&mut chunk)
            .context("reading the body from stdin")?;
        if n == 0 {
            break;
        }
        got_data.store(true, Ordering::Relaxed);
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > relay_core::MAX_BODY_BYTES {
            anyhow::bail!(relay_core::Error::InvalidInput {
                field: "body",
                message: format!(
                    "stdin gave more than {} bytes (16 MiB); put large material in a file and refer to it",
                    relay_core::MAX_BODY_BYTES
                ),
            });
        }
    }
    String::from_utf8(buf).map_err(|e| {
        relay_core::Error::InvalidInput {
            field: "body",
            message: format!(
                "stdin is not valid UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ),
        }
        .into()
    })
}

/// Now, or the fixed time in `RELAY_NOW` (RFC 3339), which tests and reproducible runs use.
pub fn now() -> anyhow::Result<OffsetDateTime> {
    match std::env::var("RELAY_NOW") {
        Ok(s) if !s.is_empty() => OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| {
            usage(
                format!("RELAY_NOW={s:?} is not an RFC 3339 time: {e}"),
                "e.g. RELAY_NOW=2026-11-21T16:30:00Z",
            )
        }),
        _ => Ok(OffsetDateTime::now_utc()),
    }
}

/// The project's relay directory: `--root` / `RELAY_ROOT`, else the git top-level, else cwd.
pub fn relay_dir(root: Option<&PathBuf>) -> anyhow::Result<RelayDir> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    Ok(RelayDir::discover(&cwd, root.map(PathBuf::as_path))?)
}

/// What a new request says and where it goes: shared by `relay req` and `relay call`.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestArgs {
    /// Name of a one-shot exchange (a slug such as auth-review).
    #[arg(
        long,
        value_name = "SLUG",
        required_unless_present = "session",
        conflicts_with = "session"
    )]
    pub name: Option<String>,

    /// Session to add the next turn to (a slug; created on first use).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Kind of exchange, recorded in the request: task, question, review, handoff (see `relay
    /// handoff`), deliberate
    #[arg(long, value_name = "SLUG")]
    pub kind: Option<String>,

    /// Reasoning-effort hint (low, medium, high, ...), recorded in the request; `relay call`
    /// also passes it to CLIs that take one (codex, claude).
    #[arg(long, value_name = "LEVEL")]
    pub effort: Option<String>,

    /// Read the body from FILE instead of the BODY argument.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// The task, in natural language. `-` reads stdin; so does a missing BODY when stdin is piped.
    #[arg(value_name = "BODY")]
    pub body: Option<String>,
}

impl RequestArgs {
    /// The request to write (reads the body: argument, file or stdin).
    pub fn new_request(
        &self,
        from: &str,
        to: &str,
        final_message: bool,
    ) -> anyhow::Result<NewRequest> {
        let target = match (&self.session, &self.name) {
            (Some(s), _) => Target::Session(s.clone()),
            (None, Some(n)) => Target::Name(n.clone()),
            (None, None) => unreachable!("clap requires --name or --session"),
        };
        Ok(NewRequest {
            back: None,
            from: from.to_owned(),
            to: to.to_owned(),
            target,
            kind: self.kind.clone(),
            format: None,
            attachment: None,
            effort: self.effort.clone(),
            body: body(self.body.as_deref(), self.body_file.as_deref())?,
            final_message,
        })
    }
}

/// A one-line note when `--session S` is about to start a new session while a session with a
/// close name exists (a typo would otherwise silently fork the conversation).
pub fn note_new_session(relay: &RelayDir, args: &RequestArgs) {
    let Some(session) = args.session.as_deref() else {
        return;
    };
    if relay_core::fields::check_slug(session).is_err() || relay.session_dir(session).is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(relay.path()) else {
        return;
    };
    let mut close: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_dir().then_some(())?;
            e.file_name().into_string().ok()
        })
        .filter(|name| relay_core::fields::is_slug(name) && similar(name, session))
        .collect();
    close.sort();
    if let Some(near) = close.first() {
        eprintln!(
            "relay: note: starting a new session `{session}`; `{near}` exists (pass --session {near} to continue it)"
        );
    }
}

/// Names a typo apart: one is a prefix of the other, or at most two edits apart.
fn similar(a: &str, b: &str) -> bool {
    if a.starts_with(b) || b.starts_with(a) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

/// `--session S` of `list` and `clean`: a slug, else a usage error.
pub fn check_session(session: Option<&str>) -> anyhow::Result<()> {
    if let Some(s) = session {
        relay_core::fields::check_slug(s)
            .map_err(|m| usage(format!("--session {m}"), "session names are slugs"))?;
    }
    Ok(())
}

/// Each item trimmed and on one line; an empty one is a usage error naming the flag.
pub fn nonempty(flag: &str, items: &[String]) -> anyhow::Result<Vec<String>> {
    items
        .iter()
        .map(|i| {
            let i = i.trim();
            if i.is_empty() {
                Err(usage(format!("{flag} is empty"), "give one criterion each"))
            } else {
                Ok(i.replace('\n', " "))
            }
        })
        .collect()
}

/// Globs, checked: relative to the project root, never leaving it.
pub fn globs(flag: &str, items: &[String]) -> anyhow::Result<Vec<String>> {
    let hint = "globs are relative to the project root, like src/auth/** or *.lock";
    let items = nonempty(flag, items)?;
    for g in &items {
        if g.starts_with('/') || g.split('/').any(|part| part == "..") {
            return Err(usage(
                format!("{flag} {g}: must stay inside the project"),
                hint,
            ));
        }
        globset::Glob::new(g).map_err(|e| usage(format!("{flag} {g}: {}", e.kind()), hint))?;
    }
    Ok(items)
}
