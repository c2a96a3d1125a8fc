//! `relay req`: write a request and print its path.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::{NewRequest, Target, create_request, exit};

use crate::input;

/// Write a request for a peer agent and print its path.
///
/// The request goes to .relay/<id>.req.md (one-shot, id = <UTC yyyymmdd-hhmmss>-<name>) or to
/// the next turn of a session, .relay/<session>/<turn>.req.md. Its footer tells the peer where
/// to write the reply and in which format; for a session turn it also lists the earlier turn
/// files to read first. Nothing is ever overwritten.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay req --from claude --to codex --name auth-review 'Review src/auth.py. Run pytest.'
  relay req --from codex --to claude --session refactor --body-file task.md
  git diff | relay req --from claude --to codex --name diff-review --kind review -")]
pub struct ReqArgs {
    /// The calling agent (a slug: claude, codex, gemini, ...).
    #[arg(long, value_name = "AGENT")]
    pub from: String,

    /// The peer agent asked to do the task.
    #[arg(long, value_name = "AGENT")]
    pub to: String,

    /// Name of a one-shot exchange (a slug such as auth-review).
    #[arg(
        long,
        value_name = "SLUG",
        required_unless_present = "session",
        conflicts_with = "session"
    )]
    pub name: Option<String>,

    /// Session to add the next turn to (a slug; created on first use).
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Kind of exchange, recorded in the request: task, review, question, handoff, ...
    #[arg(long, value_name = "SLUG")]
    pub kind: Option<String>,

    /// Reasoning-effort hint for the peer (low, medium, high, ...).
    #[arg(long, value_name = "SLUG")]
    pub effort: Option<String>,

    /// Read the body from FILE instead of the BODY argument.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// Print the result as JSON (id, request path, reply path, session).
    #[arg(long)]
    pub json: bool,

    /// The task, in natural language. `-` reads stdin; so does a missing BODY when stdin is piped.
    #[arg(value_name = "BODY")]
    pub body: Option<String>,
}

pub fn run(root: Option<&PathBuf>, args: &ReqArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let body = input::body(args.body.as_deref(), args.body_file.as_deref())?;
    let target = match (&args.session, &args.name) {
        (Some(s), _) => Target::Session(s.clone()),
        (None, Some(n)) => Target::Name(n.clone()),
        (None, None) => unreachable!("clap requires --name or --session"),
    };
    let new = NewRequest {
        from: args.from.clone(),
        to: args.to.clone(),
        target,
        kind: args.kind.clone(),
        effort: args.effort.clone(),
        body,
        final_message: false,
    };
    let created = create_request(&relay, &new, input::now()?)?;
    if args.json {
        crate::output::json(&serde_json::json!({
            "id": created.request.id,
            "session": created.request.session,
            "request": created.path,
            "reply": created.reply,
        }))?;
    } else {
        writeln!(std::io::stdout(), "{}", created.path.display())?;
    }
    Ok(exit::OK)
}
