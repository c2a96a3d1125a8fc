//! `relay req`: write a request and print its path.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::exit;

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
    /// The calling agent (default: detected: claude inside Claude Code, codex inside Codex,
    /// gemini inside Gemini CLI, else `user`).
    #[arg(long, value_name = "AGENT", env = "RELAY_FROM")]
    pub from: Option<String>,

    /// The peer agent asked to do the task.
    #[arg(long, value_name = "AGENT")]
    pub to: String,

    #[command(flatten)]
    pub request: input::RequestArgs,

    /// Print the result as JSON (id, request path, reply path, session).
    #[arg(long)]
    pub json: bool,
}

/// `relay req --json`.
#[derive(serde::Serialize)]
struct ReqJson<'a> {
    id: &'a str,
    session: Option<&'a str>,
    request: &'a std::path::Path,
    reply: &'a std::path::Path,
}

pub fn run(root: Option<&PathBuf>, args: &ReqArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::note_new_session(&relay, &args.request);
    let from: &str = match &args.from {
        Some(f) => f,
        None => crate::peer::detect_caller(),
    };
    let new = args.request.new_request(from, &args.to, false)?;
    let created = crate::record::create_request(&relay, &new, input::now()?)?;
    if args.json {
        crate::output::json(&ReqJson {
            id: &created.request.id,
            session: created.request.session.as_deref(),
            request: &created.path,
            reply: &created.reply,
        })?;
    } else {
        writeln!(std::io::stdout(), "{}", created.path.display())?;
    }
    Ok(exit::OK)
}
