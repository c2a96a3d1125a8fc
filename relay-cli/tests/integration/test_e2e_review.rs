//! Reviews, a deliberation and a fan-out against the REAL codex, claude and gemini CLIs through
//! peer-sim: the scripted model returns the findings (`MOCKLLM_BODY`) as its final message, as
//! a model that follows a read-only request does (`MOCKLLM_REPLY_VIA=auto`).

use serde_json::json;

use crate::test_e2e_peers::{Repo, harness};

const LIB: &str = "fn one() -> u32 {\n    1\n}\n\nfn two() -> u32 {\n    2\n}\n";

/// A repo with one committed file and an uncommitted change to review.
fn changed_repo() -> Repo {
    let repo = Repo::new();
    repo.commit(&[("src/lib.rs", LIB)]);
    std::fs::write(
        repo.root.join("src/lib.rs"),
        LIB.replace("    1\n", "    1 + 1\n"),
    )
    .unwrap();
    repo
}

/// The review a scripted model gives: one finding on the changed line.
fn findings_body() -> String {
    let review = json!({
        "findings": [{
            "title": "one() no longer returns 1",
            "body": "The change makes one() return 2.",
            "confidence_score": 0.9, "priority": 1,
            "code_location": {"file_path": "src/lib.rs", "line_range": {"start": 2, "end": 2}},
            "recommendation": "Return 1.",
        }],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": "one() is wrong now.",
        "overall_confidence_score": 0.8,
    });
    format!("MOCKLLM_BODY=Reviewed the patch.\n\n```json\n{review:#}\n```")
}

fn review(peer: &str) {
    let Some(sim) = harness() else { return };
    let repo = changed_repo();
    let body = findings_body();
    let opts = ["--env", "MOCKLLM_REPLY_VIA=auto", "--env", &body];
    let (code, r) = repo.relay(&sim, &opts, &["review", "--with", peer]);
    let ctx = format!("{peer}: {r:#}");
    assert_eq!(r["peers"][0]["outcome"], "ok", "{ctx}");
    assert_eq!(
        code, 14,
        "a verdict `patch is incorrect` is rejected: {ctx}"
    );
    assert_eq!(r["verdict"], "fail", "{ctx}");
    let f = &r["findings"][0];
    assert_eq!(f["title"], "one() no longer returns 1", "{ctx}");
    assert_eq!(f["place"], "ok", "{ctx}");
    assert_eq!(f["level"], "error", "{ctx}");
    // Read-only: only the change under review shows in git, nothing the reviewer did.
    assert_eq!(repo.git_status(), " M src/lib.rs\n", "{ctx}");
}

#[test]
fn codex_reviews() {
    review("codex");
}

#[test]
fn claude_reviews() {
    review("claude");
}

#[test]
fn gemini_reviews() {
    review("gemini");
}

#[test]
fn a_review_fans_out_to_all_three_at_once() {
    let Some(sim) = harness() else { return };
    let repo = changed_repo();
    let body = findings_body();
    let opts = ["--env", "MOCKLLM_REPLY_VIA=auto", "--env", &body];
    let (code, r) = repo.relay(
        &sim,
        &opts,
        &["review", "--with", "codex,claude,gemini", "--quorum", "2"],
    );
    let ctx = format!("{r:#}");
    let outcomes: Vec<&str> = r["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "ok", "ok"], "{ctx}");
    assert_eq!(code, 14, "{ctx}");
    // The same finding from each: grouped, found by 3 of 3.
    assert_eq!(r["findings"].as_array().unwrap().len(), 1, "{ctx}");
    assert_eq!(
        r["findings"][0]["peers"],
        json!(["codex", "claude", "gemini"]),
        "{ctx}"
    );
    assert_eq!(repo.git_status(), " M src/lib.rs\n", "{ctx}");
}

#[test]
fn a_plain_fan_out_to_all_three() {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    repo.commit(&[("README.md", "# demo\n")]);
    let opts = ["--env", "MOCKLLM_REPLY_VIA=auto"];
    let (code, r) = repo.relay(
        &sim,
        &opts,
        &[
            "fan",
            "--to",
            "codex,claude,gemini",
            "--name",
            "q",
            "Is the README enough?",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
    for p in r["peers"].as_array().unwrap() {
        assert_eq!(p["outcome"], "ok", "{r:#}");
        assert!(
            p["body"].as_str().unwrap().contains("handled request"),
            "{r:#}"
        );
    }
    assert!(
        std::path::Path::new(r["saved"].as_str().unwrap()).exists(),
        "{r:#}"
    );
}

#[test]
fn a_deliberation_with_a_real_cli() {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    let sections = "MOCKLLM_BODY=## Independent view\n\nGlobal.\n\n## Where I agree\n\nInvalidation.\n\n## Where I disagree\n\nMemory.\n\n## Evidence and uncertainty\n\nNone measured.\n\n## Proposed decision\n\nMeasure first.";
    let opts = ["--env", "MOCKLLM_REPLY_VIA=auto", "--env", sections];
    let (code, r) = repo.relay(
        &sim,
        &opts,
        &[
            "deliberate",
            "--with",
            "claude",
            "Per-user cache?",
            "--position",
            "Yes, for invalidation; unsure about memory.",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["sections"]["Proposed decision"], "Measure first.",
        "{r:#}"
    );
}

/// `relay ci` on a branch with a real diff, against real codex and against a fan of all three
/// (quorum 2): each reviewer is probed first, the findings come back, relay's own check runs,
/// and the files for the pipeline are written.
#[test]
fn ci_reviews_a_branch_with_the_real_clis() {
    let Some(sim) = harness() else { return };
    let repo = Repo::new();
    repo.commit(&[("src/lib.rs", LIB)]);
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let base = git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    git(&["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        repo.root.join("src/lib.rs"),
        LIB.replace("    1\n", "    1 + 1\n"),
    )
    .unwrap();
    git(&["commit", "-qam", "one is two"]);
    let body = findings_body();
    for with in ["codex", "codex,claude,gemini"] {
        let mut args = vec![
            "ci",
            "--with",
            with,
            "--base",
            &base,
            "--verify-cmd",
            "grep -q '1 + 1' src/lib.rs",
        ];
        if with.contains(',') {
            args.extend(["--quorum", "2"]);
        }
        let out = std::process::Command::new(sim.join("with-peer-sim"))
            .args([
                "--quiet",
                "--env",
                "MOCKLLM_REPLY_VIA=auto",
                "--env",
                &body,
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_relay"))
            .args(&args)
            .current_dir(&repo.root)
            .env_remove("RELAY_ROOT")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{with}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(14),
            "a verdict `patch is incorrect`: {text}"
        );
        let result: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo.root.join(".relay/ci/result.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(result["verdict"], "fail", "{text}");
        assert_eq!(result["checks"][0]["exit_code"], 0, "{text}");
        let peers = result["review"]["peers"].as_array().unwrap();
        assert_eq!(peers.len(), with.split(',').count(), "{text}");
        assert!(peers.iter().all(|p| p["outcome"] == "ok"), "{text}");
        assert_eq!(
            result["review"]["findings"][0]["title"], "one() no longer returns 1",
            "{text}"
        );
        assert!(repo.root.join(".relay/ci/relay.sarif").is_file());
        assert!(repo.root.join(".relay/ci/summary.md").is_file());
    }
}
