//! The command line: global options and the subcommand table.

use std::path::PathBuf;

use clap::{Args, Command as ClapCommand, FromArgMatches, Parser, Subcommand};

use crate::commands::{
    board, call, cancel, ci, clean, completions, deliberate, doctor, fan, handoff, hook, inbox,
    init, list, note, req, res, review, show, skill, spec, stats, status, validate, wait,
};

const ABOUT: &str =
    "Hand a task to another coding agent through files and get a verifiable answer back.";

const LONG_ABOUT: &str = "\
Hand a task to another coding agent through files and get a verifiable answer back:

  relay call --to codex --name auth-review --mode read-only 'Review src/auth.py. Run pytest.'

A request is a markdown file under .relay/ with YAML frontmatter (relay, id, from, to), the
task in natural language, and a footer telling the peer exactly which file to write. The peer
answers in the .res.md beside it with `status: done|error` and `verify: pass|fail|skip`.
Everything stays a plain-file trail you can read, diff and audit.";

const EXAMPLES: &str = "\
Examples:
  # Ask codex for a review and wait for its verified answer (exit 0 = done, checks passed)
  relay call --to codex --name auth-review --mode read-only 'Review src/auth.py. Run pytest.'

  # Hand claude a task in the background, then wait for it
  relay call --to claude --name port --bg 'Port the parser to Rust.' && relay wait port

  # A read-only review with findings as data (SARIF, rdjsonl, GitHub annotations too)
  relay review --with codex --base main

  # The same question to three peers at once, blind; a second opinion on a decision
  relay fan --to codex,claude,gemini --name api 'Which API shape is simplest?'
  relay deliberate --with gemini 'Per-user cache?' --position 'Yes: simpler invalidation.'

  # Continue a multi-turn session (turns 001, 002, ... under .relay/auth-refactor/)
  relay call --to gemini --session auth-refactor 'Now add tests for the fix.'

  # Write a request by hand, answer it as the peer
  relay req --to codex --name auth-review 'Review src/auth.py. Run pytest.'
  relay res --request auth-review --status done --verify pass 'Found 2 issues: ...'

  # Check files against the protocol, list exchanges, read one, check the set-up
  relay validate .relay/*.md
  relay list --json
  relay show auth-refactor/2
  relay doctor

`relay spec` prints the protocol, exit codes included.";

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "relay",
    verbatim_doc_comment,
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Project root holding .relay/ (default: the git top-level, else the current directory).
    #[arg(long, global = true, env = "RELAY_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands; each lives in its own file under `commands/`. Each one's arguments are
/// added to clap's tree only when that subcommand is parsed ([`Lazy`]).
#[derive(Debug, Subcommand)]
pub enum Command {
    Call(Lazy<call::CallArgs>),
    Review(Lazy<review::ReviewArgs>),
    Ci(Lazy<ci::CiArgs>),
    Fan(Lazy<fan::FanArgs>),
    Deliberate(Lazy<deliberate::DeliberateArgs>),
    Handoff(Lazy<handoff::HandoffArgs>),
    Board(Lazy<board::BoardArgs>),
    Note(Lazy<note::NoteArgs>),
    Decisions(Lazy<note::DecisionsArgs>),
    Inbox(Lazy<inbox::InboxArgs>),
    Next(Lazy<inbox::NextArgs>),
    Close(Lazy<board::CloseArgs>),
    Log(Lazy<board::LogArgs>),
    Takeover(Lazy<board::TakeoverArgs>),
    Hook(Lazy<hook::HookArgs>),
    Wait(Lazy<wait::WaitArgs>),
    Status(Lazy<status::StatusArgs>),
    Stats(Lazy<stats::StatsArgs>),
    Cancel(Lazy<cancel::CancelArgs>),
    Req(Lazy<req::ReqArgs>),
    Res(Lazy<res::ResArgs>),
    Validate(Lazy<validate::ValidateArgs>),
    List(Lazy<list::ListArgs>),
    Show(Lazy<show::ShowArgs>),
    Clean(Lazy<clean::CleanArgs>),
    Doctor(Lazy<doctor::DoctorArgs>),
    Skill(Lazy<skill::SkillArgs>),
    Init(Lazy<init::InitArgs>),
    Spec(Lazy<spec::SpecArgs>),
    /// (internal) Runs the plan stored in a request's run record: the background half of --bg,
    /// and each peer of a fan-out.
    #[command(name = "__supervise", hide = true)]
    Supervise {
        /// The request whose run record holds the plan.
        request: PathBuf,
        /// The relay that started this one guards the peer's deadline should this one die:
        /// the orders go to stdout, a pipe it reads (no watchdog process of its own).
        #[arg(long)]
        parent_guards: bool,
    },
    /// (internal) Guards a peer group's deadline if the relay that started it dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
    Completions(Lazy<completions::CompletionsArgs>),
}

/// Parses the process arguments, building as little of clap's tree as it takes: first only
/// the subcommand named (which is all a call that parses needs); when that fails, the whole
/// tree with deferred arguments, so errors and suggestions read as they always did; for help,
/// the whole tree with every argument (the root's help lists each subcommand's summary).
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(name) = subcommand_named(&args) {
        set_shape(Shape::Only(name));
        if let Ok(m) = Cli::command().try_get_matches_from(&args) {
            return Cli::from_arg_matches(&m);
        }
    }
    set_shape(Shape::Deferred);
    let matches = match Cli::command().try_get_matches_from(&args) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            full_command().try_get_matches_from(&args)?
        }
        other => other?,
    };
    Cli::from_arg_matches(&matches)
}

/// The first word that is not an option (nor `--root`'s value), when it names a subcommand.
fn subcommand_named(args: &[std::ffi::OsString]) -> Option<String> {
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(word) = words.next() {
        if word == "--root" {
            words.next();
        } else if word == "--" {
            return None;
        } else if !word.starts_with('-') {
            return Command::has_subcommand(word).then(|| word.to_owned());
        }
    }
    None
}

/// The whole tree, every subcommand's arguments in place (help, completions).
pub fn full_command() -> ClapCommand {
    use clap::CommandFactory as _;
    set_shape(Shape::Eager);
    // Built here, not at every start: only long help shows it.
    let mut cmd = Cli::command().after_long_help(exit_codes_help());
    cmd.build();
    cmd
}

/// How much of the tree `Cli::command()` builds.
#[derive(Clone)]
enum Shape {
    /// Every subcommand, each one's arguments added when it is parsed ([`Lazy`]).
    Deferred,
    /// Every subcommand with its arguments. (Deferred ones would be missing from the tree
    /// clap's `help` subcommand copies when the root is built.)
    Eager,
    /// Only this subcommand (deferred like the rest): each subcommand in the tree costs a copy
    /// of the global options and a line of the `help` subcommand when the root is built.
    Only(String),
}

static SHAPE: std::sync::Mutex<Shape> = std::sync::Mutex::new(Shape::Deferred);

fn set_shape(shape: Shape) {
    *SHAPE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = shape;
}

fn shape() -> Shape {
    SHAPE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The subcommand table as clap sees it: all of [`Command`], or the one [`Shape`] names.
#[derive(Debug)]
pub struct Commands(pub Command);

impl FromArgMatches for Commands {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Command::from_arg_matches(matches).map(Commands)
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl Subcommand for Commands {
    fn augment_subcommands(cmd: ClapCommand) -> ClapCommand {
        shaped(cmd, Command::augment_subcommands)
    }
    fn augment_subcommands_for_update(cmd: ClapCommand) -> ClapCommand {
        shaped(cmd, Command::augment_subcommands_for_update)
    }
    fn has_subcommand(name: &str) -> bool {
        Command::has_subcommand(name)
    }
}

/// `all` (the derived table), or only the subcommand [`Shape::Only`] names: taken from the
/// whole table built on a scratch command, which with deferred arguments is cheap.
fn shaped(cmd: ClapCommand, all: fn(ClapCommand) -> ClapCommand) -> ClapCommand {
    if let Shape::Only(name) = shape()
        && let Some(one) = all(ClapCommand::new("relay")).find_subcommand(&name)
    {
        return cmd.subcommand(one.clone());
    }
    all(cmd)
}

/// A subcommand's arguments, deferred (`Command::defer`) until clap parses that subcommand:
/// building all 32 subcommands with their ~165 arguments was the largest part of relay's own
/// work in a short command such as `relay req` (allocations, page faults).
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: ClapCommand) -> ClapCommand {
        if matches!(shape(), Shape::Eager) {
            T::augment_args(cmd)
        } else {
            cmd.defer(T::augment_args)
        }
    }
    fn augment_args_for_update(cmd: ClapCommand) -> ClapCommand {
        if matches!(shape(), Shape::Eager) {
            T::augment_args_for_update(cmd)
        } else {
            cmd.defer(T::augment_args_for_update)
        }
    }
}

/// `relay --help` ends with examples and the exit-code table from relay-core (one source).
fn exit_codes_help() -> String {
    let mut s = String::from(EXAMPLES);
    s.push_str("\n\nExit codes:\n");
    for (code, name, meaning) in relay_core::exit::TABLE {
        s.push_str(&format!("  {code:>3}  {name:<15} {meaning}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        super::full_command().debug_assert();
    }

    /// Which subcommand alone is built for a command line (none: the whole tree).
    #[test]
    fn the_subcommand_named_is_found_past_global_options() {
        let named = |line: &str| {
            let args: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
            super::subcommand_named(&args)
        };
        assert_eq!(named("relay req --to b x").as_deref(), Some("req"));
        assert_eq!(named("relay --root list req").as_deref(), Some("req"));
        assert_eq!(named("relay --root=/p list").as_deref(), Some("list"));
        assert_eq!(named("relay -h call").as_deref(), Some("call"));
        assert_eq!(named("relay __watchdog").as_deref(), Some("__watchdog"));
        for whole_tree in [
            "relay",
            "relay help req",
            "relay reqq",
            "relay -- req",
            "relay --root",
        ] {
            assert_eq!(named(whole_tree), None, "{whole_tree}");
        }
    }
}
