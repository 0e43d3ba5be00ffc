//! `xrcp-conformance`: plays an honest or a deliberately broken controller or host against
//! an XRCP implementation under test, driven only through its scripting interface.
//!
//! ```text
//! xrcp-conformance --ctrl-cmd target/debug/xrcp-ctrl --host-cmd target/debug/xrcp-host [--only PATTERN]
//! ```
//!
//! Prints `PASS name` / `FAIL name: why` / `SKIP name: why` per scenario, then
//! `N passed, M failed`; exits non-zero on any failure. Scenarios: `docs/conformance.md`.

#[path = "../conformance/mod.rs"]
mod conformance;

fn main() -> std::process::ExitCode {
    conformance::main()
}
