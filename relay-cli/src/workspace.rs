//! What a peer changed in the project, outside `.relay/`: a snapshot of what git sees (HEAD,
//! and every changed, staged or untracked path with its size and modification time) before and
//! after the call. Used to hold a read-only peer to its word; outside a git work tree there is
//! no snapshot and the check says it could not be made.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// The project as git sees it at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    head: Option<String>,
    /// Path -> (porcelain status, size, mtime in ns); `.relay/` left out.
    entries: BTreeMap<String, (String, u64, i128)>,
}

/// Runs git in `root` (paths unquoted, no optional locks: relay never writes git's index) and
/// returns its stdout when it exits with one of `ok_codes`, else an error quoting git's own
/// first line.
pub fn git(root: &Path, args: &[&str], ok_codes: &[i32]) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.quotePath=false"])
        .args(args)
        .stdin(Stdio::null())
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .context("running git (is it installed?)")?;
    let code = out.status.code().unwrap_or(-1);
    if !ok_codes.contains(&code) {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        anyhow::bail!("git {}: {}", args.join(" "), first);
    }
    Ok(out.stdout)
}

/// Is `root` inside a git work tree?
pub fn in_git(root: &Path) -> bool {
    git(root, &["rev-parse", "--is-inside-work-tree"], &[0]).is_ok_and(|o| o.starts_with(b"true"))
}

/// Takes a snapshot; None outside a git work tree.
pub fn snapshot(root: &Path) -> Option<Snapshot> {
    if !in_git(root) {
        return None;
    }
    let head = git(root, &["rev-parse", "-q", "--verify", "HEAD"], &[0])
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned());
    let status = git(
        root,
        &["status", "--porcelain=v1", "-z", "--untracked-files=all"],
        &[0],
    )
    .ok()?;
    let mut entries = BTreeMap::new();
    let mut fields = status.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        let code = String::from_utf8_lossy(&field[..2]).into_owned();
        let path = String::from_utf8_lossy(&field[3..]).into_owned();
        // A rename or copy is followed by its source path.
        if code.starts_with(['R', 'C']) {
            fields.next();
        }
        if path == ".relay" || path.starts_with(".relay/") {
            continue;
        }
        let (size, mtime) = match std::fs::symlink_metadata(root.join(&path)) {
            Ok(m) => (m.len(), mtime_ns(&m)),
            Err(_) => (0, 0),
        };
        entries.insert(path, (code, size, mtime));
    }
    Some(Snapshot { head, entries })
}

#[cfg(unix)]
fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt as _;
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

#[cfg(not(unix))]
fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

/// What changed between two snapshots: paths (sorted), and `HEAD` when it moved.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if before.head != after.head {
        out.push("HEAD (a commit was made or checked out)".to_owned());
    }
    let paths: std::collections::BTreeSet<&String> =
        before.entries.keys().chain(after.entries.keys()).collect();
    for p in paths {
        if before.entries.get(p) != after.entries.get(p) {
            out.push(p.clone());
        }
    }
    out
}
