//! Error and diagnostic types. Every problem names a file, and where it can, a line and a field.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is still usable; something is odd (e.g. a newer protocol version).
    Warning,
    /// The file breaks the protocol.
    Error,
}

/// One problem found in a protocol file: `path:line: field: message`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub path: PathBuf,
    /// 1-based line number in the file (the line of the offending field when known).
    pub line: usize,
    /// The field (`id`, `status`, ...) or the file part (`frontmatter`, `body`, `footer`, `file`).
    pub field: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(path: &Path, line: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            field: field.to_owned(),
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub(crate) fn warning(
        path: &Path,
        line: usize,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, line, field, message)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warn = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error => "",
        };
        write!(
            f,
            "{}:{}: {}: {warn}{}",
            self.path.display(),
            self.line,
            self.field,
            self.message
        )
    }
}

/// A file that failed validation, with every problem found (errors first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFile {
    /// All diagnostics, at least one of them an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error);
        if let Some(first) = errors.next() {
            write!(f, "{first}")?;
        }
        let more = errors.count();
        if more > 0 {
            write!(
                f,
                " (and {more} more problem{})",
                if more == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in relay-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A protocol file does not follow the spec.
    #[error("{0}")]
    Invalid(InvalidFile),
    /// A value given to relay (a flag, a body) cannot be written into a protocol file.
    #[error("{field}: {message}")]
    InvalidInput {
        /// The field or flag.
        field: &'static str,
        /// Why it was refused.
        message: String,
    },
    /// The named exchange, request or file does not exist.
    #[error("{what} not found: {}", path.display())]
    NotFound {
        /// What was looked for (`request`, `exchange`, ...).
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// An exchange reference (id, session/turn) matches nothing.
    #[error("no exchange matches `{reference}` in {}", relay_dir.display())]
    NoMatch {
        /// What the user typed.
        reference: String,
        /// The `.relay/` directory searched.
        relay_dir: PathBuf,
    },
    /// An exchange reference matches more than one exchange.
    #[error("`{reference}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        /// What the user typed.
        reference: String,
        /// The ids it matches.
        candidates: Vec<String>,
    },
    /// relay refuses to overwrite an existing request or reply.
    #[error("{} already exists", path.display())]
    AlreadyExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A reply does not fit the request it answers (wrong id, wrong direction).
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The request involved.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// A symbolic link where relay needs a real file or directory.
    #[error("{} is a symbolic link; relay does not follow links under .relay/", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A path would leave the `.relay/` directory.
    #[error("{} is outside {}", path.display(), relay_dir.display())]
    OutsideRelayDir {
        /// The offending path.
        path: PathBuf,
        /// The `.relay/` directory.
        relay_dir: PathBuf,
    },
}

/// Result alias for relay-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error` (jj's `IoResultExt` idea).
pub(crate) trait IoResultExt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
