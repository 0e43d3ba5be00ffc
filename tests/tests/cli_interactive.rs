//! The interactive modes of both programs in real terminals (tmux), with the SimpleX CLI texts
//! (docs/cli.md): link with `/start remote host new`
//! and `/connect remote ctrl`, compare and `/verify` the code, drive the host from the
//! controller, the host's locked console, `/stop remote ctrl`, the lists, then a used link and
//! a wrong code, and `/quit`.
//!
//! Needs tmux (Debian package `tmux`; `.ci/run` installs it when missing). The tmux server has
//! a private socket in the test's temporary directory and is killed, with both programs, when
//! the test ends.

use std::path::Path;
use std::time::Duration;

use xrcp_tests::cli::{binaries, Tmux};

const STEP: Duration = Duration::from_secs(15);
/// A program's start (generous: a loaded machine may take a while to load a debug binary).
const START: Duration = Duration::from_secs(30);
const CTRL: &str = "ctrl";
const HOST: &str = "host";

/// Types `line` into terminal `name` and returns the mark after it (the program's answer
/// comes after the echoed line).
fn enter(t: &Tmux, name: &str, line: &str) -> usize {
    let mark = t.mark(name);
    t.type_line(name, line);
    // The terminal echoes what was typed; answers come after it.
    let (at, _) = t.wait_for(name, mark, line.get(..40).unwrap_or(line), STEP);
    at + 1
}

/// Waits for `needle` after `mark`; returns the new mark (after that line) and the line.
fn expect(t: &Tmux, name: &str, mark: usize, needle: &str) -> (usize, String) {
    let (at, line) = t.wait_for(name, mark, needle, STEP);
    (at + 1, line)
}

/// `/start remote host …` on the controller: checks the SimpleX lines and returns the link.
fn start(t: &Tmux, command: &str, started: &str) -> (usize, String) {
    let m = enter(t, CTRL, command);
    let (m, line) = expect(t, CTRL, m, started);
    let port: u16 = line
        .strip_prefix(&format!("{started}127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not '{started}127.0.0.1:<port>': {line:?}"));
    assert_ne!(port, 0);
    let (at, _) = t.wait_for(CTRL, m, "Remote session invitation:", STEP);
    let link = t.line_after(CTRL, at, STEP);
    assert!(
        link.starts_with("xrcp:/") && link.contains(&format!("@127.0.0.1:{port}#/?")),
        "{link:?}"
    );
    (at + 2, link)
}

/// `/connect remote ctrl <link>` on the host up to the code; returns the code it shows.
fn connect(t: &Tmux, link: &str, connecting: &str, connected: &str) -> String {
    let m = enter(t, HOST, &format!("/connect remote ctrl {link}"));
    let (m, line) = expect(t, HOST, m, connecting);
    assert!(
        line.starts_with(&format!("{connecting}desk, v")),
        "{line:?}"
    );
    let (m, _) = expect(t, HOST, m, connected);
    let (m, _) = expect(t, HOST, m, "Compare session code with controller and use:");
    let (_, verify) = expect(t, HOST, m, "/verify remote ctrl ");
    verify
        .strip_prefix("/verify remote ctrl ")
        .unwrap_or_else(|| panic!("{verify:?}"))
        .to_owned()
}

fn open(t: &Tmux, dir: &Path) {
    let (d1, d2) = (dir.join("ctrl"), dir.join("host"));
    let bins = binaries();
    t.open(
        CTRL,
        &bins.ctrl,
        &["--data-dir", d1.to_str().unwrap(), "--device-name", "desk"],
    );
    t.open(
        HOST,
        &bins.host,
        &["--data-dir", d2.to_str().unwrap(), "--device-name", "phone"],
    );
    t.wait_for(CTRL, 0, "xrcp-ctrl: /help for commands", START);
    t.wait_for(HOST, 0, "xrcp-host: /help for commands", START);
}

#[test]
fn link_verify_drive_stop_and_errors_in_terminals() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open(&t, tmp.path());

    // The controller offers a session; the host connects and shows the code to compare.
    let (cm, link) = start(
        &t,
        "/start remote host new addr=127.0.0.1 iface=lo",
        "new remote host started on ",
    );
    let host_code = connect(
        &t,
        &link,
        "connecting new remote controller: ",
        "new remote controller connected",
    );
    let (cm, _) = expect(&t, CTRL, cm, "new remote host connecting");
    let (cm, _) = expect(&t, CTRL, cm, "Compare session code with host:");
    let ctrl_code = t.line_after(CTRL, cm - 1, STEP);
    assert_eq!(ctrl_code, host_code, "both terminals show the same code");
    assert!(ctrl_code
        .split(' ')
        .all(|g| g.len() <= 5 && g.bytes().all(|b| b.is_ascii_digit())));

    // The user types the controller's code on the host.
    let hm = enter(&t, HOST, &format!("/verify remote ctrl {ctrl_code}"));
    let (hm, _) = expect(
        &t,
        HOST,
        hm,
        "remote controller 1 session started with desk (with compression)",
    );
    let (cm, _) = expect(&t, CTRL, cm, "new remote host 1 added: phone");
    let (_, _) = expect(&t, CTRL, cm, "remote host 1 connected (with compression)");

    let m = enter(&t, CTRL, "/list remote hosts");
    let (m, _) = expect(&t, CTRL, m, "Remote hosts:");
    let (_, line) = expect(&t, CTRL, m, "1. phone");
    assert_eq!(line, "1. phone (connected) [lo 127.0.0.1]");

    // Commands typed on the controller run on the host.
    let m = enter(&t, CTRL, "/note hello from the desk");
    expect(&t, CTRL, m, "note 1 added");
    let (hm, _) = expect(&t, HOST, hm, "[controller] /note hello from the desk");
    let m = enter(&t, CTRL, "/notes");
    expect(&t, CTRL, m, "1. hello from the desk");
    let (hm, _) = expect(&t, HOST, hm, "[controller] /notes");
    let m = enter(&t, CTRL, "/launch rockets");
    expect(&t, CTRL, m, "error: unknown command: /launch rockets");
    let (_, _) = expect(&t, HOST, hm, "[controller] /launch rockets");

    // The host's console is locked while the controller drives it…
    for cmd in ["/notes", "/list remote ctrls", "/note from the phone"] {
        let m = enter(&t, HOST, cmd);
        expect(
            &t,
            HOST,
            m,
            "a remote controller is using this device; /stop remote ctrl to take it back",
        );
    }
    // …except for /stop remote ctrl.
    let m = enter(&t, HOST, "/stop remote ctrl");
    expect(&t, HOST, m, "ok");
    expect(&t, CTRL, 0, "remote host 1 stopped");

    // Back to local use on both sides; each lists the other, no longer connected.
    let m = enter(&t, HOST, "/list remote ctrls");
    let (m, _) = expect(&t, HOST, m, "Remote controllers:");
    let (_, line) = expect(&t, HOST, m, "1. desk");
    assert_eq!(line, "1. desk");
    let m = enter(&t, HOST, "/notes");
    expect(&t, HOST, m, "1. hello from the desk");
    let m = enter(&t, CTRL, "/list remote hosts");
    let (_, line) = expect(&t, CTRL, m, "1. phone");
    assert_eq!(line, "1. phone [lo 127.0.0.1]");
    let m = enter(&t, CTRL, "/notes");
    expect(&t, CTRL, m, "no remote host selected");

    // A used link: its session is over, nothing listens there any more.
    let m = enter(&t, HOST, &format!("/connect remote ctrl {link}"));
    let (m, line) = expect(&t, HOST, m, "connecting remote controller 1: desk, v");
    assert!(
        line.starts_with("connecting remote controller 1: desk, v"),
        "{line:?}"
    );
    let (m, _) = expect(&t, HOST, m, "remote controller stopped");
    let (_, line) = expect(&t, HOST, m, "remote controller error: ");
    assert!(
        line.starts_with("remote controller error: nothing answers at 127.0.0.1:"),
        "{line:?}"
    );

    // A wrong code, three times: the host ends the connection before its HELLO (the first
    // two ask again).
    let (_, link2) = start(&t, "/start remote host 1", "remote host 1 started on ");
    assert_ne!(link2, link);
    let code = connect(
        &t,
        &link2,
        "connecting remote controller 1: ",
        "remote controller 1 connected",
    );
    assert_ne!(code.replace(' ', ""), "1234567890");
    for left in ["2 tries left", "1 try left"] {
        let m = enter(&t, HOST, "/verify remote ctrl 12345 67890");
        expect(&t, HOST, m, left);
    }
    let m = enter(&t, HOST, "/verify remote ctrl 12345 67890");
    let (m, _) = expect(&t, HOST, m, "remote controller stopped");
    let (_, line) = expect(&t, HOST, m, "remote controller error: ");
    assert!(
        line.starts_with("remote controller error: the code typed is not this session's code"),
        "{line:?}"
    );
    let (_, line) = expect(&t, CTRL, 0, "remote host 1 error:");
    assert!(
        line.starts_with("remote host 1 error: host disconnected"),
        "{line:?}"
    );

    // /quit ends both programs (without the next line or EOF on stdin), with status 0.
    t.type_line(HOST, "/quit");
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(HOST, STEP), 0);
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

/// EOF on the terminal (Ctrl-D) ends each program like /quit.
#[test]
fn ctrl_d_quits() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open(&t, tmp.path());
    t.ctrl_d(CTRL);
    t.ctrl_d(HOST);
    assert_eq!(t.exit_status(CTRL, STEP), 0);
    assert_eq!(t.exit_status(HOST, STEP), 0);
}
