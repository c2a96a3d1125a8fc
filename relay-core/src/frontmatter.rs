//! The frontmatter splitter and the one place YAML is parsed or written.
//!
//! Splitting is strict and hand-written (see spec/PROTOCOL.md, "File layout"): line 1 is `---`
//! (a UTF-8 BOM before it is tolerated), the frontmatter ends at the first line that is exactly
//! `---`, and everything after that line is the body, byte for byte. Values are read with
//! yaml_serde into `String`s, so `id: 0012`, `to: no` and `re: 01` stay the strings they look
//! like; values are written by [`scalar`], which quotes anything YAML could read as another type.

use std::borrow::Cow;
use std::path::Path;

use crate::error::Diagnostic;

/// A file cut into its frontmatter and body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split<'a> {
    /// The YAML between the fences (without them).
    pub yaml: &'a str,
    /// Everything after the closing fence line.
    pub body: &'a str,
    /// 1-based line number of the closing fence.
    pub close_line: usize,
}

/// Why a file could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// Line 1 is not `---`.
    MissingOpen,
    /// No line after line 1 is exactly `---`.
    MissingClose,
}

/// Splits `src` into frontmatter and body (see the module docs for the rules).
pub(crate) fn split(src: &str) -> Result<Split<'_>, SplitError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let rest = src
        .strip_prefix("---\n")
        .or_else(|| src.strip_prefix("---\r\n"))
        .ok_or(SplitError::MissingOpen)?;
    let mut at = 0;
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        if strip_eol(line) == "---" {
            return Ok(Split {
                yaml: &rest[..at],
                body: &rest[at + line.len()..],
                close_line: i + 2,
            });
        }
        at += line.len();
    }
    Err(SplitError::MissingClose)
}

/// A line without its `\n` or `\r\n`.
pub(crate) fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// Every field relay knows, as the strings they are. Unknown fields are ignored (the
/// must-ignore rule), whatever their shape.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub(crate) struct RawFields {
    pub relay: Option<String>,
    pub id: Option<String>,
    pub re: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Option<String>,
    pub verify: Option<String>,
    pub session: Option<String>,
    pub created: Option<String>,
    pub kind: Option<String>,
    pub format: Option<String>,
    pub effort: Option<String>,
    pub salvaged: Option<String>,
    pub state: Option<String>,
    pub back: Option<String>,
}

/// The frontmatter of one file: its known fields and where each top-level key is.
#[derive(Debug, Default, Clone)]
pub(crate) struct Frontmatter {
    pub fields: RawFields,
    /// Top-level keys in file order with their 1-based file line.
    pub keys: Vec<(String, usize)>,
    /// The YAML parsed; when false, a diagnostic says why and `fields` is empty.
    pub ok: bool,
    /// Fields already reported as malformed (their values are left out of `fields`).
    pub bad: Vec<String>,
}

impl Frontmatter {
    /// The file line of `key`, or the opening fence's line when the key is absent.
    pub fn line_of(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(1, |&(_, line)| line)
    }

    /// Was `key` written (even with an empty or null value)?
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }
}

/// Parses the YAML of a split file. Problems are pushed to `diags`; the result holds whatever
/// could be read.
pub(crate) fn parse(path: &Path, yaml: &str, diags: &mut Vec<Diagnostic>) -> Frontmatter {
    let keys = scan_keys(yaml);
    if keys.len() > crate::message::MAX_FRONTMATTER_KEYS {
        diags.push(Diagnostic::error(
            path,
            keys[crate::message::MAX_FRONTMATTER_KEYS].1,
            "frontmatter",
            format!(
                "has {} fields; the limit is {}",
                keys.len(),
                crate::message::MAX_FRONTMATTER_KEYS
            ),
        ));
        return Frontmatter {
            fields: RawFields::default(),
            keys,
            ok: false,
            bad: Vec::new(),
        };
    }
    // A set, not a scan of the keys before each one: a hostile file with 60,000 keys must be
    // judged in milliseconds (linear), not minutes.
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    let mut duplicate = false;
    for (key, line) in &keys {
        if !seen.insert(key.as_str()) {
            duplicate = true;
            diags.push(Diagnostic::error(path, *line, key, "duplicate field"));
        }
    }
    if duplicate {
        // yaml_serde would report it again, without a line.
        return Frontmatter {
            fields: RawFields::default(),
            keys,
            ok: false,
            bad: Vec::new(),
        };
    }
    if yaml.trim().is_empty() {
        return Frontmatter {
            fields: RawFields::default(),
            keys,
            ok: true,
            bad: Vec::new(),
        };
    }
    // A field of the wrong shape (`to: [a, b]`) is reported, blanked out, and the rest parsed
    // again, so one bad field does not hide the problems of the others.
    if let Some(fields) = parse_flat(yaml) {
        return Frontmatter {
            fields,
            keys,
            ok: true,
            bad: Vec::new(),
        };
    }
    let mut text = Cow::Borrowed(yaml);
    let mut bad = Vec::new();
    loop {
        match yaml_serde::from_str::<RawFields>(&text) {
            Ok(fields) => {
                return Frontmatter {
                    fields,
                    keys,
                    ok: true,
                    bad,
                };
            }
            Err(err) => {
                // yaml_serde counts lines from the first YAML line, which is file line 2.
                let line = err.location().map_or(1, |l| l.line() + 1);
                let msg = err.to_string();
                let (field, message) = yaml_message(&msg);
                diags.push(Diagnostic::error(
                    path,
                    line,
                    field.unwrap_or("frontmatter"),
                    message,
                ));
                let blanked = field
                    .filter(|f| !bad.iter().any(|b| b == f) && msg.contains("invalid type"))
                    .and_then(|f| blank_key(&text, &keys, f));
                match (field, blanked) {
                    (Some(f), Some(t)) => {
                        bad.push(f.to_owned());
                        text = Cow::Owned(t);
                    }
                    _ => {
                        return Frontmatter {
                            fields: RawFields::default(),
                            keys,
                            ok: false,
                            bad,
                        };
                    }
                }
            }
        }
    }
}

/// The fast path: frontmatter that is only `key: value` lines whose values are plain words or
/// simple quoted strings (what relay and most agents write) is read without a YAML parser,
/// 10x faster, which `relay list` over thousands of files needs. Anything else (comments,
/// escapes, nesting, nulls, spaces in plain values) returns `None` and goes to yaml_serde;
/// `flat_path_agrees_with_yaml_serde` checks both read the same.
fn parse_flat(yaml: &str) -> Option<RawFields> {
    let mut f = RawFields::default();
    for line in yaml.split_inclusive('\n') {
        let line = strip_eol(line);
        if line.is_empty() {
            continue;
        }
        let (key, raw) = line.split_once(": ")?;
        if !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || key.is_empty() {
            return None;
        }
        let value = flat_value(raw)?;
        let slot = match key {
            "relay" => &mut f.relay,
            "id" => &mut f.id,
            "re" => &mut f.re,
            "from" => &mut f.from,
            "to" => &mut f.to,
            "status" => &mut f.status,
            "verify" => &mut f.verify,
            "session" => &mut f.session,
            "created" => &mut f.created,
            "kind" => &mut f.kind,
            "format" => &mut f.format,
            "effort" => &mut f.effort,
            "salvaged" => &mut f.salvaged,
            "state" => &mut f.state,
            "back" => &mut f.back,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.to_owned());
    }
    Some(f)
}

/// A value the fast path reads exactly as YAML would: `"..."` without `\` or `"`, `'...'`
/// without `'`, or a plain word of `[A-Za-z0-9._+:/-]` starting with a letter or digit that is
/// not a null (`null`, `Null`, `NULL`). Trailing spaces are not allowed (they are rare and YAML
/// trims them).
fn flat_value(raw: &str) -> Option<&str> {
    let quoted = |q: char| {
        let inner = raw.strip_prefix(q)?.strip_suffix(q)?;
        let clean = !inner.contains(['"', '\\', '\'', '\n', '\r', '\t']);
        let printable = !inner.chars().any(|c| {
            c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}')
        });
        (clean && printable).then_some(inner)
    };
    if raw.starts_with('"') {
        return quoted('"');
    }
    if raw.starts_with('\'') {
        return quoted('\'');
    }
    let plain = raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+:/-".contains(&b))
        && !matches!(raw, "null" | "Null" | "NULL");
    plain.then_some(raw)
}

/// `yaml` with the lines of top-level `key` (its line up to the next key) emptied, so line
/// numbers stay put.
fn blank_key(yaml: &str, keys: &[(String, usize)], key: &str) -> Option<String> {
    let i = keys.iter().position(|(k, _)| k == key)?;
    let from = keys[i].1;
    let to = keys.get(i + 1).map_or(usize::MAX, |k| k.1);
    let lines = yaml.split_inclusive('\n').enumerate().map(|(n, l)| {
        let file_line = n + 2;
        if (from..to).contains(&file_line) {
            if l.ends_with('\n') { "\n" } else { "" }
        } else {
            l
        }
    });
    Some(lines.collect())
}

/// The top-level keys of a block mapping with their file lines. Only column-0 `key:` lines
/// count; indented lines, comments and blank lines belong to the value above them.
fn scan_keys(yaml: &str) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    for (i, line) in yaml.split_inclusive('\n').enumerate() {
        let line = strip_eol(line);
        if line.is_empty() || line.starts_with([' ', '\t', '#', '-']) {
            continue;
        }
        let Some(colon) = line.find(':') else {
            continue;
        };
        let rest = &line[colon + 1..];
        if rest.is_empty() || rest.starts_with([' ', '\t']) {
            let key = line[..colon].trim_end().trim_matches(['"', '\'']);
            keys.push((key.to_owned(), i + 2));
        }
    }
    keys
}

/// Rewrites a yaml_serde message for a person: the field it names (yaml_serde prefixes
/// `field: `), YAML line numbers as file line numbers, no Rust type names.
fn yaml_message(msg: &str) -> (Option<&str>, String) {
    let (field, rest) = match msg.split_once(": ") {
        Some((head, tail))
            if !head.contains(' ')
                && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            (Some(head), tail)
        }
        _ => (None, msg),
    };
    if let Some(kind) = rest
        .strip_prefix("invalid type: ")
        .and_then(|r| r.split(',').next())
    {
        let message = match field {
            Some(_) => format!("must be a single value, not a {kind}"),
            None => format!("must be `key: value` lines, not a {kind}"),
        };
        return (field, message);
    }
    (field, format!("not valid YAML: {}", file_positions(rest)))
}

/// Drops the first ` at line N column M` (the diagnostic carries it) and rewrites later ones
/// as file lines (` at line N+1`).
fn file_positions(msg: &str) -> String {
    const AT: &str = " at line ";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    let mut first = true;
    while let Some(at) = rest.find(AT) {
        out.push_str(&rest[..at]);
        let tail = &rest[at + AT.len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let line: usize = tail[..digits].parse().unwrap_or(0);
        let mut tail = &tail[digits..];
        if let Some(t) = tail.strip_prefix(" column ") {
            tail = t.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        if !first {
            out.push_str(&format!("{AT}{}", line + 1));
        }
        first = false;
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Renders one value for a `key: value` line. Plain when YAML 1.1 and 1.2 both read it back as
/// this exact string; double-quoted otherwise (digits first, timestamps, `yes`/`no`, ...).
///
/// Callers validate values first; the escaping here is a second line of defence.
pub(crate) fn scalar(value: &str) -> Cow<'_, str> {
    const TYPED_WORDS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let plain = value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !TYPED_WORDS.contains(&value);
    if plain {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn split_lf_crlf_bom() {
        let s = split("---\na: 1\n---\nbody\n").unwrap();
        assert_eq!((s.yaml, s.body, s.close_line), ("a: 1\n", "body\n", 3));
        let s = split("\u{feff}---\r\na: 1\r\n---\r\n\r\nx\r\n").unwrap();
        assert_eq!((s.yaml, s.body), ("a: 1\r\n", "\r\nx\r\n"));
        let s = split("---\n---\n").unwrap();
        assert_eq!((s.yaml, s.body), ("", ""));
        let s = split("---\na: 1\n---").unwrap();
        assert_eq!(s.body, "");
    }

    #[test]
    fn split_is_strict() {
        assert_eq!(split("a: 1\n---\n").unwrap_err(), SplitError::MissingOpen);
        assert_eq!(
            split(" ---\na\n---\n").unwrap_err(),
            SplitError::MissingOpen
        );
        assert_eq!(split("----\n---\n").unwrap_err(), SplitError::MissingOpen);
        assert_eq!(split("---\na: 1\n").unwrap_err(), SplitError::MissingClose);
        assert_eq!(
            split("---\na: 1\n--- \n").unwrap_err(),
            SplitError::MissingClose
        );
        assert_eq!(
            split("---\na: 1\n|---|\n").unwrap_err(),
            SplitError::MissingClose
        );
    }

    #[test]
    fn body_keeps_rules_and_tables() {
        let src = "---\na: 1\n---\n\n| a | b |\n|---|---|\n\n---\nmore\r\n";
        assert_eq!(
            split(src).unwrap().body,
            "\n| a | b |\n|---|---|\n\n---\nmore\r\n"
        );
    }

    #[test]
    fn values_stay_strings() {
        let mut d = Vec::new();
        let fm = parse(
            &PathBuf::from("f"),
            "relay: 4\nre: 01\nid: 0012\nto: no\nfrom: yes\n",
            &mut d,
        );
        assert!(d.is_empty());
        let f = fm.fields;
        assert_eq!(f.relay.as_deref(), Some("4"));
        assert_eq!(f.re.as_deref(), Some("01"));
        assert_eq!(f.id.as_deref(), Some("0012"));
        assert_eq!(f.to.as_deref(), Some("no"));
        assert_eq!(f.from.as_deref(), Some("yes"));
    }

    #[test]
    fn errors_have_lines() {
        let mut d = Vec::new();
        parse(&PathBuf::from("f"), "relay: 4\nid: [a]\n", &mut d);
        assert_eq!(d[0].line, 3);
        assert_eq!(d[0].field, "id");
        let mut d = Vec::new();
        parse(&PathBuf::from("f"), "id: a\nfrom: b\nid: c\n", &mut d);
        assert_eq!((d.len(), d[0].line, d[0].field.as_str()), (1, 4, "id"));
    }

    /// Wherever the fast path answers, it answers what yaml_serde does.
    #[test]
    fn flat_path_agrees_with_yaml_serde() {
        let values = [
            "done",
            "01",
            "0012",
            "yes",
            "no",
            "~",
            "null",
            "Null",
            "true",
            "1.5",
            "1e3",
            "0x1F",
            "a:b",
            "a: b",
            "http://x/y",
            "2026-11-21T16:30:00Z",
            "-a",
            "+1",
            ".inf",
            "a#b",
            "a #b",
            "\"q\"",
            "\"a'b\"",
            "'a\"b'",
            "\"a\\nb\"",
            "''",
            "\"\"",
            "'it''s'",
            "[a]",
            "{a: 1}",
            "&x a",
            "*x",
            "!!str 1",
            "|",
            ">",
            "é",
            "a\u{2028}b",
            "\"a\u{2028}b\"",
            "a ",
            "%x",
            "@x",
            "`x",
            "a,b",
            "a/b",
            "..",
            "1_000",
            "0o17",
            "+.5",
            "=",
            "<<",
        ];
        let mut compared = 0;
        for key in ["id", "re", "status", "unknown_key"] {
            for v in values {
                let yaml = format!("relay: 6\n{key}: {v}\nfrom: codex\n");
                let Some(fast) = parse_flat(&yaml) else {
                    continue;
                };
                compared += 1;
                let slow: Result<RawFields, _> = yaml_serde::from_str(&yaml);
                let slow = slow
                    .unwrap_or_else(|e| panic!("fast path accepted {yaml:?}, yaml_serde says {e}"));
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{yaml:?}");
            }
        }
        assert!(compared >= 60, "the fast path took only {compared} cases");
        // And it accepts what relay writes.
        assert!(parse_flat("relay: 6\nid: \"20261121-163000-x\"\nfrom: claude\nto: codex\ncreated: \"2026-11-21T16:30:00Z\"\n").is_some());
    }

    #[test]
    fn yaml_messages_use_file_lines() {
        assert_eq!(
            yaml_message("found unexpected end of stream at line 4 column 1, while scanning a quoted scalar at line 2 column 5"),
            (None, "not valid YAML: found unexpected end of stream, while scanning a quoted scalar at line 3".to_owned())
        );
        assert_eq!(
            yaml_message("from: invalid type: sequence, expected a string at line 3 column 7"),
            (
                Some("from"),
                "must be a single value, not a sequence".to_owned()
            )
        );
    }

    #[test]
    fn scalar_quotes_what_yaml_would_retype() {
        for plain in ["claude", "auth-review", "a1"] {
            assert_eq!(scalar(plain), plain);
        }
        for quoted in [
            "01",
            "yes",
            "no",
            "on",
            "null",
            "y",
            "1e3",
            "2026-11-21T00:00:00Z",
            "Claude",
            "a b",
            "x:y",
            "",
        ] {
            assert!(scalar(quoted).starts_with('"'), "{quoted}");
        }
        assert_eq!(scalar("a\"b\\c\nd\u{2028}"), r#""a\"b\\c\u000ad\u2028""#);
    }

    #[test]
    fn scalar_round_trips_through_yaml() {
        for v in [
            "01", "yes", "no", "~", "null", "a\"b", "a\\b", "x: y", "# c", "a\nb", "\u{2028}", "é",
            "[1]", "&a", "*a", "!t", "'q'", "",
        ] {
            let yaml = format!("id: {}\n", scalar(v));
            let mut d = Vec::new();
            let fm = parse(&PathBuf::from("f"), &yaml, &mut d);
            assert!(d.is_empty(), "{v:?}: {d:?}");
            assert_eq!(fm.fields.id.as_deref(), Some(v), "{yaml:?}");
        }
    }
}
