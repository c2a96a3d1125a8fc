//! The result of a call as the caller sees it: one header line and the reply body on stdout;
//! why it failed and where the logs are on stderr; or everything as JSON. Shared by `relay
//! call` and `relay wait`.

use std::io::Write as _;

use relay_core::Message;

use crate::run::{Outcome, RunRecord};

/// The reply body, when the reply file is a valid reply.
pub fn reply_body(reply: &std::path::Path) -> Option<String> {
    // Untrusted like every file under .relay/: a FIFO or link at the reply path is not read.
    let text = relay_core::read_text(reply, relay_core::FileKind::Response).ok()?;
    match relay_core::parse(reply, &text).message {
        Some(Message::Response(r)) => Some(r.body),
        _ => None,
    }
}

/// `relay call --json` / `relay wait --json`: the run record and the reply's body.
#[derive(serde::Serialize)]
struct CallJson<'a> {
    #[serde(flatten)]
    record: &'a RunRecord,
    body: Option<String>,
}

pub fn header(r: &RunRecord) -> String {
    let dash = |o: Option<&str>| o.unwrap_or("-").to_owned();
    format!(
        "relay call: id={} outcome={} status={} verify={}{} peer={} time={:.1}s reply={}{}",
        r.exchange,
        r.outcome.map_or("running", Outcome::as_str),
        dash(r.status.map(relay_core::Status::as_str)),
        dash(r.verify.map(relay_core::Verify::as_str)),
        r.checked
            .map(|c| format!(" checked={}", c.as_str()))
            .unwrap_or_default(),
        r.peer,
        r.elapsed_ms as f64 / 1000.0,
        r.reply.display(),
        if r.salvaged {
            " salvaged=final-message"
        } else {
            ""
        },
    )
}

/// Prints the result. A reader that closed the pipe (`| head -1`) is not an error here: the
/// call's exit code must still reach the caller.
pub fn print(r: &RunRecord, json: bool) -> anyhow::Result<()> {
    match print_inner(r, json) {
        Err(e) if crate::error::is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn print_inner(r: &RunRecord, json: bool) -> anyhow::Result<()> {
    let body = reply_body(&r.reply);
    if json {
        return crate::output::json(&CallJson { record: r, body });
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", header(r))?;
    if let Some(body) = &body {
        let body = crate::output::clean_text(body);
        writeln!(out)?;
        write!(out, "{body}")?;
        if !body.ends_with('\n') {
            writeln!(out)?;
        }
    }
    out.flush()?;
    // A reply speaks for itself; anything else (and relay contradicting it) needs the reason.
    let ok = r
        .outcome
        .is_some_and(|o| o.replied() && o != Outcome::VerifyMismatch);
    if !ok {
        let mut err = std::io::stderr().lock();
        if let Some(reason) = &r.reason {
            writeln!(err, "relay: {}", crate::output::clean_line(reason))?;
        }
        for d in &r.diagnostics {
            writeln!(err, "relay: {d}")?;
        }
        // Said once: the reason already quotes the peer's error when it has one.
        if let Some(e) = r
            .peer_error
            .as_deref()
            .filter(|e| !r.reason.as_deref().unwrap_or("").contains(e))
        {
            writeln!(
                err,
                "relay: {} said: {}",
                r.peer,
                crate::output::clean_line(e)
            )?;
        }
        if r.outcome == Some(Outcome::OutOfScope) {
            writeln!(
                err,
                "hint: review the changes with `git status` and `git diff`; relay undoes nothing (they are listed in {})",
                crate::run::record_path(&r.request).display()
            )?;
        } else {
            writeln!(
                err,
                "hint: the peer's output is in {} and {}",
                r.stdout_log.display(),
                r.stderr_log.display()
            )?;
        }
    }
    Ok(())
}
