//! Fan-out: the same task to several peers, concurrently and independently. Each peer gets
//! its own request file (no peer sees another's answer) and its own supervisor process
//! (`relay __supervise`), so a peer hanging or failing never stalls the others, and `relay
//! wait`, `status` and `cancel` work per peer. relay itself only waits for its supervisors:
//! its memory does not grow with the number of peers beyond one record each. relay is also
//! each peer's watchdog: should a supervisor die, the thread that waited for it ends its peer's
//! group at the deadline (a `--bg` call has a watchdog process for that).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context as _;
use relay_core::{NewRequest, RelayDir, Target};
use serde::Serialize;

use crate::engine::{Call, CallPlan};
use crate::run::{Outcome, RunRecord};

/// One peer of a fan-out: its plan and its request (the path, and the request as written).
pub struct Member {
    pub plan: CallPlan,
    pub request: PathBuf,
    parsed: relay_core::Request,
}

/// The peers named by `--to a,b,c` (or `--with`): split, trimmed, at least one.
pub fn peer_list(list: &[String]) -> anyhow::Result<Vec<String>> {
    let peers: Vec<String> = list
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if peers.is_empty() {
        return Err(crate::error::usage(
            "no peer named",
            "name one or more: --to codex,claude,gemini",
        ));
    }
    Ok(peers)
}

/// Writes the request of one member: `<name>-<peer>` (one-shot), from the fan-out's `new`.
fn write_request(
    relay: &RelayDir,
    name: &str,
    mut plan: CallPlan,
    new: &NewRequest,
    now: time::OffsetDateTime,
) -> anyhow::Result<Member> {
    plan.fan = Some(name.to_owned());
    let mut req = new.clone();
    req.from = plan.from.clone();
    req.to = plan.peer.clone();
    req.target = Target::Name(format!("{name}-{}", plan.peer));
    let created = crate::record::create_request(relay, &req, now)?;
    Ok(Member {
        plan,
        request: created.path,
        parsed: created.request,
    })
}

/// Runs one member under its own supervisor, to its end.
fn run_member(relay: &RelayDir, m: &Member) -> anyhow::Result<()> {
    let call = Call {
        relay,
        plan: &m.plan,
        quiet: true,
    };
    let mut child = call
        .spawn_supervisor(&m.request, &m.parsed, false)
        .with_context(|| format!("starting the call to {}", m.plan.peer))?;
    // Its orders, to the end of the pipe: the supervisor's exit. Orders still standing then
    // mean it ended before its peer's tree did (killed): the deadline still holds.
    let orders = child.stdout.take().and_then(crate::supervise::read_orders);
    child.wait().context("waiting for a supervisor")?;
    if let Some(orders) = orders {
        orders.enforce();
    }
    Ok(())
}

/// Writes each peer's request (one per plan, the same `new` request) and runs it, at most
/// `max_parallel` at a time, each under its own supervisor; returns the members and their
/// finished records, in plan order. A member starts as soon as its request is written, so its
/// supervisor's start overlaps the writing of the next. When a request cannot be written, no
/// more start; those started run to their end, then the error is returned. Ctrl-C reaches the
/// supervisors too (they share relay's process group), and each ends its call as interrupted.
pub fn run(
    relay: &RelayDir,
    name: &str,
    plans: Vec<CallPlan>,
    new: &NewRequest,
    max_parallel: usize,
    progress: bool,
) -> anyhow::Result<(Vec<Member>, Vec<RunRecord>)> {
    // Ctrl-C reaches the supervisors too; relay waits for them to end their calls (as
    // interrupted), then reports, instead of dying before them.
    let _stop = crate::supervise::StopFlags::install().context("installing signal handlers")?;
    let now = crate::input::now()?;
    let t0 = Instant::now();
    let max_parallel = max_parallel.max(1);
    let n = plans.len();
    let mut plans = plans.into_iter();
    let mut ended: Vec<Option<Member>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel::<(usize, Member, anyhow::Result<()>)>();
        let (mut next, mut running, mut done) = (0, 0, 0);
        let mut first_error = None;
        while done < n {
            while running < max_parallel && first_error.is_none() {
                let Some(plan) = plans.next() else { break };
                let member = match write_request(relay, name, plan, new, now) {
                    Ok(m) => m,
                    Err(e) => {
                        first_error = Some(e);
                        break;
                    }
                };
                // One thread per supervisor, to start it and wait for it: the starts (each an
                // exec of relay) overlap instead of queueing, and std has no wait-for-any-child.
                let (i, tx) = (next, tx.clone());
                scope.spawn(move || {
                    let result = run_member(relay, &member);
                    let _ = tx.send((i, member, result));
                });
                running += 1;
                next += 1;
            }
            if running == 0 {
                break;
            }
            let (i, member, result) = rx.recv().context("waiting for the supervisors")?;
            running -= 1;
            done += 1;
            match result {
                // The others already started run to their end; none more is started.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) if progress => {
                    let outcome = RunRecord::load(&member.request)
                        .ok()
                        .and_then(|r| r.outcome)
                        .map_or("ended", Outcome::as_str);
                    eprintln!(
                        "relay: {} finished: {outcome} ({done}/{n} done, {}s)",
                        member.plan.peer,
                        t0.elapsed().as_secs()
                    );
                }
                Ok(()) => {}
            }
            ended[i] = Some(member);
        }
        first_error.map_or(Ok(()), Err)
    })?;
    let members: Vec<Member> = ended
        .into_iter()
        .map(|m| m.expect("every member started has ended"))
        .collect();
    let records = members
        .iter()
        .map(|m| {
            RunRecord::load(&m.request)
                .with_context(|| format!("reading the run record of the call to {}", m.plan.peer))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((members, records))
}

/// Where a fan-out's summary goes: `<stamp>-<name>.<ext>` beside its exchanges.
pub fn summary_path(first_request: &Path, peer: &str, ext: &str) -> PathBuf {
    let stem = relay_core::stem_of(
        first_request
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("fan"),
    );
    let base = stem.strip_suffix(&format!("-{peer}")).unwrap_or(stem);
    first_request.with_file_name(format!("{base}.{ext}"))
}

/// Saves a report (a fan-out's or a review's) as JSON without overwriting, with where it went
/// in its `saved` field, in the file too; when it cannot be saved, a warning and no `saved`.
pub fn save_report<T: Serialize>(
    report: &mut T,
    saved: fn(&mut T) -> &mut Option<PathBuf>,
    path: &Path,
) {
    let mut attempt = || -> anyhow::Result<()> {
        *saved(report) = Some(path.to_path_buf());
        let at = save_summary(path, &(serde_json::to_string_pretty(&*report)? + "\n"))?;
        if at != path {
            // Saved under another name: say where, in the file too.
            *saved(report) = Some(at.clone());
            relay_core::write_replace(
                &at,
                (serde_json::to_string_pretty(&*report)? + "\n").as_bytes(),
            )?;
        }
        Ok(())
    };
    if let Err(e) = attempt() {
        *saved(report) = None;
        eprintln!(
            "relay: warning: could not save the summary: {}",
            crate::error::render(&e)
        );
    }
}

/// Writes `text` at `path` without overwriting: `X.fan.json`, else `X-2.fan.json`, ...
fn save_summary(path: &Path, text: &str) -> anyhow::Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("fan");
    let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
    for n in 1..1000 {
        let candidate = if n == 1 {
            path.to_path_buf()
        } else {
            path.with_file_name(format!("{stem}-{n}.{ext}"))
        };
        match relay_core::write_new(&candidate, text.as_bytes()) {
            Ok(()) => return Ok(candidate),
            Err(relay_core::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("{}: too many summaries of this name", path.display())
}

/// One peer's line in a plain fan-out's summary.
#[derive(Debug, Serialize)]
pub struct PeerResult {
    pub peer: String,
    pub exchange: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<relay_core::Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<relay_core::Verify>,
    pub elapsed_ms: u64,
    pub usage: crate::peer::Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub reply: PathBuf,
    /// The reply's body (absent without a valid reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl PeerResult {
    pub fn of(r: &RunRecord) -> PeerResult {
        let outcome = r.outcome.unwrap_or(Outcome::NoReply);
        let body = (outcome.replied() || outcome == Outcome::Salvaged)
            .then(|| crate::result::reply_body(&r.reply))
            .flatten();
        PeerResult {
            peer: r.peer.clone(),
            exchange: r.exchange.clone(),
            outcome,
            exit_code: r.exit_code.unwrap_or(relay_core::exit::FAILURE),
            status: r.status,
            verify: r.verify,
            elapsed_ms: r.elapsed_ms,
            usage: r.usage.clone(),
            reason: r.reason.clone(),
            reply: r.reply.clone(),
            body,
        }
    }

    /// Did this peer pass (a valid reply: done, verify pass or skip)?
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// A plain fan-out's result and its exit code under `--quorum`.
#[derive(Debug, Serialize)]
pub struct FanReport {
    pub name: String,
    /// `pass`, `fail` or `undecided`.
    pub verdict: &'static str,
    pub exit_code: u8,
    pub reason: String,
    pub quorum: usize,
    pub peers: Vec<PeerResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<PathBuf>,
}

impl FanReport {
    /// Passes when at least `quorum` (default: all) peers passed; fails when no longer
    /// possible; else the exit code of the first peer whose call did not finish with a reply.
    pub fn decide(name: &str, peers: Vec<PeerResult>, quorum: Option<usize>) -> FanReport {
        let n = peers.len();
        let k = quorum.unwrap_or(n).clamp(1, n.max(1));
        let passes = peers.iter().filter(|p| p.passed()).count();
        // A reply that says error or verify fail is an answer: it cannot turn into a pass.
        let answered = |p: &&PeerResult| p.outcome.replied() && p.outcome != Outcome::Ok;
        let failed = peers.iter().filter(answered).count();
        let (verdict, exit_code, reason) = if passes >= k {
            (
                "pass",
                relay_core::exit::OK,
                format!("{passes} of {n} passed (quorum {k})"),
            )
        } else if n - failed < k {
            (
                "fail",
                relay_core::exit::REJECTED,
                format!(
                    "{passes} of {n} passed, {failed} answered with a failure; the quorum is {k}"
                ),
            )
        } else {
            let first = peers
                .iter()
                .find(|p| !p.passed() && !answered(p))
                .expect("some peer neither passed nor failed");
            (
                "undecided",
                first.exit_code,
                format!(
                    "{passes} of {n} passed (quorum {k}); {} ended {}",
                    first.peer,
                    first.outcome.as_str()
                ),
            )
        };
        FanReport {
            name: name.to_owned(),
            verdict,
            exit_code,
            reason,
            quorum: k,
            peers,
            saved: None,
        }
    }
}
