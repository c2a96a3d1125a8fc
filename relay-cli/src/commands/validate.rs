//! `relay validate`: check protocol files against the spec.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::{Error, Report, exit, validate_file};

use crate::input;

/// Check requests and replies against the protocol.
///
/// Prints one line per problem, `path:line: field: message`, and exits 0 when every file is
/// valid (warnings allowed), 3 when any is invalid, 4 when a file does not exist. With no FILE,
/// checks every request and reply under .relay/.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay validate .relay/20261121-163000-auth-review.res.md
  relay validate                # everything under .relay/
  relay validate --json reply.res.md")]
pub struct ValidateArgs {
    /// Files to check (`*.req.md`, `*.res.md`; other names are sniffed from their fields).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Print a JSON report instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(root: Option<&PathBuf>, args: &ValidateArgs) -> anyhow::Result<u8> {
    let files = if args.files.is_empty() {
        let relay = input::relay_dir(root)?;
        let files = relay.files()?;
        files
            .into_iter()
            .filter(|p| relay_core::FileKind::of_path(p).is_some())
            .collect()
    } else {
        args.files.clone()
    };
    let mut reports = Vec::new();
    let mut missing = Vec::new();
    for file in &files {
        match validate_file(file) {
            Ok(report) => reports.push(report),
            Err(Error::NotFound { path, .. }) => missing.push(path),
            Err(e) => return Err(e.into()),
        }
    }
    let invalid = reports.iter().filter(|r| !r.is_valid()).count();
    if args.json {
        crate::output::json(&ValidateJson {
            valid: invalid == 0 && missing.is_empty(),
            files: reports.iter().map(FileJson::of).collect(),
            missing: &missing,
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        for d in reports.iter().flat_map(|r| &r.diagnostics) {
            writeln!(out, "{d}")?;
        }
        for path in &missing {
            writeln!(out, "{}: file: does not exist", path.display())?;
        }
    }
    Ok(if !missing.is_empty() {
        exit::NOT_FOUND
    } else if invalid > 0 {
        exit::INVALID
    } else {
        exit::OK
    })
}

/// `relay validate --json`.
#[derive(serde::Serialize)]
struct ValidateJson<'a> {
    valid: bool,
    files: Vec<FileJson<'a>>,
    missing: &'a [std::path::PathBuf],
}

#[derive(serde::Serialize)]
struct FileJson<'a> {
    path: &'a std::path::Path,
    kind: Option<relay_core::FileKind>,
    valid: bool,
    diagnostics: &'a [relay_core::Diagnostic],
}

impl<'a> FileJson<'a> {
    fn of(r: &'a Report) -> Self {
        FileJson {
            path: &r.path,
            kind: r.kind,
            valid: r.is_valid(),
            diagnostics: &r.diagnostics,
        }
    }
}
