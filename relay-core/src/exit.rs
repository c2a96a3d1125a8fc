//! Process exit codes: part of the protocol spec (spec/PROTOCOL.md, "Exit codes").
//!
//! They are listed once, here, and every relay command uses these constants.

/// Success; for `relay call`: the reply says `status: done` and `verify: pass` or `skip`.
pub const OK: u8 = 0;
/// An unexpected failure (I/O error, lock failure, internal error).
pub const FAILURE: u8 = 1;
/// The command line is wrong (unknown flag, missing value, bad slug).
pub const USAGE: u8 = 2;
/// A protocol file is invalid (`relay validate`, or a file another command had to read).
pub const INVALID: u8 = 3;
/// The named request, exchange or file does not exist.
pub const NOT_FOUND: u8 = 4;
/// relay refused to overwrite or mismatch: the reply exists, the id or direction differs.
pub const CONFLICT: u8 = 5;
/// `relay call`: refused because relay calls are nested deeper than `RELAY_MAX_DEPTH`.
pub const RECURSION: u8 = 6;
/// `relay call`: the peer changed files outside `.relay/` that its mode does not allow (a
/// read-only peer changed any); the record lists them.
pub const OUT_OF_SCOPE: u8 = 13;
/// `relay review` / `relay fan`: the verdict is `fail`, a finding reached `--fail-on`, or the
/// `--quorum` was not met.
pub const REJECTED: u8 = 14;
/// `relay call`: the reply says `status: error`, `state: blocked`: the peer needs an answer.
pub const BLOCKED: u8 = 15;
/// `relay call`: the reply says `status: error`, `state: refused`: out of the peer's scope.
pub const REFUSED: u8 = 16;
/// `relay close`: refused while work in the session is open, or nothing to approve.
pub const OPEN_WORK: u8 = 17;
/// `relay call --verify-cmd`: the peer's `verify` and relay's own run of the checks disagree.
pub const VERIFY_MISMATCH: u8 = 18;
/// `relay ci`: a reviewer is not available on this machine (its CLI is missing, or no network).
pub const UNAVAILABLE: u8 = 19;
/// `relay call`: the reply says `status: done` but `verify: fail`.
pub const VERIFY_FAILED: u8 = 10;
/// `relay call`: the reply says `status: error`.
pub const STATUS_ERROR: u8 = 11;
/// `relay call`: the peer ended without a valid reply (missing, unparsable, wrong id).
pub const NO_REPLY: u8 = 12;
/// `relay call`: the peer hit `--timeout` or `--idle-timeout` and was killed.
pub const TIMEOUT: u8 = 124;
/// `relay call`: the peer's CLI was not found.
pub const PEER_NOT_FOUND: u8 = 127;
/// relay itself was interrupted (Ctrl-C / SIGTERM); the peer was killed.
pub const INTERRUPTED: u8 = 130;

/// Every code with its name and meaning, in order (used by docs and `--help`).
pub const TABLE: &[(u8, &str, &str)] = &[
    (OK, "ok", "success (call: done with verify pass or skip)"),
    (
        FAILURE,
        "failure",
        "unexpected failure: I/O, lock, internal error",
    ),
    (
        USAGE,
        "usage",
        "bad command line: unknown flag, missing value, bad slug",
    ),
    (INVALID, "invalid", "a protocol file is invalid"),
    (
        NOT_FOUND,
        "not-found",
        "the request, exchange or file does not exist",
    ),
    (
        CONFLICT,
        "conflict",
        "refused: reply exists, id or direction mismatch",
    ),
    (
        RECURSION,
        "recursion",
        "call: refused, relay calls nested deeper than RELAY_MAX_DEPTH",
    ),
    (
        VERIFY_FAILED,
        "verify-failed",
        "call: reply is done but verify is fail",
    ),
    (STATUS_ERROR, "status-error", "call: reply status is error"),
    (
        NO_REPLY,
        "no-reply",
        "call: peer ended without a valid reply",
    ),
    (
        OUT_OF_SCOPE,
        "out-of-scope",
        "call: the peer changed files outside .relay/ its mode forbids",
    ),
    (
        REJECTED,
        "rejected",
        "review/fan: verdict fail, a finding at --fail-on, or quorum not met",
    ),
    (
        BLOCKED,
        "blocked",
        "call: the peer is blocked and needs an answer (status error, state blocked)",
    ),
    (
        REFUSED,
        "refused",
        "call: the peer refused, out of its scope (status error, state refused)",
    ),
    (
        OPEN_WORK,
        "open-work",
        "close: a request or handoff in the session is still open, or nothing to approve",
    ),
    (
        VERIFY_MISMATCH,
        "verify-mismatch",
        "call: the peer's verify and relay's own run of --verify-cmd disagree",
    ),
    (
        UNAVAILABLE,
        "unavailable",
        "ci: a reviewer is not available here (CLI missing, no network)",
    ),
    (TIMEOUT, "timeout", "call: peer timed out and was killed"),
    (
        PEER_NOT_FOUND,
        "peer-not-found",
        "call: the peer CLI is not installed",
    ),
    (
        INTERRUPTED,
        "interrupted",
        "relay was interrupted; the peer was killed",
    ),
];
