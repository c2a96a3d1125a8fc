//! Grammars of the values that appear in frontmatter and in paths.
//!
//! Every value relay writes passes one of these checks first, and none of them admits a line
//! break, a colon, a quote or a path separator, so no value can forge another field, close the
//! frontmatter, or leave `.relay/`.

/// Longest slug (`--name`, `--session`, agent names, `kind`).
pub const MAX_SLUG_LEN: usize = 64;
/// Longest id or other token read from a file.
pub const MAX_TOKEN_LEN: usize = 128;

/// Is `s` a slug: `[a-z0-9]+(-[a-z0-9]+)*`, 1 to [`MAX_SLUG_LEN`] bytes?
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a slug, explaining the rule when it fails.
pub fn check_slug(s: &str) -> Result<(), String> {
    if is_slug(s) {
        Ok(())
    } else {
        Err(format!(
            "must be a slug (lowercase letters and digits in words joined by single hyphens, \
             at most {MAX_SLUG_LEN} characters, e.g. `auth-review`), got {}",
            shown(s)
        ))
    }
}

/// Is `s` a token: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most [`MAX_TOKEN_LEN`] bytes, without `..`?
///
/// Ids and agent names read from files are tokens: wide enough for every id relay v4 and v5
/// wrote, narrow enough to be a safe file name.
pub fn is_token(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && s.len() <= MAX_TOKEN_LEN
        && !s.contains("..")
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a token, explaining the rule when it fails.
pub fn check_token(s: &str) -> Result<(), String> {
    if is_token(s) {
        Ok(())
    } else {
        Err(format!(
            "must be a token (letters, digits, `.`, `_`, `-`, starting with a letter or digit, \
             no `..`, at most {MAX_TOKEN_LEN} characters), got {}",
            shown(s)
        ))
    }
}

/// Is `s` a session turn number as written in a file name (`01`, `007`, `1234`)?
pub fn is_turn_stem(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Shows a value in an error message: short, quoted, with control characters escaped so an
/// injection attempt is visible instead of acted on.
pub fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let cut: String = s.chars().take(MAX).collect();
    let dots = if cut.len() < s.len() { "…" } else { "" };
    format!("{cut:?}{dots}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "auth-review", "a1-b2-c3", "0", &"a".repeat(64)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "--",
            "a-",
            "-a",
            "a--b",
            "A",
            "a_b",
            "a.b",
            "a b",
            "a\nb",
            "é",
            "a/b",
            "..",
            &"a".repeat(65),
        ] {
            assert!(!is_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn tokens() {
        for ok in [
            "01",
            "20260219-1630-auth-review",
            "20260219-163000-4242-x",
            "A.b_c-d",
        ] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "a..b",
            ".a",
            "-a",
            "a/b",
            "a\\b",
            "a b",
            "a:b",
            "a\u{2028}",
            &"a".repeat(129),
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn shown_escapes_and_truncates() {
        assert_eq!(shown("a\nid: x"), r#""a\nid: x""#);
        assert_eq!(shown("\u{2028}"), r#""\u{2028}""#);
        assert!(shown(&"x".repeat(200)).ends_with('…'));
    }
}
