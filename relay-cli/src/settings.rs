//! Editing an agent's settings file (Claude Code's `settings.json`; the hooks to come) without
//! disturbing anything that is not relay's: the file is edited as a concrete syntax tree
//! (jsonc-parser), so comments, key order, duplicate keys, numbers of any size and the
//! author's formatting stay exactly as they were. A symlink is followed to its target and the
//! target is edited in place of it (atomically, with its permission bits and owner). Every
//! check happens in [`JsonEdit::plan`], before anything is written: a file relay cannot edit
//! safely is refused whole.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::CstRootNode;

/// The largest settings file relay edits.
const MAX_SETTINGS_BYTES: u64 = 4 * 1024 * 1024;

/// A planned edit of one JSON settings file.
pub struct JsonEdit {
    /// The file as named (shown to the user).
    pub path: PathBuf,
    /// The file written: `path`, or the file its symlink points at.
    target: PathBuf,
    old: Option<String>,
    /// The new text; `None` when the edit leaves nothing (the file is removed).
    new: Option<String>,
    meta: Option<std::fs::Metadata>,
}

impl JsonEdit {
    /// Reads `path` (missing or empty: `{}`), runs `edit` on its root object, and checks that
    /// the result can be written back safely. Nothing is written here.
    pub fn plan(
        path: &Path,
        edit: impl FnOnce(&jsonc_parser::cst::CstObject) -> anyhow::Result<()>,
    ) -> anyhow::Result<JsonEdit> {
        let refuse =
            |why: &str| anyhow::anyhow!("{}: {why}; relay leaves it alone", path.display());
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(path).map_err(|_| refuse("is a symbolic link to nothing"))?
            }
            _ => path.to_path_buf(),
        };
        let meta = match std::fs::metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if let Some(m) = &meta {
            if !m.is_file() {
                return Err(refuse("is not a regular file"));
            }
            if m.len() > MAX_SETTINGS_BYTES {
                return Err(refuse("is larger than 4 MiB"));
            }
            check_writable(&target, m).map_err(|why| refuse(&why))?;
        }
        let old = match &meta {
            Some(_) => Some(
                std::fs::read_to_string(&target)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        let text = old
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("{}\n");
        let root = CstRootNode::parse(text, &ParseOptions::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}; relay leaves it alone", path.display()))?;
        let obj = root
            .object_value()
            .ok_or_else(|| refuse("is not a JSON object"))?;
        edit(&obj)?;
        let new = (!obj.properties().is_empty()).then(|| root.to_string());
        Ok(JsonEdit {
            path: path.to_path_buf(),
            target,
            old,
            new,
            meta,
        })
    }

    /// Does the edit change the file?
    pub fn changed(&self) -> bool {
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => old != new,
            (None, None) => false,
            // An absent file that would become `{}` is left absent.
            (None, Some(_)) | (Some(_), None) => true,
        }
    }

    /// The edited settings as a value (for reports).
    pub fn value(&self) -> serde_json::Value {
        self.new
            .as_deref()
            .and_then(|t| jsonc_parser::parse_to_serde_value(t, &ParseOptions::default()).ok())
            .flatten()
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// Writes the edit: the target is replaced atomically by a file with the same permission
    /// bits and owner, or removed when nothing is left in it.
    pub fn apply(&self) -> anyhow::Result<()> {
        if !self.changed() {
            return Ok(());
        }
        let Some(new) = &self.new else {
            return std::fs::remove_file(&self.target)
                .with_context(|| format!("removing {}", self.path.display()));
        };
        let dir = self.target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".relay-tmp-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = self
                .meta
                .as_ref()
                .map_or(0o644, |m| m.permissions().mode() & 0o7777);
            builder.permissions(std::fs::Permissions::from_mode(mode));
        }
        let mut tmp = builder
            .tempfile_in(dir)
            .with_context(|| format!("writing beside {}", self.target.display()))?;
        std::io::Write::write_all(&mut tmp, new.as_bytes())?;
        #[cfg(unix)]
        if let Some(m) = &self.meta {
            use std::os::unix::fs::MetadataExt as _;
            let (uid, gid) = (m.uid(), m.gid());
            if uid != rustix::process::geteuid().as_raw()
                || gid != rustix::process::getegid().as_raw()
            {
                rustix::fs::fchown(
                    tmp.as_file(),
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .with_context(|| format!("keeping the owner of {}", self.path.display()))?;
            }
        }
        tmp.persist(&self.target)
            .map_err(|e| e.error)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// Can relay replace this file keeping its owner? (Read-only files are refused: the user made
/// them so on purpose.)
fn check_writable(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if meta.permissions().readonly() {
        return Err("is read-only".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid();
        if !me.is_root() && meta.uid() != me.as_raw() {
            return Err("belongs to another user".into());
        }
        if rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_err() {
            return Err("is not writable".into());
        }
    }
    let _ = path;
    Ok(())
}

/// The settings as a value, for reading only (`None` when missing, empty or unreadable).
pub fn read(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    jsonc_parser::parse_to_serde_value(&text, &ParseOptions::default())
        .ok()
        .flatten()
}
