//! `relay call`: write the request, run the peer under supervision, validate the reply, and
//! print a compact result the calling agent can branch on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use relay_core::{NewRequest, RelayDir, exit};

use crate::engine::{Call, CallPlan};
use crate::input;
use crate::peer::Mode;
use crate::result;
use crate::run::{self, RunRecord};
use crate::supervise::StopFlags;

/// Hand a task to a peer agent and wait for its verified answer.
///
/// Writes the request (like `relay req`), runs the peer CLI headless in the project root with a
/// prompt pointing at it, waits under supervision (timeouts; the whole process tree is killed
/// on timeout or Ctrl-C), then validates the reply and prints one header line and the reply
/// body. Branch on the exit code: 0 done (verify pass/skip), 10 verify failed, 11 status error,
/// 12 no valid reply, 124 timeout, 127 peer CLI missing, 130 interrupted.
///
/// Modes: read-only (the peer only reads and answers; relay writes its final message as the
/// reply), write (the default: edits in the project, sandboxed where the CLI can, and writes
/// its own reply), full (no sandbox, no prompts: only for trusted tasks in a throwaway
/// environment).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay call --to codex --name auth-review 'Review src/auth.py. Run pytest to verify.'
  relay call --to claude --session refactor --mode read-only 'Is the new API consistent?'
  relay call --to gemini --name docs --timeout 20m --body-file task.md
  relay call --to codex --name big-job --bg 'Port the parser to Rust.' && relay wait big-job
  relay call --to my-agent --peer-cmd 'my-agent --task \"$RELAY_REQUEST\"' --name t 'Do it.'")]
pub struct CallArgs {
    /// The peer: codex, claude, gemini, or a peer from the config file.
    #[arg(long, value_name = "PEER")]
    pub to: String,

    #[command(flatten)]
    pub request: input::RequestArgs,

    /// What the peer may do.
    #[arg(long, value_enum, default_value_t = Mode::Write)]
    pub mode: Mode,

    #[command(flatten)]
    pub run: RunArgs,

    /// Run this shell command as the peer instead (RELAY_REQUEST, RELAY_REPLY, RELAY_PROMPT are set).
    #[arg(long, value_name = "CMD")]
    pub peer_cmd: Option<String>,

    /// Return at once; follow with `relay wait ID`, `relay status ID`, `relay cancel ID`.
    #[arg(long)]
    pub bg: bool,

    /// Print the whole result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a peer runs: the options every command that calls peers shares (call, review, fan,
/// deliberate).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The calling agent (default: detected: claude inside Claude Code, codex inside Codex,
    /// gemini inside Gemini CLI, else `user`).
    #[arg(long, value_name = "AGENT", env = "RELAY_FROM")]
    pub from: Option<String>,

    /// Model, passed to the peer CLI.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Kill the peer after this long (90, 90s, 20m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Kill the peer after this long without any output (off by default: claude and gemini
    /// print nothing until they finish).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// A check relay runs itself in the project root after the peer, whatever the peer says
    /// (repeatable; a shell command). The request names it; a disagreement with the peer's
    /// `verify` is its own outcome (exit 18).
    #[arg(long, value_name = "CMD")]
    pub verify_cmd: Vec<String>,

    /// Kill a --verify-cmd check after this long.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub verify_timeout: Duration,

    /// Only paths matching these globs may change (repeatable; relative to the project root,
    /// `*` stays within a directory, `**` crosses them); any other change is out of scope
    /// (exit 13). Needs a git work tree to see the changes.
    #[arg(long, value_name = "GLOB")]
    pub writes: Vec<String>,
}

/// `90`, `90s`, `20m`, `2h` (for other commands' flags too).
pub fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// `90`, `90s`, `20m`, `2h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90, 90s, 20m, 2h or 7d"))?;
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("`{s}` must be more than zero"));
    }
    // A year at most: beyond that a deadline means nothing, and a huge float would overflow.
    const MAX_SECS: f64 = 366.0 * 86400.0;
    let secs = n * f64::from(mult);
    if secs > MAX_SECS {
        return Err(format!("`{s}` is more than a year"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

pub fn run(root: Option<&PathBuf>, args: &CallArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let plan = CallPlan::prepare(
        &args.to,
        args.peer_cmd.clone(),
        args.mode,
        args.request.effort.clone(),
        &args.run,
    )?;
    let (to, from) = (plan.peer.as_str(), plan.from.as_str());
    input::note_new_session(&relay, &args.request);
    let new = args
        .request
        .new_request(from, to, args.mode == Mode::ReadOnly)?;
    write_and_run(&relay, &plan, &new, args.bg, args.json)
}

/// Writes the request and runs the peer on it (or starts it in the background with `bg`);
/// prints the result and returns the call's exit code. Shared by `call` and `handoff --run`.
pub fn write_and_run(
    relay: &RelayDir,
    plan: &CallPlan,
    new: &NewRequest,
    bg: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let mut new = new.clone();
    new.body.push_str(&plan.checks_note());
    let request_path = crate::record::create_request(relay, &new, input::now()?)?.path;
    let call = Call {
        relay,
        plan,
        quiet: json,
    };
    if bg {
        return call.start_background(&request_path, json);
    }
    let stop = StopFlags::install().context("installing signal handlers")?;
    let record = call.execute(&request_path, &stop)?;
    result::print(&record, json)?;
    Ok(record.exit_code.unwrap_or(exit::FAILURE))
}

/// `relay __supervise REQUEST`: the background half of `--bg`, running the plan stored in the
/// request's run record.
pub fn supervise_stored(
    root: Option<&PathBuf>,
    request: &Path,
    parent_guards: bool,
) -> anyhow::Result<u8> {
    // The relay that started this one names it in the run record first; only then is the
    // record this process's to write (see `Call::spawn_supervisor`).
    crate::supervise::wait_for_parent();
    if parent_guards {
        crate::supervise::guard_by_parent().context("taking the orders pipe from stdout")?;
    }
    let relay = &input::relay_dir(root)?;
    let request = relay.contain(request)?;
    let mut plan = RunRecord::load(&request)?.plan.with_context(|| {
        format!(
            "{} holds no plan to run (written by an older relay)",
            run::record_path(&request).display()
        )
    })?;
    plan.resolve()?;
    let call = Call {
        relay,
        plan: &plan,
        quiet: true,
    };
    let stop = StopFlags::install().context("installing signal handlers")?;
    let record = call.execute_supervised(&request, &stop)?;
    Ok(record.exit_code.unwrap_or(exit::FAILURE))
}
