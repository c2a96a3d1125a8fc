//! The relay file protocol.
//!
//! relay lets one coding agent hand a task to another through plain files under a project's
//! `.relay/` directory. This crate is the format: types, parsing, validation, serialization,
//! ids, sessions and paths. It starts no process and knows nothing of the command line.
//!
//! The lifecycle of an exchange:
//!
//! 1. The caller writes a request with [`create_request`]: `.relay/<id>.req.md` for a one-shot
//!    exchange, `.relay/<session>/<turn>.req.md` for a session turn. Its frontmatter routes it
//!    (`relay`, `id`, `from`, `to`, ...), its body is the task, and its footer tells the peer
//!    which file to write and how.
//! 2. The peer writes the reply, `.res.md` beside the request ([`reply_path`]), with `status`
//!    ([`Status`]) and `verify` ([`Verify`]), by hand or with [`write_response`].
//! 3. The caller reads it back with [`parse`] or [`validate_file`], which report every problem
//!    as `path:line: field: message` ([`Diagnostic`]).
//!
//! The normative description is `spec/PROTOCOL.md` in the repository.
//!
//! ```
//! use relay_core::{Message, Status, Verify, parse};
//! use std::path::Path;
//!
//! let text = "---\nrelay: 4\nre: 20260219-1630-auth-review\nfrom: codex\nto: claude\n\
//!             status: done\nverify: pass\n---\n\nAll 12 tests pass.\n";
//! let parsed = parse(Path::new("20260219-1630-auth-review.res.md"), text);
//! let Some(Message::Response(reply)) = parsed.message else { panic!("{:?}", parsed.diagnostics) };
//! assert_eq!((reply.status, reply.verify), (Status::Done, Verify::Pass));
//! assert_eq!(reply.body, "All 12 tests pass.\n");
//!
//! // `status: yes` is an error, not a boolean, and the diagnostic says where.
//! let bad = text.replace("status: done", "status: yes");
//! let parsed = parse(Path::new("20260219-1630-auth-review.res.md"), &bad);
//! assert_eq!(
//!     parsed.diagnostics[0].to_string(),
//!     "20260219-1630-auth-review.res.md:6: status: must be `done` or `error`, got \"yes\""
//! );
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod exit;
pub mod fields;
mod frontmatter;
pub mod handoff;
mod layout;
pub mod ledger;
mod message;
pub mod review;
mod store;
pub mod untrusted;
mod validate;

pub use crate::error::{Diagnostic, Error, InvalidFile, Result, Severity};
pub use crate::layout::{
    BESIDE_ALL, BESIDE_CHANGES, BESIDE_FINDINGS, BESIDE_PATCH, BESIDE_RESUME_FAILED_LOGS,
    BESIDE_RUN_RECORD, BESIDE_STDERR_LOG, BESIDE_STDOUT_LOG, BESIDE_SUPERVISOR_LOG,
    BESIDE_VERIFY_LOG, CACHE_DIR, CALL_LOG, RELAY_DIR_NAME, RelayDir, beside, reply_path, stem_of,
    swap_suffix,
};
pub use crate::message::{
    ErrorState, FINAL_MESSAGE_RULE, FileKind, Footer, HANDOFF, KINDS, MAX_BODY_BYTES,
    MAX_FILE_BYTES, MAX_FRONTMATTER_KEYS, MIN_VERSION, Message, Parsed, RESPONSE_PLACEHOLDER,
    Request, Response, STATE_RULE, Status, VERIFY_RULE, VERSION, Verify, WRITE_FILE_RULE,
    a2a_state, check_body, parse,
};
pub use crate::store::{
    Attachment, CacheWrite, Created, DirSurvey, Exchange, MAX_RUN_RECORD_BYTES, NewRequest,
    NewResponse, ReplyState, RunState, RunSummary, Target, Turn, create_request, read_header,
    read_request, read_run_summary, read_text, scan, session_turns, survey, unanswered_requests,
    write_new, write_replace, write_response,
};
pub use crate::validate::{Report, validate_file};
