//! `relay hook`: the Stop hook that keeps an agent from walking away from work addressed to it,
//! and its installation into each CLI's own hook settings.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use jsonc_parser::cst::{CstInputValue, CstNode, CstObject};
use relay_core::exit;
use serde::Serialize;

use crate::commands::inbox;
use crate::commands::skill::{self, Agent};
use crate::input;

/// Stop hooks: keep an agent from stopping while a request addressed to it is unanswered.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay hook install --agent claude          # into ~/.claude/settings.json
  relay hook install --agent codex --project # into ./.codex/hooks.json
  relay hook uninstall --agent gemini
  echo '{\"stop_hook_active\": false, \"session_id\": \"s1\"}' | relay hook stop --agent claude")]
pub struct HookArgs {
    #[command(subcommand)]
    pub command: HookCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HookCommand {
    Stop(StopArgs),
    Install(InstallArgs),
    Uninstall(InstallArgs),
}

/// The hook itself: reads the CLI's hook payload on stdin and blocks the stop, once or twice
/// at most per agent session, while a request addressed to the agent is unanswered.
///
/// Never blocks when the payload says `stop_hook_active`; fails open on any error (no
/// `.relay/`, a payload that is not JSON, a broken file): an agent is never trapped by relay.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  echo '{\"session_id\": \"s1\", \"cwd\": \"/repo\"}' | relay hook stop --agent codex")]
pub struct StopArgs {
    /// The agent whose stop this is.
    #[arg(long, value_enum)]
    pub agent: Agent,
}

/// Install or remove relay's Stop hook in an agent's own settings.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay hook install --agent claude
  relay hook uninstall --agent codex --project")]
pub struct InstallArgs {
    /// The agent: claude (settings.json, Stop), codex (hooks.json, Stop), gemini
    /// (settings.json, AfterAgent).
    #[arg(long, value_enum)]
    pub agent: Agent,

    /// This project's settings instead of the user's.
    #[arg(long)]
    pub project: bool,

    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The event that fires when the agent wants to stop.
fn event(agent: Agent) -> &'static str {
    match agent {
        Agent::Gemini => "AfterAgent",
        _ => "Stop",
    }
}

/// The hook's time limit, in the unit the CLI reads (Gemini: milliseconds).
fn timeout(agent: Agent) -> &'static str {
    match agent {
        Agent::Gemini => "30000",
        _ => "30",
    }
}

/// Where the agent reads its hooks: Claude Code's settings (the project's personal
/// settings.local.json with --project), codex's hooks.json, Gemini CLI's settings.json.
fn settings_path(agent: Agent, project: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match agent {
        Agent::Claude => skill::claude_settings(project)?,
        Agent::Codex => skill::agent_dir(agent, project)?.join("hooks.json"),
        Agent::Gemini => skill::agent_dir(agent, project)?.join("settings.json"),
    })
}

/// How many times the hook blocks one agent session at most (codex has no cap of its own).
const MAX_BLOCKS: u32 = 2;

/// The longest request the hook quotes in its reason (longer ones are named, not quoted).
const MAX_INLINE_REQUEST: usize = 16 * 1024;

/// The most of a payload the hook reads (it carries the last message, which can be long).
const MAX_PAYLOAD: u64 = 8 * 1024 * 1024;

pub fn run(root: Option<&PathBuf>, args: &HookArgs) -> anyhow::Result<u8> {
    match &args.command {
        HookCommand::Stop(a) => {
            // Fail open: whatever goes wrong, the agent may stop (Gemini wants `{}` then).
            let decision = decide(root, a.agent).unwrap_or(None);
            print_decision(a.agent, decision.as_deref());
            Ok(exit::OK)
        }
        HookCommand::Install(a) => install(root, a, true),
        HookCommand::Uninstall(a) => install(root, a, false),
    }
}

/// The reason to block, or None to let the agent stop.
fn decide(root: Option<&PathBuf>, agent: Agent) -> anyhow::Result<Option<String>> {
    let mut raw = Vec::new();
    std::io::stdin().take(MAX_PAYLOAD).read_to_end(&mut raw)?;
    let payload: serde_json::Value = serde_json::from_slice(&raw)?;
    if payload["stop_hook_active"].as_bool() == Some(true) {
        return Ok(None);
    }
    let relay = match (root, payload["cwd"].as_str()) {
        (Some(r), _) => input::relay_dir(Some(r))?,
        (None, Some(cwd)) => relay_core::RelayDir::discover(Path::new(cwd), None)?,
        (None, None) => input::relay_dir(None)?,
    };
    if !relay.path().is_dir() {
        return Ok(None);
    }
    let open = inbox::open_for(&relay, agent.name())?;
    let Some(first) = open.first() else {
        return Ok(None);
    };
    // A cap of relay's own per agent session, kept under .relay/.hooks/.
    let session: String = payload["session_id"]
        .as_str()
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let counter = relay
        .path()
        .join(".hooks")
        .join(format!("{}-{session}.blocks", agent.name()));
    let blocks: u32 = relay_core::untrusted::read_bounded(&counter, 32)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if blocks >= MAX_BLOCKS {
        return Ok(None);
    }
    // `.hooks` planted as a link out of `.relay/` is refused (and the hook fails open).
    relay.subdir(".hooks")?;
    relay_core::write_replace(&counter, format!("{}\n", blocks + 1).as_bytes())?;
    crate::record::append(
        &relay,
        relay_core::ledger::NewEntry {
            kind: relay_core::ledger::EntryKind::HookBlock,
            author: agent.name().to_owned(),
            session: first.exchange.split_once('/').map(|(s, _)| s.to_owned()),
            re: Some(first.exchange.clone()),
            text: format!(
                "kept {} from stopping: {} is open",
                agent.name(),
                first.exchange
            ),
            ..Default::default()
        },
        input::now()?,
    );
    let others = match open.len() {
        1 => String::new(),
        n => format!(
            " {} more are open: `relay inbox --for {}` lists them.",
            n - 1,
            agent.name()
        ),
    };
    // The request itself, when it is short: some agents' file tools cannot read `.relay/`
    // (Gemini CLI refuses git-ignored paths), and it saves every agent a read.
    let inline = relay_core::read_text(&first.request, relay_core::FileKind::Request)
        .ok()
        .filter(|t| t.len() <= MAX_INLINE_REQUEST)
        .map(|t| format!(" Here it is (no need to read the file):\n\n{t}\n"))
        .unwrap_or_else(|| " Read it.".to_owned());
    Ok(Some(format!(
        "relay: before you stop, the request {} from {} is addressed to you ({}) and unanswered.{inline} Do the task it describes, then answer it: {} (status error with the reason if you cannot do it).{others}",
        first.request.display(),
        first.from.as_deref().unwrap_or("another agent"),
        agent.name(),
        inbox::answer_command(&first.request)
    )))
}

fn print_decision(agent: Agent, reason: Option<&str>) {
    let out = match (reason, agent) {
        (Some(r), Agent::Gemini) => serde_json::json!({"decision": "deny", "reason": r}),
        (Some(r), _) => serde_json::json!({"decision": "block", "reason": r}),
        (None, Agent::Gemini) => serde_json::json!({}),
        (None, _) => return,
    };
    println!("{out}");
}

/// `relay hook install|uninstall --json`.
#[derive(Serialize)]
struct InstallJson {
    agent: &'static str,
    settings: PathBuf,
    event: &'static str,
    command: String,
    changed: bool,
    installed: bool,
}

/// The command the hook runs: relay by absolute path (other tools ship a `relay` too).
fn hook_command(agent: Agent) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    Ok(format!(
        "{} hook stop --agent {}",
        shell_quote(&exe.display().to_string()),
        agent.name()
    ))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command of a hook entry that is relay's (it runs `relay hook stop`), if it is.
fn relays_command(entry: &CstNode) -> Option<String> {
    let hooks = entry.as_object()?.get("hooks")?.value()?.as_array()?;
    hooks.elements().iter().find_map(|h| {
        let command = h
            .as_object()?
            .get("command")?
            .value()?
            .as_string_lit()?
            .decoded_value()
            .ok()?;
        command.contains(" hook stop --agent ").then_some(command)
    })
}

fn install(root: Option<&PathBuf>, args: &InstallArgs, add: bool) -> anyhow::Result<u8> {
    let agent = args.agent;
    let project = if args.project {
        Some(input::relay_dir(root)?.root().to_path_buf())
    } else {
        None
    };
    let path = settings_path(agent, project.as_deref())?;
    let command = hook_command(agent)?;
    let event = event(agent);
    let shape = |what: &str| anyhow::anyhow!("{}: {what}; relay leaves it alone", path.display());
    let edit = crate::settings::JsonEdit::plan(&path, |root: &CstObject| {
        if !add && root.get("hooks").is_none() {
            return Ok(());
        }
        let hooks = root
            .object_value_or_create("hooks")
            .ok_or_else(|| shape("`hooks` is not an object"))?;
        if !add && hooks.get(event).is_none() {
            return Ok(());
        }
        let list = hooks
            .array_value_or_create(event)
            .ok_or_else(|| shape(&format!("`hooks.{event}` is not a list")))?;
        let ours: Vec<(CstNode, String)> = list
            .elements()
            .into_iter()
            .filter_map(|e| relays_command(&e).map(|c| (e, c)))
            .collect();
        // Idempotent: exactly one entry of relay's, running this relay.
        if add && ours.len() == 1 && ours[0].1 == command {
            return Ok(());
        }
        ours.into_iter().for_each(|(e, _)| e.remove());
        if add {
            let mut entry = Vec::new();
            if agent == Agent::Claude {
                entry.push(("matcher".to_owned(), CstInputValue::String(String::new())));
            }
            entry.push((
                "hooks".to_owned(),
                CstInputValue::Array(vec![CstInputValue::Object(vec![
                    ("type".to_owned(), CstInputValue::String("command".into())),
                    ("command".to_owned(), CstInputValue::String(command.clone())),
                    (
                        "timeout".to_owned(),
                        CstInputValue::Number(timeout(agent).into()),
                    ),
                ])]),
            ));
            list.append(CstInputValue::Object(entry));
        } else {
            // Leave no empty container relay made.
            if list.elements().is_empty()
                && let Some(p) = hooks.get(event)
            {
                p.remove();
            }
            if hooks.properties().is_empty()
                && let Some(p) = root.get("hooks")
            {
                p.remove();
            }
        }
        Ok(())
    })?;
    let changed = edit.changed();
    edit.apply()?;
    // Removing relay's entry emptied the file away: an empty `.codex/` or `.gemini/` left
    // behind holds nothing of the user's either (a directory with anything in it stays).
    if !add
        && changed
        && !path.exists()
        && let Some(dir) = path.parent()
    {
        let _ = std::fs::remove_dir(dir);
    }
    if args.json {
        crate::output::json(&InstallJson {
            agent: agent.name(),
            settings: path,
            event,
            command,
            changed,
            installed: add,
        })?;
    } else {
        let what = match (add, changed) {
            (true, true) => "installed",
            (true, false) => "already installed",
            (false, true) => "removed",
            (false, false) => "not installed",
        };
        println!(
            "relay hook: {what}: {} {event} hook in {}",
            agent.name(),
            path.display()
        );
        if add && agent == Agent::Codex {
            eprintln!(
                "relay: codex runs a hook only once it is trusted: open codex and run /hooks to trust it; until then headless `codex exec` skips it silently"
            );
        }
    }
    Ok(exit::OK)
}

/// `relay doctor`'s lines about installed Stop hooks: (level, what, fix), nothing when none is.
pub fn doctor_notes(project: Option<&Path>) -> Vec<(&'static str, String, Option<String>)> {
    let mut notes = Vec::new();
    for agent in [Agent::Claude, Agent::Codex, Agent::Gemini] {
        for (scope, proj) in [("user", None), ("project", project)] {
            if scope == "project" && proj.is_none() {
                continue;
            }
            let Ok(path) = settings_path(agent, proj) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(value) =
                jsonc_parser::parse_to_serde_value::<serde_json::Value>(&text, &Default::default())
            else {
                continue;
            };
            let commands: Vec<String> = value["hooks"][event(agent)]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["hooks"].as_array().cloned().unwrap_or_default())
                .filter_map(|h| h["command"].as_str().map(str::to_owned))
                .filter(|c| c.contains(" hook stop --agent "))
                .collect();
            for command in commands {
                let program = command
                    .split(" hook stop --agent ")
                    .next()
                    .unwrap_or_default()
                    .trim_matches('\'');
                let fix = format!(
                    "relay hook install --agent {}{}",
                    agent.name(),
                    if proj.is_some() { " --project" } else { "" }
                );
                if Path::new(program).is_file() {
                    let trust = (agent == Agent::Codex)
                        .then(|| "codex runs it only once trusted: /hooks in codex".to_owned());
                    notes.push((
                        "info",
                        format!("{} Stop hook installed in {}", agent.name(), path.display()),
                        trust,
                    ));
                } else {
                    notes.push((
                        "warning",
                        format!(
                            "{} Stop hook in {} runs {program}, which does not exist",
                            agent.name(),
                            path.display()
                        ),
                        Some(fix),
                    ));
                }
            }
        }
    }
    notes
}
