//! `relay skill`: install, check and remove the SKILL.md files that teach each agent to use
//! relay. The skills are compiled into the binary, so an installed skill always matches the
//! relay that installed it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use relay_core::exit;
use serde::Serialize;

use crate::error::ExpectedError;
use crate::input;

/// Install, check or remove relay's skills for Claude Code, Codex and Gemini CLI.
///
/// Where they go (user scope / --project):
///   claude  ~/.claude/skills/relay/SKILL.md   <root>/.claude/skills/relay/SKILL.md
///   codex   ~/.codex/skills/relay/SKILL.md    <root>/.codex/skills/relay/SKILL.md
///   gemini  ~/.gemini/skills/relay/SKILL.md   <root>/.gemini/skills/relay/SKILL.md
/// ($CLAUDE_CONFIG_DIR and $CODEX_HOME move the user directories, as they do for the CLIs.)
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    after_help = "\
Examples:
  relay skill install                         # all agents, user scope
  relay skill install --agent claude --allow  # also let headless claude use it without prompts
  relay skill status
  relay skill uninstall --agent codex --project"
)]
pub struct SkillArgs {
    #[command(subcommand)]
    pub action: SkillAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum SkillAction {
    /// Install (or update) the skills. Installing twice changes nothing.
    #[command(after_help = "\
Examples:
  relay skill install                          # claude, codex and gemini, in your home
  relay skill install --agent claude --allow   # plus Skill(relay), Bash(relay:*) for claude -p
  relay skill install --project                # in this repository, for everyone who clones it")]
    Install(ChangeArgs),
    /// Show each skill as installed, out of date, missing, or not relay's.
    #[command(after_help = "\
Examples:
  relay skill status
  relay skill status --project --json")]
    Status(ScopeArgs),
    /// Remove the skills relay installed and the permissions `--allow` added.
    #[command(after_help = "\
Examples:
  relay skill uninstall                        # every agent, your home
  relay skill uninstall --agent codex --project")]
    Uninstall(ChangeArgs),
    /// Print one agent's skill.
    #[command(after_help = "\
Examples:
  relay skill show claude
  relay skill show gemini > GEMINI-relay.md")]
    Show {
        /// The agent.
        #[arg(value_enum)]
        agent: Agent,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    Claude,
    Codex,
    Gemini,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agents {
    Claude,
    Codex,
    Gemini,
    All,
}

#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// Which agent's skill.
    #[arg(long, value_enum, default_value = "all")]
    pub agent: Agents,

    /// In the project (<root>/.claude, .codex, .gemini) instead of your home directory.
    #[arg(long, conflicts_with = "user")]
    pub project: bool,

    /// In your home directory (the default).
    #[arg(long)]
    pub user: bool,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Claude Code: also allow `Skill(relay)` and `Bash(relay:*)` in its settings (headless
    /// claude outside bypass mode needs the Skill permission before the skill's own
    /// allowed-tools apply). Merged into the file; nothing else in it changes.
    #[arg(long)]
    pub allow: bool,

    /// Replace a SKILL.md relay did not write.
    #[arg(long)]
    pub force: bool,
}

const CLAUDE_SKILL: &str = include_str!("../../../skills/claude/relay/SKILL.md");
const CODEX_SKILL: &str = include_str!("../../../skills/codex/relay/SKILL.md");
const GEMINI_SKILL: &str = include_str!("../../../skills/gemini/relay/SKILL.md");

/// The permission entries `--allow` adds to Claude Code's settings.
pub const CLAUDE_PERMISSIONS: [&str; 2] = ["Skill(relay)", "Bash(relay:*)"];

/// Every relay skill carries this line in its frontmatter; it tells relay's own files apart
/// from a skill someone else named `relay`.
const MARKER: &str = "installed-by: relay";

impl Agent {
    pub fn skill(self) -> &'static str {
        match self {
            Agent::Claude => CLAUDE_SKILL,
            Agent::Codex => CODEX_SKILL,
            Agent::Gemini => GEMINI_SKILL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
        }
    }
}

impl Agents {
    fn list(self) -> Vec<Agent> {
        match self {
            Agents::Claude => vec![Agent::Claude],
            Agents::Codex => vec![Agent::Codex],
            Agents::Gemini => vec![Agent::Gemini],
            Agents::All => vec![Agent::Claude, Agent::Codex, Agent::Gemini],
        }
    }
}

fn env_dir(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> anyhow::Result<PathBuf> {
    env_dir("HOME")
        .context("HOME is not set: cannot find the agents' user directories (use --project)")
}

/// The agent's configuration directory in this scope (from the peer table: its name, and the
/// variable that moves the user's).
pub(crate) fn agent_dir(agent: Agent, project: Option<&Path>) -> anyhow::Result<PathBuf> {
    let spec = crate::peer::builtin(agent.name()).expect("every agent is a built-in peer");
    let dot = spec
        .config_dir
        .expect("every built-in agent has a configuration directory");
    Ok(match project {
        Some(root) => root.join(dot),
        None => match spec.config_dir_env.as_deref().and_then(env_dir) {
            Some(dir) => dir,
            None => home()?.join(dot),
        },
    })
}

fn skill_path(agent: Agent, project: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(agent_dir(agent, project)?
        .join("skills")
        .join("relay")
        .join("SKILL.md"))
}

/// Claude Code's settings file relay merges permissions into: the user's settings.json, or
/// the project's personal settings.local.json (not the shared, committed settings.json).
pub(crate) fn claude_settings(project: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = agent_dir(Agent::Claude, project)?;
    Ok(dir.join(if project.is_some() {
        "settings.local.json"
    } else {
        "settings.json"
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum State {
    Installed,
    OutOfDate,
    Missing,
    /// A SKILL.md relay did not write.
    Foreign,
}

impl State {
    fn of(path: &Path, want: &str) -> State {
        match std::fs::read_to_string(path) {
            Err(_) => State::Missing,
            Ok(text) if text == want => State::Installed,
            Ok(text) if text.contains(MARKER) => State::OutOfDate,
            Ok(_) => State::Foreign,
        }
    }

    fn word(self) -> &'static str {
        match self {
            State::Installed => "installed",
            State::OutOfDate => "out of date",
            State::Missing => "missing",
            State::Foreign => "not relay's",
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    agent: Agent,
    scope: &'static str,
    state: State,
    action: Option<&'static str>,
    path: PathBuf,
}

pub fn run(root: Option<&PathBuf>, args: &SkillArgs) -> anyhow::Result<u8> {
    match &args.action {
        SkillAction::Show { agent } => {
            std::io::stdout().write_all(agent.skill().as_bytes())?;
            Ok(exit::OK)
        }
        SkillAction::Status(scope) => status(root, scope),
        SkillAction::Install(change) => install(root, change),
        SkillAction::Uninstall(change) => uninstall(root, change),
    }
}

fn project_root(root: Option<&PathBuf>, scope: &ScopeArgs) -> anyhow::Result<Option<PathBuf>> {
    Ok(if scope.project {
        Some(input::relay_dir(root)?.root().to_path_buf())
    } else {
        None
    })
}

fn scope_word(scope: &ScopeArgs) -> &'static str {
    if scope.project { "project" } else { "user" }
}

fn status(root: Option<&PathBuf>, scope: &ScopeArgs) -> anyhow::Result<u8> {
    let project = project_root(root, scope)?;
    let mut rows = Vec::new();
    for agent in scope.agent.list() {
        let path = skill_path(agent, project.as_deref())?;
        rows.push(Row {
            agent,
            scope: scope_word(scope),
            state: State::of(&path, agent.skill()),
            action: None,
            path,
        });
    }
    let perms = if scope.agent.list().contains(&Agent::Claude) {
        Some(permission_state(project.as_deref())?)
    } else {
        None
    };
    report(&rows, perms.as_ref(), scope.json)?;
    Ok(exit::OK)
}

fn install(root: Option<&PathBuf>, change: &ChangeArgs) -> anyhow::Result<u8> {
    let project = project_root(root, &change.scope)?;
    // The settings edit is checked before any skill is written: a file relay cannot edit
    // safely stops the install with nothing changed.
    let claude = change.scope.agent.list().contains(&Agent::Claude);
    let perms_edit = if change.allow && claude {
        Some(plan_permissions(project.as_deref(), true)?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for agent in change.scope.agent.list() {
        let path = skill_path(agent, project.as_deref())?;
        let state = State::of(&path, agent.skill());
        if state == State::Foreign && !change.force {
            return Err(ExpectedError::ForeignSkill { path }.into());
        }
        let action = if state == State::Installed {
            "unchanged"
        } else {
            let dir = path.parent().expect("SKILL.md has a parent");
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            relay_core::write_replace(&path, agent.skill().as_bytes())?;
            if state == State::Missing {
                "written"
            } else {
                "updated"
            }
        };
        rows.push(Row {
            agent,
            scope: scope_word(&change.scope),
            state: State::Installed,
            action: Some(action),
            path,
        });
    }
    let perms = match &perms_edit {
        Some(edit) => Some(apply_permissions(edit)?),
        None if claude => Some(permission_state(project.as_deref())?),
        None => None,
    };
    report(&rows, perms.as_ref(), change.scope.json)?;
    Ok(exit::OK)
}

fn uninstall(root: Option<&PathBuf>, change: &ChangeArgs) -> anyhow::Result<u8> {
    let project = project_root(root, &change.scope)?;
    // The permissions `--allow` added go with the skill. First, so a settings file relay
    // cannot edit stops the uninstall before anything is removed.
    let perms = if change.scope.agent.list().contains(&Agent::Claude)
        && claude_settings(project.as_deref())?.exists()
    {
        Some(apply_permissions(&plan_permissions(
            project.as_deref(),
            false,
        )?)?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for agent in change.scope.agent.list() {
        let path = skill_path(agent, project.as_deref())?;
        let state = State::of(&path, agent.skill());
        let action = match state {
            State::Installed | State::OutOfDate => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                // `relay/`, `skills/` and the agent's directory, as far as they are now empty
                // (remove_dir never removes a directory that holds anything).
                for dir in path.ancestors().skip(1).take(3) {
                    if std::fs::remove_dir(dir).is_err() {
                        break;
                    }
                }
                "removed"
            }
            State::Missing => "nothing to remove",
            State::Foreign => "left alone (not relay's)",
        };
        rows.push(Row {
            agent,
            scope: scope_word(&change.scope),
            state,
            action: Some(action),
            path,
        });
    }
    report(&rows, perms.as_ref(), change.scope.json)?;
    Ok(exit::OK)
}

#[derive(Debug, Serialize)]
struct Permissions {
    path: PathBuf,
    /// Which of relay's entries the settings allow.
    allowed: Vec<String>,
    changed: bool,
}

fn allowed_of(v: &serde_json::Value) -> Vec<String> {
    let list = v["permissions"]["allow"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    CLAUDE_PERMISSIONS
        .iter()
        .filter(|p| list.iter().any(|x| x == **p))
        .map(|p| (*p).to_owned())
        .collect()
}

fn permission_state(project: Option<&Path>) -> anyhow::Result<Permissions> {
    let path = claude_settings(project)?;
    let allowed = allowed_of(&crate::settings::read(&path).unwrap_or_default());
    Ok(Permissions {
        path,
        allowed,
        changed: false,
    })
}

/// Plans adding (or removing) relay's two entries in `permissions.allow`; nothing else in the
/// file changes (see `settings`). Checked before anything is written; `apply` writes it.
fn plan_permissions(
    project: Option<&Path>,
    add: bool,
) -> anyhow::Result<crate::settings::JsonEdit> {
    let path = claude_settings(project)?;
    let shape = |what: &str| {
        anyhow::anyhow!(
            "{}: `{what}` relay cannot edit; relay leaves it alone",
            path.display()
        )
    };
    crate::settings::JsonEdit::plan(&path, |root| {
        if !add && root.get("permissions").is_none() {
            return Ok(());
        }
        let perms = root
            .object_value_or_create("permissions")
            .ok_or_else(|| shape("permissions is not an object:"))?;
        if !add && perms.get("allow").is_none() {
            return Ok(());
        }
        let allow = perms
            .array_value_or_create("allow")
            .ok_or_else(|| shape("permissions.allow is not a list:"))?;
        let is = |node: &jsonc_parser::cst::CstNode, p: &str| {
            node.as_string_lit()
                .and_then(|s| s.decoded_value().ok())
                .is_some_and(|v| v == p)
        };
        for p in CLAUDE_PERMISSIONS {
            let present: Vec<_> = allow.elements().into_iter().filter(|e| is(e, p)).collect();
            if add && present.is_empty() {
                allow.append(jsonc_parser::cst::CstInputValue::String((*p).to_owned()));
            } else if !add {
                present
                    .into_iter()
                    .for_each(jsonc_parser::cst::CstNode::remove);
            }
        }
        // Do not leave the empty containers `--allow` created behind.
        if !add
            && allow.elements().is_empty()
            && let Some(prop) = perms.get("allow")
        {
            prop.remove();
            if perms.properties().is_empty()
                && let Some(p) = root.get("permissions")
            {
                p.remove();
            }
        }
        Ok(())
    })
}

fn apply_permissions(edit: &crate::settings::JsonEdit) -> anyhow::Result<Permissions> {
    edit.apply()?;
    Ok(Permissions {
        path: edit.path.clone(),
        allowed: allowed_of(&edit.value()),
        changed: edit.changed(),
    })
}

/// `relay skill ... --json`.
#[derive(Serialize)]
struct SkillJson<'a> {
    skills: &'a [Row],
    claude_permissions: Option<&'a Permissions>,
}

fn report(rows: &[Row], perms: Option<&Permissions>, json: bool) -> anyhow::Result<()> {
    if json {
        return crate::output::json(&SkillJson {
            skills: rows,
            claude_permissions: perms,
        });
    }
    let mut out = std::io::stdout().lock();
    for r in rows {
        let what = r.action.unwrap_or(r.state.word());
        writeln!(
            out,
            "{:<7} {:<8} {:<24} {}",
            r.agent.name(),
            r.scope,
            what,
            r.path.display()
        )?;
    }
    if let Some(p) = perms {
        let state = if p.allowed.len() == CLAUDE_PERMISSIONS.len() {
            format!("allowed{}", if p.changed { " (added)" } else { "" })
        } else if p.changed {
            "removed".to_owned()
        } else {
            "not allowed".to_owned()
        };
        writeln!(
            out,
            "{:<7} {:<8} {:<24} {} in {}",
            "claude",
            "perms",
            state,
            CLAUDE_PERMISSIONS.join(", "),
            p.path.display()
        )?;
        if p.allowed.len() < CLAUDE_PERMISSIONS.len() && !p.changed {
            writeln!(
                out,
                "hint: headless claude (-p, outside bypass mode) asks before running the skill; `relay skill install --agent claude --allow` allows it"
            )?;
        }
    }
    Ok(())
}

/// What `relay doctor` says about the skills in the user's home: installed, out of date, and
/// whether headless Claude Code may run the Claude one. (level, what, fix)
pub fn doctor_notes() -> Vec<(&'static str, String, Option<String>)> {
    let mut out = Vec::new();
    for agent in [Agent::Claude, Agent::Codex, Agent::Gemini] {
        let Ok(path) = skill_path(agent, None) else {
            continue;
        };
        let state = State::of(&path, agent.skill());
        let (level, fix) = match state {
            State::Installed => ("info", None),
            State::Missing => (
                "info",
                Some(format!(
                    "`relay skill install --agent {}` teaches {} to use relay",
                    agent.name(),
                    agent.name()
                )),
            ),
            State::OutOfDate => (
                "warn",
                Some(format!(
                    "`relay skill install --agent {}` updates it to this relay",
                    agent.name()
                )),
            ),
            State::Foreign => (
                "warn",
                Some("another skill named relay is installed there; relay leaves it alone".into()),
            ),
        };
        out.push((
            level,
            format!(
                "{} skill {}: {}",
                agent.name(),
                state.word(),
                path.display()
            ),
            fix,
        ));
        if agent == Agent::Claude
            && state == State::Installed
            && let Ok(p) = permission_state(None)
            && p.allowed.len() < CLAUDE_PERMISSIONS.len()
        {
            out.push((
                        "warn",
                        format!("headless claude (-p, outside bypass mode) will ask before running the relay skill: {} lacks Skill(relay)", p.path.display()),
                        Some("`relay skill install --agent claude --allow` adds Skill(relay) and Bash(relay:*) to it".into()),
                    ));
        }
    }
    out
}
