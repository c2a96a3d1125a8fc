//! Printing: plain text for people and agents, `--json` for programs.

use std::io::Write;

use time::OffsetDateTime;

/// Writes `value` as pretty JSON and a newline to stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `now - then` as a short age: `42s`, `5m`, `3h`, `2d`.
pub fn age(now: OffsetDateTime, then: Option<OffsetDateTime>) -> String {
    let Some(then) = then else { return "-".into() };
    let s = (now - then).whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Seconds from `then` to `now`, for JSON.
pub fn age_seconds(now: OffsetDateTime, then: Option<OffsetDateTime>) -> Option<i64> {
    then.map(|t| (now - t).whole_seconds().max(0))
}
