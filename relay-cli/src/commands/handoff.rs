//! `relay handoff`: hand a piece of work, and its ownership, to another agent.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use relay_core::handoff::Handoff;
use relay_core::{NewRequest, RelayDir, Target, exit};

use crate::commands::call::RunArgs;
use crate::engine::CallPlan;
use crate::error::usage;
use crate::input;
use crate::peer::Mode;

/// Hand work to another agent: it owns the work until it replies.
///
/// Writes a request of kind `handoff` (`.relay/<id>.req.md`, or the next turn of --session)
/// carrying the ask, the reason, the refs that matter, acceptance criteria and the files in
/// scope and off limits, as markdown sections any agent reads without relay. Ownership moves
/// to the receiver (`relay board` shows it); its reply hands the work back (unless --no-back),
/// or it hands it onward with a handoff of its own. The receiver picks it up with `relay next`
/// (the user's "HANDOFF"), or at once with --run, which runs the peer as `relay call` does.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay handoff --to codex --session auth --ask 'Finish the token refresh and its tests.' \\
    --reason 'Out of context; codex knows this crate.' --ref src/auth/refresh.rs --ref auth/003 \\
    --acceptance 'cargo test -p auth passes' --scope 'src/auth/**' --off-limits 'migrations/**'
  relay handoff --to claude --session auth --ask 'Review and merge.' --run --timeout 20m
  relay handoff --to gemini --name docs --no-back --ask 'Own the docs from here.'")]
pub struct HandoffArgs {
    /// The agent taking the work over: codex, claude, gemini, or a peer from the config file.
    #[arg(long, value_name = "AGENT")]
    pub to: String,

    /// What the receiver must do, concretely. `-` reads stdin.
    #[arg(long, value_name = "TEXT")]
    pub ask: String,

    /// Why the work moves.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// A file in the project, an exchange (id, name or session/turn) or a git commit that
    /// matters (repeatable).
    #[arg(long = "ref", value_name = "PATH|EXCHANGE|COMMIT")]
    pub refs: Vec<String>,

    /// What "done" means (repeatable: one criterion each).
    #[arg(long, value_name = "TEXT")]
    pub acceptance: Vec<String>,

    /// A glob of the files the receiver may change (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub scope: Vec<String>,

    /// A glob of the files the receiver must not change (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub off_limits: Vec<String>,

    /// The work stays with the receiver: its reply does not hand it back.
    #[arg(long)]
    pub no_back: bool,

    /// Name of a one-shot handoff (default: handoff).
    #[arg(long, value_name = "SLUG", conflicts_with = "session")]
    pub name: Option<String>,

    /// Session to add the handoff to as its next turn (the session's owner changes).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Reasoning-effort hint, recorded (and passed on with --run).
    #[arg(long, value_name = "LEVEL")]
    pub effort: Option<String>,

    /// Run the receiver now and wait for its reply, as `relay call` does.
    #[arg(long)]
    pub run: bool,

    /// With --run: what the receiver may do.
    #[arg(long, value_enum, default_value_t = Mode::Write, requires = "run")]
    pub mode: Mode,

    #[command(flatten)]
    pub call: RunArgs,

    /// With --run: run this shell command as the receiver instead.
    #[arg(long, value_name = "CMD", requires = "run")]
    pub peer_cmd: Option<String>,

    /// With --run: return at once; follow with `relay wait`.
    #[arg(long, requires = "run")]
    pub bg: bool,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relay handoff --json` without --run.
#[derive(serde::Serialize)]
struct HandoffJson<'a> {
    exchange: String,
    owner: &'a str,
    back: bool,
    handoff: &'a Handoff,
    request: &'a Path,
    reply: &'a Path,
}

pub fn run(root: Option<&PathBuf>, args: &HandoffArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let ask = input::body(Some(&args.ask), None)?;
    if ask.trim().is_empty() {
        return Err(usage("--ask is empty", "say what the receiver must do"));
    }
    let handoff = Handoff {
        ask: ask.trim().to_owned(),
        reason: args
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        refs: args
            .refs
            .iter()
            .map(|r| check_ref(&relay, r))
            .collect::<anyhow::Result<_>>()?,
        acceptance: input::nonempty("--acceptance", &args.acceptance)?,
        scope: input::globs("--scope", &args.scope)?,
        off_limits: input::globs("--off-limits", &args.off_limits)?,
    };
    let (plan, from) = if args.run {
        let mut plan = CallPlan::prepare(
            &args.to,
            args.peer_cmd.clone(),
            args.mode,
            args.effort.clone(),
            &args.call,
        )?;
        // The packet's scope and off-limits hold the receiver to them, as --writes does.
        plan.writes.extend(handoff.scope.iter().cloned());
        plan.off_limits.clone_from(&handoff.off_limits);
        let from = plan.from.clone();
        (Some(plan), from)
    } else {
        let from = args
            .call
            .from
            .clone()
            .unwrap_or_else(|| crate::peer::detect_caller().to_owned());
        (None, from)
    };
    let back = !args.no_back;
    let new = NewRequest {
        from: from.clone(),
        to: args.to.clone(),
        target: match &args.session {
            Some(s) => Target::Session(s.clone()),
            None => Target::Name(args.name.clone().unwrap_or_else(|| "handoff".into())),
        },
        kind: Some(relay_core::HANDOFF.into()),
        format: None,
        effort: args.effort.clone(),
        back: Some(back),
        body: handoff.render(&from, &args.to, back),
        final_message: args.run && args.mode == Mode::ReadOnly,
        attachment: None,
    };
    if let Some(plan) = &plan {
        return crate::commands::call::write_and_run(&relay, plan, &new, args.bg, args.json);
    }
    let created = crate::record::create_request(&relay, &new, input::now()?)?;
    let exchange = created.request.reference();
    if args.json {
        crate::output::json(&HandoffJson {
            exchange,
            owner: &args.to,
            back,
            handoff: &handoff,
            request: &created.path,
            reply: &created.reply,
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "relay handoff: id={exchange} owner={} back={} request={}",
            args.to,
            if back { "yes" } else { "no" },
            created.path.display()
        )?;
        writeln!(
            out,
            "{} picks it up with `relay next` (the user's \"HANDOFF\"); `relay board` shows who owns what",
            args.to
        )?;
    }
    Ok(exit::OK)
}

/// A ref: a file or directory in the project, an exchange relay can find, or a git commit.
fn check_ref(relay: &RelayDir, r: &str) -> anyhow::Result<String> {
    let r = r.trim();
    let hint =
        "a --ref is a path in the project, an exchange (id, name or session/turn) or a git commit";
    if r.is_empty() {
        return Err(usage("--ref is empty", hint));
    }
    let root = relay.root();
    let path = root.join(r);
    if let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) {
        if !real.starts_with(&real_root) {
            return Err(usage(format!("--ref {r}: outside the project"), hint));
        }
        return Ok(r.to_owned());
    }
    if let Ok(request) = relay.locate(r)
        && let Ok(relay_core::Message::Request(req)) = relay_core::read_header(&request)
    {
        return Ok(req.reference());
    }
    // Never an option to git.
    if !r.starts_with('-')
        && crate::workspace::in_git(root)
        && let Ok(sha) = crate::workspace::git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
            &[0],
        )
    {
        let sha = String::from_utf8_lossy(&sha).trim().to_owned();
        return Ok(format!("commit {}", &sha[..sha.len().min(12)]));
    }
    Err(usage(
        format!("--ref {r}: no such file in the project, exchange or commit"),
        hint,
    ))
}
