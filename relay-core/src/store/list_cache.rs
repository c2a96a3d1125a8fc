//! The listing cache: what [`scan`](super::scan) read of each exchange, kept in
//! `.relay/.cache/list.tsv`, so that listing 100,000 exchanges costs a `stat` per file instead
//! of an open, a read and a parse, and no directory listing while a directory is unchanged.
//!
//! A row is used only while the files it was read from are the same: their inode, size, mtime
//! and ctime (which nobody can set back) hash to the identity stored with the row. A directory's
//! rows stand in for its listing only while the directory's own identity is the one stored (no
//! name was added, removed or renamed in it). Nothing is stored before it is [`SETTLED`]: a
//! file or directory changed again within the same timestamp tick is never mistaken for the one
//! read (git's "racy index" rule). The cache is untrusted like everything under `.relay/`: read
//! bounded, a line that does not parse is ignored (its exchange is read from its files), and a
//! cache written by another relay version is ignored whole.
//!
//! Format: a header line; a `D` line per directory (`D`, the session or nothing for `.relay/`
//! itself, the directory's identity or nothing); then one line per exchange in [`Key`] order,
//! tab-separated: session, turn, stem, identity, files (1 request, 2 reply, 4 run record), id
//! (nothing when it is the stem), from, to, kind, created, reply state, reply problem, request
//! problem, run record, outcome. Texts are escaped (`\\`, `\t`, `\n`, `\r`); optional texts are
//! empty when absent and start with `=` when present.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time::{OffsetDateTime, UtcOffset};

use super::{Exchange, Job, Names, ReplyState, Row, RunState, RunSummary};
use crate::layout::{CACHE_DIR, RelayDir};

/// The cache's file name under `.relay/.cache/`.
pub const FILE: &str = "list.tsv";

/// How old a file or directory must be before what was read of it is cached.
pub const SETTLED: Duration = Duration::from_secs(2);

/// The largest cache read (about 120 bytes per exchange: over a million exchanges).
const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Bits of a row's files field.
pub const HAS_REQUEST: u8 = 1;
/// A reply is there.
pub const HAS_REPLY: u8 = 2;
/// A run record is there.
pub const HAS_RUN: u8 = 4;

fn header() -> String {
    format!("relay-list-cache 2 {}", env!("CARGO_PKG_VERSION"))
}

/// A job's place in the cache: (session, turn, stem); top-level work has no session (`""`).
pub type Key<'a> = (&'a str, u64, &'a str);

/// A cache as read: its text, and where its rows start.
pub struct Cache {
    text: String,
    rows: usize,
    row_count: usize,
    /// Each directory listed when it was written: session (`""`: `.relay/`), identity.
    dirs: Vec<(String, Option<u64>)>,
}

/// A cached row's key, identity, files and place in the text.
pub struct RowRef<'a> {
    pub key: Key<'a>,
    pub ident: u64,
    pub files: u8,
    pub span: (usize, usize),
}

impl Cache {
    /// The cache of `relay`, if there is a readable one this version of relay wrote.
    pub fn load(relay: &RelayDir) -> Option<Cache> {
        let path = relay.path().join(CACHE_DIR).join(FILE);
        let mut text = String::new();
        crate::untrusted::open(&path)
            .ok()?
            .take(MAX_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        let (first, mut rest) = text.split_once('\n')?;
        if first != header() {
            return None;
        }
        let mut dirs = Vec::new();
        while let Some(line) = rest.strip_prefix("D\t") {
            let (line, next) = line.split_once('\n')?;
            let (session, ident) = line.split_once('\t')?;
            let ident = match ident {
                "" => None,
                i => Some(u64::from_str_radix(i, 16).ok()?),
            };
            dirs.push((session.to_owned(), ident));
            rest = next;
        }
        let row_count = rest.split_terminator('\n').count();
        let rows = text.len() - rest.len();
        Some(Cache {
            text,
            rows,
            row_count,
            dirs,
        })
    }

    /// How many rows it holds (damaged ones too).
    pub fn row_count(&self) -> usize {
        self.row_count
    }

    /// The sessions `.relay/` held when the cache was written.
    pub fn sessions(&self) -> impl Iterator<Item = &str> {
        self.dirs
            .iter()
            .map(|(s, _)| s.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Is the directory of `session` (`""`: `.relay/`) the one whose rows were cached, whole?
    pub fn unchanged(&self, session: &str, now: Option<u64>) -> bool {
        now.is_some()
            && self
                .dirs
                .iter()
                .any(|(s, ident)| s == session && *ident == now)
    }

    /// Does it list the same directories, with the same identities, as `dirs`?
    pub fn same_dirs(&self, dirs: &[(Arc<str>, Option<u64>)]) -> bool {
        self.dirs.len() == dirs.len()
            && self
                .dirs
                .iter()
                .zip(dirs)
                .all(|((s, i), (t, j))| s == &**t && i == j)
    }

    /// The rows, in key order (a row that does not parse is skipped).
    pub fn rows(&self) -> impl Iterator<Item = RowRef<'_>> {
        let mut at = self.rows;
        self.text[self.rows..]
            .split_terminator('\n')
            .filter_map(move |line| {
                let start = at;
                at += line.len() + 1;
                let mut f = line.splitn(6, '\t');
                let (session, turn, stem, ident, files) =
                    (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
                f.next()?;
                // Keys borrow the text: slugs and stems never need escaping, so one that does is
                // damage.
                if session.contains('\\') || stem.contains('\\') {
                    return None;
                }
                Some(RowRef {
                    key: (session, turn.parse().ok()?, stem),
                    ident: u64::from_str_radix(ident, 16).ok()?,
                    files: files.parse().ok().filter(|f| *f < 8)?,
                    span: (start, start + line.len()),
                })
            })
    }

    /// The exchange a row holds, placed in `dir` as `name` of `session`.
    pub fn exchange(
        &self,
        span: (usize, usize),
        names: &mut Names,
        place: (Arc<Path>, Box<str>, Option<Arc<str>>),
    ) -> Option<Exchange> {
        decode(&self.text[span.0..span.1], names, place)
    }
}

/// Puts each cached row on the job it belongs to (both are in key order), with the identity
/// its files had while the directory was listed, where that is known.
pub fn attach(rows: &[RowRef<'_>], now: &[Option<u64>], jobs: &mut [Job]) {
    let mut next = 0;
    for (i, row) in rows.iter().enumerate() {
        // Jobs before this row have no cached row; a row before the next job has no job.
        while next < jobs.len() && jobs[next].key() < row.key {
            next += 1;
        }
        let Some(job) = jobs.get_mut(next) else { break };
        if job.key() == row.key && job.files() == row.files {
            job.cached = Some((row.ident, row.span));
            job.ident = now.get(i).copied().flatten();
            next += 1;
        }
    }
}

/// Writes the cache from the rows of a full scan (in key order), each with the identity of its
/// files when they have settled (`None`: not cached), and the directories listed with their
/// identities (`None`: changed too recently, or some row in it could not be cached). Best
/// effort: a cache that cannot be written only makes the next listing slower.
pub fn save(relay: &RelayDir, dirs: &[(Arc<str>, Option<u64>)], rows: &[Row]) {
    let attempt = || -> std::io::Result<()> {
        let dir = relay
            .subdir(CACHE_DIR)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        {
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            writeln!(out, "{}", header())?;
            for (session, ident) in dirs {
                match ident {
                    Some(i) => writeln!(out, "D\t{session}\t{i:x}")?,
                    None => writeln!(out, "D\t{session}\t")?,
                }
            }
            let mut line = String::new();
            for row in rows {
                if let Some(ident) = row.ident {
                    line.clear();
                    encode(&row.exchange, ident, row.files, &mut line);
                    out.write_all(line.as_bytes())?;
                }
            }
            out.flush()?;
        }
        tmp.persist(dir.join(FILE)).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = attempt();
}

/// Identity hashing: inode, size, mtime and ctime, `None` when the file is not settled (changed
/// at `limit` or later).
#[cfg(unix)]
fn add_stat(
    hash: &mut std::hash::DefaultHasher,
    st: &rustix::fs::Stat,
    limit: Duration,
) -> Option<()> {
    use std::hash::Hasher as _;
    let at = |secs: i64, nanos: u64| -> Option<Duration> {
        Some(Duration::new(
            u64::try_from(secs).ok()?,
            u32::try_from(nanos).ok()?,
        ))
    };
    // The field types differ between platforms (and libc and raw-syscall backends).
    #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
    let (mtime, ctime) = (
        at(st.st_mtime as i64, st.st_mtime_nsec as u64)?,
        at(st.st_ctime as i64, st.st_ctime_nsec as u64)?,
    );
    if mtime.max(ctime) >= limit {
        return None;
    }
    #[allow(
        clippy::unnecessary_cast,
        clippy::cast_sign_loss,
        clippy::useless_conversion
    )]
    for v in [u64::from(st.st_ino), st.st_size as u64] {
        hash.write_u64(v);
    }
    for t in [mtime, ctime] {
        hash.write_u64(t.as_secs());
        hash.write_u32(t.subsec_nanos());
    }
    Some(())
}

/// The latest change time a settled file may have, for `now` (since the epoch).
fn limit(now: SystemTime) -> Option<Duration> {
    now.checked_sub(SETTLED)?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
}

/// The identity of a directory (`None`: not a directory, or changed within [`SETTLED`]).
#[cfg(unix)]
pub fn dir_identity(dir: &Path, now: SystemTime) -> Option<u64> {
    use std::hash::Hasher as _;
    let st = rustix::fs::lstat(dir).ok()?;
    if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() {
        return None;
    }
    let mut hash = std::hash::DefaultHasher::new();
    add_stat(&mut hash, &st, limit(now)?)?;
    Some(hash.finish())
}

/// Directory identities are a Unix matter; elsewhere nothing is cached.
#[cfg(not(unix))]
pub fn dir_identity(_dir: &Path, _now: SystemTime) -> Option<u64> {
    None
}

/// The identity of the files an exchange is read from: `<stem>` with `files` (see
/// [`HAS_REQUEST`]), relative to `dir`. `None` when one of them is missing, not a regular file,
/// or changed within [`SETTLED`] of `now`: such a row is read and not cached. `buf` is scratch
/// space for the names.
#[cfg(unix)]
pub fn identity(
    dir: &std::os::fd::OwnedFd,
    (stem, files): (&str, u8),
    now: SystemTime,
    buf: &mut String,
) -> Option<u64> {
    use crate::message::FileKind;
    use std::hash::Hasher as _;
    let limit = limit(now)?;
    let mut hash = std::hash::DefaultHasher::new();
    let mut add = |suffix: &str| -> Option<()> {
        buf.clear();
        buf.push_str(stem);
        buf.push_str(suffix);
        let st =
            rustix::fs::statat(dir, buf.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() {
            return None;
        }
        add_stat(&mut hash, &st, limit)
    };
    let (request, reply, run) = (
        files & HAS_REQUEST != 0,
        files & HAS_REPLY != 0,
        files & HAS_RUN != 0,
    );
    if request {
        add(FileKind::Request.suffix())?;
    }
    // A reply is read beside a request or alone; a run record only where there is no reply.
    if reply {
        add(FileKind::Response.suffix())?;
    } else if request && run {
        add(crate::layout::RUN_RECORD_SUFFIX)?;
    }
    if !request && !reply {
        return None;
    }
    hash.write_u8(files);
    Some(hash.finish())
}

/// The identities of the files `rows` name in `dir` (see [`identity`]), found on every core:
/// done while the directory is listed, they spare the listing's rows a `stat` each.
#[cfg(unix)]
pub fn identities(dir: &Path, rows: &[RowRef<'_>], now: SystemTime) -> Vec<Option<u64>> {
    let Some(fd) = open_dir(dir) else {
        return vec![None; rows.len()];
    };
    let threads = super::threads();
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                let fd = &fd;
                scope.spawn(move || {
                    let mut buf = String::new();
                    part.iter()
                        .map(|r| identity(fd, (r.key.2, r.files), now, &mut buf))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("a stat thread panicked"))
            .collect()
    })
}

/// Opens a directory for [`identity`].
#[cfg(unix)]
pub fn open_dir(dir: &Path) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

fn encode(ex: &Exchange, ident: u64, files: u8, out: &mut String) {
    use std::fmt::Write as _;
    text(out, ex.session.as_deref().unwrap_or(""));
    let _ = write!(out, "\t{}\t", ex.sort_turn);
    text(out, ex.stem());
    let _ = write!(out, "\t{ident:x}\t{files}\t");
    // The id is the stem for every well-formed one-shot: not written twice.
    text(out, ex.id.as_deref().unwrap_or(""));
    for field in [&ex.from, &ex.to, &ex.kind] {
        out.push('\t');
        opt(out, field.as_deref());
    }
    out.push('\t');
    if let Some(c) = ex.created {
        let _ = write!(
            out,
            "{},{}",
            c.unix_timestamp_nanos(),
            c.offset().whole_seconds()
        );
    }
    out.push('\t');
    match &ex.reply_state {
        ReplyState::Pending => out.push_str("P\t"),
        ReplyState::Answered {
            status,
            verify,
            salvaged,
        } => {
            let _ = write!(
                out,
                "A,{},{},{}\t",
                status.as_str(),
                verify.as_str(),
                u8::from(*salvaged)
            );
        }
        ReplyState::Invalid { problem } => {
            out.push_str("I\t");
            text(out, problem);
        }
    }
    out.push('\t');
    opt(out, ex.request_problem.as_deref());
    out.push('\t');
    if let Some(run) = &ex.run {
        let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let _ = write!(
            out,
            "{},{},{}\t",
            run_state(run.state),
            num(run.supervisor_pid.map(u64::from)),
            num(run.supervisor_start)
        );
        opt(out, run.outcome.as_deref());
    } else {
        out.push('\t');
    }
    out.push('\n');
}

/// One row back, placed in `dir` as `name` of `session` (the job's).
fn decode(
    line: &str,
    names: &mut Names,
    (dir, name, session): (Arc<Path>, Box<str>, Option<Arc<str>>),
) -> Option<Exchange> {
    let mut fields = line.split('\t');
    let mut f = [""; 15];
    for slot in &mut f {
        *slot = fields.next()?;
    }
    if fields.next().is_some() {
        return None;
    }
    let [
        _session,
        turn,
        _stem,
        _ident,
        files,
        id,
        from,
        to,
        kind,
        created,
        reply,
        problem,
        request_problem,
        run,
        outcome,
    ] = f;
    let files: u8 = files.parse().ok()?;
    let id = match id {
        "" => None,
        s => Some(unescape(s)?.into_boxed_str()),
    };
    let created = match created {
        "" => None,
        c => {
            let (nanos, offset) = c.split_once(',')?;
            let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
            Some(at.to_offset(UtcOffset::from_whole_seconds(offset.parse().ok()?).ok()?))
        }
    };
    let reply_state = match reply {
        "P" => ReplyState::Pending,
        "I" => ReplyState::Invalid {
            problem: unescape(problem)?,
        },
        a => {
            let mut p = a.strip_prefix("A,")?.split(',');
            let status = p.next()?.parse().ok()?;
            let verify = p.next()?.parse().ok()?;
            let salvaged = match p.next()? {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            ReplyState::Answered {
                status,
                verify,
                salvaged,
            }
        }
    };
    let run = match run {
        "" => None,
        r => {
            let mut p = r.split(',');
            let state = match p.next()? {
                "running" => RunState::Running,
                "finished" => RunState::Finished,
                "stale" => RunState::Stale,
                _ => return None,
            };
            let num = |s: &str| -> Option<Option<u64>> {
                if s.is_empty() {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let pid = num(p.next()?)?;
            let start = num(p.next()?)?;
            Some(Box::new(RunSummary {
                state,
                outcome: unopt(outcome)?,
                supervisor_pid: pid.map(u32::try_from).transpose().ok()?,
                supervisor_start: start,
            }))
        }
    };
    let mut shared = |s: &str| -> Option<Option<Arc<str>>> {
        match s {
            "" => Some(None),
            s => {
                let s = s.strip_prefix('=')?;
                Some(Some(if s.contains('\\') {
                    names.get(&unescape(s)?)
                } else {
                    names.get(s)
                }))
            }
        }
    };
    Some(Exchange {
        id,
        session,
        dir,
        name,
        has_request: files & HAS_REQUEST != 0,
        from: shared(from)?,
        to: shared(to)?,
        kind: shared(kind)?,
        created,
        reply_state,
        request_problem: unopt(request_problem)?.map(String::into_boxed_str),
        run,
        sort_turn: turn.parse().ok()?,
    })
}

fn run_state(s: RunState) -> &'static str {
    match s {
        RunState::Running => "running",
        RunState::Finished => "finished",
        RunState::Stale => "stale",
    }
}

fn text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn opt(out: &mut String, s: Option<&str>) {
    if let Some(s) = s {
        out.push('=');
        text(out, s);
    }
}

fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// An optional text: `None` (empty field) or `=`-prefixed; anything else is a damaged row.
fn unopt(s: &str) -> Option<Option<String>> {
    match s {
        "" => Some(None),
        s => Some(Some(unescape(s.strip_prefix('=')?)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Status, Verify};

    fn place() -> (Arc<Path>, Box<str>, Option<Arc<str>>) {
        (
            Arc::from(Path::new("/p/.relay/auth")),
            "0003.req.md".into(),
            Some("auth".into()),
        )
    }

    fn sample() -> Exchange {
        let (dir, name, session) = place();
        Exchange {
            id: Some("20261121-163000-auth".into()),
            session,
            dir,
            name,
            has_request: true,
            from: Some("claude".into()),
            to: Some("co\tdex\\".into()),
            kind: None,
            created: Some(time::macros::datetime!(2026-11-21 16:30:00.5 +01:00)),
            reply_state: ReplyState::Invalid {
                problem: "line 3:\nbad\r".into(),
            },
            request_problem: Some("".into()),
            run: Some(Box::new(RunSummary {
                state: RunState::Running,
                outcome: Some("ok".into()),
                supervisor_pid: Some(42),
                supervisor_start: None,
            })),
            sort_turn: 3,
        }
    }

    fn cache_of(lines: &str) -> Cache {
        Cache {
            text: lines.to_owned(),
            rows: 0,
            row_count: lines.lines().count(),
            dirs: Vec::new(),
        }
    }

    #[test]
    fn a_row_reads_back_as_written() {
        let ex = sample();
        let mut line = String::new();
        encode(&ex, 0xabc, HAS_REQUEST | HAS_REPLY, &mut line);
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        let cache = cache_of(&line);
        let row = cache.rows().next().expect("a row");
        assert_eq!(row.key, ("auth", 3, "0003"));
        assert_eq!((row.ident, row.files), (0xabc, 3));
        let back = cache
            .exchange(row.span, &mut Names::default(), place())
            .expect("decodes");
        assert_eq!(back.id, ex.id);
        assert_eq!((back.from, back.to, back.kind), (ex.from, ex.to, ex.kind));
        assert_eq!(back.created, ex.created);
        assert_eq!(back.reply_state, ex.reply_state);
        assert_eq!(back.request_problem, ex.request_problem);
        assert_eq!(back.run, ex.run);
        assert_eq!(back.sort_turn, 3);

        let answered = Exchange {
            id: None,
            reply_state: ReplyState::Answered {
                status: Status::Done,
                verify: Verify::Skip,
                salvaged: true,
            },
            run: None,
            created: None,
            ..sample()
        };
        line.clear();
        encode(&answered, 1, HAS_REQUEST, &mut line);
        let cache = cache_of(&line);
        let row = cache.rows().next().expect("a row");
        let back = cache
            .exchange(row.span, &mut Names::default(), place())
            .expect("decodes");
        assert_eq!(
            back.id, None,
            "an id equal to the stem is not written twice"
        );
        assert_eq!(back.reply_state, answered.reply_state);
        assert_eq!((back.run, back.created), (None, None));
    }

    #[test]
    fn the_run_record_suffix_is_the_layouts() {
        assert_eq!(
            crate::layout::RUN_RECORD_SUFFIX,
            format!(".{}", crate::layout::BESIDE_RUN_RECORD)
        );
    }

    #[test]
    fn a_damaged_row_is_ignored() {
        let mut line = String::new();
        encode(&sample(), 7, HAS_REQUEST, &mut line);
        let line = line.trim_end_matches('\n');
        let mut names = Names::default();
        assert!(
            decode(line, &mut names, place()).is_some(),
            "the row decodes"
        );
        for bad in [
            line.replacen('\t', "", 1),
            line.replace("=claude", "claude"),
            line.replace("running", "walking"),
            format!("{line}\textra"),
            line.replace("\\t", "\\q"),
        ] {
            assert!(
                decode(&bad, &mut names, place()).is_none(),
                "accepted {bad:?}"
            );
        }
        for bad in [
            line.replace("\t7\t", "\tx7\t"),
            line.replace("\t1\t", "\t9\t"),
        ] {
            assert!(cache_of(&bad).rows().next().is_none(), "listed {bad:?}");
        }
    }
}
