//! `relay res`: replies, both forms, and every refusal.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;

fn request(env: &TestEnv) -> String {
    env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--name",
        "auth-review",
        "Review it.",
    ])
}

#[test]
fn simple_form_derives_re_from_and_to() {
    let env = TestEnv::new();
    let req = request(&env);
    let out = env.run(&[
        "res",
        "--request",
        &req,
        "--status",
        "done",
        "--verify",
        "pass",
        "All 12 tests pass.",
    ]);
    assert_snapshot!(env.render(&out), @"$ROOT/.relay/20261121-163000-auth-review.res.md");
    assert_snapshot!(env.read(".relay/20261121-163000-auth-review.res.md"), @r#"
    ---
    relay: 7
    re: "20261121-163000-auth-review"
    from: codex
    to: claude
    status: done
    verify: pass
    created: "2026-11-21T16:30:00Z"
    ---

    All 12 tests pass.
    "#);
    let out = env.run(&["validate", ".relay/20261121-163000-auth-review.res.md"]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
}

#[test]
fn request_can_be_named_by_id_name_or_reply_path() {
    let env = TestEnv::new();
    request(&env);
    for (i, reference) in [
        "20261121-163000-auth-review",
        "auth-review",
        ".relay/20261121-163000-auth-review.res.md",
    ]
    .iter()
    .enumerate()
    {
        let force = if i > 0 { "--force" } else { "--verify" };
        let mut args = vec![
            "res",
            "--request",
            reference,
            "--status",
            "done",
            "--verify",
            "skip",
        ];
        if force == "--force" {
            args.push("--force");
        }
        args.push("ok");
        let out = env.run(&args);
        assert_eq!(code(&out), 0, "{reference}: {}", env.render(&out));
    }
}

#[test]
fn seed_form_checks_what_it_is_told() {
    let env = TestEnv::new();
    request(&env);
    let out = env.run(&[
        "res",
        "--re",
        "20261121-163000-auth-review",
        "--from",
        "codex",
        "--to",
        "claude",
        "--status",
        "done",
        "--verify",
        "fail",
        "2 tests fail",
    ]);
    assert_snapshot!(env.render(&out), @"$ROOT/.relay/20261121-163000-auth-review.res.md");
    let out = env.run(&[
        "res",
        "--re",
        "20261121-163000-auth-review",
        "--from",
        "gemini",
        "--to",
        "claude",
        "--status",
        "done",
        "--verify",
        "pass",
        "--force",
        "x",
    ]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: $ROOT/.relay/20261121-163000-auth-review.req.md: the request goes from `claude` to `codex`, so the reply's from must be `codex`, not `gemini`
    [exit status: 5]
    ");
}

#[test]
fn seed_form_in_a_v4_session() {
    let env = TestEnv::new();
    let v4 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/fixtures/valid/v4-session/auth-refactor/02.req.md"
    ))
    .unwrap();
    env.write(".relay/auth-refactor/02.req.md", &v4);
    let out = env.run(&[
        "res",
        "--re",
        "02",
        "--session",
        "auth-refactor",
        "--from",
        "codex",
        "--to",
        "claude",
        "--status",
        "done",
        "--verify",
        "pass",
        "fixed",
    ]);
    assert_snapshot!(env.render(&out), @"$ROOT/.relay/auth-refactor/02.res.md");
    assert_snapshot!(env.read(".relay/auth-refactor/02.res.md"), @r#"
    ---
    relay: 7
    re: "02"
    from: codex
    to: claude
    status: done
    verify: pass
    session: auth-refactor
    created: "2026-11-21T16:30:00Z"
    ---

    fixed
    "#);
    // The next turn continues the v4 numbering and width.
    let next = env.ok(&[
        "req",
        "--from",
        "claude",
        "--to",
        "codex",
        "--session",
        "auth-refactor",
        "next",
    ]);
    assert!(next.ends_with("auth-refactor/03.req.md"), "{next}");
}

#[test]
fn typing_traps_survive_a_reply() {
    let env = TestEnv::new();
    env.write(".relay/0012.req.md", "---\nrelay: 4\nid: 0012\nfrom: yes\nto: no\n---\n\nTask.\n\n---\nReply: .relay/0012.res.md\n");
    env.ok(&[
        "res",
        "--request",
        "0012",
        "--status",
        "done",
        "--verify",
        "skip",
        "ok",
    ]);
    let text = env.read(".relay/0012.res.md");
    assert!(
        text.contains("re: \"0012\"\nfrom: \"no\"\nto: \"yes\"\n"),
        "{text}"
    );
    let path = env.relay_dir().join("0012.res.md");
    let Some(relay_core::Message::Response(r)) = relay_core::parse(&path, &text).message else {
        panic!()
    };
    assert_eq!(
        (r.re.as_str(), r.from.as_str(), r.to.as_str()),
        ("0012", "no", "yes")
    );
}

#[test]
fn refusals() {
    let env = TestEnv::new();
    let req = request(&env);
    // No such request.
    let out = env.run(&[
        "res",
        "--re",
        "20261121-000000-nope",
        "--status",
        "done",
        "--verify",
        "pass",
        "x",
    ]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: request not found: $ROOT/.relay/20261121-000000-nope.req.md
    hint: `relay list` shows the exchanges that exist
    [exit status: 4]
    ");
    // A reply exists already.
    env.ok(&[
        "res",
        "--request",
        &req,
        "--status",
        "done",
        "--verify",
        "pass",
        "first",
    ]);
    let out = env.run(&[
        "res",
        "--request",
        &req,
        "--status",
        "error",
        "--verify",
        "skip",
        "second",
    ]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: $ROOT/.relay/20261121-163000-auth-review.res.md already exists
    hint: that request is answered already; pass --force to replace the reply
    [exit status: 5]
    ");
    assert!(
        env.read(".relay/20261121-163000-auth-review.res.md")
            .contains("first"),
        "the first reply is kept"
    );
    // --force replaces it.
    env.ok(&[
        "res",
        "--request",
        &req,
        "--status",
        "error",
        "--verify",
        "skip",
        "--force",
        "second",
    ]);
    assert!(
        env.read(".relay/20261121-163000-auth-review.res.md")
            .contains("second")
    );
    // A request whose id does not match its file name cannot be answered as if it did.
    env.write(
        ".relay/20261121-000000-odd.req.md",
        "---\nrelay: 6\nid: something-else\nfrom: a\nto: b\n---\n\nt\n\n---\nReply: x\n",
    );
    let out = env.run(&[
        "res",
        "--re",
        "20261121-000000-odd",
        "--status",
        "done",
        "--verify",
        "pass",
        "x",
    ]);
    assert_snapshot!(env.render(&out), @r#"
    ------- stderr -------
    relay: $ROOT/.relay/20261121-000000-odd.req.md:3: id: is "something-else" but the file is "20261121-000000-odd.req.md": the id must be the file name without .req.md (and 1 more problem)
    hint: `relay validate <file>` lists every problem
    [exit status: 3]
    "#);
    // Missing body.
    let out = env.run(&[
        "res",
        "--request",
        &req,
        "--status",
        "done",
        "--verify",
        "pass",
        "--force",
    ]);
    assert_eq!(code(&out), 2);
    // Bad status value.
    let out = env.run(&[
        "res",
        "--request",
        &req,
        "--status",
        "yes",
        "--verify",
        "pass",
        "x",
    ]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: invalid value 'yes' for '--status <STATUS>'
      [possible values: done, error, blocked, refused]

    For more information, try '--help'.
    [exit status: 2]
    ");
}

#[test]
fn paths_never_leave_relay_dir() {
    let env = TestEnv::new();
    request(&env);
    env.write(
        "outside.req.md",
        "---\nrelay: 6\nid: outside\nfrom: a\nto: b\n---\n\nt\n\n---\nReply: outside.res.md\n",
    );
    for reference in [
        "outside.req.md",
        "../repo/outside.req.md",
        ".relay/../outside.req.md",
        "/etc/passwd.req.md",
    ] {
        let out = env.run(&[
            "res",
            "--request",
            reference,
            "--status",
            "done",
            "--verify",
            "pass",
            "x",
        ]);
        assert_eq!(code(&out), 2, "{reference}: {}", env.render(&out));
    }
    for re in ["../outside", "/etc/passwd", "..", "a/b"] {
        let out = env.run(&[
            "res", "--re", re, "--status", "done", "--verify", "pass", "x",
        ]);
        assert_eq!(code(&out), 2, "{re}: {}", env.render(&out));
    }
    assert!(!env.root.join("outside.res.md").exists());
}

#[cfg(unix)]
#[test]
fn a_session_symlinked_out_of_relay_dir_is_refused() {
    let env = TestEnv::new();
    let outside = env.root.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(env.relay_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, env.relay_dir().join("evil")).unwrap();
    let out = env.run(&["req", "--from", "a", "--to", "b", "--session", "evil", "t"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: $ROOT/.relay/evil is outside $ROOT/.relay
    [exit status: 2]
    ");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written through the symlink"
    );
}

#[test]
fn injection_in_reply_fields_is_refused() {
    let env = TestEnv::new();
    request(&env);
    for (flag, value) in [
        ("--from", "codex\nstatus: done"),
        ("--to", "claude\u{2028}x"),
        ("--re", "x\nre: y"),
    ] {
        let mut args = vec!["res", "--status", "done", "--verify", "pass", flag, value];
        if flag != "--re" {
            args.extend(["--request", "auth-review"]);
        }
        args.push("body");
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{flag}: {}", env.render(&out));
    }
    assert!(
        !env.relay_dir()
            .join("20261121-163000-auth-review.res.md")
            .exists()
    );
}
