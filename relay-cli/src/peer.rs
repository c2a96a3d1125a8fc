//! Peers are adapters over one small table: the command and its argument template, the
//! arguments for each permission mode, model, effort and resume, the environment to set and to
//! scrub, and how to read the peer's output (final message, session id, usage). codex, claude
//! and gemini are built in; a YAML config file can add peers or replace built-ins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How much the peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read files and answer; no edits. The reply comes back as the final message.
    ReadOnly,
    /// Edit files in the project (sandboxed where the CLI can) and write the reply.
    Write,
    /// No sandbox, no permission prompts. Only for trusted tasks in a disposable environment.
    Full,
}

/// How to read what the peer printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// `codex exec --json` JSONL.
    CodexJson,
    /// `claude -p --output-format json`.
    ClaudeJson,
    /// `gemini -o json` (errors as JSON on stderr).
    GeminiJson,
    /// Plain text: stdout is the final message.
    Text,
}

/// Arguments per permission mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeArgs {
    #[serde(default, rename = "read-only")]
    pub read_only: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub full: Vec<String>,
}

/// One peer. In `command` and the other argument lists these placeholders are replaced:
/// `{prompt}`, `{request}`, `{reply}`, `{root}`, `{model}`, `{effort}`, `{peer_session}`; an
/// element that is exactly `{mode-args}`, `{model-args}`, `{effort-args}` or `{resume-args}`
/// expands to that list (empty when it does not apply).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    pub command: Vec<String>,
    #[serde(default)]
    pub modes: ModeArgs,
    #[serde(default)]
    pub model: Vec<String>,
    #[serde(default)]
    pub effort: Vec<String>,
    #[serde(default)]
    pub resume: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment set only in `full` mode.
    #[serde(default)]
    pub full_env: BTreeMap<String, String>,
    #[serde(default)]
    pub unset_env: Vec<String>,
    #[serde(default = "text")]
    pub output: OutputFormat,
    /// Shown by `relay doctor` when the program is missing.
    #[serde(default)]
    pub install_hint: Option<String>,
    /// Shown by `relay doctor` when the peer is installed but cannot answer.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// `relay doctor` checks that `<program> <help_args>` mentions each of these flags.
    #[serde(default)]
    pub help_args: Vec<String>,
    #[serde(default)]
    pub required_flags: Vec<String>,
    /// Give the peer the request's text on stdin, and a prompt that says so, instead of only
    /// its path. For CLIs whose file tools cannot read `.relay/` (Gemini CLI's `read_file`
    /// refuses every path an ignore file matches, and `.relay/` ignores itself).
    #[serde(default)]
    pub request_on_stdin: bool,
    /// Environment variables this agent sets inside its sessions: relay detects its caller
    /// from them (`--from`) and removes them from every peer's environment.
    #[serde(default)]
    pub markers: Vec<String>,
    /// The agent's instruction file at the project root (`relay init` keeps its block there).
    #[serde(default)]
    pub instructions: Option<String>,
    /// The agent's configuration directory (in HOME, or the project with `--project`): its
    /// skills (`<dir>/skills/`), settings and hooks live there.
    #[serde(default)]
    pub config_dir: Option<String>,
    /// An environment variable that moves the user's configuration directory.
    #[serde(default)]
    pub config_dir_env: Option<String>,
}

fn text() -> OutputFormat {
    OutputFormat::Text
}

/// The environment to scrub from every peer: each built-in agent's session markers (a peer
/// must start as a fresh top-level session: Claude Code refuses to nest under `CLAUDECODE`,
/// and a Codex sandbox marker would mislead the peer about its own sandbox).
pub fn scrub_env() -> Vec<String> {
    BUILTINS
        .iter()
        .filter_map(|n| builtin(n))
        .flat_map(|spec| spec.markers)
        .collect()
}

/// The agent relay runs in, from its session markers (`user` when none is set). Codex is
/// checked first: `CLAUDECODE` leaks into a Codex started from Claude Code.
pub fn detect_caller() -> &'static str {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    BUILTINS
        .iter()
        .copied()
        .find(|n| builtin(n).is_some_and(|spec| spec.markers.iter().any(|m| set(m))))
        .unwrap_or("user")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// The built-in peers (see `relay doctor` and README for the flags and why).
pub fn builtin(name: &str) -> Option<PeerSpec> {
    let spec = match name {
        // `-s` is always explicit: without it codex picks read-only in an untrusted repo and
        // still exits 0. `--skip-git-repo-check`: relay also works outside git. `--json`: the
        // thread id (resume), usage and the final message come as events.
        "codex" => PeerSpec {
            command: s(&[
                "codex",
                "exec",
                "--json",
                "--color",
                "never",
                "--skip-git-repo-check",
                "-C",
                "{root}",
                "{mode-args}",
                "{model-args}",
                "{effort-args}",
                "{resume-args}",
                "{prompt}",
            ]),
            modes: ModeArgs {
                read_only: s(&["-s", "read-only"]),
                write: s(&["-s", "workspace-write"]),
                full: s(&["--dangerously-bypass-approvals-and-sandbox"]),
            },
            model: s(&["-m", "{model}"]),
            effort: s(&["-c", "model_reasoning_effort=\"{effort}\""]),
            resume: s(&["resume", "{peer_session}"]),
            env: BTreeMap::new(),
            full_env: BTreeMap::new(),
            unset_env: Vec::new(),
            output: OutputFormat::CodexJson,
            install_hint: Some("npm install -g @openai/codex".into()),
            login_hint: Some("run `codex login` (or set OPENAI_API_KEY), and check that this machine reaches the OpenAI API".into()),
            help_args: s(&["exec", "--help"]),
            required_flags: s(&["--json", "--skip-git-repo-check", "--sandbox", "--cd"]),
            request_on_stdin: false,
            markers: s(&[
                "CODEX_SANDBOX",
                "CODEX_SANDBOX_NETWORK_DISABLED",
                "CODEX_THREAD_ID",
            ]),
            instructions: Some("AGENTS.md".into()),
            config_dir: Some(".codex".into()),
            config_dir_env: Some("CODEX_HOME".into()),
        },
        // `--` ends the variadic flags before the prompt. acceptEdits lets the Write tool
        // write inside the working directory (the project root, which holds .relay/).
        // Full mode as root needs IS_SANDBOX=1 or claude refuses to skip permissions.
        "claude" => PeerSpec {
            command: s(&[
                "claude",
                "-p",
                "--output-format",
                "json",
                "{mode-args}",
                "{model-args}",
                "{effort-args}",
                "{resume-args}",
                "--",
                "{prompt}",
            ]),
            modes: ModeArgs {
                read_only: s(&["--permission-mode", "default"]),
                write: s(&["--permission-mode", "acceptEdits"]),
                full: s(&["--dangerously-skip-permissions"]),
            },
            model: s(&["--model", "{model}"]),
            effort: s(&["--effort", "{effort}"]),
            resume: s(&["--resume", "{peer_session}"]),
            env: BTreeMap::new(),
            full_env: BTreeMap::from([("IS_SANDBOX".to_owned(), "1".to_owned())]),
            unset_env: Vec::new(),
            output: OutputFormat::ClaudeJson,
            install_hint: Some("npm install -g @anthropic-ai/claude-code".into()),
            login_hint: Some("run `claude` once and log in with /login (or set ANTHROPIC_API_KEY), and check that this machine reaches the Anthropic API".into()),
            help_args: s(&["--help"]),
            required_flags: s(&[
                "--print",
                "--output-format",
                "--permission-mode",
                "--resume",
            ]),
            request_on_stdin: false,
            markers: s(&[
                "CLAUDECODE",
                "CLAUDE_CODE_ENTRYPOINT",
                "CLAUDE_CODE_SSE_PORT",
            ]),
            instructions: Some("CLAUDE.md".into()),
            config_dir: Some(".claude".into()),
            config_dir_env: Some("CLAUDE_CONFIG_DIR".into()),
        },
        // `--skip-trust`: otherwise gemini exits 55 in a folder it was never told to trust.
        // auto_edit offers write_file (enough for the reply); default offers no write tool.
        // No relaunch: one process, which honours SIGTERM. The request comes on stdin (which
        // `gemini -p` puts before the prompt): its read_file refuses the git-ignored `.relay/`
        // in every approval mode, and only yolo has a shell to fall back on.
        "gemini" => PeerSpec {
            command: s(&[
                "gemini",
                "--skip-trust",
                "-o",
                "json",
                "{mode-args}",
                "{model-args}",
                "{resume-args}",
                "-p",
                "{prompt}",
            ]),
            modes: ModeArgs {
                read_only: s(&["--approval-mode", "default"]),
                write: s(&["--approval-mode", "auto_edit"]),
                full: s(&["--approval-mode", "yolo"]),
            },
            model: s(&["-m", "{model}"]),
            effort: Vec::new(),
            resume: s(&["-r", "{peer_session}"]),
            env: BTreeMap::from([("GEMINI_CLI_NO_RELAUNCH".to_owned(), "true".to_owned())]),
            full_env: BTreeMap::new(),
            unset_env: Vec::new(),
            output: OutputFormat::GeminiJson,
            install_hint: Some("npm install -g @google/gemini-cli".into()),
            login_hint: Some("run `gemini` once and sign in (or set GEMINI_API_KEY), and check that this machine reaches the Gemini API".into()),
            help_args: s(&["--help"]),
            required_flags: s(&[
                "--skip-trust",
                "--approval-mode",
                "--output-format",
                "--resume",
            ]),
            request_on_stdin: true,
            markers: s(&["GEMINI_CLI"]),
            instructions: Some("GEMINI.md".into()),
            config_dir: Some(".gemini".into()),
            config_dir_env: None,
        },
        _ => return None,
    };
    Some(spec)
}

/// The names of the built-in peers.
pub const BUILTINS: &[&str] = &["codex", "claude", "gemini"];

/// The config file: `$RELAY_CONFIG`, else `$XDG_CONFIG_HOME/relay/config.yaml`, else
/// `~/.config/relay/config.yaml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RELAY_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("relay").join("config.yaml"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    peers: BTreeMap<String, PeerSpec>,
    /// Project roots `relay board --workspace` always includes.
    #[serde(default)]
    workspace: Vec<PathBuf>,
    /// Who writes git history where a project says nothing (`relay init --coordinator`).
    #[serde(default)]
    coordinator: Option<String>,
}

/// The config file's `coordinator:`.
pub fn config_coordinator() -> anyhow::Result<Option<String>> {
    Ok(config_file()?.coordinator.clone())
}

/// The config file, read once per process (a fan-out looks up every peer in it).
fn config_file() -> anyhow::Result<&'static ConfigFile> {
    static CONFIG: std::sync::OnceLock<Result<ConfigFile, String>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| read_config().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn read_config() -> anyhow::Result<ConfigFile> {
    let Some(path) = config_path().filter(|p| p.exists()) else {
        return Ok(ConfigFile::default());
    };
    // A FIFO or device named by RELAY_CONFIG must not block or exhaust memory.
    let text = crate::input::read_user_file(&path, 1024 * 1024)
        .map_err(|e| anyhow::anyhow!("{}: the config file is {}", path.display(), e.why))?;
    yaml_serde::from_str(&text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        anyhow::anyhow!("{}:{line}: {e}", path.display())
    })
}

/// The config file's `workspace:` project roots (`~/` expanded).
pub fn workspace_roots() -> anyhow::Result<Vec<PathBuf>> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    Ok(config_file()?
        .workspace
        .iter()
        .cloned()
        .map(|p| match (p.strip_prefix("~"), &home) {
            (Ok(rest), Some(h)) => h.join(rest),
            _ => p,
        })
        .collect())
}

/// Every peer: built-ins, then the config file's (which win on a name clash).
pub fn all_peers() -> anyhow::Result<BTreeMap<String, PeerSpec>> {
    let mut peers: BTreeMap<String, PeerSpec> = BUILTINS
        .iter()
        .map(|n| ((*n).to_owned(), builtin(n).expect("built-in")))
        .collect();
    if let Some(path) = config_path().filter(|p| p.exists()) {
        for (name, spec) in &config_file()?.peers {
            relay_core::fields::check_slug(name)
                .map_err(|m| anyhow::anyhow!("{}: peer name {m}", path.display()))?;
            anyhow::ensure!(
                !spec.command.is_empty(),
                "{}: peer `{name}` has an empty command",
                path.display()
            );
            peers.insert(name.clone(), spec.clone());
        }
    }
    Ok(peers)
}

/// A spec for `--peer-cmd`: the command runs through the shell, with the request, reply and
/// prompt in `RELAY_REQUEST`, `RELAY_REPLY` and `RELAY_PROMPT` (no quoting problems).
pub fn from_shell(cmd: &str) -> PeerSpec {
    #[cfg(unix)]
    let command = vec!["sh".to_owned(), "-c".to_owned(), cmd.to_owned()];
    #[cfg(not(unix))]
    let command = vec!["cmd".to_owned(), "/C".to_owned(), cmd.to_owned()];
    PeerSpec {
        command,
        modes: ModeArgs::default(),
        model: Vec::new(),
        effort: Vec::new(),
        resume: Vec::new(),
        env: BTreeMap::new(),
        full_env: BTreeMap::new(),
        unset_env: Vec::new(),
        output: OutputFormat::Text,
        install_hint: None,
        login_hint: None,
        help_args: Vec::new(),
        required_flags: Vec::new(),
        request_on_stdin: false,
        markers: Vec::new(),
        instructions: None,
        config_dir: None,
        config_dir_env: None,
    }
}

/// Values for the placeholders.
pub struct Vars<'a> {
    pub prompt: &'a str,
    pub request: &'a Path,
    pub reply: &'a Path,
    pub root: &'a Path,
    pub mode: Mode,
    pub model: Option<&'a str>,
    pub effort: Option<&'a str>,
    pub peer_session: Option<&'a str>,
}

impl PeerSpec {
    /// The program (first element of `command`).
    pub fn program(&self) -> &str {
        &self.command[0]
    }

    /// The full argument list (after the program) for one run.
    pub fn argv(&self, v: &Vars<'_>) -> Vec<String> {
        let (request, reply, root) = (
            v.request.display().to_string(),
            v.reply.display().to_string(),
            v.root.display().to_string(),
        );
        let value = |name: &str| -> Option<&str> {
            Some(match name {
                "prompt" => v.prompt,
                "request" => &request,
                "reply" => &reply,
                "root" => &root,
                "model" => v.model.unwrap_or_default(),
                "effort" => v.effort.unwrap_or_default(),
                "peer_session" => v.peer_session.unwrap_or_default(),
                _ => return None,
            })
        };
        let one = |arg: &str| expand(arg, &value);
        let mode_args = match v.mode {
            Mode::ReadOnly => &self.modes.read_only,
            Mode::Write => &self.modes.write,
            Mode::Full => &self.modes.full,
        };
        let mut out = Vec::new();
        for arg in &self.command[1..] {
            let list: Option<&Vec<String>> = match arg.as_str() {
                "{mode-args}" => Some(mode_args),
                "{model-args}" => Some(&self.model).filter(|_| v.model.is_some()),
                "{effort-args}" => Some(&self.effort).filter(|_| v.effort.is_some()),
                "{resume-args}" => Some(&self.resume).filter(|_| v.peer_session.is_some()),
                _ => {
                    out.push(one(arg));
                    continue;
                }
            };
            out.extend(list.into_iter().flatten().map(|a| one(a)));
        }
        out
    }
}

/// Replaces each `{name}` in `template` once, left to right: a value that itself contains
/// `{reply}` (a prompt quoting a placeholder) is passed on as written, never expanded again.
/// Unknown names stay as they are.
fn expand<'v>(template: &str, value: &impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((close, value(&after[..close])?)))
        {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A peer's session id as relay will pass it back on the next turn's command line: 1 to 128
/// of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit (the UUIDs codex, claude and
/// gemini use). Anything else (`--dangerously-skip-permissions`, spaces, quotes) is refused,
/// so a peer cannot smuggle a flag into a later command.
pub fn valid_session_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// What relay learned from the peer's output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerReport {
    /// The peer's final message (its answer, when it printed instead of writing the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_message: Option<String>,
    /// The peer's own session id (codex thread id, claude session_id, gemini session_id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// An API or CLI error the peer reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub usage: Usage,
}

/// Tokens and cost, as far as the peer reports them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

fn u(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
}

/// Reads the peer's stdout (and stderr, where a CLI reports errors there).
pub fn read_report(format: OutputFormat, stdout: &str, stderr: &str) -> PeerReport {
    let mut r = PeerReport::default();
    match format {
        OutputFormat::CodexJson => {
            let mut failed = None;
            let mut last_error = None;
            for line in stdout.lines() {
                let Ok(ev) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                match ev["type"].as_str() {
                    Some("thread.started") => {
                        r.session_id = ev["thread_id"].as_str().map(str::to_owned);
                    }
                    Some("item.completed") if ev["item"]["type"] == "agent_message" => {
                        r.final_message = ev["item"]["text"].as_str().map(str::to_owned);
                    }
                    Some("turn.completed") => {
                        let us = &ev["usage"];
                        r.usage = Usage {
                            input_tokens: u(&us["input_tokens"]),
                            cached_input_tokens: u(&us["cached_input_tokens"]),
                            output_tokens: u(&us["output_tokens"]),
                            cost_usd: None,
                        };
                    }
                    // codex also reports warnings (unknown model metadata) as `error` items;
                    // only a failed turn makes the last one an error.
                    Some("error") => last_error = ev["message"].as_str().map(str::to_owned),
                    Some("turn.failed") => {
                        failed = ev["error"]["message"]
                            .as_str()
                            .map(str::to_owned)
                            .or(last_error.clone());
                    }
                    _ => {}
                }
            }
            r.error = failed.map(|e| error_line(&e));
        }
        OutputFormat::ClaudeJson => {
            if let Some(v) = last_json_object(stdout) {
                r.session_id = v["session_id"].as_str().map(str::to_owned);
                let result = v["result"].as_str().map(str::to_owned);
                if v["is_error"] == true {
                    r.error = result.map(|e| error_line(&e));
                } else {
                    r.final_message = result;
                }
                r.usage = Usage {
                    input_tokens: u(&v["usage"]["input_tokens"]),
                    cached_input_tokens: u(&v["usage"]["cache_read_input_tokens"]),
                    output_tokens: u(&v["usage"]["output_tokens"]),
                    cost_usd: v["total_cost_usd"].as_f64(),
                };
            } else if !stdout.trim().is_empty() {
                // claude prints API errors on stdout in text mode; keep them as the error.
                r.error = Some(error_line(&tail(stdout, 2000)));
            }
        }
        OutputFormat::GeminiJson => {
            if let Some(v) = last_json_object(stdout) {
                r.session_id = v["session_id"].as_str().map(str::to_owned);
                r.final_message = v["response"].as_str().map(str::to_owned);
                let mut usage = Usage::default();
                if let Some(models) = v["stats"]["models"].as_object() {
                    for m in models.values() {
                        let t = &m["tokens"];
                        *usage.input_tokens.get_or_insert(0) +=
                            u(&t["prompt"]).or(u(&t["input"])).unwrap_or(0);
                        *usage.cached_input_tokens.get_or_insert(0) += u(&t["cached"]).unwrap_or(0);
                        *usage.output_tokens.get_or_insert(0) += u(&t["candidates"]).unwrap_or(0);
                    }
                }
                r.usage = usage;
            }
            // On an API error gemini prints its JSON object on stderr and nothing on stdout.
            if let Some(v) = last_json_object(stderr) {
                if r.session_id.is_none() {
                    r.session_id = v["session_id"].as_str().map(str::to_owned);
                }
                if let Some(msg) = v["error"]["message"].as_str() {
                    r.error = Some(error_line(msg));
                }
            }
        }
        OutputFormat::Text => {
            let t = stdout.trim();
            if !t.is_empty() {
                r.final_message = Some(tail(t, 256 * 1024));
            }
        }
    }
    r.session_id = r.session_id.filter(|id| valid_session_id(id));
    r
}

/// The peer's own words for an error, as one clean line: CLIs wrap API errors in JSON, often
/// twice (codex: a JSON string holding `{"type":"error","error":{"message":...}}`), so the
/// innermost `message` wins; of a multi-line text, the last line that says something.
pub fn error_line(raw: &str) -> String {
    let mut text = raw.trim().to_owned();
    for _ in 0..4 {
        let Some(v) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .filter(serde_json::Value::is_object)
            .or_else(|| last_json_object(&text))
        else {
            break;
        };
        let inner = v["error"]["message"]
            .as_str()
            .or(v["message"].as_str())
            .or(v["error"].as_str());
        match inner {
            Some(m) => text = m.trim().to_owned(),
            None => break,
        }
    }
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let line = crate::output::clean_line(line);
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// The last `{...}` JSON object in `text` that starts at a line start (CLIs print logs first).
fn last_json_object(text: &str) -> Option<serde_json::Value> {
    let starts = text
        .match_indices('{')
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n');
    let starts: Vec<usize> = starts.collect();
    for &i in starts.iter().rev() {
        let mut de =
            serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v)) = de.next()
            && v.is_object()
        {
            return Some(v);
        }
    }
    None
}

/// The last `max` bytes of `s`, cut at a char boundary.
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut at = s.len() - max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    s[at..].to_owned()
}

/// One line saying what the peer is doing, in words, for the spinner, `relay status` and the
/// run record: the last tool it used, `waiting for the model`, `finished`, or the peer's own
/// latest error line (`Reconnecting... 2/5`, `Not logged in`).
pub fn activity(format: OutputFormat, stdout_tail: &str, stderr_tail: &str) -> Option<String> {
    let line = match format {
        OutputFormat::CodexJson => stdout_tail
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map_or_else(
                || error_looking(stderr_tail).unwrap_or_else(|| "waiting for the model".to_owned()),
                |ev| codex_event(&ev),
            ),
        OutputFormat::ClaudeJson | OutputFormat::GeminiJson => {
            if last_json_object(stdout_tail).is_some() {
                "finished".to_owned()
            } else {
                error_looking(stderr_tail).unwrap_or_else(|| "waiting for the model".to_owned())
            }
        }
        OutputFormat::Text => last_line(stdout_tail).or_else(|| last_line(stderr_tail))?,
    };
    let line = crate::output::clean_line(&line);
    Some(line.chars().take(100).collect())
}

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// The last line of a CLI's stderr that reports a problem (its other lines are notices such
/// as gemini's `Ripgrep is not available`).
fn error_looking(stderr: &str) -> Option<String> {
    const WORDS: &[&str] = &[
        "error",
        "fail",
        "reconnect",
        "retry",
        "retrying",
        "not logged in",
        "login",
        "api key",
        "unauthori",
        "forbidden",
        "quota",
        "rate limit",
        "network",
        "timed out",
        "denied",
    ];
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            let l = l.to_lowercase();
            WORDS.iter().any(|w| l.contains(w))
        })
        .map(error_line)
}

/// A codex `exec --json` event, in words.
fn codex_event(ev: &serde_json::Value) -> String {
    let item = &ev["item"];
    let t = ev["type"].as_str().unwrap_or_default();
    let started = t == "item.started" || t == "item.updated";
    match (t, item["type"].as_str()) {
        ("thread.started", _) => "started".into(),
        ("turn.started", _) => "waiting for the model".into(),
        ("turn.completed", _) => "finished".into(),
        ("turn.failed", _) => format!(
            "failed: {}",
            error_line(ev["error"]["message"].as_str().unwrap_or("unknown error"))
        ),
        ("error", _) => error_line(ev["message"].as_str().unwrap_or("error")),
        (_, Some("command_execution")) => format!(
            "{}: {}",
            if started { "running" } else { "ran" },
            item["command"].as_str().unwrap_or_default()
        ),
        (_, Some("agent_message")) => "answered".into(),
        (_, Some("reasoning")) => "thinking".into(),
        (_, Some("file_change")) => "editing files".into(),
        (_, Some("mcp_tool_call")) => format!(
            "tool: {}.{}",
            item["server"].as_str().unwrap_or("?"),
            item["tool"].as_str().unwrap_or("?")
        ),
        (_, Some("web_search")) => "searching the web".into(),
        (_, Some("todo_list")) => "planning".into(),
        (_, Some("error")) => error_line(item["message"].as_str().unwrap_or("error")),
        (_, Some(other)) => other.replace('_', " "),
        (other, None) => other.replace(['.', '_'], " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(mode: Mode, session: Option<&'a str>) -> Vars<'a> {
        Vars {
            prompt: "P",
            request: Path::new("/r/.relay/x.req.md"),
            reply: Path::new("/r/.relay/x.res.md"),
            root: Path::new("/r"),
            mode,
            model: Some("m1"),
            effort: None,
            peer_session: session,
        }
    }

    #[test]
    fn codex_argv() {
        let spec = builtin("codex").unwrap();
        assert_eq!(
            spec.argv(&vars(Mode::Write, None)).join(" "),
            "exec --json --color never --skip-git-repo-check -C /r -s workspace-write -m m1 P"
        );
        assert_eq!(
            spec.argv(&vars(Mode::ReadOnly, Some("t-1"))).join(" "),
            "exec --json --color never --skip-git-repo-check -C /r -s read-only -m m1 resume t-1 P"
        );
    }

    #[test]
    fn claude_and_gemini_argv() {
        assert_eq!(
            builtin("claude")
                .unwrap()
                .argv(&vars(Mode::Full, Some("s")))
                .join(" "),
            "-p --output-format json --dangerously-skip-permissions --model m1 --resume s -- P"
        );
        assert_eq!(
            builtin("gemini")
                .unwrap()
                .argv(&vars(Mode::Write, None))
                .join(" "),
            "--skip-trust -o json --approval-mode auto_edit -m m1 -p P"
        );
    }

    #[test]
    fn reports() {
        let codex = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"error","message":"Model metadata not found"}
{"type":"item.completed","item":{"type":"agent_message","text":"Wrote it."}}
{"type":"turn.completed","usage":{"input_tokens":300,"cached_input_tokens":5,"output_tokens":60}}"#;
        let r = read_report(OutputFormat::CodexJson, codex, "");
        assert_eq!(
            (r.session_id.as_deref(), r.final_message.as_deref(), r.error),
            (Some("t1"), Some("Wrote it."), None)
        );
        assert_eq!(r.usage.output_tokens, Some(60));
        let claude = r#"{"type":"result","is_error":true,"result":"API Error: 400 x","session_id":"s1","total_cost_usd":0,"usage":{"input_tokens":1,"output_tokens":2}}"#;
        let r = read_report(OutputFormat::ClaudeJson, claude, "");
        assert_eq!(
            (r.error.as_deref(), r.final_message),
            (Some("API Error: 400 x"), None)
        );
        let gem_err = "stack trace {not json}\n{\n  \"session_id\": \"g1\",\n  \"error\": {\"type\": \"Error\", \"message\": \"boom\", \"code\": 400}\n}\n";
        let r = read_report(OutputFormat::GeminiJson, "", gem_err);
        assert_eq!(
            (r.session_id.as_deref(), r.error.as_deref()),
            (Some("g1"), Some("boom"))
        );
    }

    #[test]
    fn placeholders_expand_once() {
        let mut v = vars(Mode::Write, Some("s-1"));
        v.prompt = "say {reply} and {unknown} and {";
        let spec = from_shell("x");
        let mut spec = spec;
        spec.command = s(&["p", "{prompt}|{peer_session}|{root}"]);
        assert_eq!(spec.argv(&v), ["say {reply} and {unknown} and {|s-1|/r"]);
    }

    #[test]
    fn session_ids_cannot_be_flags() {
        for ok in ["0199a213-81c0-7800-8aa1-bbab2a035a53", "t1", "abc_DEF.9:x"] {
            assert!(valid_session_id(ok), "{ok}");
        }
        for bad in [
            "--dangerously-skip-permissions",
            "-r",
            "",
            "a b",
            "a\nb",
            "x;rm",
            &"a".repeat(129),
        ] {
            assert!(!valid_session_id(bad), "{bad}");
        }
        let claude =
            r#"{"type":"result","result":"ok","session_id":"--dangerously-skip-permissions"}"#;
        assert_eq!(
            read_report(OutputFormat::ClaudeJson, claude, "").session_id,
            None
        );
    }

    #[test]
    fn activity_in_words() {
        let act = |f, out: &str, err: &str| activity(f, out, err).unwrap();
        let cmd = r#"{"type":"item.started","item":{"id":"i1","type":"command_execution","command":"bash -lc 'cargo test'","status":"in_progress"}}"#;
        assert_eq!(
            act(OutputFormat::CodexJson, cmd, ""),
            "running: bash -lc 'cargo test'"
        );
        let retry = r#"{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion)"}"#;
        assert_eq!(
            act(OutputFormat::CodexJson, retry, ""),
            "Reconnecting... 2/5 (stream disconnected before completion)"
        );
        assert_eq!(
            act(OutputFormat::CodexJson, "", ""),
            "waiting for the model"
        );
        let notice = "Warning: 256-color support not detected.\nRipgrep is not available.\n";
        assert_eq!(
            act(OutputFormat::GeminiJson, "", notice),
            "waiting for the model"
        );
        assert_eq!(
            act(
                OutputFormat::ClaudeJson,
                "",
                "Retrying in 4s: API Error: 529 overloaded\n"
            ),
            "Retrying in 4s: API Error: 529 overloaded"
        );
        assert_eq!(
            act(OutputFormat::ClaudeJson, "{\"result\":\"x\"}\n", ""),
            "finished"
        );
    }

    #[test]
    fn error_lines_are_the_peers_words_once() {
        // codex: the message is itself JSON.
        let codex = r#"{"type":"error","message":"{\"type\": \"error\", \"error\": {\"type\": \"invalid_request_error\", \"message\": \"mockllm: injected error 400\"}}"}
{"type":"turn.failed","error":{"message":"{\"type\": \"error\", \"error\": {\"message\": \"mockllm: injected error 400\"}}"}}"#;
        let r = read_report(OutputFormat::CodexJson, codex, "");
        assert_eq!(r.error.as_deref(), Some("mockllm: injected error 400"));
        // gemini: a JSON error object on stderr whose message is JSON again.
        let gem = "{\"session_id\":\"g\",\"error\":{\"message\":\"{\\\"error\\\":{\\\"code\\\":400,\\\"message\\\":\\\"quota\\\"}}\"}}";
        let r = read_report(OutputFormat::GeminiJson, "", gem);
        assert_eq!(r.error.as_deref(), Some("quota"));
        assert_eq!(
            error_line("Not logged in · Please run /login\n"),
            "Not logged in · Please run /login"
        );
        assert_eq!(error_line("\u{1b}[31mboom\u{1b}[0m"), "boom");
    }
}
