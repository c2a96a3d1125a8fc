//! Reply formats of the structured request kinds: `findings` (a review: findings as data) and
//! `deliberation` (fixed sections). A request names the format in `format:` (relay's review
//! writes `kind: review` + `format: findings`); its footer shows the peer the format
//! ([`footer_format`]), and [`check_reply`] says exactly what is wrong with a reply that does
//! not conform, by file line and field path. A request without `format:` (every v4-v6 file
//! before it) keeps a free-markdown reply.
//!
//! The findings object is a superset of Codex's own review output (`findings[]` with `title`,
//! `body`, `confidence_score`, `priority`, `code_location`; `overall_correctness`,
//! `overall_explanation`, `overall_confidence_score`), so every review Codex emits, or that
//! `codex exec --output-schema spec/review.schema.json` forces, is one; relay adds the optional
//! `recommendation` per finding and `next_steps`. Unknown fields are ignored (spec §2.4).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Diagnostic;

/// The reply format of a review: findings as data.
pub const FORMAT_FINDINGS: &str = "findings";
/// The reply format of a deliberation: fixed sections.
pub const FORMAT_DELIBERATION: &str = "deliberation";
/// Every reply format relay knows (a request's `format:`).
pub const FORMATS: [&str; 2] = [FORMAT_FINDINGS, FORMAT_DELIBERATION];

/// The longest finding title (Codex's limit).
pub const MAX_TITLE_CHARS: usize = 80;

/// A review: the findings and the overall verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// What is wrong; may be empty.
    pub findings: Vec<Finding>,
    /// The verdict.
    pub overall_correctness: Correctness,
    /// Why, in a few sentences.
    pub overall_explanation: String,
    /// How sure the reviewer is of the verdict, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_confidence_score: Option<Score>,
    /// What to do next (relay's addition; optional, `null` allowed).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub next_steps: Vec<String>,
}

/// `null` reads as an empty list (strict JSON schemas make optional fields nullable).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The overall verdict, in Codex's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Correctness {
    /// Nothing blocks the change.
    #[serde(rename = "patch is correct")]
    Correct,
    /// The change must not land as it is.
    #[serde(rename = "patch is incorrect")]
    Incorrect,
}

impl Correctness {
    /// `pass` or `fail`: the verdict as relay's commands print it.
    pub fn verdict(self) -> &'static str {
        match self {
            Correctness::Correct => "pass",
            Correctness::Incorrect => "fail",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// One line, at most [`MAX_TITLE_CHARS`] characters.
    pub title: Title,
    /// Why it is a problem.
    pub body: String,
    /// How sure the reviewer is, 0 to 1.
    pub confidence_score: Score,
    /// 0 (must fix, blocks the change) to 3 (nit).
    pub priority: Priority,
    /// Where.
    pub code_location: CodeLocation,
    /// The fix (relay's addition; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

impl Finding {
    /// The finding's level (Codex priority 0-1: error, 2: warning, 3: note).
    pub fn level(&self) -> Level {
        match self.priority.0 {
            0 | 1 => Level::Error,
            2 => Level::Warning,
            _ => Level::Note,
        }
    }
}

/// A file and a line range in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeLocation {
    /// Relative to the project root, `/`-separated.
    pub file_path: RelPath,
    /// 1-based, inclusive.
    pub line_range: LineRange,
}

/// Lines `start..=end`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRange")]
pub struct LineRange {
    /// First line.
    pub start: u32,
    /// Last line (inclusive).
    pub end: u32,
}

#[derive(Deserialize)]
struct RawRange {
    start: u32,
    end: u32,
}

impl TryFrom<RawRange> for LineRange {
    type Error = String;
    fn try_from(r: RawRange) -> Result<Self, String> {
        if r.start == 0 {
            return Err("line_range.start must be 1 or more (lines count from 1)".into());
        }
        if r.end < r.start {
            return Err(format!(
                "line_range.end ({}) is before line_range.start ({})",
                r.end, r.start
            ));
        }
        Ok(LineRange {
            start: r.start,
            end: r.end,
        })
    }
}

/// A finding's level, in SARIF's words (also GitHub's annotation kinds, ordered by weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Minor: a nit.
    Note,
    /// Should fix.
    Warning,
    /// Must fix.
    Error,
}

impl Level {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// A finding title: one line, not empty, at most [`MAX_TITLE_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Title(pub String);

impl TryFrom<String> for Title {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let n = s.chars().count();
        if s.trim().is_empty() {
            Err("the title is empty".into())
        } else if s.contains(['\n', '\r']) {
            Err("the title must be one line".into())
        } else if n > MAX_TITLE_CHARS {
            Err(format!(
                "the title has {n} characters; at most {MAX_TITLE_CHARS}"
            ))
        } else {
            Ok(Title(s))
        }
    }
}

impl From<Title> for String {
    fn from(t: Title) -> String {
        t.0
    }
}

/// A confidence, 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Score(pub f64);

impl TryFrom<f64> for Score {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Score(v))
        } else {
            Err(format!("{v} is not a confidence between 0 and 1"))
        }
    }
}

impl From<Score> for f64 {
    fn from(s: Score) -> f64 {
        s.0
    }
}

/// A priority, 0 (must fix) to 3 (nit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u8")]
pub struct Priority(pub u8);

impl TryFrom<u64> for Priority {
    type Error = String;
    fn try_from(v: u64) -> Result<Self, String> {
        match u8::try_from(v) {
            Ok(p @ 0..=3) => Ok(Priority(p)),
            _ => Err(format!("priority {v} is not 0 (must fix), 1, 2 or 3 (nit)")),
        }
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.0
    }
}

/// A path relative to the project root: not empty, not absolute, no `..`, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(pub String);

impl TryFrom<String> for RelPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let p = s.strip_prefix("./").unwrap_or(&s);
        if p.is_empty() {
            return Err("file_path is empty".into());
        }
        if p.starts_with('/') || p.contains('\\') || p.as_bytes().get(1) == Some(&b':') {
            return Err(format!(
                "file_path {s:?} must be relative to the project root, with `/` separators"
            ));
        }
        if p.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!(
                "file_path {s:?} must be a plain path inside the project (no `..`, no empty part)"
            ));
        }
        if p.contains(|c: char| c.is_control()) {
            return Err(format!("file_path {s:?} holds a control character"));
        }
        Ok(RelPath(p.to_owned()))
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

/// The sections a `deliberate` reply answers in, in order: the heading text after `## `.
pub const DELIBERATION_SECTIONS: [&str; 5] = [
    "Independent view",
    "Where I agree",
    "Where I disagree",
    "Evidence and uncertainty",
    "Proposed decision",
];

/// A deliberation reply: the text under each of [`DELIBERATION_SECTIONS`], in that order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deliberation {
    /// `(heading, text)`, one per section.
    pub sections: Vec<(String, String)>,
}

/// What the footer of a request with `format:` adds after its Format block, if anything.
pub fn footer_format(format: Option<&str>) -> Option<String> {
    match format? {
        FORMAT_FINDINGS => Some(format!(
            "Review format: the body holds exactly one ```json block with this object (Codex's review output; file paths relative to the project root, lines as the files are now):\n  {{\"findings\": [{{\"title\": \"at most {MAX_TITLE_CHARS} characters\", \"body\": \"why it is a problem\", \"priority\": 0, \"confidence_score\": 0.9,\n    \"code_location\": {{\"file_path\": \"src/x.rs\", \"line_range\": {{\"start\": 10, \"end\": 12}}}}, \"recommendation\": \"the fix (optional)\"}}],\n   \"overall_correctness\": \"patch is correct\" | \"patch is incorrect\", \"overall_explanation\": \"why\", \"overall_confidence_score\": 0.8}}\n  priority: 0 must fix, 1 should fix before merging, 2 worth fixing, 3 nit. No findings: \"findings\": []."
        )),
        FORMAT_DELIBERATION => {
            let mut s = String::from(
                "Deliberation format: answer in these sections, each a `## ` heading in this order, none empty:",
            );
            for h in DELIBERATION_SECTIONS {
                s.push_str("\n  ## ");
                s.push_str(h);
            }
            Some(s)
        }
        _ => None,
    }
}

/// What a reply of a structured kind holds, once checked.
#[derive(Clone, Debug, PartialEq)]
pub enum KindReply {
    /// `format: findings`.
    Review(Review),
    /// `format: deliberation`.
    Deliberation(Deliberation),
}

/// Checks the body of a reply (the whole file `text`, so lines are file lines) against the
/// format its request's `format:` asks for. `Ok(None)`: free markdown.
pub fn check_reply(
    format: Option<&str>,
    path: &Path,
    text: &str,
) -> Result<Option<KindReply>, Vec<Diagnostic>> {
    let first = body_first_line(text);
    match format {
        Some(FORMAT_FINDINGS) => parse_review(path, text, first)
            .map(|r| Some(KindReply::Review(r)))
            .map_err(|d| vec![d]),
        Some(FORMAT_DELIBERATION) => {
            parse_deliberation(path, text, first).map(|d| Some(KindReply::Deliberation(d)))
        }
        _ => Ok(None),
    }
}

/// The 1-based line where the body starts (after the frontmatter), or 1.
fn body_first_line(text: &str) -> usize {
    crate::frontmatter::split(text).map_or(1, |s| s.close_line + 1)
}

/// A fenced block: where its content starts, and the content.
struct Block<'a> {
    open_line: usize,
    info: &'a str,
    content: String,
}

/// Fenced code blocks (```` ``` ```` or `~~~`, three or more) from line `first` on.
fn fenced_blocks(text: &str, first: usize) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, &str, &str)> = None; // (line, fence, info)
    let mut content = String::new();
    for (i, line) in text.lines().enumerate().skip(first.saturating_sub(1)) {
        let t = line.trim_end();
        match open {
            None => {
                let fence_len = t.len() - t.trim_start_matches(['`', '~']).len();
                let fence = &t[..fence_len];
                let same = fence.chars().all(|c| fence.starts_with(c));
                if fence_len >= 3 && same && !line.starts_with(' ') {
                    open = Some((i + 1, fence, t[fence_len..].trim()));
                    content.clear();
                }
            }
            Some((line_no, fence, info)) => {
                if t.starts_with(fence) && t.trim_start_matches(['`', '~']).is_empty() {
                    blocks.push(Block {
                        open_line: line_no,
                        info,
                        content: std::mem::take(&mut content),
                    });
                    open = None;
                } else {
                    content.push_str(line);
                    content.push('\n');
                }
            }
        }
    }
    blocks
}

fn parse_review(path: &Path, text: &str, first: usize) -> Result<Review, Diagnostic> {
    let blocks: Vec<Block<'_>> = fenced_blocks(text, first)
        .into_iter()
        .filter(|b| b.info.eq_ignore_ascii_case("json"))
        .collect();
    let block = match blocks.as_slice() {
        [one] => one,
        [] => {
            return Err(Diagnostic::error(
                path,
                first,
                "findings",
                "no ```json block in the body: a review reply holds its findings as one JSON object in a ```json fence",
            ));
        }
        [_, second, ..] => {
            return Err(Diagnostic::error(
                path,
                second.open_line,
                "findings",
                format!(
                    "{} ```json blocks in the body (lines {}); a review reply holds exactly one",
                    blocks.len(),
                    blocks
                        .iter()
                        .map(|b| b.open_line.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let de = &mut serde_json::Deserializer::from_str(&block.content);
    serde_path_to_error::deserialize::<_, Review>(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." || p == "?" => "findings".to_owned(),
            p => p,
        };
        let inner = e.into_inner();
        let line = block.open_line + inner.line().max(1);
        let message = strip_position(&inner.to_string());
        Diagnostic::error(path, line, &field, message)
    })
}

/// serde_json's message without its ` at line L column C` (relay gives the file line).
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_owned(),
        _ => msg.to_owned(),
    }
}

fn parse_deliberation(
    path: &Path,
    text: &str,
    first: usize,
) -> Result<Deliberation, Vec<Diagnostic>> {
    // (line, heading, text under it), for every `## ` heading of the body.
    let mut found: Vec<(usize, String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(first.saturating_sub(1)) {
        if let Some(h) = line.strip_prefix("## ") {
            found.push((
                i + 1,
                h.trim().trim_end_matches(':').to_owned(),
                String::new(),
            ));
        } else if let Some(last) = found.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    let mut diags = Vec::new();
    let mut sections = Vec::new();
    let mut after = 0; // index in `found` the next section must come after
    for want in DELIBERATION_SECTIONS {
        let hits: Vec<usize> = found
            .iter()
            .enumerate()
            .filter(|(_, f)| f.1.eq_ignore_ascii_case(want))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [] => diags.push(Diagnostic::error(
                path,
                first,
                "body",
                format!("the section `## {want}` is missing"),
            )),
            [i] => {
                let (line, _, body) = &found[*i];
                if *i < after {
                    diags.push(Diagnostic::error(
                        path,
                        *line,
                        "body",
                        format!("the section `## {want}` is out of order"),
                    ));
                } else if body.trim().is_empty() {
                    diags.push(Diagnostic::error(
                        path,
                        *line,
                        "body",
                        format!("the section `## {want}` is empty"),
                    ));
                }
                after = after.max(*i);
                sections.push((want.to_owned(), body.trim().to_owned()));
            }
            [_, second, ..] => diags.push(Diagnostic::error(
                path,
                found[*second].0,
                "body",
                format!("the section `## {want}` appears {} times", hits.len()),
            )),
        }
    }
    if diags.is_empty() {
        Ok(Deliberation { sections })
    } else {
        Err(diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "---\nrelay: 6\nre: x\nfrom: codex\nto: claude\nstatus: done\nverify: pass\n---\n\n";

    fn review(json: &str) -> Result<Option<KindReply>, Vec<Diagnostic>> {
        let text = format!("{HEAD}Summary.\n\n```json\n{json}\n```\n");
        check_reply(Some(FORMAT_FINDINGS), Path::new("x.res.md"), &text)
    }

    fn first_error(json: &str) -> String {
        review(json).unwrap_err()[0].to_string()
    }

    const OK: &str = r#"{"findings": [{"title": "Off by one", "body": "The loop skips the last item.",
 "confidence_score": 0.8, "priority": 1,
 "code_location": {"file_path": "src/a.rs", "line_range": {"start": 3, "end": 4}}}],
 "overall_correctness": "patch is incorrect", "overall_explanation": "One bug.",
 "overall_confidence_score": 0.7, "extra": {"ignored": true}}"#;

    #[test]
    fn a_codex_review_parses() {
        let Ok(Some(KindReply::Review(r))) = review(OK) else {
            panic!("{:?}", review(OK))
        };
        assert_eq!(r.overall_correctness, Correctness::Incorrect);
        assert_eq!(r.findings[0].level(), Level::Error);
        assert_eq!(r.findings[0].code_location.line_range.end, 4);
    }

    #[test]
    fn errors_name_the_file_line_and_field_path() {
        let bad = OK.replace("\"priority\": 1", "\"priority\": 7");
        assert_eq!(
            first_error(&bad),
            "x.res.md:14: findings[0].priority: priority 7 is not 0 (must fix), 1, 2 or 3 (nit)"
        );
        let bad = OK.replace("\"start\": 3, \"end\": 4", "\"start\": 5, \"end\": 4");
        assert!(
            first_error(&bad).contains(
                "findings[0].code_location.line_range: line_range.end (4) is before line_range.start (5)"
            ),
            "{}",
            first_error(&bad)
        );
        let bad = OK.replace("\"title\": \"Off by one\", ", "");
        assert!(
            first_error(&bad).contains("findings[0]: missing field `title`"),
            "{}",
            first_error(&bad)
        );
        let bad = OK.replace("src/a.rs", "../etc/passwd");
        assert!(
            first_error(&bad).contains("no `..`"),
            "{}",
            first_error(&bad)
        );
        let bad = OK.replace("patch is incorrect", "looks fine");
        assert!(
            first_error(&bad).contains("overall_correctness: unknown variant `looks fine`"),
            "{}",
            first_error(&bad)
        );
        let e = first_error("{not json");
        assert!(
            e.contains("x.res.md:13: findings: key must be a string"),
            "{e}"
        );
    }

    #[test]
    fn the_block_must_be_there_once() {
        let none = format!("{HEAD}No findings block.\n");
        let e = check_reply(Some(FORMAT_FINDINGS), Path::new("x.res.md"), &none).unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("x.res.md:9: findings: no ```json block")
        );
        let two = format!("{HEAD}```json\n{OK}\n```\n\n```json\n{OK}\n```\n");
        let e = check_reply(Some(FORMAT_FINDINGS), Path::new("x.res.md"), &two).unwrap_err();
        assert!(e[0].message.contains("2 ```json blocks"), "{e:?}");
    }

    /// What `codex exec --output-schema spec/review.schema.json` forces (every field present,
    /// optional ones null) is a review relay reads.
    #[test]
    fn the_strict_schema_shape_parses() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../spec/review.schema.json")).unwrap();
        let forced = r#"{"findings": [{"title": "t", "body": "b", "confidence_score": 0.5, "priority": 2,
            "code_location": {"file_path": "a.rs", "line_range": {"start": 1, "end": 2}}, "recommendation": null}],
            "overall_correctness": "patch is correct", "overall_explanation": "ok",
            "overall_confidence_score": null, "next_steps": null}"#;
        let Ok(Some(KindReply::Review(r))) = review(forced) else {
            panic!("{:?}", review(forced))
        };
        assert_eq!(r.findings[0].recommendation, None);
        // Every field relay requires is required by the schema too.
        let required = |v: &serde_json::Value| -> Vec<String> {
            v["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        for field in ["findings", "overall_correctness", "overall_explanation"] {
            assert!(required(&schema).contains(&field.to_owned()), "{field}");
        }
        let item = &schema["properties"]["findings"]["items"];
        for field in [
            "title",
            "body",
            "confidence_score",
            "priority",
            "code_location",
        ] {
            assert!(required(item).contains(&field.to_owned()), "{field}");
        }
        assert_eq!(item["properties"]["title"]["maxLength"], MAX_TITLE_CHARS);
    }

    #[test]
    fn a_long_title_is_refused() {
        let long = "x".repeat(81);
        let bad = OK.replace("Off by one", &long);
        assert!(first_error(&bad).contains("81 characters; at most 80"));
    }

    #[test]
    fn deliberation_sections_are_checked() {
        let mut body = String::new();
        for h in DELIBERATION_SECTIONS {
            body.push_str(&format!("## {h}\n\nText for {h}.\n\n"));
        }
        let text = format!("{HEAD}{body}");
        let ok = check_reply(Some(FORMAT_DELIBERATION), Path::new("x.res.md"), &text).unwrap();
        let Some(KindReply::Deliberation(d)) = ok else {
            panic!()
        };
        assert_eq!(d.sections[4].1, "Text for Proposed decision.");
        let missing = text.replace("## Where I disagree", "## Other");
        let e =
            check_reply(Some(FORMAT_DELIBERATION), Path::new("x.res.md"), &missing).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "x.res.md:9: body: the section `## Where I disagree` is missing"
        );
        let empty = text.replace("Text for Evidence and uncertainty.", "");
        let e = check_reply(Some(FORMAT_DELIBERATION), Path::new("x.res.md"), &empty).unwrap_err();
        assert!(e[0].message.contains("is empty"));
    }

    #[test]
    fn other_kinds_have_no_format() {
        assert_eq!(
            check_reply(Some("prose"), Path::new("x.res.md"), HEAD),
            Ok(None)
        );
        assert!(footer_format(Some("prose")).is_none());
        assert!(
            footer_format(Some(FORMAT_FINDINGS))
                .unwrap()
                .contains("```json")
        );
    }
}
