//! Fuzz harnesses for xrcp, one module per target (see `README.md`).
//!
//! Each module's `run(&[u8])` is what its `fuzz_targets/<name>.rs` calls; keeping the bodies
//! in this library lets `tests/replay.rs` (and any other test) replay saved inputs without
//! libFuzzer. Every harness panics on a violated invariant; "no panic" is the baseline.

pub mod common;

pub mod announcement;
pub mod app_info;
pub mod block;
pub mod ctrl_hello;
pub mod handshake;
pub mod host_hello;
pub mod invitation;
pub mod protocol_json;
pub mod session_body;
pub mod session_sequence;
pub mod tls_capture;
pub mod tls_chain;

/// Every target by name, in the order `run.sh` runs them.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("invitation", invitation::run),
    ("announcement", announcement::run),
    ("block", block::run),
    ("host_hello", host_hello::run),
    ("ctrl_hello", ctrl_hello::run),
    ("session_body", session_body::run),
    ("app_info", app_info::run),
    ("protocol_json", protocol_json::run),
    ("tls_capture", tls_capture::run),
    ("tls_chain", tls_chain::run),
    ("handshake", handshake::run),
    ("session_sequence", session_sequence::run),
];

/// The harness of target `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
