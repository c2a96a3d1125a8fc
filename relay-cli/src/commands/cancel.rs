//! `relay cancel`: stop a running call and its whole peer process tree.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use relay_core::exit;

use crate::input;
use crate::run::{RunRecord, State};

/// Stop a running call and its whole peer process tree.
///
/// The call's supervisor kills the tree (SIGTERM, grace period, SIGKILL) and records the call
/// as terminated.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay call --to codex --name big-job --bg 'Port the parser.'
  relay cancel big-job            # exit 0 once the tree is dead; `relay wait big-job` exits 130")]
pub struct CancelArgs {
    /// The exchange (an id, a unique name, session/turn, or a request path).
    #[arg(value_name = "EXCHANGE")]
    pub exchange: String,
}

pub fn run(root: Option<&PathBuf>, args: &CancelArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let request = crate::run::locate_call(&relay, &args.exchange)?;
    let record = RunRecord::load_started(&request)?;
    if record.state != State::Running {
        eprintln!(
            "relay: {} already finished ({})",
            record.exchange,
            record.reason.as_deref().unwrap_or("done")
        );
        return Ok(exit::OK);
    }
    if record.supervisor_alive() {
        crate::supervise::terminate(record.supervisor_pid);
        // The supervisor kills the tree (grace, then SIGKILL) and finishes the record.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if RunRecord::load(&request).is_ok_and(|r| r.state == State::Finished) {
                println!("relay: cancelled {}", record.exchange);
                return Ok(exit::OK);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!(
            "{} did not stop within 15s (supervisor pid {})",
            record.exchange,
            record.supervisor_pid
        );
    }
    // The supervisor is gone (killed, machine restarted): take the peer's group down directly,
    // but only if that pid is still the process relay started (same start time); a pid the
    // system gave to another program since is never signalled.
    let mut r = record;
    let ours = r.peer_start.is_some()
        && r.pid
            .is_some_and(|pid| crate::supervise::is_same_process(pid, r.peer_start, &[]));
    if ours && let Some(pid) = r.pid {
        crate::supervise::kill_group(pid);
        r.state = State::Finished;
        r.outcome = Some(crate::run::Outcome::Terminated);
        r.exit_code = Some(exit::INTERRUPTED);
        r.reason = Some(
            "cancelled after its supervisor was gone; the peer's process group was killed".into(),
        );
        println!("relay: cancelled {}", r.exchange);
    } else {
        r.state = State::Stale;
        r.reason = Some(
            "its supervisor is gone and its peer is no longer running (or its pid now belongs to another program): nothing was signalled".into(),
        );
        println!("relay: {} was no longer running; marked stale", r.exchange);
    }
    r.ended = Some(input::now()?);
    r.save()?;
    Ok(exit::OK)
}
