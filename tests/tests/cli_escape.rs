//! A peer's device name cannot drive the other side's terminal (issue #12, finding 5;
//! docs/security/terminal-and-secrets.md).
//!
//! Both programs run with device names full of terminal controls: an OSC window title
//! (`ESC ] 0 ; … BEL`), a screen clear (`ESC [ 2 J`), a carriage return followed by a fake
//! line, and a right-to-left override. The controller's name reaches the host in the
//! invitation, before any code is compared (`inspect`, `/connect remote ctrl`); the host's
//! reaches the controller in its HELLO. Every line either program prints, on stdout and
//! stderr, must be free of those characters and show them escaped instead.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xrcp_tests::cli::{binaries, run, Proc};

const STEP: Duration = Duration::from_secs(15);
const LIFE: Duration = Duration::from_secs(90);

/// Terminal controls a hostile name may carry.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rremote host 9 connected\u{202e}gpj.exe";
/// How [`HOSTILE`] must be shown.
const SHOWN: &str = "\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rremote host 9 connected\\u{202e}gpj.exe";
/// Characters that must never be printed raw.
const RAW: [char; 4] = ['\u{1b}', '\u{7}', '\r', '\u{202e}'];

fn ctrl_name() -> String {
    format!("desk{HOSTILE}")
}

fn host_name() -> String {
    format!("phone{HOSTILE}")
}

fn program(path: &Path, data: &Path, name: &str, args: &[&str]) -> Command {
    let mut c = Command::new(path);
    // Their own log lines (stderr) are checked too.
    c.env("RUST_LOG", "xrcp=debug,xrcp_ctrl=debug,xrcp_host=debug")
        .arg("--data-dir")
        .arg(data)
        .arg("--device-name")
        .arg(name)
        .args(args);
    c
}

/// Reads lines until one contains `needle`; returns it.
fn until(p: &mut Proc, needle: &str) -> String {
    let end = Instant::now() + STEP;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = p
            .try_line(left)
            .unwrap_or_else(|| panic!("no line with {needle:?} within {STEP:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// The text holds none of [`RAW`].
fn assert_clean(what: &str, text: &str) {
    let found: Vec<char> = RAW.iter().copied().filter(|c| text.contains(*c)).collect();
    assert!(
        found.is_empty(),
        "{what}: raw terminal controls {found:?} printed:\n{}",
        text.escape_debug()
    );
}

#[test]
fn hostile_device_names_are_shown_escaped_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let (cd, hd) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let bins = binaries();
    let mut ctrl = Proc::spawn(
        "xrcp-ctrl",
        program(&bins.ctrl, &cd, &ctrl_name(), &[]),
        LIFE,
    );
    let mut host = Proc::spawn(
        "xrcp-host",
        program(&bins.host, &hd, &host_name(), &[]),
        LIFE,
    );
    until(&mut ctrl, "/help for commands");
    until(&mut host, "/help for commands");

    ctrl.send("/start remote host new addr=127.0.0.1 iface=lo");
    until(&mut ctrl, "Remote session invitation:");
    let link = ctrl.line(STEP);
    assert!(link.starts_with("xrcp:/"), "{link:?}");

    // The controller's name from the link, before anything is verified.
    let out = run(program(&bins.host, &hd, "phone", &["inspect", &link]), STEP).unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_clean("xrcp-host inspect", &text);
    assert!(
        text.contains(&format!("controller_device_name: desk{SHOWN}")),
        "{}",
        text.escape_debug()
    );

    host.send(&format!("/connect remote ctrl {link}"));
    let line = until(&mut host, "connecting new remote controller: ");
    assert!(
        line.starts_with(&format!("connecting new remote controller: desk{SHOWN}, v")),
        "{}",
        line.escape_debug()
    );
    let verify = until(&mut host, "/verify remote ctrl ");
    host.send(&verify);
    let line = until(&mut host, "session started with ");
    assert_eq!(
        line,
        format!("remote controller 1 session started with desk{SHOWN} (with compression)")
    );

    let line = until(&mut ctrl, "new remote host 1 added: ");
    assert_eq!(line, format!("new remote host 1 added: phone{SHOWN}"));
    until(&mut ctrl, "remote host 1 connected");
    ctrl.send("/list remote hosts");
    let line = until(&mut ctrl, "1. phone");
    assert!(
        line.starts_with(&format!("1. phone{SHOWN} (connected)")),
        "{}",
        line.escape_debug()
    );
    ctrl.send("/switch remote host 1");
    let line = until(&mut ctrl, "Using remote host 1");
    assert_eq!(line, format!("Using remote host 1 (phone{SHOWN})"));

    // A note with the same controls, written from the controller, listed on both sides.
    ctrl.send(&format!("/note n{HOSTILE}"));
    until(&mut ctrl, "note 1 added");
    ctrl.send("/notes");
    let line = until(&mut ctrl, "1. n");
    assert_eq!(line, format!("1. n{SHOWN}"));
    let line = until(&mut host, "[controller] ");
    assert!(line.contains(SHOWN), "{}", line.escape_debug());

    host.send("/stop remote ctrl");
    until(&mut ctrl, "remote host 1 stopped");
    ctrl.send("/quit");
    host.send("/quit");
    ctrl.wait(STEP);
    host.wait(STEP);
    assert_clean("xrcp-ctrl", &ctrl.transcript());
    assert_clean("xrcp-host", &host.transcript());

    // The stored names, listed by the scripting commands.
    for (what, cmd, expected) in [
        (
            "xrcp-ctrl list",
            program(&bins.ctrl, &cd, "desk", &["list"]),
            format!("1. phone{SHOWN}"),
        ),
        (
            "xrcp-host list",
            program(&bins.host, &hd, "phone", &["list"]),
            format!("1. desk{SHOWN}"),
        ),
    ] {
        let out = run(cmd, STEP).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_clean(what, &text);
        assert!(
            text.lines().any(|l| l == expected),
            "{what}: {}",
            text.escape_debug()
        );
    }
}
