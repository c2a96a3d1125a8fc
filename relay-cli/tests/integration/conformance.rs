//! Runs every fixture in spec/fixtures/ and checks the verdict and the exact diagnostics.
//!
//! `fixtures/valid/**` must have no error, `fixtures/invalid/**` at least one (but for a request
//! with its reply beside it: the partner a structured reply is judged against); `<file>.expect`
//! lists the diagnostics (`line: field: message`), and no `.expect` means none at all.
//! `RELAY_BLESS=1 cargo test conformance` rewrites the `.expect` files (review the diff!).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/fixtures")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // Session records have a test of their own.
            if p.file_name().is_some_and(|n| n == "record") {
                continue;
            }
            files(&p, out);
        } else if !p.to_string_lossy().ends_with(".expect") {
            out.push(p);
        }
    }
}

/// Valid: everything under valid/, and in invalid/ a request with its reply beside it (the
/// partner a structured reply, findings or sections, is judged against).
fn should_be_valid(path: &Path) -> bool {
    let rel = path
        .strip_prefix(fixtures())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let partner = name
        .strip_suffix(".req.md")
        .is_some_and(|stem| path.with_file_name(format!("{stem}.res.md")).exists());
    rel.starts_with("valid/") || partner
}

fn expected_text(report: &relay_core::Report) -> String {
    report
        .diagnostics
        .iter()
        .map(|d| {
            let warn = if d.severity == relay_core::Severity::Warning {
                "warning: "
            } else {
                ""
            };
            format!("{}: {}: {warn}{}\n", d.line, d.field, d.message)
        })
        .collect()
}

#[test]
fn every_fixture_has_its_verdict_and_diagnostics() {
    let bless = std::env::var_os("RELAY_BLESS").is_some();
    let mut all = Vec::new();
    files(&fixtures(), &mut all);
    all.sort();
    assert!(all.len() >= 40, "only {} fixtures found", all.len());
    let mut failures = Vec::new();
    for path in &all {
        let rel = path.strip_prefix(fixtures()).unwrap().display().to_string();
        let want_valid = should_be_valid(path);
        assert!(
            want_valid || rel.starts_with("invalid/"),
            "{rel}: fixtures live in valid/ or invalid/"
        );
        let report = relay_core::validate_file(path).unwrap();
        if report.is_valid() != want_valid {
            failures.push(format!(
                "{rel}: expected {}, got:\n{}",
                if want_valid { "valid" } else { "invalid" },
                expected_text(&report)
            ));
        }
        let expect_path = PathBuf::from(format!("{}.expect", path.display()));
        let got = expected_text(&report);
        if bless {
            if got.is_empty() {
                let _ = std::fs::remove_file(&expect_path);
            } else {
                std::fs::write(&expect_path, &got).unwrap();
            }
            continue;
        }
        let want = std::fs::read_to_string(&expect_path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{rel}: diagnostics differ\n--- want\n{want}--- got\n{got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The binary agrees with the library: `relay validate` exits 0 for valid fixtures and 3 for
/// invalid ones, in one run over all of them.
#[test]
fn relay_validate_exit_codes_match_the_verdicts() {
    for dir in ["valid", "invalid"] {
        let mut all = Vec::new();
        files(&fixtures().join(dir), &mut all);
        for path in all {
            let want = if should_be_valid(&path) { 0 } else { 3 };
            let out = Command::new(env!("CARGO_BIN_EXE_relay"))
                .arg("validate")
                .arg(&path)
                .env_clear()
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(want),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// The seed README's example request and response are fixtures byte for byte, and they parse
/// to what the README says they mean.
#[test]
fn seed_examples_parse() {
    let dir = fixtures().join("valid/seed");
    let req = dir.join("20260219-1630-auth-review.req.md");
    let text = std::fs::read_to_string(&req).unwrap();
    let relay_core::Message::Request(r) = relay_core::parse(&req, &text).into_result().unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.version, r.id.as_str(), r.from.as_str(), r.to.as_str()),
        (4, "20260219-1630-auth-review", "claude", "codex")
    );
    assert_eq!(
        r.body,
        "Review src/auth.py for security issues. Run pytest to verify.\n"
    );
    assert_eq!(
        r.footer.unwrap().reply,
        ".relay/20260219-1630-auth-review.res.md"
    );
    let res = dir.join("20260219-1630-auth-review.res.md");
    let text = std::fs::read_to_string(&res).unwrap();
    let relay_core::Message::Response(r) = relay_core::parse(&res, &text).into_result().unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.status, r.verify),
        (relay_core::Status::Done, relay_core::Verify::Pass)
    );
    assert!(
        r.body
            .starts_with("Found 2 issues in src/auth.py:\n1. Session token")
    );
    assert!(r.body.ends_with("All 12 tests pass after changes.\n"));
}

/// `spec/fixtures/record/*.jsonl`: session records, each with `<file>.expect` saying what a
/// reader makes of it (entries read, lines skipped, owner, open handoff, finality, decisions in
/// force). Replies the record does not hold count as unanswered.
#[test]
fn session_records_replay_to_their_owner_and_finality() {
    use relay_core::ledger;
    let dir = fixtures().join("record");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        n += 1;
        let (entries, skipped) = ledger::read(&path).unwrap();
        let own = ledger::ownership(&entries, |_| false);
        let got = format!(
            "entries: {}\nskipped: {skipped}\nowner: {}\nhandoff: {}\nfinality: {}\ndecisions: {}\n",
            entries.len(),
            own.owner.as_deref().unwrap_or("-"),
            own.handoff.as_deref().unwrap_or("-"),
            ledger::finality(&entries).as_str(),
            ledger::decisions_in_force(&entries)
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let want = std::fs::read_to_string(format!("{}.expect", path.display())).unwrap();
        assert_eq!(got, want, "{}", path.display());
    }
    assert!(n >= 2, "only {n} record fixtures");
}
