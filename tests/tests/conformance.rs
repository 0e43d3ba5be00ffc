//! The conformance runner (`src/bin/xrcp-conformance.rs`, `docs/conformance.md`) against our
//! own `xrcp-ctrl` and `xrcp-host`: every scenario must pass.
//!
//! The binaries come from `xrcp_tests::cli::binaries()` (built with the test's profile, or
//! taken from `XRCP_BIN_DIR`). The runner is a child process with a hard time limit, so a
//! hanging IUT or runner fails this test instead of stalling the suite. The multicast
//! scenarios need a network namespace (root, iproute2); without one they are reported as
//! `SKIP`, which fails this test only when `XRCP_REQUIRE_NETNS=1` (set by CI).

use std::process::Command;
use std::time::{Duration, Instant};

const RUNNER: &str = env!("CARGO_BIN_EXE_xrcp-conformance");
/// The run takes about 30 s on a loaded 2-core machine; this only bounds a hang.
const LIMIT: Duration = Duration::from_secs(240);

/// `--ctrl-cmd`/`--host-cmd` are shell fragments (`sh -c 'exec CMD "$@"'`): quote the path.
fn shell_quote(p: &std::path::Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn our_controller_and_host_pass_every_conformance_scenario() {
    let bins = xrcp_tests::cli::binaries();
    let mut cmd = Command::new(RUNNER);
    cmd.args(["--ctrl-cmd", &shell_quote(&bins.ctrl)])
        .args(["--host-cmd", &shell_quote(&bins.host)])
        .args(["--jobs", "8"]);
    let started = Instant::now();
    let out = xrcp_tests::cli::run(cmd, LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    eprintln!(
        "conformance run took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    let summary = stdout.lines().last().unwrap_or("");
    assert!(
        summary.ends_with(" passed, 0 failed") && failures.is_empty() && out.status.success(),
        "conformance failures ({}):\n{}",
        out.status,
        failures.join("\n")
    );
    let passed: u32 = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed > 0, "no scenario passed: {summary}");

    let skipped: Vec<&str> = stdout.lines().filter(|l| l.starts_with("SKIP ")).collect();
    if std::env::var("XRCP_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        assert!(
            skipped.is_empty(),
            "XRCP_REQUIRE_NETNS=1 but scenarios were skipped:\n{}",
            skipped.join("\n")
        );
    }
}
