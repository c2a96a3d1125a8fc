//! `relay validate`: lines, JSON, exit codes.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;

#[test]
fn valid_files_print_nothing_and_exit_0() {
    let env = TestEnv::new();
    let req = env.ok(&[
        "req", "--from", "claude", "--to", "codex", "--name", "x", "task",
    ]);
    env.ok(&[
        "res",
        "--request",
        &req,
        "--status",
        "done",
        "--verify",
        "pass",
        "ok",
    ]);
    let out = env.run(&["validate", &req, &req.replace(".req.md", ".res.md")]);
    assert_snapshot!(env.render(&out), @"");
    // With no FILE: everything under .relay/.
    let out = env.run(&["validate"]);
    assert_snapshot!(env.render(&out), @"");
}

#[test]
fn every_problem_one_line_each() {
    let env = TestEnv::new();
    env.write("bad.res.md", "---\nrelay: 6\nre: other\nfrom: codex\nto: [claude]\nstatus: yes\nverify: pass\n---\n\nx\n");
    env.write("worse.res.md", "---\nrelay: 2\nre: worse\nfrom: codex\nto: claude\nstatus: yes\nverify: maybe\ncreated: now\n---\n\nx\n");
    let out = env.run(&["validate", "bad.res.md", "worse.res.md"]);
    assert_snapshot!(env.render(&out), @r#"
    bad.res.md:3: re: is "other" but the file is "bad.res.md": the re must be the file name without .res.md
    bad.res.md:5: to: must be a single value, not a sequence
    bad.res.md:6: status: must be `done` or `error`, got "yes"
    worse.res.md:2: relay: protocol version 2 is not supported (relay reads 4 to 7)
    worse.res.md:6: status: must be `done` or `error`, got "yes"
    worse.res.md:7: verify: must be `pass`, `fail` or `skip`, got "maybe"
    worse.res.md:8: created: must be an RFC 3339 time like `2026-11-21T16:30:00Z`, got "now"
    [exit status: 3]
    "#);
}

#[test]
fn missing_file_exits_4() {
    let env = TestEnv::new();
    let out = env.run(&["validate", "nope.res.md"]);
    assert_snapshot!(env.render(&out), @"
    nope.res.md: file: does not exist
    [exit status: 4]
    ");
}

#[test]
fn json_report() {
    let env = TestEnv::new();
    env.write(
        "a.res.md",
        "---\nrelay: 7\nre: a\nfrom: codex\nto: claude\nstatus: done\nverify: fail\n---\n\nx\n",
    );
    env.write(
        "b.res.md",
        "---\nrelay: 6\nre: b\nfrom: codex\nto: claude\nstatus: done\n---\n\nx\n",
    );
    let out = env.run(&["validate", "--json", "a.res.md", "b.res.md"]);
    assert_eq!(code(&out), 3);
    assert_snapshot!(env.render(&out), @r#"
    {
      "valid": false,
      "files": [
        {
          "path": "a.res.md",
          "kind": "response",
          "valid": true,
          "diagnostics": []
        },
        {
          "path": "b.res.md",
          "kind": "response",
          "valid": false,
          "diagnostics": [
            {
              "path": "b.res.md",
              "line": 1,
              "field": "verify",
              "severity": "error",
              "message": "required field is missing"
            }
          ]
        }
      ],
      "missing": []
    }
    [exit status: 3]
    "#);
}

#[test]
fn crlf_and_bom_files_are_valid() {
    let env = TestEnv::new();
    env.write("crlf.res.md", "---\r\nrelay: 6\r\nre: crlf\r\nfrom: codex\r\nto: claude\r\nstatus: done\r\nverify: pass\r\n---\r\n\r\nbody\r\n");
    env.write("bom.res.md", "\u{feff}---\nrelay: 6\nre: bom\nfrom: codex\nto: claude\nstatus: done\nverify: pass\n---\n\nbody\n");
    let out = env.run(&["validate", "crlf.res.md", "bom.res.md"]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    let text = env.read("crlf.res.md");
    let Some(relay_core::Message::Response(r)) =
        relay_core::parse(std::path::Path::new("crlf.res.md"), &text).message
    else {
        panic!()
    };
    assert_eq!(r.body, "body\r\n", "CRLF body kept byte for byte");
}
