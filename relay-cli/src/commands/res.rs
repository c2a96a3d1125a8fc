//! `relay res`: write the reply to a request.

use std::io::Write as _;
use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use relay_core::{NewResponse, exit, fields};

use crate::error::usage;
use crate::input;

/// Write the reply to a request and print its path.
///
/// Name the request with --request (a path, an id, a name, or session/turn) and relay fills in
/// re, from and to; or use the v4 form with --re, --from, --to [--session], which relay checks
/// against the request. relay refuses to answer a request that does not exist, a mismatched id
/// or direction, or a request that already has a reply (unless --force).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay res --request auth-review --status done --verify pass 'All 12 tests pass.'
  relay res --request auth-refactor/2 --status error --verify skip --body-file reply.md
  relay res --request .relay/x.req.md --status done --verify fail 'pytest: 2 failed'
  relay res --request handoff --status blocked --verify skip 'Postgres or SQLite for the cache?'
  relay res --re 20261121-163000-x --from codex --to claude --status done --verify pass 'ok'")]
pub struct ResArgs {
    /// The request to answer: a path, an id, a name, or session/turn.
    #[arg(long, value_name = "REQUEST", required_unless_present = "re", conflicts_with_all = ["re", "session"])]
    pub request: Option<String>,

    /// (v4 form) The id of the request; with --session, its turn number.
    #[arg(long, value_name = "ID")]
    pub re: Option<String>,

    /// (v4 form) The session of the request.
    #[arg(long, value_name = "SLUG", requires = "re")]
    pub session: Option<String>,

    /// The responding agent; must be the request's `to` (default: taken from the request).
    #[arg(long, value_name = "AGENT")]
    pub from: Option<String>,

    /// The original caller; must be the request's `from` (default: taken from the request).
    #[arg(long, value_name = "AGENT")]
    pub to: Option<String>,

    /// Did you carry out the task? blocked = you need an answer from the caller first (ask it
    /// in the body); refused = the task is outside what you may or should do (say why). Both
    /// are written as `status: error` with `state: blocked|refused`.
    #[arg(long, value_parser = PossibleValuesParser::new(["done", "error", "blocked", "refused"]))]
    pub status: String,

    /// Did the checks the task names pass? skip = none named, or they could not run.
    #[arg(long, value_parser = PossibleValuesParser::new(["pass", "fail", "skip"]))]
    pub verify: String,

    /// Replace an existing reply.
    #[arg(long)]
    pub force: bool,

    /// Read the body from FILE instead of the BODY argument.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    /// The reply: findings, changes, evidence. `-` reads stdin.
    #[arg(value_name = "BODY")]
    pub body: Option<String>,
}

/// `relay res --json`.
#[derive(serde::Serialize)]
struct ResJson<'a> {
    re: &'a str,
    session: Option<&'a str>,
    status: relay_core::Status,
    verify: relay_core::Verify,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<relay_core::ErrorState>,
    request: &'a std::path::Path,
    reply: &'a std::path::Path,
}

pub fn run(root: Option<&PathBuf>, args: &ResArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let request_path = match (&args.request, &args.re, &args.session) {
        (Some(r), _, _) => relay.locate(r)?,
        (None, Some(re), session) => {
            fields::check_token(re).map_err(|m| {
                usage(
                    format!("--re {m}"),
                    "pass the request id printed by `relay req`",
                )
            })?;
            match session {
                Some(s) => {
                    fields::check_slug(s)
                        .map_err(|m| usage(format!("--session {m}"), "session names are slugs"))?;
                    if fields::is_turn_stem(re) {
                        relay.locate(&format!("{s}/{re}"))?
                    } else {
                        relay.session_dir(s).join(format!("{re}.req.md"))
                    }
                }
                None => relay.path().join(format!("{re}.req.md")),
            }
        }
        (None, None, _) => unreachable!("clap requires --request or --re"),
    };
    let body = input::body(args.body.as_deref(), args.body_file.as_deref())?;
    let new = NewResponse {
        // A session turn found by its number (`--re 2` for 002.req.md) is matched already.
        re: if args.session.is_some() {
            None
        } else {
            args.re.clone()
        },
        from: args.from.clone(),
        to: args.to.clone(),
        salvaged: None,
        status: match args.status.as_str() {
            "done" => relay_core::Status::Done,
            _ => relay_core::Status::Error,
        },
        state: args.status.parse().ok(),
        verify: args.verify.parse().map_err(anyhow::Error::msg)?,
        body,
    };
    let (response, path) =
        crate::record::write_response(&relay, &request_path, &new, args.force, input::now()?)?;
    if args.json {
        crate::output::json(&ResJson {
            re: &response.re,
            session: response.session.as_deref(),
            status: response.status,
            verify: response.verify,
            state: response.state,
            request: &request_path,
            reply: &path,
        })?;
    } else {
        writeln!(std::io::stdout(), "{}", path.display())?;
    }
    Ok(exit::OK)
}
