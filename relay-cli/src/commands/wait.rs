//! `relay wait`: wait for a background call and print its result.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use relay_core::exit;

use crate::error::ExpectedError;
use crate::input;
use crate::run::{RunRecord, State};

/// Wait for a background call and print its result.
///
/// For calls started with `relay call --bg`: prints the result as `relay call` would, and exits
/// with the same code.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay wait 20261121-163000-big-job
  relay wait big-job --timeout 10m     # exit 124 if still running then (the peer keeps running)")]
pub struct WaitArgs {
    /// The exchange: an id, a unique name, session/turn, or a request path.
    #[arg(value_name = "EXCHANGE")]
    pub exchange: String,

    /// Stop waiting after this long (the call keeps running; exit 124).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::call::parse_duration_arg)]
    pub timeout: Option<Duration>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(root: Option<&PathBuf>, args: &WaitArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let request = crate::run::locate_call(&relay, &args.exchange)?;
    let t0 = Instant::now();
    loop {
        let record = RunRecord::load_started(&request)?;
        if record.state == State::Finished {
            crate::result::print(&record, args.json)?;
            return Ok(record.exit_code.unwrap_or(exit::FAILURE));
        }
        if !record.supervisor_alive() {
            return Err(ExpectedError::SupervisorGone {
                exchange: record.exchange.clone(),
                pid: record.supervisor_pid,
                log: relay_core::beside(&request, relay_core::BESIDE_SUPERVISOR_LOG),
            }
            .into());
        }
        if args.timeout.is_some_and(|t| t0.elapsed() >= t) {
            eprintln!(
                "relay: {} is still running after {}s",
                record.exchange,
                t0.elapsed().as_secs()
            );
            return Ok(exit::TIMEOUT);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
