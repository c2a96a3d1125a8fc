//! `relay`: hand a task to another coding agent through files and get a verifiable answer back.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod error;
mod input;
mod output;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if error::is_broken_pipe(&err) {
                // `relay list | head`: the reader left; that is not a failure.
                return ExitCode::SUCCESS;
            }
            let (code, hint) = error::classify(&err);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "relay: {err:#}");
            if let Some(hint) = hint {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            ExitCode::from(code)
        }
    }
}
