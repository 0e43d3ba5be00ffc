#![no_main]
//! See `xrcp_fuzz::ctrl_hello` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| xrcp_fuzz::ctrl_hello::run(data));
