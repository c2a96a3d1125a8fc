//! Unix process control: process groups, and on Linux a subreaper plus a /proc walk, so that
//! descendants which left the peer's process group (setsid, node's `detached`) are found and
//! killed too.

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use rustix::process::{Pid, Signal, WaitOptions};

pub const SIGINT_MARK: usize = 2;

/// The watchdog this relay started (not part of the peer's tree: never counted or killed as
/// one of its descendants).
static WATCHDOG: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `relay __watchdog` for the peer's group: a process of its own (own group, so the terminal's
/// Ctrl-C reaches only relay) that ends the group at the deadline if this relay is no longer
/// there to do it. Started on a thread before the peer (its exec overlaps the peer's), armed
/// with the group once the peer runs. When it cannot be started the call still runs; only the
/// SIGKILL-of-relay case loses its guard.
pub struct Watchdog {
    starting: Option<std::thread::JoinHandle<Option<std::process::Child>>>,
    child: Option<std::process::Child>,
    /// The group whose orders went to the relay that started this supervisor.
    told: Option<u32>,
}

/// Set by [`guard_by_parent`]: where this supervisor's orders go instead of to a watchdog.
static PARENT: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

pub fn guard_by_parent() -> std::io::Result<()> {
    use std::os::fd::AsFd as _;
    let orders = rustix::io::fcntl_dupfd_cloexec(std::io::stdout().as_fd(), 3)?;
    rustix::stdio::dup2_stdout(std::io::stderr().as_fd())?;
    *parent() = Some(std::fs::File::from(orders));
    Ok(())
}

fn parent() -> std::sync::MutexGuard<'static, Option<std::fs::File>> {
    PARENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watchdog {
    pub fn start() -> Watchdog {
        if parent().is_some() {
            // The relay that started this supervisor guards its peers: no process to start.
            return Watchdog {
                starting: None,
                child: None,
                told: None,
            };
        }
        let starting = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(|| {
                Command::new(std::env::current_exe().ok()?)
                    .arg("__watchdog")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .process_group(0)
                    .spawn()
                    .ok()
            })
            .ok();
        Watchdog {
            starting,
            child: None,
            told: None,
        }
    }

    /// Gives it the peer's group and how long it has; from here on it guards them.
    pub fn arm(&mut self, leader: u32, timeout: std::time::Duration, grace: std::time::Duration) {
        use std::io::Write as _;
        let Some(orders) = super::Orders::new(leader, timeout, grace) else {
            return;
        };
        if let Some(pipe) = parent().as_mut() {
            // One short write: atomic on a pipe, whatever else writes there.
            let _ = pipe.write_all(orders.line().as_bytes());
            self.told = Some(leader);
            return;
        }
        let Some(mut child) = self.starting.take().and_then(|t| t.join().ok().flatten()) else {
            return;
        };
        WATCHDOG.store(child.id(), std::sync::atomic::Ordering::Relaxed);
        // Dropped after the line: the watchdog reads to the end of its input.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(orders.line().as_bytes());
        }
        self.child = Some(child);
    }

    /// The tree is dead: nothing is left to guard. The relay that was told the orders is told
    /// so (it then signals nothing); a watchdog process of our own is killed.
    pub fn stop(&mut self) {
        if let (Some(group), Some(pipe)) = (self.told.take(), parent().as_mut()) {
            use std::io::Write as _;
            let _ = pipe.write_all(super::Orders::done_line(group).as_bytes());
        }
        self.end();
    }

    /// Ends a watchdog process of our own: our child, by handle (no pid guessing).
    fn end(&mut self) {
        let started = self.starting.take().and_then(|t| t.join().ok().flatten());
        for mut child in self.child.take().into_iter().chain(started) {
            let _ = child.kill();
            let _ = child.wait();
        }
        WATCHDOG.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    /// Dropped without `stop` (an error ended the supervision): the relay that was told the
    /// orders still holds the deadline; a watchdog process of our own goes, as before.
    fn drop(&mut self) {
        self.end();
    }
}

/// The watchdog's loop: until the peer's group is gone, or the deadline passes and it ends
/// the group (SIGTERM, grace, SIGKILL). A process group id is not given to anyone else while
/// the group has a member, so signalling it while it exists reaches only the peer's processes.
pub fn watch(group: u32, deadline_ms: u128, grace: std::time::Duration) {
    let Some(pgid) = pid(group) else { return };
    let alive = || rustix::process::test_kill_process_group(pgid).is_ok();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    while alive() {
        if now_ms() >= deadline_ms {
            let _ = rustix::process::kill_process_group(pgid, Signal::TERM);
            let until = std::time::Instant::now() + grace;
            while alive() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if alive() {
                let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The peer's exit as something to wait on: a pidfd (Linux 5.3+), so a sleep of the
/// supervisor's loop ends when the peer exits. Without one, a plain sleep.
pub struct ExitWatch(Option<std::os::fd::OwnedFd>);

impl ExitWatch {
    pub fn new(child: u32) -> ExitWatch {
        #[cfg(target_os = "linux")]
        {
            ExitWatch(pid(child).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            }))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = child;
            ExitWatch(None)
        }
    }

    /// Sleeps up to `d`; less when the peer exits (or a signal comes) meanwhile.
    pub fn sleep(&self, d: std::time::Duration) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.0 {
            use rustix::event::{PollFd, PollFlags, Timespec, poll};
            let timeout = Timespec::try_from(d).ok();
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            if poll(&mut fds, timeout.as_ref()).is_ok() {
                return;
            }
        }
        std::thread::sleep(d);
    }
}

#[derive(Clone, Copy)]
pub enum Sig {
    Term,
    Kill,
}

pub fn install_stop_handlers(flag: &Arc<AtomicUsize>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    signal_hook::flag::register_usize(SIGINT, Arc::clone(flag), SIGINT_MARK)?;
    signal_hook::flag::register_usize(SIGTERM, Arc::clone(flag), 15)?;
    signal_hook::flag::register_usize(SIGHUP, Arc::clone(flag), 1)?;
    Ok(())
}

pub fn prepare(cmd: &mut Command) {
    // Its own group: one signal reaches every process, and the terminal's Ctrl-C reaches only
    // relay, which then takes the whole tree down in order.
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        // Orphans of the peer become relay's children instead of init's, so relay can find
        // (and reap) them even when they left the group.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
}

fn pid(raw: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(raw).ok()?)
}

pub fn signal_tree(leader: u32, sig: Sig) {
    let sig = match sig {
        Sig::Term => Signal::TERM,
        Sig::Kill => Signal::KILL,
    };
    if let Some(p) = pid(leader) {
        let _ = rustix::process::kill_process_group(p, sig);
    }
    for d in descendants(leader) {
        if let Some(p) = pid(d) {
            let _ = rustix::process::kill_process(p, sig);
        }
    }
}

/// Is any process of the tree still running (zombies do not count)?
pub fn tree_alive(leader: u32) -> bool {
    !(surely_gone(leader) || survivors(leader).is_empty())
}

/// The cheap answer first (a call to an instant peer should not cost a walk of every process
/// on the machine): the peer's group has no member, and relay has no child but its watchdog.
/// Relay is the subreaper of the peer's tree, so every descendant still running is below one
/// of relay's children. `false` means "look properly", never "alive".
fn surely_gone(leader: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(group) = pid(leader) else {
            return false;
        };
        if rustix::process::test_kill_process_group(group).is_ok() {
            return false;
        }
        let watchdog = WATCHDOG.load(std::sync::atomic::Ordering::Relaxed);
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return false;
        };
        for task in tasks {
            let Ok(task) = task else { return false };
            // Children of each thread: `<pid> <pid> ...` (needs CONFIG_PROC_CHILDREN). A thread
            // that ended meanwhile (the one feeding the peer's stdin, the one that started the
            // watchdog) started no process of the peer's.
            let children = match std::fs::read_to_string(task.path().join("children")) {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return false,
            };
            if children
                .split_whitespace()
                .any(|c| c.parse::<u32>().ok() != Some(watchdog))
            {
                return false;
            }
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = leader;
        false
    }
}

/// Live members of the peer's group and live descendants of relay.
pub fn survivors(leader: u32) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        // One walk of /proc for both questions: it is most of what a call costs relay.
        let all = procs();
        let mut out = descendants_in(&all);
        out.extend(
            all.iter()
                .filter(|p| p.pgrp == leader && !p.zombie)
                .map(|p| p.pid),
        );
        out.sort_unstable();
        out.dedup();
        out
    }
    #[cfg(not(target_os = "linux"))]
    {
        match pid(leader) {
            Some(p) if rustix::process::test_kill_process_group(p).is_ok() => vec![leader],
            _ => Vec::new(),
        }
    }
}

/// Reaps exited children other than the peer itself (orphans re-parented to relay). Only
/// called once the peer's own status is collected, so it never steals it.
pub fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
}

pub fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

#[cfg(target_os = "linux")]
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    zombie: bool,
    /// Clock ticks after boot when it started (field 22): with the pid, its identity.
    start: u64,
}

#[cfg(target_os = "linux")]
fn procs() -> Vec<Proc> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| proc_stat(e.ok()?.file_name().to_str()?.parse().ok()?))
        .collect()
}

/// One process's `/proc/<pid>/stat`: `pid (comm) state ppid pgrp ...`; comm may hold spaces
/// and parens, so fields are split after the last `)`.
#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<Proc> {
    // One read into a stack buffer (a stat line is well under 1 KiB): no size probe, no
    // second read, across the ~100 processes of a walk.
    use std::io::Read as _;
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    let stat = std::str::from_utf8(&buf[..n]).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    // Fields 6 to 21 (session ... itrealvalue), then starttime.
    let start = f.nth(16)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
        start,
    })
}

/// When `pid` started, if it is a live process (Linux; elsewhere unknown).
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        proc_stat(pid).filter(|p| !p.zombie).map(|p| p.start)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Is `pid` a live process with `arg` among its arguments? Where the command line cannot be
/// read (not Linux), liveness alone.
pub fn runs_with_arg(pid: u32, arg: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        proc_stat(pid).is_some_and(|p| !p.zombie)
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = arg;
        self::pid(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }
}

/// Is stdin a pipe (or FIFO)?
pub fn stdin_is_pipe() -> bool {
    use std::os::fd::AsFd as _;
    rustix::fs::fstat(std::io::stdin().as_fd()).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
    })
}

/// SIGTERM to one process.
pub fn terminate(raw: u32) {
    if let Some(p) = pid(raw) {
        let _ = rustix::process::kill_process(p, Signal::TERM);
    }
}

/// Live descendants of relay (the peer, its children, and orphans re-parented to relay).
fn descendants(_leader: u32) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        descendants_in(&procs())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// Live descendants of relay among `all` (the watchdog is not one of the peer's).
#[cfg(target_os = "linux")]
fn descendants_in(all: &[Proc]) -> Vec<u32> {
    let me = std::process::id();
    let watchdog = WATCHDOG.load(std::sync::atomic::Ordering::Relaxed);
    let all: Vec<&Proc> = all.iter().filter(|p| p.pid != watchdog).collect();
    let mut found = vec![me];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            all.iter()
                .filter(|p| p.ppid == parent && p.pid != me)
                .map(|p| p.pid),
        );
        i += 1;
    }
    let live: std::collections::HashSet<u32> =
        all.iter().filter(|p| !p.zombie).map(|p| p.pid).collect();
    found
        .into_iter()
        .skip(1)
        .filter(|p| live.contains(p))
        .collect()
}
