//! The call engine: everything `relay call` does once it knows what to run. Commands build a
//! [`CallPlan`] (plain data: no clap types) and get back a typed [`RunRecord`]; `relay call`,
//! its `--bg` supervisor and `relay wait` go through here, and so will handoffs, reviews,
//! fan-out and CI runs.
//!
//! # Module tree
//!
//! - `engine` (this file): [`CallPlan`], [`Call`] (execute, attempt, conclude, judge), the
//!   prompt, the spinner, `--bg`.
//! - `supervise` (+ `supervise/unix.rs`): spawning the peer in its own process group, the
//!   deadline and idle limits, Ctrl-C/SIGTERM, killing the whole tree, the watchdog.
//! - `peer`: the table of peers (argv templates, modes, env, output formats, per-agent facts)
//!   and reading what a peer printed (final message, session id, usage, error line, activity).
//! - `run`: the [`RunRecord`] (`<stem>.run.json`), the call log (`.relay/calls.jsonl`), live
//!   state, and process identity checks.
//! - relay-core: the files (request, reply, validation, atomic writes, untrusted reads).
//!
//! # The states a call goes through
//!
//! ```text
//! plan ──> request written ──> record `running` (pid, start time) ──> peer runs
//!   │                                                           │
//!   │  --bg: record with plan, then `relay __supervise` ────────┘
//!   v
//! peer ends (exited | timeout | idle | Ctrl-C | SIGTERM) ──> [resume failed? run again
//! from the files] ──> conclude: reply valid? -> ok / verify-failed / status-error;
//! invalid / not a regular file -> invalid-reply; none, but a final message -> salvaged
//! (read-only: written as the reply); nothing -> no-reply; killed -> timeout / interrupted
//!   ──> record `finished` (always: any error on the way becomes no-reply with its reason)
//!   ──> call-log line ──> exit code (spec §9)
//! ```
//!
//! # Invariants
//!
//! - **One peer per supervising process.** The supervisor's tree is the peer's process group
//!   plus every descendant of the supervising relay process (it is their subreaper on Linux), so
//!   a process may supervise exactly one peer at a time; parallel work (doctor's probes,
//!   fan-out) runs one relay process per peer.
//! - The watchdog (`relay __watchdog`) starts on a thread beside the peer (its exec overlaps the
//!   peer's) and gets the peer's group and deadline on its stdin once the peer runs; with no
//!   orders (the supervisor died first) it has nothing to guard. It is excluded from the tree and
//!   killed by handle. A fan-out member's supervisor (`__supervise --parent-guards`) starts none:
//!   its orders go on its stdout to the fan-out's relay, which enforces any it has not withdrawn.
//! - Every pid relay may signal later is recorded with its start time, and checked first.
//! - A record written `running` always ends `finished` (or `stale`, by `relay cancel`).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relay_core::{
    FileKind, Message, NewResponse, RelayDir, Verify, exit, read_request, reply_path, write_new,
};
use serde::{Deserialize, Serialize};

use crate::input;
use crate::peer::{self, Mode, PeerSpec, Vars};
use crate::run::{self, Outcome, RunRecord, State};
use crate::supervise::{self, End, Limits, Spawn, StopFlags};

/// `relay call --bg --json`: the call started in the background.
#[derive(Serialize)]
struct StartedJson<'a> {
    exchange: &'a str,
    state: &'static str,
    supervisor_pid: u32,
    request: &'a Path,
    reply: &'a Path,
    run_record: &'a Path,
}

/// The largest request handed to a peer on stdin (Gemini CLI reads at most 8 MiB of it).
const MAX_STDIN_REQUEST: usize = 8 * 1024 * 1024;

/// Everything a call needs to run: which peer, how, for how long. Plain data, stored in the
/// run record so a background supervisor runs exactly this. The peer's table entry is looked
/// up again from its name (or `--peer-cmd`) rather than stored: a config peer's environment may
/// hold secrets that have no place in a file under `.relay/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallPlan {
    /// The peer's name (`codex`, a config peer, anything with `--peer-cmd`).
    pub peer: String,
    /// `--peer-cmd`: the shell command that is the peer.
    pub peer_cmd: Option<String>,
    /// Its table entry, resolved by [`CallPlan::resolve`].
    #[serde(skip)]
    pub spec: Option<PeerSpec>,
    /// The program, found on PATH before anything was written.
    pub program: PathBuf,
    /// The calling agent.
    pub from: String,
    pub mode: Mode,
    pub model: Option<String>,
    pub effort: Option<String>,
    pub timeout_ms: u64,
    pub idle_timeout_ms: Option<u64>,
    /// How deep this call is nested (`RELAY_DEPTH` of the caller).
    pub depth: u64,
    /// The fan-out this call is one peer of (its peers share the working tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan: Option<String>,
    /// Globs of the only paths the peer may change (`--writes`, a handoff's scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
    /// Globs of paths the peer must not change (a handoff's off limits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub off_limits: Vec<String>,
    /// Checks relay runs itself after the peer (`--verify-cmd`), in the project root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<String>,
    #[serde(default)]
    pub verify_timeout_ms: u64,
}

impl CallPlan {
    /// Looks the peer up: `--peer-cmd`, else the config file, else the built-ins.
    pub fn resolve(&mut self) -> anyhow::Result<()> {
        let spec = match &self.peer_cmd {
            Some(cmd) => peer::from_shell(cmd),
            None => peer::all_peers()?.remove(&self.peer).ok_or_else(|| {
                crate::error::usage(
                    format!("unknown peer `{}`", self.peer),
                    format!(
                        "built in: codex, claude, gemini; add others in {} or pass --peer-cmd",
                        peer::config_path()
                            .map_or("the config file".into(), |p| p.display().to_string())
                    ),
                )
            })?,
        };
        self.spec = Some(spec);
        Ok(())
    }

    /// The plan for a call to `peer`, with everything checked before anything is written: the
    /// name, the nesting depth, the network (inside Codex's sandbox), the peer's table entry
    /// and its program on PATH (a missing CLI must not leave a request nobody answers).
    pub fn prepare(
        peer: &str,
        peer_cmd: Option<String>,
        mode: Mode,
        effort: Option<String>,
        run: &crate::commands::call::RunArgs,
    ) -> anyhow::Result<CallPlan> {
        use crate::error::ExpectedError;
        relay_core::fields::check_slug(peer).map_err(|m| {
            crate::error::usage(
                format!("peer {m}"),
                "peers: codex, claude, gemini, or one from the config file",
            )
        })?;
        let (depth, max_depth) = nesting();
        if depth >= max_depth {
            return Err(ExpectedError::Recursion {
                depth,
                max: max_depth,
            }
            .into());
        }
        // Inside Codex's sandbox (network off) a peer CLI cannot reach its model and would
        // retry until the timeout: say so now, with the fix.
        let no_network =
            std::env::var_os("CODEX_SANDBOX_NETWORK_DISABLED").is_some_and(|v| v == "1");
        if no_network && peer_cmd.is_none() && std::env::var_os("RELAY_ALLOW_NO_NETWORK").is_none()
        {
            return Err(ExpectedError::NoNetwork {
                peer: peer.to_owned(),
            }
            .into());
        }
        let mut plan = CallPlan {
            peer: peer.to_owned(),
            peer_cmd,
            spec: None,
            program: PathBuf::new(),
            from: match &run.from {
                Some(f) => f.clone(),
                None => peer::detect_caller().to_owned(),
            },
            mode,
            model: run.model.clone(),
            effort,
            timeout_ms: millis(run.timeout),
            idle_timeout_ms: run.idle_timeout.map(millis),
            depth,
            fan: None,
            writes: crate::input::globs("--writes", &run.writes)?,
            off_limits: Vec::new(),
            verify: crate::input::nonempty("--verify-cmd", &run.verify_cmd)?,
            verify_timeout_ms: millis(run.verify_timeout),
        };
        plan.resolve()?;
        let spec = plan.spec();
        plan.program = which::which(spec.program()).map_err(|_| ExpectedError::PeerNotFound {
            program: spec.program().to_owned(),
            install_hint: spec.install_hint.clone(),
        })?;
        Ok(plan)
    }

    /// What the request says of `--verify-cmd`, appended to its task: the peer runs the same
    /// checks and knows relay will run them too. Empty without checks.
    pub fn checks_note(&self) -> String {
        if self.verify.is_empty() {
            return String::new();
        }
        let mut note = String::from(
            "\n\nrelay runs these checks itself in the project root once you are done, and compares the result with your `verify`; run them before you answer:\n",
        );
        for cmd in &self.verify {
            note.push_str(&format!("- `{cmd}`\n"));
        }
        note
    }

    /// The peer's table entry (after [`CallPlan::resolve`]).
    pub fn spec(&self) -> &PeerSpec {
        self.spec.as_ref().expect("CallPlan::resolve ran first")
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout_ms.map(Duration::from_millis)
    }
}

/// How deep relay calls may nest (a peer calling relay calling a peer ...).
const DEFAULT_MAX_DEPTH: u32 = 2;

/// How deep this relay runs inside relay calls (`RELAY_DEPTH`, set for every peer), and how
/// deep calls may nest (`RELAY_MAX_DEPTH`).
pub fn nesting() -> (u64, u64) {
    let depth = env_u64("RELAY_DEPTH").unwrap_or(0);
    (
        depth,
        env_u64("RELAY_MAX_DEPTH").unwrap_or(u64::from(DEFAULT_MAX_DEPTH)),
    )
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok()?.parse().ok()
}

/// One call being run: the plan and where it runs.
pub struct Call<'a> {
    pub relay: &'a RelayDir,
    pub plan: &'a CallPlan,
    /// No spinner (JSON output, or a background supervisor).
    pub quiet: bool,
}

/// The prompt the peer gets: it names the request file (the peer reads everything else there),
/// or, when the request's text comes on stdin before the prompt, says it is above.
fn prompt(request: &Path, mode: Mode, on_stdin: bool) -> String {
    let answer = match mode {
        Mode::ReadOnly => {
            "then give your whole reply, in the format its footer shows, as your final message"
        }
        _ => "then write your reply to the exact file its footer names, in the format it shows",
    };
    let what = if on_stdin {
        "The text above is the relay request"
    } else {
        "Read and execute the relay request in"
    };
    let how = if on_stdin {
        " (already read for you; do not read it again)"
    } else {
        ""
    };
    format!(
        "{what} {}{how}: do the task it describes, {answer}.",
        request.display()
    )
}

impl Call<'_> {
    pub fn execute(&self, request_path: &Path, stop: &StopFlags) -> anyhow::Result<RunRecord> {
        self.run(request_path, stop, false)
    }

    /// [`Call::execute`] in a supervisor: the relay that started it already wrote the run
    /// record naming it, so the record is next written when the peer runs.
    pub fn execute_supervised(
        &self,
        request_path: &Path,
        stop: &StopFlags,
    ) -> anyhow::Result<RunRecord> {
        self.run(request_path, stop, true)
    }

    fn run(
        &self,
        request_path: &Path,
        stop: &StopFlags,
        recorded: bool,
    ) -> anyhow::Result<RunRecord> {
        let request = read_request(request_path)?;
        let resume = self.previous_peer_session(request_path, &request);
        let mut record = self.new_record(request_path, &request, resume.as_deref())?;
        if !recorded {
            record.save()?;
        }
        let t0 = Instant::now();
        // What the peer changes in the project is evidence, and holds it to its mode and scope.
        let tag = format!(
            "{}-{}",
            record.exchange.replace('/', "-"),
            std::process::id()
        );
        let scratch = crate::workspace::Scratch::new(self.relay, &tag)
            .and_then(|s| s.map(|s| s.state("before").map(|b| (s, b))).transpose());
        let scratch = match scratch {
            Ok(s) => s,
            Err(e) => {
                record.workspace_note = Some(format!(
                    "no evidence of what the peer changed: {}",
                    crate::error::render(&e)
                ));
                None
            }
        };
        if scratch.is_none() && record.workspace_note.is_none() {
            record.workspace_note =
                Some("not a git work tree: no evidence of what the peer changed".into());
        }
        // From here on every way the call can end leaves a finished record with a documented
        // outcome and the reason: never a record stuck at `running`.
        if let Err(e) = self.run_peer(&mut record, resume.as_deref(), stop, t0) {
            finish(
                &mut record,
                Outcome::NoReply,
                format!(
                    "relay could not finish the call: {}",
                    crate::error::render(&e)
                ),
            );
        }
        if let Some((scratch, before)) = scratch {
            let patch = relay_core::beside(request_path, relay_core::BESIDE_CHANGES);
            match scratch
                .state("after")
                .and_then(|after| scratch.evidence(&before, &after, &patch))
            {
                Ok(evidence) => {
                    self.hold_to_scope(&mut record, &evidence);
                    record.workspace = Some(evidence);
                }
                Err(e) => {
                    record.workspace_note = Some(format!(
                        "no evidence of what the peer changed: {}",
                        crate::error::render(&e)
                    ));
                }
            }
        }
        if !self.plan.verify.is_empty() {
            self.verify(&mut record, stop);
        }
        record.state = State::Finished;
        record.ended = Some(input::now()?);
        record.elapsed_ms = millis(t0.elapsed());
        if let Err(e) = record.save() {
            eprintln!(
                "relay: could not save the run record: {}",
                crate::error::render(&e)
            );
        }
        if let Err(e) = run::append_call_log(self.relay, &record) {
            eprintln!(
                "relay: warning: could not add the call to the call log: {}",
                crate::error::render(&e)
            );
        }
        Ok(record)
    }

    /// Runs the peer (again from the files if resuming its session fails) and judges what it
    /// left.
    fn run_peer(
        &self,
        record: &mut RunRecord,
        resume: Option<&str>,
        stop: &StopFlags,
        t0: Instant,
    ) -> anyhow::Result<()> {
        let reply = record.reply.clone();
        let (mut outcome, mut report) = self.attempt(record, resume, stop, t0)?;
        // A peer session that cannot be resumed (expired, other machine, other cwd) must not
        // lose the turn: run it again from the files, which hold the whole history, and say so.
        if resume.is_some()
            && outcome.end == End::Exited
            && !reply.exists()
            && (outcome.exit_code != Some(0) || record.peer_error.is_some())
        {
            eprintln!(
                "relay: resuming {} session {} failed; running the turn again from the session files",
                self.plan.peer,
                resume.unwrap_or_default()
            );
            for (log, kept) in [&record.stdout_log, &record.stderr_log]
                .into_iter()
                .zip(relay_core::BESIDE_RESUME_FAILED_LOGS)
            {
                let _ = std::fs::rename(log, relay_core::beside(&record.request, kept));
            }
            record.resume_fallback = true;
            record.peer_error = None;
            (outcome, report) = self.attempt(record, None, stop, t0)?;
        }
        self.conclude(record, &outcome, &report)
    }

    /// The run record of a call about to start.
    fn new_record(
        &self,
        request_path: &Path,
        request: &relay_core::Request,
        resume: Option<&str>,
    ) -> anyhow::Result<RunRecord> {
        Ok(RunRecord {
            exchange: request.reference(),
            id: request.id.clone(),
            session: request.session.clone(),
            from: self.plan.from.clone(),
            peer: self.plan.peer.clone(),
            mode: self.plan.mode,
            model: self.plan.model.clone(),
            effort: self.plan.effort.clone(),
            state: State::Running,
            outcome: None,
            exit_code: None,
            reason: None,
            supervisor_pid: std::process::id(),
            supervisor_start: supervise::start_time(std::process::id()),
            pid: None,
            peer_start: None,
            started: input::now()?,
            ended: None,
            elapsed_ms: 0,
            timeout_s: self.plan.timeout().as_secs(),
            idle_timeout_s: self.plan.idle_timeout().map(|d| d.as_secs()),
            activity: None,
            peer_exit_code: None,
            peer_signal: None,
            kill_ms: None,
            request: request_path.to_path_buf(),
            reply: reply_path(request_path),
            stdout_log: relay_core::beside(request_path, relay_core::BESIDE_STDOUT_LOG),
            stderr_log: relay_core::beside(request_path, relay_core::BESIDE_STDERR_LOG),
            status: None,
            verify: None,
            salvaged: false,
            diagnostics: Vec::new(),
            peer_session: None,
            resumed: resume.map(str::to_owned),
            resume_fallback: false,
            peer_error: None,
            usage: peer::Usage::default(),
            final_message: None,
            changed_outside: Vec::new(),
            workspace: None,
            workspace_note: None,
            checks: Vec::new(),
            verified_by: None,
            checked: None,
            plan: Some(self.plan.clone()),
        })
    }

    /// The peer session id recorded by the latest earlier turn of this session with this peer.
    fn previous_peer_session(
        &self,
        request_path: &Path,
        request: &relay_core::Request,
    ) -> Option<String> {
        request.session.as_ref()?;
        let dir = request_path.parent()?;
        let this: u64 = request.id.parse().ok()?;
        let turns = relay_core::session_turns(dir).ok()?;
        turns
            .iter()
            .rev()
            .filter(|t| t.number < this)
            .find_map(|t| {
                let r = RunRecord::load(&dir.join(format!("{}.req.md", t.stem))).ok()?;
                // Checked again here: the record is a file under .relay/, so untrusted.
                (r.peer == self.plan.peer)
                    .then_some(r.peer_session)
                    .flatten()
                    .filter(|id| peer::valid_session_id(id))
            })
    }

    fn attempt(
        &self,
        record: &mut RunRecord,
        resume: Option<&str>,
        stop: &StopFlags,
        t0: Instant,
    ) -> anyhow::Result<(supervise::Outcome, peer::PeerReport)> {
        let on_stdin = self.plan.spec().request_on_stdin;
        let prompt = prompt(&record.request, self.plan.mode, on_stdin);
        let vars = Vars {
            prompt: &prompt,
            request: &record.request,
            reply: &record.reply,
            root: self.relay.root(),
            mode: self.plan.mode,
            model: self.plan.model.as_deref(),
            effort: self.plan.effort.as_deref(),
            peer_session: resume,
        };
        let mut env_set: Vec<(String, String)> = self.plan.spec().env.clone().into_iter().collect();
        if self.plan.mode == Mode::Full {
            env_set.extend(self.plan.spec().full_env.clone());
        }
        env_set.extend([
            ("RELAY_DEPTH".to_owned(), (self.plan.depth + 1).to_string()),
            ("RELAY_PEER".to_owned(), self.plan.peer.clone()),
            (
                "RELAY_REQUEST".to_owned(),
                record.request.display().to_string(),
            ),
            ("RELAY_REPLY".to_owned(), record.reply.display().to_string()),
            ("RELAY_PROMPT".to_owned(), prompt.clone()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ]);
        let mut env_remove = peer::scrub_env();
        env_remove.extend(self.plan.spec().unset_env.iter().cloned());
        let spawn = Spawn {
            program: self.plan.program.clone(),
            args: self
                .plan
                .spec()
                .argv(&vars)
                .into_iter()
                .map(Into::into)
                .collect(),
            cwd: self.relay.root().to_path_buf(),
            env_set,
            env_remove,
            stdout: record.stdout_log.clone(),
            stderr: record.stderr_log.clone(),
            stdin_text: if on_stdin {
                let mut text = relay_core::read_text(&record.request, FileKind::Request)?;
                // The request's attachment (a review's patch) is under .relay/ too, where such
                // a peer's file tools cannot read: it comes on stdin after the request.
                let patch = relay_core::beside(&record.request, relay_core::BESIDE_PATCH);
                if let Ok(bytes) =
                    relay_core::untrusted::read_capped(&patch, MAX_STDIN_REQUEST as u64 + 1)
                {
                    text.push_str(&format!(
                        "\n\nThe file {} named above follows, between the markers (already read for you; do not read it again):\n<<<PATCH\n{}\nPATCH>>>\n",
                        patch.display(),
                        String::from_utf8_lossy(&bytes)
                    ));
                }
                // Past it Gemini CLI cuts stdin, and the footer (at the end) would be lost.
                anyhow::ensure!(
                    text.len() <= MAX_STDIN_REQUEST,
                    "the request is {} bytes; {} reads at most {MAX_STDIN_REQUEST} from stdin: shorten the task, or put the material in a file of the project and name it",
                    text.len(),
                    self.plan.peer
                );
                Some(text)
            } else {
                None
            },
        };
        let limits = Limits {
            timeout: self.plan.timeout().saturating_sub(t0.elapsed()),
            idle: self.plan.idle_timeout(),
            grace: Duration::from_millis(env_u64("RELAY_KILL_GRACE_MS").unwrap_or(1000)),
            settle: Duration::from_millis(env_u64("RELAY_SETTLE_MS").unwrap_or(3000)),
            log_cap: 16 * 1024 * 1024,
        };
        let started = supervise::start(&spawn)
            .with_context(|| format!("starting {}", self.plan.program.display()))?;
        record.pid = Some(started.id());
        record.peer_start = supervise::start_time(started.id());
        record.save()?;
        let spinner = Spinner::new(self.quiet);
        let mut last_save = Instant::now();
        let format = self.plan.spec().output;
        let timeout_s = self.plan.timeout().as_secs();
        let peer_name = self.plan.peer.clone();
        let reply = record.reply.clone();
        let outcome = supervise::supervise(
            started,
            &spawn,
            &limits,
            stop,
            &reply,
            Instant::now(),
            &mut |tick| {
                let activity = peer::activity(
                    format,
                    &read_tail(tick.stdout, 4096),
                    &read_tail(tick.stderr, 4096),
                );
                let elapsed = t0.elapsed().as_secs();
                spinner.set(format!(
                    "{peer_name} · {elapsed}s / {timeout_s}s · {}",
                    activity.as_deref().unwrap_or("starting")
                ));
                if last_save.elapsed() >= Duration::from_secs(1) {
                    last_save = Instant::now();
                    record.activity = activity;
                    record.elapsed_ms = millis(t0.elapsed());
                    let _ = record.save();
                }
            },
        )?;
        spinner.finish();
        // Lossy: one stray non-UTF-8 byte must not cost the final message, session id and usage.
        // The log is under .relay/, where the peer could have swapped in a FIFO: read it like
        // any untrusted file (no link, no blocking), at most the log cap.
        let stdout = String::from_utf8_lossy(
            &relay_core::untrusted::read_capped(&record.stdout_log, limits.log_cap)
                .unwrap_or_default(),
        )
        .into_owned();
        let stderr = read_tail(&record.stderr_log, 256 * 1024);
        let report = peer::read_report(format, &stdout, &stderr);
        record.activity = peer::activity(format, &peer::tail(&stdout, 4096), &stderr);
        record.peer_exit_code = outcome.exit_code;
        record.peer_signal = outcome.signal;
        record.kill_ms = outcome.kill_time.map(millis);
        record.peer_session = report.session_id.clone().or(record.peer_session.take());
        record.peer_error = report.error.clone();
        record.usage = report.usage.clone();
        if !outcome.survivors.is_empty() {
            eprintln!(
                "relay: warning: processes {:?} survived SIGKILL",
                outcome.survivors
            );
        }
        Ok((outcome, report))
    }

    /// Decides the outcome from how the peer ended and what it left: a valid reply wins; else
    /// an answer it printed is salvaged into the reply file; else there is no reply.
    fn conclude(
        &self,
        record: &mut RunRecord,
        outcome: &supervise::Outcome,
        report: &peer::PeerReport,
    ) -> anyhow::Result<()> {
        let killed = match outcome.end {
            End::Exited => None,
            End::Timeout => Some((
                Outcome::Timeout,
                format!(
                    "timed out after {}s; the peer's process tree was killed",
                    self.plan.timeout().as_secs()
                ),
            )),
            End::Idle => Some((
                Outcome::IdleTimeout,
                format!(
                    "no output for {}s; the peer's process tree was killed",
                    self.plan.idle_timeout().unwrap_or_default().as_secs()
                ),
            )),
            End::Interrupted => Some((
                Outcome::Interrupted,
                "interrupted (Ctrl-C); the peer's process tree was killed".to_owned(),
            )),
            End::Terminated => Some((
                Outcome::Terminated,
                "terminated (SIGTERM); the peer's process tree was killed".to_owned(),
            )),
        };
        if let Some((o, why)) = &killed
            && matches!(o, Outcome::Interrupted | Outcome::Terminated)
        {
            finish(record, *o, why.clone());
            return Ok(());
        }
        // What is at the reply path, without following a link: only a regular file is a reply.
        if let Ok(meta) = std::fs::symlink_metadata(&record.reply)
            && !meta.is_file()
        {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "a special file"
            };
            finish(
                record,
                Outcome::InvalidReply,
                format!(
                    "the reply path holds {what}, not a file; relay reads only regular files under .relay/"
                ),
            );
            return Ok(());
        }
        // Read-only peers cannot write: their final message is the reply, written by relay.
        if !record.reply.exists()
            && killed.is_none()
            && self.plan.mode == Mode::ReadOnly
            && let Some(text) = report
                .final_message
                .as_deref()
                .and_then(|m| as_reply(&record.reply, m))
        {
            write_new(&record.reply, text.as_bytes())?;
        }
        if record.reply.exists() {
            return self.judge_reply(record, killed.as_ref().map(|k| k.1.as_str()));
        }
        if let Some((o, why)) = killed {
            finish(record, o, why);
            return Ok(());
        }
        let final_message = report
            .final_message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let Some(text) = final_message else {
            let mut why = format!("{} exited", self.plan.peer);
            match (outcome.exit_code, outcome.signal) {
                (Some(c), _) => why.push_str(&format!(" with code {c}")),
                (None, Some(sig)) => why.push_str(&format!(" on signal {sig}")),
                _ => {}
            }
            why.push_str(" without writing the reply");
            if let Some(e) = &report.error {
                why.push_str(&format!(": {e}"));
            }
            finish(record, Outcome::NoReply, why);
            return Ok(());
        };
        let failed = outcome.exit_code != Some(0) || report.error.is_some();
        // A NUL byte would make the reply invalid (bodies must not hold one): kept visible.
        let text = text.replace('\0', "\u{FFFD}");
        let new = NewResponse {
            re: None,
            from: None,
            to: None,
            status: if failed {
                relay_core::Status::Error
            } else {
                relay_core::Status::Done
            },
            verify: Verify::Skip,
            state: None,
            body: format!("{text}\n"),
            salvaged: Some("final-message".into()),
        };
        let response = match crate::record::write_response(
            self.relay,
            &record.request,
            &new,
            false,
            input::now()?,
        ) {
            Ok((response, _)) => response,
            Err(e) => {
                // The request is gone (the peer deleted it), or the disk is full: the answer
                // is kept in the run record instead of being lost.
                record.final_message = Some(peer::tail(&text, 256 * 1024));
                finish(
                    record,
                    Outcome::NoReply,
                    format!(
                        "{} wrote no reply file, and relay could not save its final message as the reply ({}); it is in the run record (final_message)",
                        self.plan.peer,
                        crate::error::render(&e.into())
                    ),
                );
                return Ok(());
            }
        };
        record.status = Some(response.status);
        record.verify = Some(Verify::Skip);
        record.salvaged = true;
        let why = format!(
            "{} wrote no reply file; relay saved its final message as the reply (salvaged, verify skip)",
            self.plan.peer
        );
        finish(record, Outcome::Salvaged, why);
        Ok(())
    }

    /// A reply file exists: it must parse, validate and answer this request.
    fn judge_reply(&self, record: &mut RunRecord, killed: Option<&str>) -> anyhow::Result<()> {
        let report = match relay_core::validate_file(&record.reply) {
            Ok(r) => r,
            Err(e) => {
                finish(
                    record,
                    Outcome::InvalidReply,
                    format!("the reply cannot be read: {e}"),
                );
                return Ok(());
            }
        };
        record.diagnostics = report.diagnostics.iter().map(ToString::to_string).collect();
        let response = match (&report.message, report.is_valid()) {
            (Some(Message::Response(r)), true) if r.re == record.id => r.clone(),
            (Some(Message::Response(r)), true) => {
                record.diagnostics.push(format!(
                    "{}: re: is `{}`, but this request is `{}`",
                    record.reply.display(),
                    r.re,
                    record.id
                ));
                finish(
                    record,
                    Outcome::InvalidReply,
                    "the reply answers another request".into(),
                );
                return Ok(());
            }
            _ => {
                let why = match report
                    .diagnostics
                    .iter()
                    .find(|d| d.severity == relay_core::Severity::Error)
                {
                    Some(d) => format!(
                        "the reply is not valid: line {}: {}: {}",
                        d.line, d.field, d.message
                    ),
                    None => "the reply file is not a valid relay reply".into(),
                };
                finish(record, Outcome::InvalidReply, why);
                return Ok(());
            }
        };
        record.status = Some(response.status);
        record.verify = Some(response.verify);
        record.salvaged = response.salvaged.is_some();
        crate::record::reply(self.relay, &response, &record.exchange);
        let outcome = match (response.status, response.verify) {
            (relay_core::Status::Error, _) => match response.state {
                Some(relay_core::ErrorState::Blocked) => Outcome::Blocked,
                Some(relay_core::ErrorState::Refused) => Outcome::Refused,
                None => Outcome::StatusError,
            },
            (_, Verify::Fail) => Outcome::VerifyFailed,
            _ => Outcome::Ok,
        };
        let why = match killed {
            Some(k) => format!("reply written, then {k}"),
            None => format!("{} replied", self.plan.peer),
        };
        finish(record, outcome, why);
        Ok(())
    }
}

impl Call<'_> {
    /// Runs the `--verify-cmd` checks in the project root, one after another, each supervised
    /// as the peer is (its own timeout, the whole process group killed), with their output in
    /// `<stem>.verify.log`; then weighs relay's verdict against the peer's `verify`. Only a call
    /// that ended with the peer's answer is checked: a timeout, Ctrl-C or an out-of-scope
    /// write keeps its outcome.
    fn verify(&self, record: &mut RunRecord, stop: &StopFlags) {
        if !matches!(
            record.outcome,
            Some(Outcome::Ok | Outcome::VerifyFailed | Outcome::Salvaged)
        ) {
            return;
        }
        let log = relay_core::beside(&record.request, relay_core::BESIDE_VERIFY_LOG);
        let timeout = Duration::from_millis(self.plan.verify_timeout_ms);
        let ran = run_checks(self.relay.root(), &self.plan.verify, timeout, stop, &log);
        record.checks = ran.checks;
        if let Some((outcome, why)) = ran.stopped {
            finish(record, outcome, why);
            return;
        }
        let failed = ran.failed;
        record.verified_by = Some("relay".into());
        record.checked = Some(if failed.is_some() {
            Verify::Fail
        } else {
            Verify::Pass
        });
        let said = record.verify;
        match (said, &failed) {
            (Some(Verify::Pass), Some(why)) => finish(
                record,
                Outcome::VerifyMismatch,
                format!(
                    "{} said verify pass, but relay ran the checks: {why}",
                    self.plan.peer
                ),
            ),
            (Some(Verify::Fail), None) => finish(
                record,
                Outcome::VerifyMismatch,
                format!(
                    "{} said verify fail, but relay ran the checks and they passed",
                    self.plan.peer
                ),
            ),
            (_, Some(why)) if record.outcome == Some(Outcome::Ok) => finish(
                record,
                Outcome::VerifyFailed,
                format!("relay ran the checks: {why}"),
            ),
            _ => {
                let reason = record.reason.take().unwrap_or_default();
                let verdict = match &failed {
                    Some(why) => format!("relay ran the checks: {why}"),
                    None => "relay ran the checks: all passed".to_owned(),
                };
                record.reason = Some(format!("{reason}; {verdict}"));
            }
        }
    }

    /// Holds the peer to its mode and scope: a read-only peer changes nothing outside `.relay/`
    /// (HEAD and the index included); with `--writes` (or a handoff's scope) only matching paths
    /// may change, and no path matching a handoff's off limits (a rename counts for both names).
    fn hold_to_scope(&self, record: &mut RunRecord, evidence: &crate::workspace::Evidence) {
        if self.plan.mode == Mode::ReadOnly {
            let changed = evidence.summary();
            let n = paths(changed.len());
            hold(
                record,
                &changed,
                &format!("read-only, but {n} outside .relay/"),
            );
            return;
        }
        // Git history is the coordinator's to write (`relay init --coordinator`).
        if let Some(c) = crate::commands::init::coordinator(self.relay)
            && !c.eq_ignore_ascii_case(&self.plan.peer)
        {
            hold(
                record,
                &evidence.git_writes(),
                &format!("git history is {c}'s to write (relay init --coordinator), but its state"),
            );
        }
        if record.outcome == Some(Outcome::OutOfScope)
            || (self.plan.writes.is_empty() && self.plan.off_limits.is_empty())
        {
            return;
        }
        let set = |globs: &[String]| {
            let mut b = globset::GlobSetBuilder::new();
            for g in globs {
                if let Ok(g) = globset::GlobBuilder::new(g).literal_separator(true).build() {
                    b.add(g);
                }
            }
            b.build().unwrap_or_else(|_| globset::GlobSet::empty())
        };
        let (allowed, banned) = (set(&self.plan.writes), set(&self.plan.off_limits));
        let out_of_scope =
            |p: &str| (!self.plan.writes.is_empty() && !allowed.is_match(p)) || banned.is_match(p);
        let changed: Vec<String> = evidence
            .changed
            .iter()
            .filter(|c| out_of_scope(&c.path) || c.from.as_deref().is_some_and(out_of_scope))
            .map(|c| c.path.clone())
            .collect();
        let mut rules = Vec::new();
        if !self.plan.writes.is_empty() {
            rules.push(format!("may change only {}", self.plan.writes.join(" ")));
        }
        if !self.plan.off_limits.is_empty() {
            rules.push(format!("off limits: {}", self.plan.off_limits.join(" ")));
        }
        let n = paths(changed.len());
        hold(
            record,
            &changed,
            &format!("out of scope ({}): {n}", rules.join("; ")),
        );
    }
}

/// What [`run_checks`] found.
pub struct Checked {
    pub checks: Vec<run::Check>,
    /// Why the first check failed; None when all passed.
    pub failed: Option<String>,
    /// relay itself was stopped (Ctrl-C, SIGTERM) while a check ran: the outcome, and why.
    pub stopped: Option<(Outcome, String)>,
}

/// Runs checks (`--verify-cmd`) in `root`, one after another, each with `/bin/sh -c` under the
/// same supervision as a peer (its own process group, `timeout`, then the group killed), their
/// output appended to `log`.
pub fn run_checks(
    root: &Path,
    cmds: &[String],
    timeout: Duration,
    stop: &StopFlags,
    log: &Path,
) -> Checked {
    let limits = Limits {
        timeout,
        idle: None,
        grace: Duration::from_millis(env_u64("RELAY_KILL_GRACE_MS").unwrap_or(1000)),
        settle: Duration::ZERO,
        log_cap: 16 * 1024 * 1024,
    };
    let mut checks = Vec::new();
    let mut failed: Option<String> = None;
    for cmd in cmds {
        if let Ok(mut f) = relay_core::untrusted::open_append(log) {
            use std::io::Write as _;
            let _ = writeln!(f, "$ {cmd}");
        }
        let spawn = Spawn {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), cmd.into()],
            cwd: root.to_path_buf(),
            env_set: Vec::new(),
            env_remove: peer::scrub_env(),
            stdout: log.to_path_buf(),
            stderr: log.to_path_buf(),
            stdin_text: None,
        };
        let t = Instant::now();
        let ended = supervise::start(&spawn).and_then(|started| {
            supervise::supervise(started, &spawn, &limits, stop, log, t, &mut |_| {})
        });
        let (exit_code, signal, end) = match &ended {
            Ok(o) => (o.exit_code, o.signal, Some(o.end)),
            Err(_) => (None, None, None),
        };
        let killed = !matches!(end, Some(End::Exited));
        checks.push(run::Check {
            cmd: cmd.clone(),
            exit_code,
            signal,
            killed,
            duration_ms: millis(t.elapsed()),
            tail: read_tail(log, 2048),
        });
        let stopped = match end {
            Some(End::Interrupted) => Some(Outcome::Interrupted),
            Some(End::Terminated) => Some(Outcome::Terminated),
            _ => None,
        };
        if let Some(o) = stopped {
            return Checked {
                checks,
                failed,
                stopped: Some((o, format!("relay was stopped while it ran `{cmd}`"))),
            };
        }
        if exit_code != Some(0) && failed.is_none() {
            failed = Some(match (&ended, killed) {
                (Err(e), _) => format!("`{cmd}` could not start: {e}"),
                (_, true) => format!(
                    "`{cmd}` was killed after --verify-timeout {}s",
                    limits.timeout.as_secs()
                ),
                _ => format!(
                    "`{cmd}` failed (exit {})",
                    exit_code.map_or("?".into(), |c| c.to_string())
                ),
            });
        }
    }
    Checked {
        checks,
        failed,
        stopped: None,
    }
}

fn paths(n: usize) -> String {
    match n {
        1 => "1 path".to_owned(),
        n => format!("{n} paths"),
    }
}

/// A call whose peer changed what it may not is out of scope, whatever it replied (a call
/// killed on timeout or Ctrl-C keeps that outcome; the list is recorded).
fn hold(record: &mut RunRecord, changed: &[String], what: &str) {
    if changed.is_empty() {
        return;
    }
    record.changed_outside = changed.to_vec();
    const SHOWN: usize = 10;
    let mut list = changed[..changed.len().min(SHOWN)].join(", ");
    if changed.len() > SHOWN {
        list.push_str(&format!(" and {} more", changed.len() - SHOWN));
    }
    // relay sees what changed, not who changed it: peers of a fan-out share the tree.
    let who = match &record.plan.as_ref().and_then(|p| p.fan.clone()) {
        Some(fan) => format!(
            " (the peers of fan-out `{fan}` ran in this tree at the same time: any of them may have made the change)"
        ),
        None => String::new(),
    };
    let why = format!("{what} changed while the peer ran: {list}{who}");
    match record.outcome {
        Some(
            Outcome::Timeout | Outcome::IdleTimeout | Outcome::Interrupted | Outcome::Terminated,
        ) => {
            let reason = record.reason.take().unwrap_or_default();
            record.reason = Some(format!("{reason}; {why}"));
        }
        _ => finish(record, Outcome::OutOfScope, why),
    }
}

fn finish(record: &mut RunRecord, outcome: Outcome, why: String) {
    record.outcome = Some(outcome);
    record.exit_code = Some(outcome.exit_code());
    record.reason = Some(why);
}

/// The peer's final message as a reply file, if it is one (possibly inside a code fence).
fn as_reply(path: &Path, message: &str) -> Option<String> {
    let t = message.trim();
    let t = match t.strip_prefix("```") {
        Some(rest) => rest
            .split_once('\n')?
            .1
            .trim_end()
            .strip_suffix("```")?
            .trim(),
        None => t,
    };
    let text = format!("{t}\n");
    let parsed = relay_core::parse(path, &text);
    (!parsed.has_errors() && matches!(parsed.message, Some(Message::Response(_)))).then_some(text)
}

/// A duration in whole milliseconds, saturating (for records and plans).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The last `max` bytes of a file, as text.
fn read_tail(path: &Path, max: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = relay_core::untrusted::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A spinner on stderr with elapsed time, timeout and the peer's latest activity; only on a
/// terminal (nothing decorative when piped).
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new(quiet: bool) -> Spinner {
        if quiet || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    fn set(&self, msg: String) {
        if let Some(b) = &self.0 {
            b.set_message(msg);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Call<'_> {
    /// `--bg`: writes the run record with this call's plan, then starts a detached
    /// `relay __supervise REQUEST`, which reads the plan back from that record instead of
    /// from a re-built command line, so every value arrives exactly as the user gave it.
    pub fn start_background(&self, request: &Path, json: bool) -> anyhow::Result<u8> {
        let parsed = read_request(request)?;
        let child = self.spawn_supervisor(request, &parsed, true)?;
        let reference = parsed.reference();
        let reply = reply_path(request);
        if json {
            crate::output::json(&StartedJson {
                exchange: &reference,
                state: "running",
                supervisor_pid: child.id(),
                request,
                reply: &reply,
                run_record: &run::record_path(request),
            })?;
        } else {
            println!(
                "relay call: id={reference} outcome=started peer={} pid={} reply={}",
                self.plan.peer,
                child.id(),
                reply.display()
            );
            eprintln!(
                "relay: running in the background; `relay wait {reference}` waits for the reply, `relay cancel {reference}` stops it"
            );
        }
        debug_assert_eq!(FileKind::of_path(request), Some(FileKind::Request));
        Ok(exit::OK)
    }

    /// Writes the run record with this call's plan, then starts `relay __supervise REQUEST`,
    /// which runs it. `detach`: in a process group of its own, so the caller's Ctrl-C or exit
    /// does not take it down (`--bg`); else it shares the caller's (fan-out, where Ctrl-C
    /// stops every peer) and the caller guards its peer's deadline: it reads the supervisor's
    /// orders from the returned child's stdout ([`supervise::read_orders`]).
    pub fn spawn_supervisor(
        &self,
        request: &Path,
        parsed: &relay_core::Request,
        detach: bool,
    ) -> anyhow::Result<std::process::Child> {
        // The supervisor reads its plan here, and `relay wait` / `status` find the call; written
        // once it names the supervisor, before the gate opens.
        let mut record = self.new_record(request, parsed, None)?;
        // Where there is no gate, the plan must be on disk before the supervisor looks.
        #[cfg(not(unix))]
        record.save()?;
        let exe = std::env::current_exe().context("finding relay's own executable")?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--root")
            .arg(self.relay.root())
            .arg("__supervise")
            .arg(request);
        let log = relay_core::beside(request, relay_core::BESIDE_SUPERVISOR_LOG);
        let log_file = relay_core::untrusted::open_append(&log)
            .with_context(|| format!("creating {}", log.display()))?;
        // Its stdin is a gate: it starts work at the end of input, after the record names it.
        cmd.stdin(std::process::Stdio::piped())
            .stderr(log_file.try_clone()?);
        if detach {
            cmd.stdout(log_file);
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt as _;
                cmd.process_group(0);
            }
        } else {
            // A fan-out member: the relay waiting for it guards its peer's deadline, by the
            // orders it writes on stdout (one watchdog process fewer per peer).
            cmd.arg("--parent-guards")
                .stdout(std::process::Stdio::piped());
        }
        let mut child = cmd.spawn().context("starting the background supervisor")?;
        let gate = child.stdin.take();
        // The record names the supervisor from the start (`relay status` must not call it
        // lost); the supervisor waits at its gate until this is written, so this write never
        // lands over one of its own.
        record.supervisor_pid = child.id();
        record.supervisor_start = supervise::start_time(child.id());
        let saved = record.save();
        drop(gate);
        saved?;
        Ok(child)
    }
}
