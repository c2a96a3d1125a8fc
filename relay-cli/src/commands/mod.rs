//! One module per subcommand; `run` dispatches.

pub mod board;
pub mod call;
pub mod cancel;
pub mod ci;
pub mod clean;
pub mod completions;
pub mod deliberate;
pub mod doctor;
pub mod fan;
pub mod handoff;
pub mod hook;
pub mod inbox;
pub mod init;
pub mod list;
pub mod note;
pub mod req;
pub mod res;
pub mod review;
pub mod show;
pub mod skill;
pub mod spec;
pub mod stats;
pub mod status;
pub mod validate;
pub mod wait;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let root = cli.root.as_ref();
    match cli.command.0 {
        Command::Req(args) => req::run(root, &args),
        Command::Res(args) => res::run(root, &args),
        Command::Validate(args) => validate::run(root, &args),
        Command::List(args) => list::run(root, &args),
        Command::Show(args) => show::run(root, &args),
        Command::Call(args) => call::run(root, &args),
        Command::Review(args) => review::run(root, &args),
        Command::Ci(args) => ci::run(root, &args),
        Command::Fan(args) => fan::run(root, &args),
        Command::Deliberate(args) => deliberate::run(root, &args),
        Command::Init(args) => init::run(root, &args),
        Command::Handoff(args) => handoff::run(root, &args),
        Command::Board(args) => board::board(root, &args),
        Command::Log(args) => board::log(root, &args),
        Command::Close(args) => board::close(root, &args),
        Command::Takeover(args) => board::takeover(root, &args),
        Command::Note(args) => note::run(root, &args),
        Command::Inbox(args) => inbox::inbox(root, &args),
        Command::Next(args) => inbox::next(root, &args),
        Command::Hook(args) => hook::run(root, &args),
        Command::Decisions(args) => note::decisions(root, &args),
        Command::Stats(args) => stats::run(root, &args),
        Command::Wait(args) => wait::run(root, &args),
        Command::Status(args) => status::run(root, &args),
        Command::Cancel(args) => cancel::run(root, &args),
        Command::Clean(args) => clean::run(root, &args),
        Command::Doctor(args) => doctor::run(root, &args),
        Command::Skill(args) => skill::run(root, &args),
        Command::Spec(args) => spec::run(&args),
        Command::Supervise {
            request,
            parent_guards,
        } => call::supervise_stored(root, &request, parent_guards),
        Command::Watchdog => {
            crate::supervise::watch();
            Ok(relay_core::exit::OK)
        }
        Command::Completions(args) => completions::run(&args),
    }
}
