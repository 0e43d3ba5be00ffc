#![no_main]
//! See `xrcp_fuzz::host_hello` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| xrcp_fuzz::host_hello::run(data));
