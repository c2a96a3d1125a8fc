//! What a peer changed in the project, outside `.relay/`: the working tree and the index as
//! git trees before and after the call, HEAD, and the patch between them. The trees are written
//! with a copy of the index into an object directory of the call's own under `.relay/.cache/`
//! (the repository's objects serve as an alternate), so nothing is written to the repository
//! and only the peer's changes count, whatever was dirty before. Outside a git work tree there
//! is no evidence, and the record says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// Runs git in `root` (paths unquoted, no optional locks: relay never writes git's index) and
/// returns its stdout when it exits with one of `ok_codes`, else an error quoting git's own
/// first line.
pub fn git(root: &Path, args: &[&str], ok_codes: &[i32]) -> anyhow::Result<Vec<u8>> {
    git_with(root, args, ok_codes, &[])
}

fn git_with(
    root: &Path,
    args: &[&str],
    ok_codes: &[i32],
    env: &[(&str, &Path)],
) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(root)
        .args(["-c", "core.quotePath=false"])
        .args(args)
        .stdin(Stdio::null())
        .env("GIT_OPTIONAL_LOCKS", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("running git (is it installed?)")?;
    let code = out.status.code().unwrap_or(-1);
    if !ok_codes.contains(&code) {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        anyhow::bail!("git {}: {}", args.join(" "), first);
    }
    Ok(out.stdout)
}

/// Could git find a repository for `root`? Only with `GIT_DIR`/`GIT_WORK_TREE` set, or a
/// `.git` in it or above it that is a file (a worktree's or submodule's link) or a directory
/// with a `HEAD` (what git itself requires of one).
fn may_be_git(root: &Path) -> bool {
    ["GIT_DIR", "GIT_WORK_TREE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
        || root.ancestors().any(|dir| {
            let git = dir.join(".git");
            std::fs::metadata(&git)
                .is_ok_and(|m| m.is_file() || (m.is_dir() && git.join("HEAD").exists()))
        })
}

/// Is `root` inside a git work tree? Git is asked only where a repository could be: a project
/// outside git costs no process.
pub fn in_git(root: &Path) -> bool {
    if !may_be_git(root) {
        return false;
    }
    git(root, &["rev-parse", "--is-inside-work-tree"], &[0]).is_ok_and(|o| o.starts_with(b"true"))
}

/// The project at one moment, as git objects in a call's scratch store.
#[derive(Debug, Clone)]
pub struct State {
    head: Option<String>,
    head_tree: Option<String>,
    index: String,
    tree: String,
    /// Branches and tags: `refs/...` -> object.
    refs: std::collections::BTreeMap<String, String>,
}

impl State {
    fn dirty(&self) -> bool {
        self.head_tree.as_deref() != Some(&self.tree)
            || self.head_tree.as_deref() != Some(&self.index)
    }
}

/// A call's scratch store: `.relay/.cache/git-<tag>/` holding its objects and index copy;
/// removed when the evidence is taken.
pub struct Scratch {
    root: PathBuf,
    dir: PathBuf,
    objects: PathBuf,
    alternates: PathBuf,
    real_index: PathBuf,
}

/// One path the peer changed (`git diff --name-status` letters: A, M, D, R, T, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub status: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What the call did to the project: recorded in the run record, shown by `relay show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub head_before: Option<String>,
    pub head_after: Option<String>,
    pub dirty_before: bool,
    pub dirty_after: bool,
    /// The index (staged changes) is not what it was.
    pub index_changed: bool,
    /// Files the peer changed in the working tree, renames detected.
    pub changed: Vec<Change>,
    /// Branches and tags the call created, moved or deleted (`refs/heads/x created`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs_changed: Vec<String>,
    /// The patch of those changes (`git diff --binary`), beside the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PathBuf>,
}

impl Evidence {
    /// What the call did to git's own state: HEAD, branches and tags, the index.
    pub fn git_writes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.head_before != self.head_after {
            out.push("moved HEAD".to_owned());
        }
        out.extend(self.refs_changed.iter().cloned());
        if self.index_changed {
            out.push("changed the index".to_owned());
        }
        out
    }

    /// What the call changed, in words: each path, then HEAD and the index if they moved.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self.changed.iter().map(|c| c.path.clone()).collect();
        if self.head_before != self.head_after {
            out.push("HEAD (a commit was made or checked out)".to_owned());
        }
        if self.index_changed {
            out.push("the index (staged changes)".to_owned());
        }
        out
    }
}

impl Scratch {
    /// A scratch store for one call (`tag`: unique per call); None outside a git work tree.
    pub fn new(relay: &relay_core::RelayDir, tag: &str) -> anyhow::Result<Option<Scratch>> {
        let root = relay.root().to_path_buf();
        if !in_git(&root) {
            return Ok(None);
        }
        let path = |what: &str| -> anyhow::Result<PathBuf> {
            let out = git(&root, &["rev-parse", "--git-path", what], &[0])?;
            let p = PathBuf::from(String::from_utf8_lossy(&out).trim());
            Ok(if p.is_absolute() { p } else { root.join(p) })
        };
        let cache = relay.subdir(relay_core::CACHE_DIR)?;
        let dir = cache.join(format!("git-{tag}"));
        let objects = dir.join("objects");
        std::fs::create_dir_all(&objects)?;
        Ok(Some(Scratch {
            alternates: path("objects")?,
            real_index: path("index")?,
            objects,
            dir,
            root,
        }))
    }

    fn git(&self, args: &[&str], index: Option<&Path>) -> anyhow::Result<Vec<u8>> {
        let mut env = vec![
            ("GIT_OBJECT_DIRECTORY", self.objects.as_path()),
            (
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                self.alternates.as_path(),
            ),
        ];
        if let Some(i) = index {
            env.push(("GIT_INDEX_FILE", i));
        }
        git_with(&self.root, args, &[0], &env)
    }

    /// HEAD, the index and the working tree (outside `.relay/`) as trees, without touching the
    /// repository: the index is copied first (`write-tree` and `add` write to the copy).
    pub fn state(&self, name: &str) -> anyhow::Result<State> {
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_owned();
        let head = git(
            &self.root,
            &["rev-parse", "-q", "--verify", "HEAD"],
            &[0, 1],
        )
        .map(text)
        .ok()
        .filter(|h| !h.is_empty());
        let head_tree = head
            .as_ref()
            .and_then(|h| git(&self.root, &["rev-parse", &format!("{h}^{{tree}}")], &[0]).ok())
            .map(text);
        let index = self.dir.join(format!("index-{name}"));
        match std::fs::copy(&self.real_index, &index) {
            Ok(_) => {}
            // A repository without an index yet (nothing added): an empty one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let staged = text(self.git(&["write-tree"], Some(&index))?);
        self.git(&["add", "-A", "--", ".", ":(exclude).relay"], Some(&index))?;
        let tree = text(self.git(&["write-tree"], Some(&index))?);
        let refs = git(
            &self.root,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads",
                "refs/tags",
            ],
            &[0],
        )?;
        let refs = String::from_utf8_lossy(&refs)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(r, o)| (r.to_owned(), o.to_owned()))
            .collect();
        Ok(State {
            head,
            head_tree,
            index: staged,
            tree,
            refs,
        })
    }

    /// What changed between two states; the patch goes to `patch` when there is one. The
    /// scratch store is removed.
    pub fn evidence(self, before: &State, after: &State, patch: &Path) -> anyhow::Result<Evidence> {
        let out = self.git(
            &[
                "diff",
                "--name-status",
                "-z",
                "-M",
                &before.tree,
                &after.tree,
            ],
            None,
        )?;
        let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
        let mut changed = Vec::new();
        while let Some(status) = fields.next() {
            let status = String::from_utf8_lossy(status).into_owned();
            let Some(first) = fields.next() else { break };
            let first = String::from_utf8_lossy(first).into_owned();
            if status.starts_with(['R', 'C']) {
                let Some(to) = fields.next() else { break };
                changed.push(Change {
                    status: status[..1].to_owned(),
                    path: String::from_utf8_lossy(to).into_owned(),
                    from: Some(first),
                });
            } else {
                changed.push(Change {
                    status,
                    path: first,
                    from: None,
                });
            }
        }
        let mut saved = None;
        if !changed.is_empty() {
            let diff = self.git(&["diff", "--binary", "-M", &before.tree, &after.tree], None)?;
            relay_core::write_replace(patch, &diff)?;
            saved = Some(patch.to_path_buf());
        }
        let evidence = Evidence {
            head_before: before.head.clone(),
            head_after: after.head.clone(),
            dirty_before: before.dirty(),
            dirty_after: after.dirty(),
            index_changed: before.index != after.index,
            changed,
            refs_changed: before
                .refs
                .keys()
                .chain(after.refs.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter_map(|r| match (before.refs.get(r), after.refs.get(r)) {
                    (None, Some(_)) => Some(format!("{r} created")),
                    (Some(_), None) => Some(format!("{r} deleted")),
                    (Some(a), Some(b)) if a != b => Some(format!("{r} moved")),
                    _ => None,
                })
                .collect(),
            patch: saved,
        };
        Ok(evidence)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
