//! `relay init`: a short managed block in each agent's instruction file (CLAUDE.md, AGENTS.md,
//! GEMINI.md) saying that relay reaches the other agents and that "HANDOFF" means `relay next`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use relay_core::exit;

use crate::error::usage;
use crate::input;

/// Teach the agents of this project about relay in their own instruction files.
///
/// Adds (or updates in place) a short block between markers to CLAUDE.md (Claude Code),
/// AGENTS.md (Codex) and GEMINI.md (Gemini CLI) at the project root: the other agents are
/// reachable with relay, the user's "HANDOFF" means `relay next`, and finality is proposed,
/// never signed off, by an agent. Text outside the markers is never touched; --remove takes
/// the block out again (and the file, if nothing else is in it). Files that are links to one
/// another (CLAUDE.md -> AGENTS.md) get the block once.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  relay init
  relay init --agents claude,codex --handoff-file
  relay init --remove")]
pub struct InitArgs {
    /// The agents whose instruction files get the block.
    #[arg(long, value_delimiter = ',', default_value = "claude,codex,gemini", value_parser = ["claude", "codex", "gemini"])]
    pub agents: Vec<String>,

    /// Also keep HANDOFF.md, a Markdown board for agents without relay (`relay board --md
    /// HANDOFF.md` refreshes it).
    #[arg(long)]
    pub handoff_file: bool,

    /// Take the blocks out (and HANDOFF.md, if relay wrote it).
    #[arg(long, conflicts_with = "handoff_file")]
    pub remove: bool,

    /// The only one who writes git history (commits, branches, tags, the index): an agent, or
    /// `human`. A call whose peer is anyone else and does so is out of scope (exit 13); the
    /// blocks tell the other agents to hand git work back. Kept in .relay/policy.json.
    #[arg(long, value_name = "AGENT|human", conflicts_with = "remove")]
    pub coordinator: Option<String>,
}

const POLICY: &str = "policy.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Policy {
    coordinator: String,
}

/// Who writes git history in this project: `.relay/policy.json` (`relay init --coordinator`),
/// else the config file's `coordinator:`; None when anyone may.
pub fn coordinator(relay: &relay_core::RelayDir) -> Option<String> {
    relay_core::untrusted::read_bounded(&relay.path().join(POLICY), 64 * 1024)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Policy>(&b).ok())
        .map(|p| p.coordinator)
        .or_else(|| crate::peer::config_coordinator().ok().flatten())
        .filter(|c| relay_core::fields::is_slug(c))
}

const BEGIN: &str =
    "<!-- relay:begin (managed by `relay init`; `relay init --remove` takes it out) -->";
const END: &str = "<!-- relay:end -->";

fn block(handoff_file: bool, coordinator: Option<&str>) -> String {
    let mut b = format!(
        "{BEGIN}
## Working with the other agents (relay)

- Claude Code, Codex and Gemini CLI reach each other with `relay` (see its skill): `relay call --to codex --name NAME 'task'` for a task with a verified answer, `relay review` for a code review, `relay handoff --to AGENT --ask '...'` to hand work over with its ownership.
- When the user says \"HANDOFF\" (or \"continue\"), run `relay next` and do what it prints, then answer with the `relay res` command it gives.
- `relay board` shows who owns what and what is open; record decisions with `relay note --kind decision` and keep to the ones in force (`relay decisions`).
- Propose finality with `relay close SESSION --summary '...'`; only the user signs it off.
"
    );
    if let Some(c) = coordinator {
        b.push_str(&format!("- Git history is {c}'s to write: unless you are {c}, do not commit, branch, tag or stage; hand git work back to {c} (`relay handoff --to {c}`).\n"));
    }
    if handoff_file {
        b.push_str("- HANDOFF.md is the board for agents without relay: refresh it with `relay board --md HANDOFF.md`.\n");
    }
    b.push_str(END);
    b.push('\n');
    b
}

/// The agent's instruction file, from the peer table.
fn file_of(agent: &str) -> String {
    crate::peer::builtin(agent)
        .and_then(|spec| spec.instructions)
        .expect("--agents takes built-in agents, each with its instruction file")
}

pub fn run(root: Option<&PathBuf>, args: &InitArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let root = relay.root().canonicalize()?;
    if let Some(c) = &args.coordinator {
        relay_core::fields::check_slug(c).map_err(|m| {
            usage(
                format!("--coordinator {m}"),
                "name an agent (claude, codex, gemini) or human",
            )
        })?;
        relay.ensure()?;
        let policy = serde_json::to_vec_pretty(&Policy {
            coordinator: c.clone(),
        })?;
        relay_core::write_replace(&relay.path().join(POLICY), &policy)?;
    }
    let coordinator = coordinator(&relay);
    let mut done: Vec<PathBuf> = Vec::new();
    let mut out = std::io::stdout().lock();
    for agent in &args.agents {
        let named = root.join(file_of(agent));
        let path = target(&root, &named)?;
        if done.contains(&path) {
            continue;
        }
        done.push(path.clone());
        let old = read(&path)?;
        let new = if args.remove {
            old.as_deref().map(strip_block)
        } else {
            Some(with_block(
                old.as_deref(),
                &block(args.handoff_file, coordinator.as_deref()),
            ))
        };
        let what = match (&old, &new) {
            (o, n) if o == n => "unchanged",
            (Some(_), Some(n)) if n.trim().is_empty() => {
                std::fs::remove_file(&path)?;
                "removed"
            }
            (_, Some(n)) => {
                relay_core::write_replace(&path, n.as_bytes())?;
                if args.remove {
                    "block removed"
                } else if old.is_none() {
                    "created"
                } else {
                    "updated"
                }
            }
            (_, None) => "unchanged",
        };
        let via = if path == named {
            String::new()
        } else {
            format!(" (via {})", named.display())
        };
        writeln!(out, "relay init: {}{via} {what}", path.display())?;
    }
    let handoff = root.join("HANDOFF.md");
    if args.handoff_file {
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg("--root")
            .arg(&root)
            .args(["board", "--md"])
            .arg(&handoff)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "relay board --md {} failed",
            handoff.display()
        );
        writeln!(
            out,
            "relay init: {} written (relay board --md)",
            handoff.display()
        )?;
    } else if args.remove
        && read(&handoff)
            .ok()
            .flatten()
            .is_some_and(|t| t.starts_with("<!-- written by `relay board --md`"))
    {
        std::fs::remove_file(&handoff)?;
        writeln!(out, "relay init: {} removed", handoff.display())?;
    }
    Ok(exit::OK)
}

/// The file to edit: `named`, or what it links to when that stays in the project.
fn target(root: &Path, named: &Path) -> anyhow::Result<PathBuf> {
    if !named.is_symlink() {
        return Ok(named.to_path_buf());
    }
    let real = named.canonicalize().map_err(|_| {
        usage(
            format!("{} is a link to nothing", named.display()),
            "remove it or point it at a file in the project",
        )
    })?;
    if !real.starts_with(root) {
        return Err(usage(
            format!(
                "{} links out of the project, to {}",
                named.display(),
                real.display()
            ),
            "relay edits only files inside the project",
        ));
    }
    Ok(real)
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    crate::input::read_user_file(path, 4 * 1024 * 1024)
        .map(Some)
        .map_err(|e| {
            usage(
                format!("{}: {}", path.display(), e.why),
                "relay edits regular UTF-8 files",
            )
        })
}

/// The text with the block in place of the old one, or appended after a blank line.
fn with_block(old: Option<&str>, block: &str) -> String {
    let old = old.unwrap_or_default();
    if let (Some(b), Some(e)) = (old.find(BEGIN), old.find(END))
        && b < e
    {
        let end = e + END.len();
        let end = end + usize::from(old[end..].starts_with('\n'));
        return format!("{}{block}{}", &old[..b], &old[end..]);
    }
    let mut out = old.to_owned();
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(block);
    out
}

/// The text without the block (and the blank line `with_block` put before it).
fn strip_block(old: &str) -> String {
    let (Some(b), Some(e)) = (old.find(BEGIN), old.find(END)) else {
        return old.to_owned();
    };
    if b > e {
        return old.to_owned();
    }
    let end = e + END.len();
    let end = end + usize::from(old[end..].starts_with('\n'));
    let head = old[..b]
        .strip_suffix("\n\n")
        .map_or(&old[..b], |h| &old[..h.len() + 1]);
    format!("{head}{}", &old[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_goes_in_and_out_leaving_the_rest() {
        let mine = "# My rules\n\nBe brief.\n";
        let with = with_block(Some(mine), &block(false, None));
        assert!(with.starts_with(mine));
        assert_eq!(
            with_block(Some(&with), &block(false, None)),
            with,
            "idempotent"
        );
        let updated = with_block(Some(&with), &block(true, Some("claude")));
        assert!(updated.contains("Git history is claude's to write"));
        assert_eq!(updated.matches(BEGIN).count(), 1);
        assert!(updated.contains("HANDOFF.md"));
        assert_eq!(strip_block(&updated), mine);
        assert_eq!(strip_block(&with_block(None, &block(false, None))), "");
    }
}
