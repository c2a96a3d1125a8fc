//! `relay list`: the exchanges under .relay/, oldest first.

use std::io::Write as _;
use std::path::PathBuf;

use relay_core::{Exchange, ReplyState, exit, scan};

use crate::input;
use crate::output::{age, age_seconds};

/// List exchanges: id, kind, from->to, status, verify, age.
///
/// STATUS is the reply's status (`salvaged` when relay wrote the reply from what the peer
/// printed), `invalid` when the reply does not parse (see `relay validate`); with no reply, the
/// call's state from its run record (`running`, `timeout`, `interrupted`, `no-reply`, ..., `lost`
/// when the relay supervising it died), else `pending`. Reads only frontmatter and run records,
/// and keeps what it read in `.relay/.cache/list.tsv`: a file whose inode, size and times are
/// unchanged is not read again, so a listing stays fast with 100,000 exchanges.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay list
  relay list --session auth-refactor
  relay list --json | jq '.[] | select(.answered | not) | .request'")]
pub struct ListArgs {
    /// Only the turns of this session.
    #[arg(long, value_name = "SLUG")]
    pub session: Option<String>,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(root: Option<&PathBuf>, args: &ListArgs) -> anyhow::Result<u8> {
    let relay = input::relay_dir(root)?;
    input::check_session(args.session.as_deref())?;
    let exchanges = scan(&relay, args.session.as_deref(), relay_core::CacheWrite::Yes)?;
    let now = input::now()?;
    if args.json {
        // Streamed: 100,000 rows must not cost 100,000 rows in memory first.
        struct Rows<'a>(&'a [Exchange], time::OffsetDateTime);
        impl serde::Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|e| row_json(e, self.1)))
            }
        }
        crate::output::json(&Rows(&exchanges, now))?;
        return Ok(exit::OK);
    }
    if exchanges.is_empty() {
        // Nothing on stdout, so `relay list | wc -l` is 0; a word on stderr for people.
        eprintln!("relay: no exchanges under {}", relay.path().display());
        return Ok(exit::OK);
    }
    // Two passes over the exchanges (widths, then lines) instead of a table of strings: at
    // 100,000 rows, every allocation per cell shows.
    let header = Cells {
        reference: "EXCHANGE".into(),
        kind: "KIND",
        from: "FROM",
        to: "TO",
        status: "STATUS",
        verify: "VERIFY",
    };
    let mut widths = header.widths();
    for e in &exchanges {
        for (w, c) in widths.iter_mut().zip(cells(e).widths()) {
            *w = (*w).max(c);
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    header.write(&mut out, &widths, "AGE")?;
    for e in &exchanges {
        cells(e).write(&mut out, &widths, &age(now, e.created))?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// One table row but its age (the last column, never padded).
struct Cells<'a> {
    reference: String,
    kind: &'a str,
    from: &'a str,
    to: &'a str,
    status: &'a str,
    verify: &'a str,
}

fn cells(e: &Exchange) -> Cells<'_> {
    let (status, verify) = states(e);
    Cells {
        reference: e.reference(),
        kind: e.kind(),
        from: e.from.as_deref().unwrap_or("?"),
        to: e.to.as_deref().unwrap_or("?"),
        status,
        verify,
    }
}

impl Cells<'_> {
    fn widths(&self) -> [usize; 5] {
        [
            self.reference.len(),
            self.kind.len(),
            self.from.len() + 2 + self.to.len(),
            self.status.len(),
            self.verify.len(),
        ]
    }

    fn write(
        &self,
        out: &mut impl std::io::Write,
        w: &[usize; 5],
        age: &str,
    ) -> std::io::Result<()> {
        let route_pad = w[2] - (self.from.len() + 2 + self.to.len());
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {}->{}{:route_pad$}  {:<w3$}  {:<w4$}  {age}",
            self.reference,
            self.kind,
            self.from,
            self.to,
            "",
            self.status,
            self.verify,
            w0 = w[0],
            w1 = w[1],
            w3 = w[3],
            w4 = w[4],
        )
    }
}

fn states(e: &Exchange) -> (&str, &'static str) {
    match &e.reply_state {
        ReplyState::Pending => (call_state(e).unwrap_or("pending"), "-"),
        ReplyState::Invalid { .. } => ("invalid", "-"),
        ReplyState::Answered {
            salvaged: true,
            verify,
            ..
        } => ("salvaged", verify.as_str()),
        ReplyState::Answered { status, verify, .. } => (status.as_str(), verify.as_str()),
    }
}

/// The state of the call behind an exchange, from its run record (see `run::live_state`).
fn call_state(e: &Exchange) -> Option<&str> {
    e.run.as_deref().map(crate::run::summary_state)
}

/// One `--json` row (borrowed: 10,000 rows must not cost 10,000 JSON trees).
#[derive(serde::Serialize)]
struct Row<'a> {
    exchange: String,
    id: &'a str,
    session: Option<&'a str>,
    kind: &'a str,
    from: Option<&'a str>,
    to: Option<&'a str>,
    answered: bool,
    status: Option<&'static str>,
    verify: Option<&'static str>,
    salvaged: bool,
    /// The call behind it: running, lost, or its outcome (`None`: never run by `relay call`).
    call: Option<&'a str>,
    reply_state: &'a ReplyState,
    request_problem: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339::option")]
    created: Option<time::OffsetDateTime>,
    age_seconds: Option<i64>,
    request: Option<std::path::PathBuf>,
    reply: std::path::PathBuf,
}

fn row_json(e: &Exchange, now: time::OffsetDateTime) -> Row<'_> {
    let (status, verify, salvaged) = match &e.reply_state {
        ReplyState::Answered {
            status,
            verify,
            salvaged,
        } => (Some(status.as_str()), Some(verify.as_str()), *salvaged),
        _ => (None, None, false),
    };
    Row {
        exchange: e.reference(),
        id: e.id(),
        session: e.session.as_deref(),
        kind: e.kind(),
        from: e.from.as_deref(),
        to: e.to.as_deref(),
        answered: e.answered(),
        status,
        verify,
        salvaged,
        call: call_state(e),
        reply_state: &e.reply_state,
        request_problem: e.request_problem.as_deref(),
        created: e.created,
        age_seconds: age_seconds(now, e.created),
        request: e.request(),
        reply: e.reply(),
    }
}
