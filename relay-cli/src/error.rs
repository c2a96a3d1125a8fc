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
        Error::InvalidInput { .. } | Error::Ambiguous { .. } | Error::OutsideRelayDir { .. } => {
            (exit::USAGE, None)
        }
        _ => (exit::FAILURE, None),
    }
}

/// Did the error come from writing to a closed pipe?
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
