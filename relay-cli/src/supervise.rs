//! Running a peer under supervision: its own process group, stdin from /dev/null (or a text
//! relay feeds it), output to
//! files (no pipe a grandchild could hold open), a wall-clock and an idle deadline, and on any
//! of those or on Ctrl-C/SIGTERM of relay itself: SIGTERM to the whole tree, a grace period,
//! SIGKILL. Nothing the peer started outlives the call.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[path = "supervise/unix.rs"]
mod os;
#[cfg(not(unix))]
#[path = "supervise/other.rs"]
mod os;

/// What to start.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env_set: Vec<(String, String)>,
    pub env_remove: Vec<String>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Text fed to the peer's stdin, then closed (`None`: stdin is /dev/null).
    pub stdin_text: Option<String>,
}

/// When to give up on the peer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// No new output on stdout or stderr for this long ends the run (`None`: off).
    pub idle: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// After the peer exits, how long processes it left behind may still finish the reply.
    pub settle: Duration,
    /// Each log is truncated when it grows past this many bytes.
    pub log_cap: u64,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// The peer exited by itself.
    Exited,
    /// `Limits::timeout` passed.
    Timeout,
    /// `Limits::idle` passed without output.
    Idle,
    /// relay got SIGINT (Ctrl-C).
    Interrupted,
    /// relay got SIGTERM or SIGHUP (e.g. `relay cancel`).
    Terminated,
}

/// The result of a supervised run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub end: End,
    /// The peer's exit code, if it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended the peer, if any.
    pub signal: Option<i32>,
    /// From the kill decision to the last process of the tree gone (when relay had to kill).
    pub kill_time: Option<Duration>,
    /// Processes still alive after the tree kill (should be empty; reported, never ignored).
    pub survivors: Vec<u32>,
}

/// Signals relay itself received; checked on every poll.
#[derive(Clone, Default)]
pub struct StopFlags(Arc<AtomicUsize>);

impl StopFlags {
    /// Catches SIGINT, SIGTERM and SIGHUP for the rest of the process: they set the flag
    /// instead of killing relay, so relay can kill the peer's tree first.
    pub fn install() -> io::Result<StopFlags> {
        let flags = StopFlags::default();
        os::install_stop_handlers(&flags.0)?;
        Ok(flags)
    }

    fn get(&self) -> Option<End> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            os::SIGINT_MARK => Some(End::Interrupted),
            _ => Some(End::Terminated),
        }
    }
}

/// Called about every 100 ms while the peer runs.
pub struct Tick<'a> {
    pub stdout: &'a Path,
    pub stderr: &'a Path,
}

/// A started peer, with the watchdog that will guard its deadline (see [`supervise`]).
pub struct Started {
    child: Child,
    watchdog: os::Watchdog,
}

impl Started {
    /// The peer's pid (its process group's id too).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

/// Starts the peer (in its own process group) and returns at once. Its watchdog starts on a
/// thread at the same moment, so that the watchdog's own start (an exec of relay) overlaps the
/// peer's instead of adding to the call.
pub fn start(spawn: &Spawn) -> io::Result<Started> {
    let watchdog = os::Watchdog::start();
    let out = log_file(&spawn.stdout)?;
    let err = log_file(&spawn.stderr)?;
    let mut cmd = Command::new(&spawn.program);
    cmd.args(&spawn.args)
        .current_dir(&spawn.cwd)
        .stdin(if spawn.stdin_text.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out)
        .stderr(err);
    for key in &spawn.env_remove {
        cmd.env_remove(key);
    }
    for (k, v) in &spawn.env_set {
        cmd.env(k, v);
    }
    os::prepare(&mut cmd);
    let mut child = cmd.spawn()?;
    if let (Some(text), Some(mut pipe)) = (spawn.stdin_text.clone(), child.stdin.take()) {
        // A thread, so a peer that never reads its stdin cannot block the supervisor; the write
        // ends (EPIPE) when the tree is gone. Closing the pipe is the peer's end of input.
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    Ok(Started { child, watchdog })
}

/// Append mode, so truncating the log (cap) makes the peer's next write land at the start
/// instead of leaving a sparse hole.
fn log_file(path: &Path) -> io::Result<File> {
    // Never through a link planted at the log's path.
    relay_core::untrusted::open_append(path)
}

/// Supervises a started peer until it ends, the limits pass, or relay is told to stop.
/// `reply` is the file the peer should write; while processes it left behind still run after
/// it exits, relay waits up to `settle` for that file before killing them.
pub fn supervise(
    peer: Started,
    spawn: &Spawn,
    limits: &Limits,
    stop: &StopFlags,
    reply: &Path,
    started: Instant,
    on_tick: &mut dyn FnMut(&Tick<'_>),
) -> io::Result<Outcome> {
    let Started {
        mut child,
        mut watchdog,
    } = peer;
    let pid = child.id();
    // If this relay dies (SIGKILL, OOM), the watchdog still ends the peer's group at the
    // deadline. A quarter second later than ours, so while relay lives it is relay that acts.
    watchdog.arm(
        pid,
        limits.timeout.saturating_sub(started.elapsed()) + WATCHDOG_MARGIN,
        limits.grace,
    );
    // The loop's sleeps end the moment the peer exits, not up to a poll interval later.
    let exit = os::ExitWatch::new(pid);
    let mut sizes = (0u64, 0u64);
    let mut last_output = started;
    let mut last_tick = started;
    let mut status: Option<ExitStatus> = None;
    let end = loop {
        if let Some(s) = child.try_wait()? {
            status = Some(s);
            // Killed by a signal once the deadline had passed: the watchdog beat a slow
            // poll of ours to it. Still a timeout.
            if os::signal_of(&s).is_some() && started.elapsed() >= limits.timeout {
                break End::Timeout;
            }
            break End::Exited;
        }
        let now = Instant::now();
        let current = (
            cap(&spawn.stdout, limits.log_cap),
            cap(&spawn.stderr, limits.log_cap),
        );
        if current != sizes {
            sizes = current;
            last_output = now;
        }
        if let Some(end) = stop.get() {
            break end;
        }
        if now - started >= limits.timeout {
            break End::Timeout;
        }
        if limits.idle.is_some_and(|idle| now - last_output >= idle) {
            break End::Idle;
        }
        if now - last_tick >= Duration::from_millis(100) {
            last_tick = now;
            on_tick(&Tick {
                stdout: &spawn.stdout,
                stderr: &spawn.stderr,
            });
        }
        exit.sleep(poll_interval(now - started));
    };
    let mut kill_time = None;
    if end == End::Exited {
        // The peer is gone; anything it left running may still be writing the reply.
        let settle_until = Instant::now() + limits.settle;
        // The cheap test first: a /proc walk only while the reply is still missing.
        while !reply.exists()
            && Instant::now() < settle_until
            && stop.get().is_none()
            && os::tree_alive(pid)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if os::tree_alive(pid) {
            kill_time = Some(kill_tree(&mut child, pid, limits.grace, &mut status)?);
        }
    } else {
        kill_time = Some(kill_tree(&mut child, pid, limits.grace, &mut status)?);
    }
    let status = match status {
        Some(s) => s,
        None => child.wait()?,
    };
    watchdog.stop();
    os::reap_orphans();
    Ok(Outcome {
        end,
        exit_code: status.code(),
        signal: os::signal_of(&status),
        kill_time,
        // Nothing can have survived a tree that was already gone when relay looked.
        survivors: if kill_time.is_some() {
            os::survivors(pid)
        } else {
            Vec::new()
        },
    })
}

/// What a supervisor tells whoever guards its peer's deadline from outside (a watchdog
/// process, or the relay that started it): one line `<group> <deadline, ms since the epoch>
/// <grace ms>`, written once the peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orders {
    group: u32,
    deadline_ms: u128,
    grace: Duration,
}

impl Orders {
    /// Orders for the group led by `leader`, due `timeout` from now.
    fn new(leader: u32, timeout: Duration, grace: Duration) -> Option<Orders> {
        let deadline = std::time::SystemTime::now().checked_add(timeout)?;
        Some(Orders {
            group: leader,
            deadline_ms: deadline
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis(),
            grace,
        })
    }

    fn line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.group,
            self.deadline_ms,
            self.grace.as_millis()
        )
    }

    /// The line that withdraws orders for `group`: its supervisor ended its tree.
    fn done_line(group: u32) -> String {
        format!("{group} done\n")
    }

    /// Does `line` withdraw these orders?
    fn withdrawn_by(&self, line: &str) -> bool {
        line.strip_suffix(" done")
            .and_then(|g| g.parse::<u32>().ok())
            == Some(self.group)
    }

    fn parse(line: &str) -> Option<Orders> {
        let mut f = line.split_whitespace();
        let orders = Orders {
            group: f.next()?.parse().ok()?,
            deadline_ms: f.next()?.parse().ok()?,
            grace: Duration::from_millis(f.next()?.parse().ok()?),
        };
        f.next().is_none().then_some(orders)
    }

    /// Until the group is gone, or the deadline passes and it ends the group (SIGTERM, grace,
    /// SIGKILL). Returns at once when the group is already gone.
    pub fn enforce(self) {
        os::watch(self.group, self.deadline_ms, self.grace);
    }
}

/// `relay __watchdog`: guards one peer group's deadline from outside the supervisor, by the
/// [`Orders`] on its stdin; at end of input without them (the supervisor died first) there is
/// nothing to guard.
pub fn watch() {
    use std::io::Read as _;
    let mut line = String::new();
    if io::stdin().take(128).read_to_string(&mut line).is_ok()
        && let Some(orders) = Orders::parse(&line)
    {
        orders.enforce();
    }
}

/// For a supervisor whose starter guards it (`relay __supervise --parent-guards`): its
/// [`Orders`] go to the pipe on stdout, moved to a descriptor no child inherits (so the
/// starter sees the pipe's end when this process ends), and stdout becomes the log stderr is.
pub fn guard_by_parent() -> io::Result<()> {
    os::guard_by_parent()
}

/// The [`Orders`] a supervisor wrote on `pipe` (one per peer or check it started, one at a
/// time) and did not withdraw (`<group> done`, once it ended that tree), read to the pipe's end:
/// the supervisor's exit. `Some` only when the supervisor ended before its tree did (killed, or
/// an error cut its supervision short): the caller then holds the deadline.
pub fn read_orders(pipe: impl io::Read) -> Option<Orders> {
    use std::io::BufRead as _;
    let mut pending = None;
    for line in io::BufReader::new(pipe).split(b'\n') {
        let Ok(line) = line else { break };
        let Ok(line) = std::str::from_utf8(&line) else {
            continue;
        };
        if let Some(orders) = Orders::parse(line) {
            pending = Some(orders);
        } else if pending.is_some_and(|o| o.withdrawn_by(line)) {
            pending = None;
        }
    }
    pending
}

/// Waits for the end of stdin when it is a pipe: the gate the relay that started this
/// supervisor holds until the run record names it (see `Call::spawn_supervisor`). Anything
/// else on stdin (a terminal, /dev/null) is no gate.
pub fn wait_for_parent() {
    if os::stdin_is_pipe() {
        // To its end, kept nowhere: only the relay that holds the other end decides when.
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    }
}

/// When `pid` started (clock ticks after boot, Linux): recorded with every pid relay may
/// signal later, because the system reuses pids.
pub fn start_time(pid: u32) -> Option<u64> {
    os::start_time(pid)
}

/// The argument that marks a relay process supervising a call: `relay call` in the foreground,
/// `relay __supervise` for `--bg`.
pub const SUPERVISOR_ARGS: &[&str] = &["call", "__supervise"];

/// Is this the process relay recorded: `pid` running with one of `args` among its arguments
/// (when any are given) and, where the start time was recorded, started then? A reused pid
/// does not count.
pub fn is_same_process(pid: u32, start: Option<u64>, args: &[&str]) -> bool {
    let started_then = match start {
        Some(s) => os::start_time(pid) == Some(s),
        // No start time recorded (an older record, or not Linux): the command line only.
        None => true,
    };
    started_then && (args.is_empty() || args.iter().any(|a| os::runs_with_arg(pid, a)))
}

/// Asks one process to stop (SIGTERM).
pub fn terminate(pid: u32) {
    os::terminate(pid);
}

/// Kills a process group (and any descendants of relay) at once (SIGKILL). Callers check
/// [`is_same_process`] on the leader first.
pub fn kill_group(leader: u32) {
    os::signal_tree(leader, os::Sig::Kill);
}

/// How long after relay's own deadline the watchdog acts.
const WATCHDOG_MARGIN: Duration = Duration::from_millis(250);

/// Short polls first (an instant peer costs relay almost nothing), longer ones later.
fn poll_interval(elapsed: Duration) -> Duration {
    match elapsed.as_millis() {
        0..200 => Duration::from_millis(2),
        200..2000 => Duration::from_millis(20),
        _ => Duration::from_millis(50),
    }
}

/// The size of a log, truncated to zero first when it passed `cap` (the peer writes in append
/// mode, so it simply continues at the start).
fn cap(path: &Path, cap: u64) -> u64 {
    let len = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
    if len > cap {
        if let Ok(f) = relay_core::untrusted::open_append(path) {
            let _ = f.set_len(0);
        }
        return 0;
    }
    len
}

/// SIGTERM to the whole tree, wait up to `grace`, SIGKILL what is left, wait until it is gone.
/// Returns how long that took.
fn kill_tree(
    child: &mut Child,
    pid: u32,
    grace: Duration,
    status: &mut Option<ExitStatus>,
) -> io::Result<Duration> {
    let t0 = Instant::now();
    os::signal_tree(pid, os::Sig::Term);
    let mut killed = false;
    loop {
        if status.is_none() {
            *status = child.try_wait()?;
        }
        if status.is_some() {
            os::reap_orphans();
        }
        if !os::tree_alive(pid) && status.is_some() {
            return Ok(t0.elapsed());
        }
        if !killed && t0.elapsed() >= grace {
            os::signal_tree(pid, os::Sig::Kill);
            // The direct child by handle too: the only kill there is where process groups are
            // not (non-Unix), harmless where they are.
            let _ = child.kill();
            killed = true;
        }
        if killed && t0.elapsed() >= grace + Duration::from_secs(5) {
            // SIGKILL cannot be ignored; a process still here is stuck in the kernel. Report it
            // (Outcome::survivors) rather than hang.
            return Ok(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the relay that started a supervisor enforces: the orders still standing when the
    /// supervisor's pipe ends; none once the supervisor withdrew them (it ended that tree).
    #[test]
    fn orders_stand_until_withdrawn() {
        let read = |text: &str| read_orders(text.as_bytes()).map(|o| (o.group, o.deadline_ms));
        assert_eq!(read(""), None);
        assert_eq!(read("41 1000 300\n"), Some((41, 1000)));
        // Killed before the line ended: not orders.
        assert_eq!(read("41 10"), None);
        assert_eq!(read("41 1000 300\n41 done\n"), None);
        // The peer's tree ended, then a check's was cut short: the check's orders stand.
        assert_eq!(
            read("41 1000 300\n41 done\n57 2000 300\n"),
            Some((57, 2000))
        );
        // A withdrawal names its group; anything else on the pipe is not orders.
        assert_eq!(read("41 1000 300\n40 done\n"), Some((41, 1000)));
        assert_eq!(read("panic: x\n41 1000 300 7\n\u{fffd}\n"), None);
        let orders = Orders::new(41, Duration::from_secs(5), Duration::from_millis(300)).unwrap();
        assert_eq!(Orders::parse(&orders.line()), Some(orders));
    }
}
