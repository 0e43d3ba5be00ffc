#![no_main]
//! See `xrcp_fuzz::tls_capture` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| xrcp_fuzz::tls_capture::run(data));
