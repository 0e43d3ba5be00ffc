#![no_main]
//! See `xrcp_fuzz::session_sequence` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| xrcp_fuzz::session_sequence::run(data));
