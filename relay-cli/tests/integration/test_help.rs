//! Help, version and completions: what a newcomer sees first.

use crate::common::{TestEnv, code};
use insta::assert_snapshot;

#[test]
fn top_level_help() {
    let env = TestEnv::new();
    assert_snapshot!(env.render(&env.run(&["--help"])), @"
    Hand a task to another coding agent through files and get a verifiable answer back.

    A request is a markdown file under .relay/ with YAML frontmatter (relay, id, from, to), the
    task in natural language, and a footer telling the peer exactly which file to write. The peer
    answers in the .res.md beside it with `status: done|error` and `verify: pass|fail|skip`.
    Everything stays a plain-file trail you can read, diff and audit.

    Usage: relay [OPTIONS] <COMMAND>

    Commands:
      call         Hand a task to a peer agent and wait for its verified answer
      wait         Wait for a background call and print its result
      status       Show running and finished calls
      cancel       Stop a running call and its whole peer process tree
      req          Write a request for a peer agent and print its path
      res          Write the reply to a request and print its path
      validate     Check requests and replies against the protocol
      list         List exchanges: id, kind, from->to, status, verify, age
      show         Show one exchange: the request's fields and task, and the reply's status, verify and
                   body
      doctor       Check the peer CLIs, their versions and flags, and the environment relay runs in
      skill        Install, check or remove relay's skills for Claude Code, Codex and Gemini CLI
      completions  Print a shell completion script
      help         Print this message or the help of the given subcommand(s)

    Options:
          --root <DIR>
              Project root holding .relay/ (default: the git top-level, else the current directory)
              
              [env: RELAY_ROOT=]

      -h, --help
              Print help (see a summary with '-h')

      -V, --version
              Print version

    Examples:
      # Ask codex for a review; prints the request path
      relay req --from claude --to codex --name auth-review 'Review src/auth.py. Run pytest.'

      # Continue a multi-turn session (turns 001, 002, ... under .relay/auth-refactor/)
      relay req --from claude --to codex --session auth-refactor 'Now add tests for the fix.'

      # Answer a request (as the peer)
      relay res --request auth-review --status done --verify pass 'Found 2 issues: ...'

      # Check files against the protocol, list exchanges, read one
      relay validate .relay/*.md
      relay list --json
      relay show auth-refactor/2

    The protocol, exit codes included, is spec/PROTOCOL.md.

    Exit codes:
        0  ok              success (call: done with verify pass or skip)
        1  failure         unexpected failure: I/O, lock, internal error
        2  usage           bad command line: unknown flag, missing value, bad slug
        3  invalid         a protocol file is invalid
        4  not-found       the request, exchange or file does not exist
        5  conflict        refused: reply exists, id or direction mismatch
        6  recursion       call: refused, relay calls nested deeper than RELAY_MAX_DEPTH
       10  verify-failed   call: reply is done but verify is fail
       11  status-error    call: reply status is error
       12  no-reply        call: peer ended without a valid reply
      124  timeout         call: peer timed out and was killed
      127  peer-not-found  call: the peer CLI is not installed
      130  interrupted     relay was interrupted; the peer was killed
    ");
}

#[test]
fn subcommand_help() {
    let env = TestEnv::new();
    for cmd in ["req", "res", "validate", "list", "show"] {
        let out = env.run(&[cmd, "--help"]);
        assert_eq!(code(&out), 0);
        insta::assert_snapshot!(format!("help_{cmd}"), env.render(&out));
    }
}

#[test]
fn version() {
    let env = TestEnv::new();
    assert_eq!(
        env.ok(&["--version"]),
        format!("relay {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.ok(&["completions", shell]);
        assert!(
            script.contains("relay") && script.contains("validate"),
            "{shell}"
        );
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.run(&[]);
    assert_eq!(code(&out), 2);
}
