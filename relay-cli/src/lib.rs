//! The `relay` command line, as a library so the binary stays a one-line `main` and tests can
//! build helper binaries against it. Nothing here is a stable API: use relay-core for that.

use std::io::Write as _;
use std::process::ExitCode;

use clap::error::ErrorKind;

mod board;
mod cli;
mod commands;
mod engine;
mod error;
mod fan;
mod findings_out;
mod input;
mod output;
mod peer;
mod record;
mod result;
mod review;
mod run;
mod settings;
mod supervise;
mod workspace;

/// Runs `relay` with the process arguments; returns the exit code.
pub fn main() -> ExitCode {
    let cli = match cli::parse() {
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
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "relay: {text}");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(hint) = usage_hint(err, &args) {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    ExitCode::from(relay_core::exit::USAGE)
}

/// A hint for the mistakes people and agents make most with `req` and `call`.
fn usage_hint(err: &clap::Error, args: &[String]) -> Option<String> {
    let sub = args.iter().position(|a| a == "call" || a == "req")?;
    let cmd = &args[sub];
    let after = &args[sub + 1..];
    let has = |flag: &str| {
        after
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    match err.kind() {
        ErrorKind::UnknownArgument
            if matches!(
                err.get(clap::error::ContextKind::InvalidArg),
                Some(clap::error::ContextValue::String(a)) if a.starts_with('-')
            ) =>
        {
            None
        }
        ErrorKind::UnknownArgument => {
            let first_positional = after.iter().find(|a| !a.starts_with('-'));
            if !has("--to")
                && first_positional.is_some_and(|p| peer::BUILTINS.contains(&p.as_str()))
            {
                let peer = first_positional.map_or("codex", String::as_str);
                Some(format!(
                    "the peer goes in --to: relay {cmd} --to {peer} --name NAME 'the task'"
                ))
            } else {
                Some(format!(
                    "quote the task as one argument: relay {cmd} ... --name NAME 'Review src/auth.py and run the tests.'"
                ))
            }
        }
        ErrorKind::MissingRequiredArgument if !has("--name") && !has("--session") => Some(
            "name the exchange (--name auth-review) or add a turn to a session (--session auth)"
                .into(),
        ),
        _ => None,
    }
}
