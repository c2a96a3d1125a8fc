//! The `relay` command line, as a library so the binary stays a one-line `main` and tests can
//! build helper binaries against it. Nothing here is a stable API: use relay-core for that.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;

mod cli;
mod commands;
mod error;
mod input;
mod output;
mod peer;
mod result;
mod run;
mod supervise;

/// Runs `relay` with the process arguments; returns the exit code.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_exit(&err),
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if error::is_broken_pipe(&err) {
                // `relay list | head`: the reader left; that is not a failure.
                return ExitCode::SUCCESS;
            }
            let (code, hint) = error::classify(&err);
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "relay: {}", error::render(&err));
            if let Some(hint) = hint {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            ExitCode::from(code)
        }
    }
}

/// Help and version go to stdout with exit 0; every other parse error is a usage error, printed
/// with the same `relay: ` prefix as all relay errors so callers can recognise it.
fn clap_exit(err: &clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        let code = if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            relay_core::exit::USAGE
        } else {
            0
        };
        return ExitCode::from(code);
    }
    let text = err.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let _ = write!(std::io::stderr().lock(), "relay: {text}");
    ExitCode::from(relay_core::exit::USAGE)
}
