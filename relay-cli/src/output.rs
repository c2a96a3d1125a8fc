//! Printing: plain text for people and agents, `--json` for programs.

use std::io::Write;

use time::OffsetDateTime;

/// Writes `value` as pretty JSON and a newline to stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    // Buffered: stdout is line-buffered, and pretty JSON of 10,000 exchanges is 250,000 lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
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

/// A time as RFC 3339 (`2026-11-21T16:30:00Z`), or `?` when there is none.
pub fn time(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "?".into())
}

/// For `skip_serializing_if`: a count that is zero is left out of JSON.
pub fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Seconds from `then` to `now`, for JSON.
pub fn age_seconds(now: OffsetDateTime, then: Option<OffsetDateTime>) -> Option<i64> {
    then.map(|t| (now - t).whole_seconds().max(0))
}

/// Text that came from a peer, made safe for one terminal line: escape sequences and other
/// control characters removed (a peer must not move the cursor or forge relay's own lines),
/// line breaks turned into spaces.
pub fn clean_line(text: &str) -> String {
    strip_controls(text, false).trim().to_owned()
}

/// Text that came from a peer (or any file under `.relay/`), made safe for a terminal: escape
/// sequences and control characters removed; line breaks and tabs kept.
pub fn clean_text(text: &str) -> String {
    strip_controls(text, true)
}

fn strip_controls(text: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI `ESC [ ... final` and OSC `ESC ] ... BEL|ESC \\`; any other ESC x pair.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            '\n' | '\t' if keep_lines => out.push(c),
            '\n' | '\r' | '\t' if !keep_lines => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean_line;

    #[test]
    fn peer_text_cannot_drive_the_terminal() {
        assert_eq!(clean_line("\u{1b}[2K\u{1b}[1Aoutcome=ok"), "outcome=ok");
        assert_eq!(clean_line("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(clean_line("a\u{1b}]8;;http://x\u{1b}\\b"), "ab");
        assert_eq!(
            clean_line("Not logged in\r\n· Please run /login\u{0}"),
            "Not logged in  · Please run /login"
        );
        assert_eq!(super::clean_text("a\r\n\tb\u{1b}[Hc\n"), "a\n\tbc\n");
    }
}
