//! The command line: global options and the subcommand table.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    after_long_help = exit_codes_help(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Project root holding .relay/ (default: the git top-level, else the current directory).
    #[arg(long, global = true, env = "RELAY_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each lives in its own file under `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    Call(call::CallArgs),
    Review(review::ReviewArgs),
    Ci(ci::CiArgs),
    Fan(fan::FanArgs),
    Deliberate(deliberate::DeliberateArgs),
    Handoff(handoff::HandoffArgs),
    Board(board::BoardArgs),
    Note(note::NoteArgs),
    Decisions(note::DecisionsArgs),
    Inbox(inbox::InboxArgs),
    Next(inbox::NextArgs),
    Close(board::CloseArgs),
    Log(board::LogArgs),
    Takeover(board::TakeoverArgs),
    Hook(hook::HookArgs),
    Wait(wait::WaitArgs),
    Status(status::StatusArgs),
    Stats(stats::StatsArgs),
    Cancel(cancel::CancelArgs),
    Req(req::ReqArgs),
    Res(res::ResArgs),
    Validate(validate::ValidateArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Clean(clean::CleanArgs),
    Doctor(doctor::DoctorArgs),
    Skill(skill::SkillArgs),
    Init(init::InitArgs),
    Spec(spec::SpecArgs),
    /// (internal) Runs the plan stored in a request's run record: the background half of --bg.
    #[command(name = "__supervise", hide = true)]
    Supervise {
        /// The request whose run record holds the plan.
        request: PathBuf,
    },
    /// (internal) Guards a peer group's deadline if the relay that started it dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
    Completions(completions::CompletionsArgs),
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
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
