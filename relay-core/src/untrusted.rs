//! Reading files under `.relay/`, which are untrusted input (a cloned repository or a peer can
//! put anything there): opens that never follow a symlink and never block, reads that are
//! bounded.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading without following a symlink at its last component (`ELOOP`) and
/// without blocking on a FIFO (non-blocking open; a read then fails instead of waiting).
pub fn open(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }
    #[cfg(not(unix))]
    {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        File::open(path)
    }
}

/// Opens (creating it if needed) a file relay appends to under `.relay/` (a log, the call log,
/// a lock), with the same guards as [`open`]: a symlink planted there is refused (`ELOOP`), so
/// relay never writes through it to a file outside the project; a FIFO without a reader fails
/// at once instead of blocking.
pub fn open_append(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            path,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::APPEND
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(io::Error::other("not a regular file"));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }
}

/// Opens an existing regular file for overwriting in place (no create, no truncate), with
/// the guards of [`open`].
pub fn open_overwrite(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    let file = {
        use rustix::fs::{Mode, OFlags};
        File::from(rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    };
    #[cfg(not(unix))]
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
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
