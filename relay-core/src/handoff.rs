//! Handoffs: a request of kind `handoff` moves the ownership of a piece of work to its peer,
//! with a reason, a concrete ask, the refs that matter, acceptance criteria and the files in
//! scope and off limits (spec §15).
//!
//! The packet lives in the request body as markdown sections with fixed titles, so any agent
//! (or person) reads it without relay, and relay reads it back exactly:
//!
//! ```text
//! ## Ask
//! Finish the token refresh and its tests.
//!
//! ## Reason
//! I am out of context; codex knows this crate.
//!
//! ## Context
//! - src/auth/refresh.rs
//!
//! ## Acceptance criteria
//! - cargo test -p auth passes
//!
//! ## In scope
//! - src/auth/**
//!
//! ## Off limits
//! - migrations/**
//! ```
//!
//! Whether the sender expects the work back is the request's `back` field (`yes`, the
//! default, or `no`).

/// The sections of a handoff, in the order relay writes them, with their titles.
pub const SECTIONS: [(&str, Section); 6] = [
    ("Ask", Section::Ask),
    ("Reason", Section::Reason),
    ("Context", Section::Context),
    ("Acceptance criteria", Section::Acceptance),
    ("In scope", Section::Scope),
    ("Off limits", Section::OffLimits),
];

/// A handoff section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Section {
    Ask,
    Reason,
    Context,
    Acceptance,
    Scope,
    OffLimits,
}

/// The packet of a handoff.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Handoff {
    /// What the receiver must do (required).
    pub ask: String,
    /// Why the work moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Files, exchanges and commits that matter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// What "done" means, one criterion each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acceptance: Vec<String>,
    /// Globs of the files the receiver may change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// Globs of the files the receiver must not change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub off_limits: Vec<String>,
}

/// A problem in a handoff body: the 1-based line within the body, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// 1-based line in the body (the section title, or the first line when a section is missing).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Handoff {
    /// The request body: one sentence for a reader without relay, then the sections.
    pub fn render(&self, from: &str, to: &str, back: bool) -> String {
        let mut out = format!("Handoff from {from} to {to}: you own this work now. ");
        out.push_str(if back {
            "When it is done (or you are blocked), reply to this request and the work goes back to "
        } else {
            "It stays with you: reply to this request to say you took it over; it does not go back to "
        });
        out.push_str(from);
        out.push_str(".\n");
        let list = |items: &[String]| -> Option<String> {
            (!items.is_empty()).then(|| {
                items
                    .iter()
                    .map(|i| format!("- {}\n", i.trim()))
                    .collect::<String>()
            })
        };
        for (title, section) in SECTIONS {
            let text = match section {
                Section::Ask => Some(format!("{}\n", self.ask.trim())),
                Section::Reason => self.reason.as_ref().map(|r| format!("{}\n", r.trim())),
                Section::Context => list(&self.refs),
                Section::Acceptance => list(&self.acceptance),
                Section::Scope => list(&self.scope),
                Section::OffLimits => list(&self.off_limits),
            };
            if let Some(text) = text {
                out.push_str(&format!("\n## {title}\n{text}"));
            }
        }
        out
    }

    /// Reads a handoff back from a request body. A missing or empty `## Ask` is an error; a
    /// section given twice is an error (which one would count?); other `##` sections are the
    /// sender's own and kept out of the packet.
    pub fn parse(body: &str) -> Result<Handoff, BodyError> {
        let mut out = Handoff::default();
        let mut seen: Vec<(Section, usize)> = Vec::new();
        let mut current: Option<Section> = None;
        let mut text: Vec<&str> = Vec::new();
        let flush = |section: Option<Section>, text: &mut Vec<&str>, out: &mut Handoff| {
            let joined = text.join("\n").trim().to_owned();
            text.clear();
            let items = || -> Vec<String> {
                joined
                    .lines()
                    .map(|l| {
                        let l = l.trim();
                        l.strip_prefix("- ")
                            .or_else(|| l.strip_prefix("* "))
                            .unwrap_or(l)
                            .trim()
                            .to_owned()
                    })
                    .filter(|l| !l.is_empty())
                    .collect()
            };
            match section {
                Some(Section::Ask) => out.ask = joined.clone(),
                Some(Section::Reason) => {
                    out.reason = Some(joined.clone()).filter(|r| !r.is_empty());
                }
                Some(Section::Context) => out.refs = items(),
                Some(Section::Acceptance) => out.acceptance = items(),
                Some(Section::Scope) => out.scope = items(),
                Some(Section::OffLimits) => out.off_limits = items(),
                None => {}
            }
        };
        let mut in_code = false;
        for (i, line) in body.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            let heading = (!in_code)
                .then(|| line.strip_prefix("## "))
                .flatten()
                .map(str::trim);
            if let Some(title) = heading {
                flush(current, &mut text, &mut out);
                current = SECTIONS
                    .iter()
                    .find(|(t, _)| t.eq_ignore_ascii_case(title))
                    .map(|&(_, s)| s);
                if let Some(s) = current {
                    if seen.iter().any(|&(d, _)| d == s) {
                        return Err(BodyError {
                            line: i + 1,
                            message: format!("the section `## {title}` appears twice"),
                        });
                    }
                    seen.push((s, i + 1));
                }
                continue;
            }
            if current.is_some() {
                text.push(line);
            }
        }
        flush(current, &mut text, &mut out);
        match seen.iter().find(|&&(s, _)| s == Section::Ask) {
            None => Err(BodyError {
                line: 1,
                message: "a handoff needs a `## Ask` section saying what the receiver must do"
                    .into(),
            }),
            Some(&(_, line)) if out.ask.is_empty() => Err(BodyError {
                line,
                message: "the `## Ask` section is empty: say what the receiver must do".into(),
            }),
            Some(_) => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_is_the_same_packet() {
        let h = Handoff {
            ask: "Finish the refresh.\nThen the tests.".into(),
            reason: Some("Out of context.".into()),
            refs: vec!["src/auth.rs".into(), "auth/003".into()],
            acceptance: vec!["cargo test passes".into()],
            scope: vec!["src/auth/**".into()],
            off_limits: vec!["migrations/**".into()],
        };
        let body = h.render("claude", "codex", true);
        assert!(body.starts_with("Handoff from claude to codex: you own this work now."));
        assert_eq!(Handoff::parse(&body).unwrap(), h);
    }

    #[test]
    fn ask_is_required_and_sections_are_unique() {
        assert_eq!(Handoff::parse("just text\n").unwrap_err().line, 1);
        let empty = Handoff::parse("intro\n\n## Ask\n\n## Reason\nx\n").unwrap_err();
        assert_eq!(empty.line, 3);
        let twice = Handoff::parse("## Ask\na\n## ask\nb\n").unwrap_err();
        assert_eq!((twice.line, twice.message.contains("twice")), (3, true));
        // A heading inside a code block is text; unknown sections are the sender's own.
        let h = Handoff::parse("## Ask\ndo it\n```\n## Reason\n```\n## Notes\nmine\n").unwrap();
        assert_eq!(h.ask, "do it\n```\n## Reason\n```");
        assert_eq!(h.reason, None);
    }
}
