//! Reviews: what to review (from git or a file list), the request that asks for it, the
//! findings checked against the tree as it is, and grouping across peers. The formats findings
//! leave relay in live in `findings_out`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use relay_core::review::{Correctness, FORMAT_FINDINGS, Finding, KindReply, Level};
use serde::Serialize;

use crate::error::usage;
use crate::run::{Outcome, RunRecord};
use crate::workspace::git;

/// What to review.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Uncommitted changes (staged, unstaged, untracked) against HEAD.
    Uncommitted,
    /// Everything since the branch left REF (merge base), uncommitted changes included.
    Base(String),
    /// One commit.
    Commit(String),
    /// Whole files, as they are.
    Files(Vec<PathBuf>),
}

/// The largest patch relay hands a reviewer (within Gemini CLI's 8 MiB stdin with the request).
pub const MAX_PATCH_BYTES: usize = 6 * 1024 * 1024;

/// The material of a review: a patch (unless whole files are reviewed) and the files.
#[derive(Debug, Clone, Default)]
pub struct Material {
    /// In words: `the uncommitted changes`, `commit abc123`, ...
    pub what: String,
    pub patch: Option<String>,
    /// Changed (or named) files, relative to the root.
    pub files: Vec<String>,
    /// Of those, the binary ones (listed, not reviewable).
    pub binary: Vec<String>,
}

impl Material {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Gathers what `scope` names. Errors say what to change (not a repository, unknown ref,
/// missing file, a patch too large).
pub fn gather(root: &Path, scope: &Scope) -> anyhow::Result<Material> {
    if let Scope::Files(paths) = scope {
        return named_files(root, paths);
    }
    if !crate::workspace::in_git(root) {
        return Err(usage(
            format!(
                "{} is not in a git repository, so there is no diff to review",
                root.display()
            ),
            "name the files instead: relay review --with PEER --files PATH...",
        ));
    }
    // Paths relative to the root, `.relay/` left out (relay's own trail is not under review).
    let pathspec = ["--", ".", ":(exclude).relay"];
    let diff_opts = ["--no-color", "--no-ext-diff", "--no-textconv", "--relative"];
    let verify = |r: &str| -> anyhow::Result<String> {
        let out = git(
            root,
            &["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")],
            &[0, 1],
        )?;
        let sha = String::from_utf8_lossy(&out).trim().to_owned();
        if sha.is_empty() {
            return Err(usage(
                format!("`{r}` is not a commit in this repository"),
                "give a branch, tag or commit: --base main, --commit HEAD~1",
            ));
        }
        Ok(sha)
    };
    let has_head =
        git(root, &["rev-parse", "-q", "--verify", "HEAD"], &[0, 1]).is_ok_and(|o| !o.is_empty());
    let (what, mut patch, untracked) = match scope {
        Scope::Uncommitted => {
            // No commit yet: everything is new, compared with the empty tree.
            let against = if has_head {
                "HEAD".to_owned()
            } else {
                empty_tree(root)?
            };
            let mut args = vec!["diff"];
            args.extend(diff_opts);
            args.push(&against);
            args.extend(pathspec);
            (
                "the uncommitted changes (staged, unstaged and new files) against HEAD".to_owned(),
                git(root, &args, &[0])?,
                true,
            )
        }
        Scope::Base(r) => {
            let base = verify(r)?;
            let mb = git(root, &["merge-base", &base, "HEAD"], &[0])
                .with_context(|| format!("finding where HEAD left `{r}`"))?;
            let mb = String::from_utf8_lossy(&mb).trim().to_owned();
            let mut args = vec!["diff"];
            args.extend(diff_opts);
            args.push(&mb);
            args.extend(pathspec);
            (
                format!(
                    "the changes since this branch left `{r}` (merge base {}), uncommitted ones included",
                    &mb[..mb.len().min(12)]
                ),
                git(root, &args, &[0])?,
                true,
            )
        }
        Scope::Commit(c) => {
            let sha = verify(c)?;
            let mut args = vec!["show", "--format=", "--diff-merges=first-parent"];
            args.extend(diff_opts);
            args.push(&sha);
            args.extend(pathspec);
            (
                format!("commit {} (`{c}`)", &sha[..sha.len().min(12)]),
                git(root, &args, &[0])?,
                false,
            )
        }
        Scope::Files(_) => unreachable!("handled above"),
    };
    if untracked {
        let list = git(
            root,
            &[
                "ls-files",
                "--others",
                "--exclude-standard",
                "-z",
                "--",
                ".",
                ":(exclude).relay",
            ],
            &[0],
        )?;
        for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            new_file_diff(root, &name, &mut patch)?;
            if patch.len() > MAX_PATCH_BYTES {
                break;
            }
        }
    }
    if patch.len() > MAX_PATCH_BYTES {
        return Err(usage(
            format!(
                "the diff is {} MiB; relay hands a reviewer at most {} MiB",
                patch.len() / (1024 * 1024),
                MAX_PATCH_BYTES / (1024 * 1024)
            ),
            "review a narrower range (--commit, --files PATH...), or split it across several reviews",
        ));
    }
    let patch = String::from_utf8_lossy(&patch).into_owned();
    let (files, binary) = files_in_patch(&patch);
    Ok(Material {
        what,
        patch: Some(patch),
        files,
        binary,
    })
}

/// The id of the empty tree (sha1 or sha256, whichever the repository uses).
fn empty_tree(root: &Path) -> anyhow::Result<String> {
    let out = git(root, &["hash-object", "-t", "tree", "--stdin"], &[0]);
    // `--stdin` with no input: stdin is null, so git hashes the empty tree.
    Ok(String::from_utf8_lossy(&out?).trim().to_owned())
}

/// Appends a new-file diff of an untracked file (what `git diff` would show once it is added).
fn new_file_diff(root: &Path, name: &str, patch: &mut Vec<u8>) -> anyhow::Result<()> {
    use std::io::Read as _;
    let path = root.join(name);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if !meta.is_file() {
        return Ok(());
    }
    let mut text = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_PATCH_BYTES as u64 + 1).read_to_end(&mut text))
        .with_context(|| format!("reading {}", path.display()))?;
    patch.extend_from_slice(
        format!("diff --git a/{name} b/{name}\nnew file mode 100644\n").as_bytes(),
    );
    if text.contains(&0) || std::str::from_utf8(&text).is_err() {
        patch.extend_from_slice(format!("Binary files /dev/null and b/{name} differ\n").as_bytes());
        return Ok(());
    }
    if text.is_empty() {
        return Ok(());
    }
    let lines = text.split_inclusive(|b| *b == b'\n').count();
    patch.extend_from_slice(
        format!("--- /dev/null\n+++ b/{name}\n@@ -0,0 +1,{lines} @@\n").as_bytes(),
    );
    for line in text.split_inclusive(|b| *b == b'\n') {
        patch.push(b'+');
        patch.extend_from_slice(line);
    }
    if !text.ends_with(b"\n") {
        patch.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
    Ok(())
}

/// The files a patch touches (new names), and which of them are binary.
fn files_in_patch(patch: &str) -> (Vec<String>, Vec<String>) {
    let (mut files, mut binary) = (Vec::<String>::new(), Vec::new());
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            // `a/X b/Y`: the new name is after the last ` b/` (X == Y unless renamed).
            if let Some(i) = rest.rfind(" b/") {
                files.push(rest[i + 3..].to_owned());
            }
        } else if line.starts_with("Binary files ")
            && line.ends_with(" differ")
            && let Some(f) = files.last()
        {
            binary.push(f.clone());
        }
    }
    files.dedup();
    (files, binary)
}

/// `--files`: each must be a regular file inside the root.
fn named_files(root: &Path, paths: &[PathBuf]) -> anyhow::Result<Material> {
    let canon_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.to_path_buf());
    let mut m = Material {
        what: String::new(),
        ..Material::default()
    };
    for p in paths {
        let abs = if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        };
        let canon =
            std::fs::canonicalize(&abs).map_err(|_| crate::error::ExpectedError::NoSuchFile {
                path: abs.clone(),
                hint:
                    "name files that exist in the project (paths relative to the current directory)"
                        .into(),
            })?;
        let rel = canon.strip_prefix(&canon_root).map_err(|_| {
            usage(
                format!(
                    "{} is outside the project ({})",
                    p.display(),
                    root.display()
                ),
                "a reviewer sees only the project's files",
            )
        })?;
        if !canon.is_file() {
            return Err(usage(
                format!("{} is not a regular file", p.display()),
                "name files (a directory: list its files, e.g. --files src/*.rs)",
            ));
        }
        let rel = rel.to_string_lossy().replace('\\', "/");
        if is_binary(&canon) {
            m.binary.push(rel.clone());
        }
        m.files.push(rel);
    }
    m.what = match m.files.len() {
        1 => format!("the file {}", m.files[0]),
        n => format!("{n} files, whole, as they are now"),
    };
    Ok(m)
}

fn is_binary(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(8192).read_to_end(&mut head))
        .is_ok_and(|_| head.contains(&0))
}

/// The request body of a review.
pub fn request_body(m: &Material, focus: Option<&str>) -> String {
    let mut b = format!("Review {}.\n", m.what);
    if let Some(f) = focus.map(str::trim).filter(|f| !f.is_empty()) {
        b.push_str(&format!("\nFocus: {f}\n"));
    }
    b.push_str(
        "\nThis is a review: do not change any file. Read the material and the files it touches as they are now in the project.\n",
    );
    const SHOWN: usize = 200;
    let label = if m.patch.is_some() {
        "Changed files"
    } else {
        "Files"
    };
    b.push_str(&format!("\n{label} ({}):\n", m.files.len()));
    for f in m.files.iter().take(SHOWN) {
        let note = if m.binary.contains(f) {
            " (binary: not reviewable)"
        } else {
            ""
        };
        b.push_str(&format!("- {f}{note}\n"));
    }
    if m.files.len() > SHOWN {
        b.push_str(&format!(
            "- ... and {} more (see the patch)\n",
            m.files.len() - SHOWN
        ));
    }
    b.push_str(
        "\nReport each real problem once, as a finding with the file and the lines as they are now, why it is a problem, and the fix. A sound change gets no findings and `patch is correct`. Set verify to pass or fail only if you ran the project's checks (without changing files); else skip.\n",
    );
    b
}

/// Where a finding points, checked against the tree as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// The file exists and has those lines.
    Ok,
    /// No such regular file in the project.
    MissingFile,
    /// The file is shorter than the range.
    PastEnd,
}

/// Checks that a finding's file exists inside the root and has its lines.
pub fn check_place(root: &Path, f: &Finding) -> (Place, Option<String>) {
    use std::io::Read as _;
    let rel = &f.code_location.file_path.0;
    let canon_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let inside = std::fs::canonicalize(root.join(rel))
        .ok()
        .filter(|c| c.starts_with(&canon_root) && c.is_file());
    let Some(path) = inside else {
        return (
            Place::MissingFile,
            Some(format!("{rel} does not exist in the project")),
        );
    };
    let mut lines = 0usize;
    let mut last = b'\n';
    let mut buf = [0u8; 64 * 1024];
    let Ok(mut file) = std::fs::File::open(&path) else {
        return (Place::MissingFile, Some(format!("{rel} cannot be read")));
    };
    // Bounded: a reviewer's finding must not make relay read a huge file whole.
    let mut left: u64 = 256 * 1024 * 1024;
    while left > 0 {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines += buf[..n].iter().filter(|b| **b == b'\n').count();
        last = buf[n - 1];
        left = left.saturating_sub(n as u64);
    }
    if last != b'\n' {
        lines += 1;
    }
    let end = f.code_location.line_range.end as usize;
    if end > lines {
        return (
            Place::PastEnd,
            Some(format!(
                "{rel} has {lines} lines; the finding points at line {end}"
            )),
        );
    }
    (Place::Ok, None)
}

/// A stable id for a finding across runs: its file, level and title words (not its lines,
/// which move as the code changes). FNV-1a, 64 bits, in hex.
pub fn fingerprint(f: &Finding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&f.code_location.file_path.0);
    feed(f.level().as_str());
    feed(&words(&f.title.0).join(" "));
    format!("{h:016x}")
}

/// Lower-case alphanumeric words of a title.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The stable rule id of a finding: one rule per priority.
pub fn rule_id(f: &Finding) -> String {
    format!("relay/review/p{}", f.priority.0)
}

/// One finding as relay reports it: the peer's finding, where it points, its identity, and
/// which peers raised it (one, unless grouped across a fan-out).
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    #[serde(flatten)]
    pub finding: Finding,
    pub level: Level,
    pub place: Place,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_note: Option<String>,
    pub rule_id: String,
    pub fingerprint: String,
    /// The peers that raised it.
    pub peers: Vec<String>,
}

/// One peer's review, as relay judged it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerReview {
    pub peer: String,
    pub exchange: String,
    /// The call's outcome (`ok`, `timeout`, `invalid-reply`, ...).
    pub outcome: Outcome,
    /// The call's exit code.
    pub call_exit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `pass` / `fail` from the reviewer's verdict; absent without a valid review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    pub findings: Vec<Reported>,
    /// Inconsistencies relay noticed (a `fail` verdict without findings, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    pub reply: PathBuf,
    #[serde(skip)]
    pub record: RunRecord,
}

/// Judges one finished review call: its findings (when the reply is valid), each checked
/// against the tree.
pub fn judge(root: &Path, record: RunRecord) -> PeerReview {
    let outcome = record.outcome.unwrap_or(Outcome::NoReply);
    let mut pr = PeerReview {
        peer: record.peer.clone(),
        exchange: record.exchange.clone(),
        outcome,
        call_exit: record.exit_code.unwrap_or(relay_core::exit::FAILURE),
        reason: record.reason.clone(),
        verdict: None,
        explanation: None,
        confidence: None,
        next_steps: Vec::new(),
        findings: Vec::new(),
        notes: Vec::new(),
        elapsed_ms: record.elapsed_ms,
        reply: record.reply.clone(),
        record,
    };
    let Some(KindReply::Review(review)) = structured_reply(&pr.record, FORMAT_FINDINGS) else {
        return pr;
    };
    pr.verdict = Some(review.overall_correctness.verdict());
    pr.explanation = Some(review.overall_explanation.clone());
    pr.confidence = review.overall_confidence_score.map(|s| s.0);
    pr.next_steps = review.next_steps.clone();
    if review.overall_correctness == Correctness::Incorrect && review.findings.is_empty() {
        pr.notes
            .push("the verdict is `patch is incorrect` but the review lists no finding".into());
    }
    for f in review.findings {
        let (place, place_note) = check_place(root, &f);
        pr.findings.push(Reported {
            level: f.level(),
            place,
            place_note,
            rule_id: rule_id(&f),
            fingerprint: fingerprint(&f),
            peers: vec![pr.peer.clone()],
            finding: f,
        });
    }
    let flagged = pr.findings.iter().filter(|f| f.place != Place::Ok).count();
    if flagged > 0 {
        pr.notes.push(format!(
            "{flagged} finding(s) point at a file or lines that do not exist (flagged)"
        ));
    }
    pr
}

/// What a finished call's reply holds in a structured `format` (findings, sections): only a
/// valid reply counts (done, verify failed, or status error), checked again as it is read.
pub fn structured_reply(record: &RunRecord, format: &str) -> Option<KindReply> {
    if !record.outcome.is_some_and(Outcome::replied) {
        return None;
    }
    let text = relay_core::read_text(&record.reply, relay_core::FileKind::Response).ok()?;
    relay_core::review::check_reply(Some(format), &record.reply, &text)
        .ok()
        .flatten()
}

/// Findings of several peers grouped: the same file, overlapping lines (3 lines of slack) and
/// the same issue (similar title words, or the same range). Each peer adds a finding to a
/// group at most once; the group shows the most severe finding.
pub fn group(reviews: &[PeerReview]) -> Vec<Reported> {
    let mut groups: Vec<Reported> = Vec::new();
    for pr in reviews {
        for f in &pr.findings {
            let hit = groups
                .iter_mut()
                .find(|g| !g.peers.contains(&pr.peer) && same_issue(&g.finding, &f.finding));
            match hit {
                Some(g) => {
                    g.peers.push(pr.peer.clone());
                    if f.level > g.level {
                        let peers = std::mem::take(&mut g.peers);
                        *g = f.clone();
                        g.peers = peers;
                    }
                }
                None => groups.push(f.clone()),
            }
        }
    }
    // Most severe first, then most peers, then file order.
    groups.sort_by(|a, b| {
        b.level
            .cmp(&a.level)
            .then(b.peers.len().cmp(&a.peers.len()))
            .then(
                a.finding
                    .code_location
                    .file_path
                    .cmp(&b.finding.code_location.file_path),
            )
            .then(
                a.finding
                    .code_location
                    .line_range
                    .start
                    .cmp(&b.finding.code_location.line_range.start),
            )
    });
    groups
}

fn same_issue(a: &Finding, b: &Finding) -> bool {
    let (la, lb) = (&a.code_location, &b.code_location);
    if la.file_path != lb.file_path {
        return false;
    }
    const SLACK: u32 = 3;
    let overlap = la.line_range.start <= lb.line_range.end + SLACK
        && lb.line_range.start <= la.line_range.end + SLACK;
    if !overlap {
        return false;
    }
    if la.line_range == lb.line_range {
        return true;
    }
    let (wa, wb) = (words(&a.title.0), words(&b.title.0));
    let common = wa.iter().filter(|w| w.len() > 2 && wb.contains(w)).count();
    let all = wa.len().max(wb.len()).max(1);
    common * 4 >= all
}
