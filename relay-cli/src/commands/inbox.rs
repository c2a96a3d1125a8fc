//! `relay inbox` and `relay next`: what is addressed to an agent and still open.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::{RelayDir, exit};
use serde::Serialize;

use crate::input;

/// List the requests addressed to an agent that are still open, newest first.
///
/// Open: a request with no valid reply that no `relay call` runs or ran (those are relay's to
/// supervise; their caller gets the outcome). These are the requests written with `relay req`
/// (or by hand) for the agent to pick up in its own session.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay inbox                 # for the agent this runs in (claude inside Claude Code, ...)
  relay inbox --for codex --json")]
pub struct InboxArgs {
    /// The agent (default: detected, as for `relay call --from`).
    #[arg(long = "for", value_name = "AGENT")]
    pub agent: Option<String>,

    /// Print JSON (one array).
    #[arg(long)]
    pub json: bool,
}

/// Print the request an agent should work on next, ready to act on: the task and how to answer.
///
/// The newest open request addressed to the agent (see `relay inbox`). What the user's one
/// word "HANDOFF" (or "continue") means to an agent with relay's skill.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay next                  # inside Claude Code, Codex or Gemini CLI
  relay next --for gemini --json")]
pub struct NextArgs {
    /// The agent (default: detected, as for `relay call --from`).
    #[arg(long = "for", value_name = "AGENT")]
    pub agent: Option<String>,

    /// Print JSON (`null` when nothing is open).
    #[arg(long)]
    pub json: bool,
}

/// An open request, as `inbox` and `next` show it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Open {
    pub exchange: String,
    pub from: Option<String>,
    pub to: String,
    /// The first line of the task (a handoff's ask).
    #[serde(default)]
    pub title: String,
    pub kind: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<time::OffsetDateTime>,
    pub request: PathBuf,
    pub reply: PathBuf,
}

/// The agent named with `--for`, else the one relay runs inside; `user` is not an agent.
pub fn agent_or_detected(agent: Option<&str>) -> anyhow::Result<String> {
    let agent = agent.map_or_else(|| crate::peer::detect_caller().to_owned(), str::to_owned);
    relay_core::fields::check_slug(&agent).map_err(|m| {
        crate::error::usage(
            format!("--for {m}"),
            "name an agent: claude, codex, gemini, ...",
        )
    })?;
    if agent == "user" {
        return Err(crate::error::usage(
            "not inside Claude Code, Codex or Gemini CLI, so relay cannot tell whose inbox this is",
            "name the agent: --for claude",
        ));
    }
    Ok(agent)
}

/// The open requests addressed to `agent`, newest first. The Stop hook asks at every stop of
/// every agent, so the answer is kept with the modification times of the directories it came
/// from ([`OpenStamp`]); while none has changed, no directory is listed again.
pub fn open_for(relay: &RelayDir, agent: &str) -> anyhow::Result<Vec<Open>> {
    let path = relay
        .path()
        .join(relay_core::CACHE_DIR)
        .join(format!("open-{}.json", agent.to_ascii_lowercase()));
    if let Some(open) = OpenStamp::load(relay, &path) {
        return Ok(open);
    }
    let taken = std::time::SystemTime::now();
    let survey = relay_core::survey(relay)?;
    let mut open = open_all(relay, &survey);
    open.retain(|o| o.to.eq_ignore_ascii_case(agent));
    let dirs = survey
        .iter()
        .map(|d| {
            let rel = d.session.clone().unwrap_or_default();
            (rel, d.mtime.map(nanos))
        })
        .collect();
    // A stamp that cannot be saved only makes the next call slower.
    let _ = OpenStamp {
        v: 1,
        taken: nanos(taken),
        dirs,
        open: open.clone(),
    }
    .save(relay, &path);
    Ok(open)
}

fn nanos(t: std::time::SystemTime) -> i128 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// `.relay/.cache/open-<agent>.json`: an agent's open requests and the modification time of
/// each directory they were found in (`.relay/` itself as `""`, each session by name), read
/// just before it was listed. Valid while every directory still has that time (a request,
/// reply or run record created, renamed or removed changes it; a new session changes
/// `.relay/`'s), and only for times at least a second older than the survey, as git treats
/// its index: a file created in the same clock tick as the listing might not move the time.
#[derive(Serialize, serde::Deserialize)]
struct OpenStamp {
    v: u32,
    taken: i128,
    dirs: Vec<(String, Option<i128>)>,
    open: Vec<Open>,
}

impl OpenStamp {
    fn load(relay: &RelayDir, path: &std::path::Path) -> Option<Vec<Open>> {
        let bytes = relay_core::untrusted::read_bounded(path, 8 * 1024 * 1024).ok()??;
        let stamp: OpenStamp = serde_json::from_slice(&bytes).ok()?;
        const SETTLED: i128 = 1_000_000_000;
        let fresh = stamp.v == 1
            && !stamp.dirs.is_empty()
            && stamp.dirs.iter().all(|(rel, recorded)| {
                let Some(recorded) = *recorded else {
                    return false;
                };
                if rel.is_empty() || relay_core::fields::is_slug(rel) {
                    let dir = relay.path().join(rel);
                    let now = std::fs::symlink_metadata(&dir)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(nanos);
                    now == Some(recorded) && recorded < stamp.taken - SETTLED
                } else {
                    false
                }
            });
        // Only paths under .relay/ are believed: the file is untrusted like the rest.
        let contained = stamp
            .open
            .iter()
            .all(|o| o.request.starts_with(relay.path()) && o.reply.starts_with(relay.path()));
        (fresh && contained).then_some(stamp.open)
    }

    fn save(&self, relay: &RelayDir, path: &std::path::Path) -> anyhow::Result<()> {
        relay.subdir(relay_core::CACHE_DIR)?;
        relay_core::write_replace(path, &serde_json::to_vec(self)?)?;
        Ok(())
    }
}

/// Every open request, newest first. Candidates come from directory listings alone (no reply,
/// no run record: [`relay_core::survey`]); who each is addressed to comes from [`InboxCache`],
/// else from its header.
pub fn open_all(relay: &RelayDir, survey: &[relay_core::DirSurvey]) -> Vec<Open> {
    let mut cache = InboxCache::load(relay);
    let mut fresh = std::collections::BTreeMap::new();
    let mut learned = false;
    let mut open = Vec::new();
    for request in survey.iter().flat_map(|d| &d.open) {
        let Some(key) = request
            .strip_prefix(relay.path())
            .ok()
            .and_then(|k| k.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        let entry = match cache.entries.remove(&key) {
            Some(e) => e,
            None => {
                learned = true;
                // A request that does not parse (or a link: never followed) is nobody's task.
                let Ok(req) = relay_core::read_request(request) else {
                    continue;
                };
                CacheEntry {
                    title: crate::record::title(&req),
                    exchange: req.reference(),
                    to: req.to,
                    from: req.from,
                    kind: req.kind.unwrap_or_else(|| "task".into()),
                    created: req.created,
                }
            }
        };
        open.push(Open {
            exchange: entry.exchange.clone(),
            from: Some(entry.from.clone()),
            to: entry.to.clone(),
            title: entry.title.clone(),
            kind: entry.kind.clone(),
            created: entry.created,
            reply: relay_core::reply_path(request),
            request: request.clone(),
        });
        fresh.insert(key, entry);
    }
    // Answered or removed requests drop out; a cache that cannot be saved is only slower.
    if learned || !cache.entries.is_empty() {
        let _ = InboxCache {
            v: 3,
            entries: fresh,
        }
        .save(relay);
    }
    open.sort_by(|a, b| b.created.cmp(&a.created).then(b.exchange.cmp(&a.exchange)));
    open
}

/// `.relay/.cache/inbox.json`: the header fields of every open request, keyed by its path under
/// `.relay/`, so the Stop hook (which runs at every stop of every agent) reads neither thousands
/// of headers nor, measured slower still here, thousands of `stat`s. Requests are written once
/// (a new task is a new request), so a path keeps its header; an entry goes when its request is
/// answered or gone. A cache only: untrusted like everything under `.relay/`, read bounded,
/// ignored when it does not parse, rebuilt from the files.
#[derive(Default, Serialize, serde::Deserialize)]
struct InboxCache {
    v: u32,
    entries: std::collections::BTreeMap<String, CacheEntry>,
}

#[derive(Clone, Serialize, serde::Deserialize)]
struct CacheEntry {
    exchange: String,
    title: String,
    to: String,
    from: String,
    kind: String,
    #[serde(with = "time::serde::rfc3339::option")]
    created: Option<time::OffsetDateTime>,
}

const INBOX_CACHE: &str = ".cache/inbox.json";

impl InboxCache {
    fn load(relay: &RelayDir) -> InboxCache {
        relay_core::untrusted::read_bounded(&relay.path().join(INBOX_CACHE), 32 * 1024 * 1024)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<InboxCache>(&b).ok())
            .filter(|c| c.v == 3)
            .unwrap_or_default()
    }

    fn save(&self, relay: &RelayDir) -> anyhow::Result<()> {
        relay.subdir(relay_core::CACHE_DIR)?;
        let text = serde_json::to_vec(self)?;
        relay_core::write_replace(&relay.path().join(INBOX_CACHE), &text)?;
        Ok(())
    }
}

pub fn inbox(root: Option<&PathBuf>, args: &InboxArgs) -> anyhow::Result<u8> {
    let agent = agent_or_detected(args.agent.as_deref())?;
    let relay = input::relay_dir(root)?;
    let open = open_for(&relay, &agent)?;
    if args.json {
        crate::output::json(&open)?;
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    if open.is_empty() {
        writeln!(out, "nothing open for {agent}")?;
        return Ok(exit::OK);
    }
    let now = input::now()?;
    let w = open
        .iter()
        .map(|o| o.exchange.len())
        .max()
        .unwrap_or(8)
        .max(8);
    writeln!(
        out,
        "{:<w$}  {:<8}  {:<10}  {:>5}  REQUEST",
        "EXCHANGE", "FROM", "KIND", "AGE"
    )?;
    for o in &open {
        writeln!(
            out,
            "{:<w$}  {:<8}  {:<10}  {:>5}  {}",
            o.exchange,
            o.from.as_deref().unwrap_or("-"),
            o.kind,
            crate::output::age(now, o.created),
            o.request.display(),
        )?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// How to answer a request, as one command.
pub fn answer_command(request: &std::path::Path) -> String {
    format!(
        "relay res --request {} --status done --verify pass 'what you did and how you checked it'",
        request.display()
    )
}

pub fn next(root: Option<&PathBuf>, args: &NextArgs) -> anyhow::Result<u8> {
    let agent = agent_or_detected(args.agent.as_deref())?;
    let relay = input::relay_dir(root)?;
    let open = open_for(&relay, &agent)?;
    let Some(first) = open.first() else {
        if args.json {
            crate::output::json(&serde_json::Value::Null)?;
        } else {
            println!("relay next: nothing open for {agent}");
        }
        return Ok(exit::OK);
    };
    if args.json {
        crate::output::json(first)?;
        return Ok(exit::OK);
    }
    let task = relay_core::read_request(&first.request)
        .map(|r| r.body)
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "relay next: id={} from={} kind={} open={} request={}",
        first.exchange,
        first.from.as_deref().unwrap_or("-"),
        first.kind,
        open.len(),
        first.request.display()
    )?;
    writeln!(out)?;
    write!(out, "{}", crate::output::clean_text(&task))?;
    if !task.ends_with('\n') {
        writeln!(out)?;
    }
    writeln!(
        out,
        "\nDo the task, then answer (status error with the reason if you cannot; verify fail or skip as it is):\n  {}",
        answer_command(&first.request)
    )?;
    out.flush()?;
    Ok(exit::OK)
}
