//! `relay validate`: every problem in a file, plus the checks that need its partner file.

use std::path::Path;

use crate::error::{Diagnostic, Error};
use crate::layout::swap_suffix;
use crate::message::{self, FileKind, Message};
use crate::store::decode;

/// The outcome of validating one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The file.
    pub path: std::path::PathBuf,
    /// Request or response, if it could be told.
    pub kind: Option<FileKind>,
    /// Every problem, in line order.
    pub diagnostics: Vec<Diagnostic>,
    /// The parsed message (absent when required fields are unreadable).
    #[serde(skip)]
    pub message: Option<Message>,
}

impl Report {
    /// No diagnostic is an error.
    pub fn is_valid(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == crate::Severity::Error)
    }
}

/// Validates the file at `path`. A reply is also checked against its request when that file
/// exists beside it: `from`/`to` should be the request's `to`/`from`.
pub fn validate_file(path: &Path) -> Result<Report, Error> {
    let cap = crate::message::MAX_FILE_BYTES as u64 + 1;
    let bytes = crate::untrusted::read_capped(path, cap).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            what: "file",
            path: path.to_path_buf(),
        },
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let text = match decode(path, bytes) {
        Ok(t) => t,
        Err(d) => {
            return Ok(Report {
                path: path.to_path_buf(),
                kind: FileKind::of_path(path),
                diagnostics: vec![d],
                message: None,
            });
        }
    };
    let parsed = message::parse(path, &text);
    let mut diagnostics = parsed.diagnostics;
    if let Some(Message::Response(res)) = &parsed.message {
        cross_check(path, &text, res, &mut diagnostics);
    }
    Ok(Report {
        path: path.to_path_buf(),
        kind: parsed.kind,
        diagnostics,
        message: parsed.message,
    })
}

fn cross_check(path: &Path, text: &str, res: &message::Response, diags: &mut Vec<Diagnostic>) {
    if FileKind::of_path(path) != Some(FileKind::Response) {
        return;
    }
    let req_path = swap_suffix(path, FileKind::Request);
    let Ok(Message::Request(req)) = crate::store::read_header(&req_path) else {
        return;
    };
    let line_of = |field: &str| {
        text.lines()
            .position(|l| l.starts_with(&format!("{field}:")))
            .map_or(1, |i| i + 1)
    };
    for (field, got, want) in [("from", &res.from, &req.to), ("to", &res.to, &req.from)] {
        if !got.eq_ignore_ascii_case(want) {
            diags.push(Diagnostic::warning(
                path,
                line_of(field),
                field,
                format!(
                    "is `{got}` but the request was {} -> {}, so it should be `{want}`",
                    req.from, req.to
                ),
            ));
        }
    }
    // A structured kind (review, deliberate) also fixes the shape of the reply's body.
    if let Err(found) = crate::review::check_reply(req.format.as_deref(), path, text) {
        diags.extend(found);
    }
    diags.sort_by_key(|d| d.line);
}
