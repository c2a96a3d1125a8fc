//! Turning errors into `relay: <error>`, a hint, and the spec's exit code, in one place.

use relay_core::{Error, exit};

/// An error that carries its own exit code and hint (for failures relay-core does not know).
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// A usage error (exit 2) with a hint.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    CliError {
        code: exit::USAGE,
        message: message.into(),
        hint: Some(hint.into()),
    }
    .into()
}

/// The exit code and hint for an error chain.
pub fn classify(err: &anyhow::Error) -> (u8, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return (e.code, e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<Error>() {
            return core_code(e);
        }
    }
    (exit::FAILURE, None)
}

fn core_code(e: &Error) -> (u8, Option<String>) {
    match e {
        Error::Invalid(_) => (
            exit::INVALID,
            Some("`relay validate <file>` lists every problem".into()),
        ),
        Error::NotFound {
            what: "request", ..
        } => (
            exit::NOT_FOUND,
            Some("`relay list` shows the exchanges that exist".into()),
        ),
        Error::NotFound {
            what: "root directory",
            ..
        } => (
            exit::NOT_FOUND,
            Some("--root (or RELAY_ROOT) must name an existing directory".into()),
        ),
        Error::NotFound { .. } => (exit::NOT_FOUND, None),
        Error::NoMatch { .. } => (
            exit::NOT_FOUND,
            Some("`relay list` shows the exchanges that exist".into()),
        ),
        Error::AlreadyExists { path } if path.to_string_lossy().ends_with(".res.md") => (
            exit::CONFLICT,
            Some("that request is answered already; pass --force to replace the reply".into()),
        ),
        Error::AlreadyExists { .. } | Error::Mismatch { .. } => (exit::CONFLICT, None),
        Error::Symlink { .. } => (
            exit::FAILURE,
            Some("replace the link with a real file or directory, or remove it".into()),
        ),
        Error::Ambiguous { .. } => (exit::USAGE, Some("name one of them by its full id".into())),
        Error::InvalidInput { .. } | Error::OutsideRelayDir { .. } => (exit::USAGE, None),
        _ => (exit::FAILURE, None),
    }
}

/// Did the error come from writing to a closed pipe? (Also inside serde_json's writer.)
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The error chain as one line, each thing said once and in words: a cause whose text its
/// context already contains is skipped (relay-core's errors embed their io::Error), and
/// std's ` (os error N)` suffix is dropped.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = strip_os_error(&text);
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

pub fn strip_os_error(text: &str) -> String {
    let mut s = text.to_owned();
    while let Some(at) = s.find(" (os error ") {
        let Some(end) = s[at..].find(')') else { break };
        s.replace_range(at..at + end + 1, "");
    }
    s
}

/// Every `fs` error a command reports for a file the user named, with its exit code: a
/// missing file is `not-found` (4), anything else a failure.
pub fn io_code(e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::NotFound {
        exit::NOT_FOUND
    } else {
        exit::FAILURE
    }
}
