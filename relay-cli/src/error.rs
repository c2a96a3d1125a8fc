//! Turning errors into `relay: <error>`, a hint, and the spec's exit code, in one place.

use std::path::PathBuf;

use relay_core::{Error, exit};

/// Every refusal relay expects, each with its exit code and hint decided in one place
/// ([`ExpectedError::code_and_hint`]), as nextest's `ExpectedError`. relay-core's own errors
/// are mapped in [`classify`]; anything else is an unexpected failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// The command line is wrong.
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// `relay call` inside a relay call nested too deep.
    #[error("refusing to nest relay calls deeper than {max} (RELAY_DEPTH={depth})")]
    Recursion { depth: u64, max: u64 },
    /// Inside Codex's sandbox with the network off: a peer could not reach its model.
    #[error(
        "running inside Codex's sandbox with the network disabled: {peer} could not reach its model API"
    )]
    NoNetwork { peer: String },
    /// The peer's program is not on PATH (checked before anything is written).
    #[error("`{program}` not found on PATH")]
    PeerNotFound {
        program: String,
        install_hint: Option<String>,
    },
    /// `wait`, `status`, `cancel` on an exchange `relay call` never ran.
    #[error("{} has no run record: it was not started by `relay call`", request.display())]
    NoRunRecord { request: PathBuf },
    /// `wait` on a call whose supervisor died without finishing the record.
    #[error("the relay process supervising {exchange} (pid {pid}) is gone")]
    SupervisorGone {
        exchange: String,
        pid: u32,
        log: PathBuf,
    },
    /// `skill install` over a SKILL.md relay did not write.
    #[error("{} is a skill named relay that relay did not write", path.display())]
    ForeignSkill { path: PathBuf },
    /// A file the user named (to review, ...) does not exist.
    #[error("{} does not exist", path.display())]
    NoSuchFile { path: PathBuf, hint: String },
    /// `relay close` while work in the session is open.
    #[error("{session} has open work: {list}")]
    OpenWork { session: String, list: String },
    /// `relay close --approve` with no final proposal standing.
    #[error("{session} has no final proposal to approve ({state})")]
    NothingToApprove { session: String, state: String },
    /// `relay close --approve` from inside an agent.
    #[error("refusing to sign off {session} from inside {agent}: finality is a human's call")]
    ApproveInsideAgent { session: String, agent: String },
    /// `--body-file` cannot be used as a body.
    #[error("cannot read --body-file {}: {why}", path.display())]
    BodyFile {
        path: PathBuf,
        why: String,
        problem: BodyFileProblem,
    },
}

/// What is wrong with a `--body-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFileProblem {
    Missing,
    Unreadable,
    NotRegular,
    TooLarge,
    NotUtf8,
}

impl ExpectedError {
    /// The exit code (spec section 9) and the hint shown under the error.
    pub fn code_and_hint(&self) -> (u8, Option<String>) {
        match self {
            ExpectedError::Usage { hint, .. } => (exit::USAGE, Some(hint.clone())),
            ExpectedError::NoSuchFile { hint, .. } => (exit::NOT_FOUND, Some(hint.clone())),
            ExpectedError::Recursion { .. } => (
                exit::RECURSION,
                Some("a peer asked relay to call another peer; answer the task yourself, or raise RELAY_MAX_DEPTH".into()),
            ),
            ExpectedError::NoNetwork { .. } => (
                exit::FAILURE,
                Some("restart Codex with `-c sandbox_workspace_write.network_access=true`; set RELAY_ALLOW_NO_NETWORK=1 for a peer that needs no network".into()),
            ),
            ExpectedError::PeerNotFound { install_hint, .. } => (
                exit::PEER_NOT_FOUND,
                Some(match install_hint {
                    Some(h) => format!("install it ({h}), or name another program with --peer-cmd; `relay doctor` checks every peer"),
                    None => "check the command, or see `relay doctor`".into(),
                }),
            ),
            ExpectedError::NoRunRecord { .. } => (
                exit::NOT_FOUND,
                Some("`relay show` reads an exchange; `relay status` lists calls".into()),
            ),
            ExpectedError::SupervisorGone { log, .. } => {
                (exit::FAILURE, Some(format!("its log: {}", log.display())))
            }
            ExpectedError::ForeignSkill { .. } => (
                exit::CONFLICT,
                Some("move it away, or pass --force to replace it".into()),
            ),
            ExpectedError::OpenWork { .. } => (
                exit::OPEN_WORK,
                Some("answer or cancel them first (`relay board` shows them), then propose finality".into()),
            ),
            ExpectedError::NothingToApprove { session, .. } => (
                exit::OPEN_WORK,
                Some(format!("an agent proposes it first: relay close {session} --summary '...'")),
            ),
            ExpectedError::ApproveInsideAgent { .. } => (
                exit::CONFLICT,
                Some("run it in your own terminal; --force signs off anyway and records that it was forced".into()),
            ),
            ExpectedError::BodyFile { problem, .. } => match problem {
                BodyFileProblem::Missing => (
                    exit::NOT_FOUND,
                    Some("pass an existing file, or the body itself as the last argument".into()),
                ),
                BodyFileProblem::Unreadable => (exit::FAILURE, Some("pass a readable file".into())),
                BodyFileProblem::NotRegular => (
                    exit::USAGE,
                    Some("for a pipe or a device, pass `-` and send it to stdin: cmd | relay req ... -".into()),
                ),
                BodyFileProblem::TooLarge => (
                    exit::USAGE,
                    Some("put large material in a file of the project and refer to it in the task".into()),
                ),
                BodyFileProblem::NotUtf8 => {
                    (exit::USAGE, Some("relay requests are UTF-8 text".into()))
                }
            },
        }
    }
}

/// A usage error (exit 2) with a hint.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    ExpectedError::Usage {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// The exit code and hint for an error chain.
pub fn classify(err: &anyhow::Error) -> (u8, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ExpectedError>() {
            return e.code_and_hint();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every expected refusal exits with a code the spec's table documents, and has a hint.
    #[test]
    fn every_refusal_has_a_documented_code_and_a_hint() {
        let p = PathBuf::from("/x");
        let all = [
            ExpectedError::Usage {
                message: "m".into(),
                hint: "h".into(),
            },
            ExpectedError::Recursion { depth: 2, max: 2 },
            ExpectedError::NoNetwork {
                peer: "codex".into(),
            },
            ExpectedError::PeerNotFound {
                program: "codex".into(),
                install_hint: None,
            },
            ExpectedError::NoRunRecord { request: p.clone() },
            ExpectedError::SupervisorGone {
                exchange: "e".into(),
                pid: 1,
                log: p.clone(),
            },
            ExpectedError::ForeignSkill { path: p.clone() },
        ]
        .into_iter()
        .chain(
            [
                BodyFileProblem::Missing,
                BodyFileProblem::Unreadable,
                BodyFileProblem::NotRegular,
                BodyFileProblem::TooLarge,
                BodyFileProblem::NotUtf8,
            ]
            .map(|problem| ExpectedError::BodyFile {
                path: p.clone(),
                why: "w".into(),
                problem,
            }),
        );
        for e in all {
            let (code, hint) = e.code_and_hint();
            assert!(
                exit::TABLE.iter().any(|(c, _, _)| *c == code),
                "{e}: {code} is not in the table"
            );
            assert!(hint.is_some_and(|h| !h.is_empty()), "{e}: no hint");
        }
    }
}
