//! Reading files under `.relay/`, which are untrusted input (a cloned repository or a peer can
//! put anything there): opens that never follow a symlink and never block, reads that are
//! bounded.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// How a file under `.relay/` is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    /// Created if missing; every write goes to the end (readable too: the ledger reads its
    /// tail under the same lock it appends under).
    Append,
    /// An existing file, written from its start.
    Overwrite,
}

/// Opens `path` never following a symlink at its last component (`ELOOP`) and never blocking
/// on a FIFO (non-blocking open). Files opened for writing must be regular files; a read of
/// anything else fails instead of waiting, so reads skip that check (and its `fstat`).
fn open_as(path: &Path, access: Access) -> io::Result<File> {
    #[cfg(unix)]
    let file = {
        use rustix::fs::{Mode, OFlags};
        let how = match access {
            Access::Read => OFlags::RDONLY,
            Access::Append => OFlags::RDWR | OFlags::CREATE | OFlags::APPEND,
            Access::Overwrite => OFlags::WRONLY,
        };
        File::from(rustix::fs::open(
            path,
            how | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?)
    };
    #[cfg(not(unix))]
    let file = {
        if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(io::Error::other("not a regular file"));
        }
        std::fs::OpenOptions::new()
            .read(access != Access::Overwrite)
            .write(access == Access::Overwrite)
            .append(access == Access::Append)
            .create(access == Access::Append)
            .open(path)?
    };
    if access != Access::Read && !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Opens `path` for reading (see [`open_as`]: no link followed, no blocking).
pub fn open(path: &Path) -> io::Result<File> {
    open_as(path, Access::Read)
}

/// Opens (creating it if needed) a file relay appends to under `.relay/` (a log, the call log,
/// a lock): a symlink planted there is refused, so relay never writes through it to a file
/// outside the project; a FIFO without a reader fails at once instead of blocking.
pub fn open_append(path: &Path) -> io::Result<File> {
    open_as(path, Access::Append)
}

/// Opens an existing regular file for overwriting in place (no create, no truncate).
pub fn open_overwrite(path: &Path) -> io::Result<File> {
    open_as(path, Access::Overwrite)
}

/// Reads `path` whole, refusing more than `max` bytes (`Ok(None)` past the limit).
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let buf = read_capped(path, max.saturating_add(1))?;
    Ok((buf.len() as u64 <= max).then_some(buf))
}

/// Reads at most `cap` bytes of `path`. The common small file costs one `read`: a regular
/// file's read returns less than asked only at its end (a listing of 10,000 exchanges saves
/// 10,000 system calls this way).
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut file = open(path)?;
    let mut buf = Vec::new();
    let first = usize::try_from(cap.min(8192)).unwrap_or(8192);
    if read_prefix(&mut file, &mut buf, first)? == first {
        let room = cap.saturating_sub(buf.len() as u64);
        file.take(room).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// Appends up to `n` bytes from one `read` call (retried on EINTR) to `buf`.
pub fn read_prefix(file: &mut File, buf: &mut Vec<u8>, n: usize) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + n, 0);
    let got = loop {
        match file.read(&mut buf[start..]) {
            Ok(k) => break k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    };
    buf.truncate(start + got);
    Ok(got)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open(&link).is_err());
        let fifo = dir.path().join("f");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        // Opens at once (no writer needed) and a read fails or sees nothing: never a hang.
        let got = read_bounded(&fifo, 100);
        assert!(got.is_err() || got.unwrap().unwrap().is_empty());
        assert_eq!(read_bounded(&target, 100).unwrap().unwrap(), b"x");
        std::fs::write(&target, vec![b'a'; 10_000]).unwrap();
        assert_eq!(read_bounded(&target, 9_999).unwrap(), None);
        assert_eq!(
            read_bounded(&target, 10_000).unwrap().unwrap().len(),
            10_000
        );
    }
}
