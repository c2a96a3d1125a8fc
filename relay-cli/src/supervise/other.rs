//! Non-Unix fallback: the direct child only (job objects are future work; see README).

use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

pub const SIGINT_MARK: usize = 2;

#[derive(Clone, Copy)]
pub enum Sig {
    Term,
    Kill,
}

pub fn install_stop_handlers(_flag: &Arc<AtomicUsize>) -> std::io::Result<()> {
    Ok(())
}

pub fn prepare(_cmd: &mut Command) {}

pub fn signal_tree(_leader: u32, _sig: Sig) {}

pub fn tree_alive(_leader: u32) -> bool {
    false
}

pub fn survivors(_leader: u32) -> Vec<u32> {
    Vec::new()
}

pub fn reap_orphans() {}

/// Not watched here: the supervisor's loop sleeps its poll interval.
pub struct ExitWatch;

impl ExitWatch {
    pub fn new(_child: u32) -> ExitWatch {
        ExitWatch
    }

    pub fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d);
    }
}

/// Unknown here: assume it still runs (the conservative answer for `relay wait`).
pub fn runs_with_arg(_pid: u32, _arg: &str) -> bool {
    true
}

pub fn terminate(_pid: u32) {}

/// No watchdog where there are no process groups to guard.
pub struct Watchdog;

impl Watchdog {
    pub fn start() -> Watchdog {
        Watchdog
    }

    pub fn arm(
        &mut self,
        _leader: u32,
        _timeout: std::time::Duration,
        _grace: std::time::Duration,
    ) {
    }

    pub fn stop(&mut self) {}
}

pub fn watch(_group: u32, _deadline_ms: u128, _grace: std::time::Duration) {}

/// Nothing to hand over where there is no watchdog.
pub fn guard_by_parent() -> std::io::Result<()> {
    Ok(())
}

/// No gate where stdin cannot be told apart: the parent's write may race (best effort).
pub fn stdin_is_pipe() -> bool {
    false
}

pub fn start_time(_pid: u32) -> Option<u64> {
    None
}

pub fn signal_of(_status: &ExitStatus) -> Option<i32> {
    None
}
