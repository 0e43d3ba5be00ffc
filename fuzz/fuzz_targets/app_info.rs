#![no_main]
//! See `xrcp_fuzz::app_info` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| xrcp_fuzz::app_info::run(data));
