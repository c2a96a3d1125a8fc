//! `relay show`: one exchange, parsed.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::{
    Error, FileKind, Message, Request, exit, read_request, reply_path, validate_file,
};
use time::format_description::well_known::Rfc3339;

use crate::input;
use crate::output::age;

/// Show one exchange: the request's fields and task, and the reply's status, verify and body.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay show 20261121-163000-auth-review
  relay show auth-review            # a name is enough when it is unique
  relay show auth-refactor/2        # turn 2 of a session
  relay show .relay/x.res.md --json")]
pub struct ShowArgs {
    /// An id, a unique name, session/turn, or the path of a .req.md or .res.md file.
    #[arg(value_name = "EXCHANGE")]
    pub exchange: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `relay show --json`.
#[derive(serde::Serialize)]
struct ShowJson<'a> {
    request: RequestJson<'a>,
    answered: bool,
    reply: Option<ReplyJson<'a>>,
    call: Option<crate::run::LiveRecord<'a>>,
}

#[derive(serde::Serialize)]
struct RequestJson<'a> {
    path: &'a std::path::Path,
    request: &'a Request,
}

#[derive(serde::Serialize)]
struct ReplyJson<'a> {
    path: &'a std::path::Path,
    valid: bool,
    diagnostics: &'a [relay_core::Diagnostic],
    response: Option<&'a relay_core::Response>,
}

pub fn run(root: Option<&PathBuf>, args: &ShowArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    let req_path = relay.locate(&args.exchange)?;
    let request = read_request(&req_path)?;
    let res_path = reply_path(&req_path);
    // The reply is validated in full (and against the request); a broken one is shown broken.
    let reply = match validate_file(&res_path) {
        Ok(report) => Some(report),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let now = input::now()?;
    // The call that ran it, if `relay call` did: its live state and why it ended.
    let record = crate::run::RunRecord::load(&req_path).ok();
    if args.json {
        crate::output::json(&ShowJson {
            request: RequestJson {
                path: &req_path,
                request: &request,
            },
            answered: reply.is_some(),
            reply: reply.as_ref().map(|r| ReplyJson {
                path: &res_path,
                valid: r.is_valid(),
                diagnostics: &r.diagnostics,
                response: match &r.message {
                    Some(Message::Response(res)) => Some(res),
                    _ => None,
                },
            }),
            call: record.as_ref().map(crate::run::LiveRecord::of),
        })?;
        return Ok(exit::OK);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    print_request(&mut out, &req_path, &request, now)?;
    if let Some(r) = &record {
        let why = r.reason.as_deref().or(r.activity.as_deref()).unwrap_or("");
        let why = crate::output::clean_line(why);
        writeln!(out, "call     {} · {} · {why}", r.live_state(), r.peer)?;
        for c in &r.checks {
            let how = match (c.exit_code, c.killed) {
                (_, true) => "killed".to_owned(),
                (Some(code), _) => format!("exit {code}"),
                (None, _) => "did not run".to_owned(),
            };
            writeln!(
                out,
                "checked  `{}` · {how} · {:.1}s (relay ran it)",
                crate::output::clean_line(&c.cmd),
                c.duration_ms as f64 / 1000.0
            )?;
        }
        match (&r.workspace, &r.workspace_note) {
            (Some(w), _) => {
                let mut line = format!(
                    "changes  {} file(s){}{}",
                    w.changed.len(),
                    if w.head_before == w.head_after {
                        ""
                    } else {
                        ", HEAD moved"
                    },
                    if w.index_changed {
                        ", index changed"
                    } else {
                        ""
                    }
                );
                if w.dirty_before {
                    line.push_str(" (the tree was dirty before; only the peer's changes count)");
                }
                writeln!(out, "{line}")?;
                for c in &w.changed {
                    let from = c
                        .from
                        .as_deref()
                        .map(|f| format!("{f} -> "))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "  {} {from}{}",
                        c.status,
                        crate::output::clean_line(&c.path)
                    )?;
                }
                if let Some(p) = &w.patch {
                    writeln!(out, "  patch: {}", p.display())?;
                }
            }
            (None, Some(note)) => writeln!(
                out,
                "changes  unavailable: {}",
                crate::output::clean_line(note)
            )?,
            (None, None) => {}
        }
    }
    match &reply {
        None => {
            let state = match &record {
                Some(r) if r.live_state() == "running" => "not yet",
                Some(_) => "none",
                None => "pending",
            };
            writeln!(out, "reply    {state}: {}", res_path.display())?;
        }
        Some(r) => {
            writeln!(out, "reply    {}", res_path.display())?;
            if let Some(Message::Response(res)) = &r.message {
                match &res.salvaged {
                    Some(how) => writeln!(
                        out,
                        "status   {} (salvaged: {how}; relay wrote it from what the peer printed)",
                        res.status.as_str()
                    )?,
                    None => writeln!(out, "status   {}", res.status.as_str())?,
                }
                writeln!(out, "verify   {}", res.verify.as_str())?;
                if let Some(t) = res.created {
                    writeln!(
                        out,
                        "answered {} ({} ago)",
                        t.format(&Rfc3339)?,
                        age(now, Some(t))
                    )?;
                }
            }
            for d in &r.diagnostics {
                writeln!(out, "problem  {d}")?;
            }
        }
    }
    writeln!(out, "\n--- request ---")?;
    write!(
        out,
        "{}",
        ensure_newline(&crate::output::clean_text(&request.body))
    )?;
    if let Some(Some(Message::Response(res))) = reply.as_ref().map(|r| &r.message) {
        writeln!(out, "--- reply ---")?;
        write!(
            out,
            "{}",
            ensure_newline(&crate::output::clean_text(&res.body))
        )?;
    }
    out.flush()?;
    debug_assert_eq!(FileKind::of_path(&req_path), Some(FileKind::Request));
    Ok(exit::OK)
}

fn print_request(
    out: &mut impl std::io::Write,
    path: &std::path::Path,
    r: &Request,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    writeln!(out, "exchange {}", r.reference())?;
    writeln!(out, "request  {}", path.display())?;
    writeln!(out, "from     {}", r.from)?;
    writeln!(out, "to       {}", r.to)?;
    writeln!(out, "kind     {}", r.kind.as_deref().unwrap_or("task"))?;
    if let Some(t) = r.created {
        writeln!(
            out,
            "created  {} ({} ago)",
            t.format(&Rfc3339)?,
            age(now, Some(t))
        )?;
    }
    Ok(())
}

fn ensure_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n")
    }
}
