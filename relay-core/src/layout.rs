//! Where protocol files live: the project root, its `.relay/` directory, and the path of every
//! request and reply in it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoResultExt, Result};
use crate::fields::{is_slug, is_token, is_turn_stem};
use crate::message::FileKind;

/// The name of the protocol directory under the project root.
pub const RELAY_DIR_NAME: &str = ".relay";

/// The `.relay/` directory of one project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayDir {
    root: PathBuf,
    dir: PathBuf,
}

impl RelayDir {
    /// The relay directory of `root` (absolute: printed paths must work from any cwd).
    pub fn at_root(root: &Path) -> Result<RelayDir> {
        let root = match fs::canonicalize(root) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: "root directory",
                    path: root.to_path_buf(),
                });
            }
            Err(e) => return Err(e).at(root),
        };
        RelayDir::at_canonical(root)
    }

    /// [`RelayDir::at_root`] of a root already canonical.
    fn at_canonical(root: PathBuf) -> Result<RelayDir> {
        if !root.is_dir() {
            return Err(Error::NotFound {
                what: "root directory",
                path: root,
            });
        }
        // The root's path is written into every request footer; a line break in it would
        // break the footer's one-line `Reply:` field.
        if root
            .to_str()
            .is_none_or(|s| s.chars().any(char::is_control))
        {
            return Err(Error::InvalidInput {
                field: "root",
                message: format!("{} is not a printable UTF-8 path", root.display()),
            });
        }
        let dir = root.join(RELAY_DIR_NAME);
        // A `.relay` that is a link (a cloned repository can commit one) could lead every read
        // and write out of the project: refused, whatever it points at.
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Symlink { path: dir });
        }
        Ok(RelayDir { root, dir })
    }

    /// Finds the project root: `explicit` if given, else the nearest ancestor of `cwd` holding
    /// `.git` (a directory or, in worktrees and submodules, a file), else `cwd` itself.
    pub fn discover(cwd: &Path, explicit: Option<&Path>) -> Result<RelayDir> {
        if let Some(root) = explicit {
            return RelayDir::at_root(&cwd.join(root));
        }
        let cwd = fs::canonicalize(cwd).at(cwd)?;
        let root = cwd
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .unwrap_or(&cwd);
        // An ancestor of a canonical path is canonical: no second walk of its links.
        RelayDir::at_canonical(root.to_path_buf())
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.relay/` directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates `.relay/` if needed, with a `.gitignore` of `*` so the directory ignores itself
    /// and relay never edits a tracked `.gitignore`.
    pub fn ensure(&self) -> Result<()> {
        match fs::create_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !self.dir.is_dir() {
                    return Err(Error::Io {
                        path: self.dir.clone(),
                        source: e,
                    });
                }
            }
            Err(e) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        }
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            match crate::store::write_new(
                &ignore,
                b"# Written by relay: the exchanges in .relay/ stay out of git.\n*\n",
            ) {
                Ok(()) | Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every file directly in `.relay/` or in one of its directories (the sessions), sorted;
    /// none when `.relay/` does not exist.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        for entry in rd {
            let path = entry.at(&self.dir)?.path();
            if path.is_dir() {
                for inner in fs::read_dir(&path).at(&path)? {
                    out.push(inner.at(&path)?.path());
                }
            } else {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The directory of session `session` (not created).
    pub fn session_dir(&self, session: &str) -> PathBuf {
        debug_assert!(is_slug(session));
        self.dir.join(session)
    }

    /// `.relay/<name>` (a session, `.cache`, `.hooks`), created if missing; one that is (or
    /// leads through) a link out of `.relay/` is refused, never written through.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Io {
                    path: dir,
                    source: e,
                });
            }
            _ => {}
        }
        self.contain(&dir)
    }

    /// `path`, made absolute and checked to stay inside `.relay/` (symlinks resolved for the
    /// part that exists).
    pub fn contain(&self, path: &Path) -> Result<PathBuf> {
        let outside = || Error::OutsideRelayDir {
            path: path.to_path_buf(),
            relay_dir: self.dir.clone(),
        };
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().at(path)?.join(path)
        };
        let mut normal = PathBuf::new();
        for c in abs.components() {
            match c {
                Component::ParentDir => {
                    normal.pop();
                }
                Component::CurDir => {}
                c => normal.push(c),
            }
        }
        // Resolve symlinks on the longest existing prefix, keep the rest as written.
        let mut existing = normal.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            rest.push(existing.file_name().ok_or_else(outside)?.to_owned());
            existing = existing.parent().ok_or_else(outside)?;
        }
        let mut real = fs::canonicalize(existing).at(existing)?;
        real.extend(rest.iter().rev());
        let dir = fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        if real.starts_with(&dir) && real != dir {
            Ok(real)
        } else {
            Err(outside())
        }
    }

    /// Resolves what a user typed to a request path: an id (`20261121-163000-auth-review`), a
    /// unique name suffix (`auth-review`), `session/turn` (`auth/3` or `auth/003`), or a path to
    /// a `.req.md` / `.res.md` file.
    pub fn locate(&self, reference: &str) -> Result<PathBuf> {
        let as_path = Path::new(reference);
        if let Some(kind) = FileKind::of_path(as_path) {
            let path = self.contain(as_path)?;
            let req = match kind {
                FileKind::Request => path,
                FileKind::Response => swap_suffix(&path, FileKind::Request),
            };
            return if req.exists() {
                Ok(req)
            } else {
                Err(Error::NotFound {
                    what: "request",
                    path: req,
                })
            };
        }
        let no_match = || Error::NoMatch {
            reference: reference.to_owned(),
            relay_dir: self.dir.clone(),
        };
        if let Some((session, turn)) = reference.split_once('/') {
            if !is_slug(session) || !is_turn_stem(turn) {
                return Err(no_match());
            }
            let n: u64 = turn.parse().map_err(|_| no_match())?;
            let dir = self.session_dir(session);
            let turns = crate::store::session_turns(&dir)?;
            return turns
                .into_iter()
                .find(|t| t.number == n && t.request)
                .map(|t| dir.join(format!("{}.req.md", t.stem)))
                .ok_or_else(no_match);
        }
        if !is_token(reference) {
            return Err(no_match());
        }
        let exact = self.dir.join(format!("{reference}.req.md"));
        if exact.exists() {
            return Ok(exact);
        }
        if is_slug(reference) && self.session_dir(reference).is_dir() {
            return Err(Error::InvalidInput {
                field: "exchange",
                message: format!(
                    "`{reference}` is a session; name one turn, e.g. `{reference}/1`, or run `relay list --session {reference}`"
                ),
            });
        }
        // A name given without its timestamp: `auth-review` for `20261121-163000-auth-review`
        // (or `...-auth-review-2`, a same-second twin); the newest wins.
        let mut hits = self.named(reference);
        hits.pop().ok_or_else(no_match)
    }

    /// Every one-shot request whose name is exactly `name`, or `name-N` (the `-2`, `-3` relay
    /// adds to an id taken in the same second), oldest first. `review` never matches
    /// `ro-review` or `review-old`.
    pub fn named(&self, name: &str) -> Vec<PathBuf> {
        let mut hits: Vec<String> = match fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| {
                    n.strip_suffix(FileKind::Request.suffix())
                        .and_then(id_name)
                        .is_some_and(|got| name_matches(got, name))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        // Ids start with their UTC timestamp; within one second, `name` before `name-2`, ...
        hits.sort_by_cached_key(|h| {
            let id = stem_of(h);
            let got = id_name(id).unwrap_or_default();
            let twin: u64 = got
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            (id[..id.len() - got.len()].to_owned(), twin)
        });
        hits.into_iter().map(|h| self.dir.join(h)).collect()
    }
}

/// The name part of a one-shot id: `auth-review` of `20261121-163000-auth-review` (and of the
/// v4 form `20261121-1630-auth-review`).
fn id_name(id: &str) -> Option<&str> {
    let (date, rest) = id.split_once('-')?;
    let (time, name) = rest.split_once('-')?;
    let digits =
        |s: &str, n: &[usize]| n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    (digits(date, &[8]) && digits(time, &[4, 6]) && !name.is_empty()).then_some(name)
}

fn name_matches(got: &str, wanted: &str) -> bool {
    got == wanted
        || got
            .strip_prefix(wanted)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n != "0" && n != "1"
            })
}

/// The exchange stem of a protocol file name: `x` of `x.req.md` or `x.res.md` (any other
/// name is its own stem).
pub fn stem_of(name: &str) -> &str {
    name.strip_suffix(FileKind::Request.suffix())
        .or_else(|| name.strip_suffix(FileKind::Response.suffix()))
        .unwrap_or(name)
}

fn file_stem(path: &Path) -> &str {
    stem_of(
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default(),
    )
}

/// `x.req.md` <-> `x.res.md`: the reply path is derived from the request path, never stored.
pub fn swap_suffix(path: &Path, to: FileKind) -> PathBuf {
    path.with_file_name(format!("{}{}", file_stem(path), to.suffix()))
}

/// The reply path of a request path.
pub fn reply_path(request: &Path) -> PathBuf {
    swap_suffix(request, FileKind::Response)
}

/// The files relay keeps beside an exchange `<stem>.req.md`, by extension (`<stem>.<ext>`):
/// the run record of the call, the peer's output logs, the background supervisor's log.
pub const BESIDE_RUN_RECORD: &str = "run.json";

/// `<stem>` + this is a run record's file name (the whole suffix, for matching names).
pub const RUN_RECORD_SUFFIX: &str = ".run.json";
/// The peer's stdout, captured by `relay call`.
pub const BESIDE_STDOUT_LOG: &str = "stdout.log";
/// The peer's stderr, captured by `relay call`.
pub const BESIDE_STDERR_LOG: &str = "stderr.log";
/// The `--bg` supervisor's own output.
pub const BESIDE_SUPERVISOR_LOG: &str = "supervisor.log";
/// The peer's stdout and stderr from a failed attempt to resume its session.
pub const BESIDE_RESUME_FAILED_LOGS: [&str; 2] =
    ["stdout.resume-failed.log", "stderr.resume-failed.log"];
/// The per-call usage log, `.relay/calls.jsonl`: one JSON line per finished call. (Not
/// `ledger.jsonl`: that name is kept for the session record of notes and decisions.)
pub const CALL_LOG: &str = "calls.jsonl";
/// A review's patch (the diff the peer reviews), attached to its request.
pub const BESIDE_PATCH: &str = "patch";
/// A review's checked findings, as data (`relay review` writes it after the call).
pub const BESIDE_FINDINGS: &str = "findings.json";
/// Beside a request: the patch of what the peer changed in the project during the call.
pub const BESIDE_CHANGES: &str = "changes.patch";
/// Beside a request: the output of the checks relay ran itself after the call (`--verify-cmd`).
pub const BESIDE_VERIFY_LOG: &str = "verify.log";
/// Every kind of file beside an exchange (what `relay clean` removes with it).
pub const BESIDE_ALL: &[&str] = &[
    BESIDE_PATCH,
    BESIDE_FINDINGS,
    BESIDE_CHANGES,
    BESIDE_VERIFY_LOG,
    BESIDE_RUN_RECORD,
    BESIDE_STDOUT_LOG,
    BESIDE_STDERR_LOG,
    BESIDE_SUPERVISOR_LOG,
    BESIDE_RESUME_FAILED_LOGS[0],
    BESIDE_RESUME_FAILED_LOGS[1],
];

/// Where relay keeps its caches under `.relay/` (the listing, the inbox, per-call git objects):
/// a directory of its own, so that writing one does not change the modification time of
/// `.relay/` that the inbox stamps rely on.
pub const CACHE_DIR: &str = ".cache";

/// `<stem>.<ext>` beside the request `<stem>.req.md`.
pub fn beside(request: &Path, ext: &str) -> PathBuf {
    request.with_file_name(format!("{}.{ext}", file_stem(request)))
}
