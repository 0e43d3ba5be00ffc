//! Line editing in both interactive modes, in real terminals (tmux): arrows recall and edit,
//! Tab completes a command, history survives a restart in a private file without session
//! codes or links, a line printed in the background leaves the line being typed intact, and
//! each of a host's results is shown once on the controller.
//!
//! Needs tmux (see cli_interactive.rs).

use std::path::Path;
use std::time::{Duration, Instant};

use xrcp_tests::cli::{binaries, Tmux};

const STEP: Duration = Duration::from_secs(15);
/// A program's start (a loaded machine may take a while to load a debug binary).
const START: Duration = Duration::from_secs(30);
const CTRL: &str = "ctrl";
const HOST: &str = "host";

fn open_ctrl(t: &Tmux, dir: &Path) {
    let d = dir.join("ctrl");
    let args = ["--data-dir", d.to_str().unwrap(), "--device-name", "desk"];
    t.open(CTRL, &binaries().ctrl, &args);
    t.wait_for(CTRL, 0, "xrcp-ctrl: /help for commands", START);
}

fn open_host(t: &Tmux, dir: &Path, name: &str) {
    let d = dir.join("host");
    let args = ["--data-dir", d.to_str().unwrap(), "--device-name", "phone"];
    t.open(name, &binaries().host, &args);
    t.wait_for(name, 0, "xrcp-host: /help for commands", START);
}

/// Waits until the terminal's last line (the line being typed) is `text`.
fn wait_input(t: &Tmux, name: &str, text: &str) {
    let end = Instant::now() + STEP;
    loop {
        let lines = t.lines(name);
        if lines.last().is_some_and(|l| l == text) {
            return;
        }
        if Instant::now() >= end {
            panic!(
                "terminal {name}: the input line is not {text:?}\n--- screen ---\n{}",
                lines.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines after `mark` that equal `text`.
fn count(t: &Tmux, name: &str, mark: usize, text: &str) -> usize {
    t.lines(name)
        .iter()
        .skip(mark)
        .filter(|l| l.as_str() == text)
        .count()
}

/// Types `line` and Enter; returns the mark after its echo.
fn enter(t: &Tmux, name: &str, line: &str) -> usize {
    let mark = t.mark(name);
    t.type_line(name, line);
    let (at, _) = t.wait_for(name, mark, line.get(..40).unwrap_or(line), STEP);
    at + 1
}

#[test]
fn arrows_recall_and_edit_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path());

    let m = enter(&t, CTRL, "/list remote hosts");
    t.wait_for(CTRL, m, "No remote hosts", STEP);

    // Up recalls the previous command, as typed; Enter runs it again.
    let m = t.mark(CTRL);
    t.keys(CTRL, &["Up"]);
    wait_input(&t, CTRL, "/list remote hosts");
    t.keys(CTRL, &["Enter"]);
    t.wait_for(CTRL, m, "No remote hosts", STEP);

    // Left moves into the line: a letter typed there goes in the middle.
    let m = t.mark(CTRL);
    t.type_text(CTRL, "/lst remote hosts");
    wait_input(&t, CTRL, "/lst remote hosts");
    t.keys(CTRL, &["Left"; 15]);
    t.type_text(CTRL, "i");
    wait_input(&t, CTRL, "/list remote hosts");
    // Right and Home/End move too: a word added at the end.
    t.keys(CTRL, &["Home", "Right", "Right", "End"]);
    t.keys(CTRL, &["Enter"]);
    t.wait_for(CTRL, m, "No remote hosts", STEP);
    assert_eq!(count(&t, CTRL, m, "/list remote hosts"), 1);

    t.keys(CTRL, &["C-d"]);
    assert_eq!(t.exit_status(CTRL, STEP), 0);
}

#[test]
fn tab_completes_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path());
    open_host(&t, tmp.path(), HOST);

    t.type_text(CTRL, "/list re");
    t.keys(CTRL, &["Tab"]);
    wait_input(&t, CTRL, "/list remote hosts");
    let m = t.mark(CTRL);
    t.keys(CTRL, &["Enter"]);
    t.wait_for(CTRL, m - 1, "No remote hosts", STEP);

    t.type_text(HOST, "/list re");
    t.keys(HOST, &["Tab"]);
    wait_input(&t, HOST, "/list remote ctrls");
    let m = t.mark(HOST);
    t.keys(HOST, &["Enter"]);
    t.wait_for(HOST, m - 1, "No remote controllers", STEP);

    // A prefix of several commands completes what they share.
    t.type_text(HOST, "/ver");
    t.keys(HOST, &["Tab"]);
    wait_input(&t, HOST, "/verify remote ctrl");
}

#[cfg(unix)]
#[test]
fn history_survives_a_restart_in_a_private_file_without_codes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_host(&t, tmp.path(), HOST);

    let m = enter(&t, HOST, "/list remote ctrls");
    t.wait_for(HOST, m, "No remote controllers", STEP);
    // A session code (nothing waits for one: an error) and a bare code stay out of the file.
    let m = enter(&t, HOST, "/verify remote ctrl 12345 67890 13579");
    t.line_after(HOST, m - 1, STEP);
    let m = enter(&t, HOST, "24680 97531");
    t.line_after(HOST, m - 1, STEP);
    // …but the session that typed it can recall it.
    t.keys(HOST, &["Up", "Up"]);
    wait_input(&t, HOST, "/verify remote ctrl 12345 67890 13579");
    t.keys(HOST, &["C-u"]);
    t.type_line(HOST, "/quit");
    assert_eq!(t.exit_status(HOST, STEP), 0);

    let file = tmp.path().join("host").join("history");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "history file mode {mode:o}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("/list remote ctrls"), "{text:?}");
    assert!(
        !text.contains("12345"),
        "a typed code is in the history: {text:?}"
    );
    assert!(
        !text.contains("24680"),
        "a typed code is in the history: {text:?}"
    );

    // A new run recalls the last session's commands (the last one was /quit).
    open_host(&t, tmp.path(), "host2");
    let m = t.mark("host2");
    t.keys("host2", &["Up", "Up"]);
    wait_input(&t, "host2", "/list remote ctrls");
    t.keys("host2", &["Enter"]);
    t.wait_for("host2", m, "No remote controllers", STEP);
}

/// `/start remote host new` on the controller, `/connect` and `/verify` on the host.
fn link(t: &Tmux) {
    let m = enter(t, CTRL, "/start remote host new addr=127.0.0.1 iface=lo");
    let (at, _) = t.wait_for(CTRL, m, "Remote session invitation:", STEP);
    let link = t.line_after(CTRL, at, STEP);
    assert!(link.starts_with("xrcp:/"), "{link:?}");
    let m = enter(t, HOST, &format!("/connect remote ctrl {link}"));
    let (_, verify) = t.wait_for(HOST, m, "/verify remote ctrl ", STEP);
    let code = verify.trim_start_matches("/verify remote ctrl ").to_owned();
    let m = enter(t, HOST, &format!("/verify remote ctrl {code}"));
    t.wait_for(HOST, m, "session started with desk", STEP);
    t.wait_for(CTRL, 0, "remote host 1 connected", STEP);
}

#[test]
fn each_result_is_shown_once() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path());
    open_host(&t, tmp.path(), HOST);
    link(&t);

    // Each result once: the host also announces the added note as an event.
    let m = enter(&t, CTRL, "/note hello");
    t.wait_for(CTRL, m, "note 1 added", STEP);
    let m2 = enter(&t, CTRL, "/notes");
    t.wait_for(CTRL, m2, "1. hello", STEP);
    // The host has seen both commands: its event for the note went out before its answer.
    t.wait_for(HOST, 0, "[controller] /notes", STEP);
    let lines = t.lines(CTRL);
    let said: Vec<&String> = lines
        .iter()
        .skip(m)
        .filter(|l| l.contains("note 1 added"))
        .collect();
    assert_eq!(said, ["note 1 added"], "{}", lines.join("\n"));
}

#[test]
fn background_lines_keep_the_line_being_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    open_ctrl(&t, tmp.path());
    open_host(&t, tmp.path(), HOST);
    link(&t);

    // The host ends the session while a line is half typed on the controller: the
    // controller's line about it appears above, the typed text stays and can be finished.
    t.type_text(CTRL, "/list rem");
    wait_input(&t, CTRL, "/list rem");
    let m = t.mark(CTRL);
    let hm = enter(&t, HOST, "/stop remote ctrl");
    t.wait_for(HOST, hm, "ok", STEP);
    t.wait_for(CTRL, m - 1, "remote host 1 stopped", STEP);
    wait_input(&t, CTRL, "/list rem");
    assert_eq!(count(&t, CTRL, m - 1, "remote host 1 stopped"), 1);
    t.type_text(CTRL, "ote hosts");
    let m = t.mark(CTRL);
    t.keys(CTRL, &["Enter"]);
    t.wait_for(CTRL, m - 1, "1. phone", STEP);

    // The host too: a line typed there survives the controller's stop.
    link_again(&t);
    t.type_text(HOST, "/list remote");
    wait_input(&t, HOST, "/list remote");
    let m = t.mark(HOST);
    let cm = enter(&t, CTRL, "/stop remote host 1");
    t.wait_for(CTRL, cm, "ok", STEP);
    t.wait_for(HOST, m - 1, "remote controller stopped", STEP);
    wait_input(&t, HOST, "/list remote");
    t.type_text(HOST, " ctrls");
    let m = t.mark(HOST);
    t.keys(HOST, &["Enter"]);
    t.wait_for(HOST, m - 1, "1. desk", STEP);

    // Neither the link nor the code went into the host's history file.
    let text = std::fs::read_to_string(tmp.path().join("host").join("history")).unwrap();
    assert!(!text.contains("/verify"), "{text:?}");
    assert!(!text.contains("xrcp:/"), "{text:?}");
}

/// A paired host connects again through a new link from `/start remote host 1`.
fn link_again(t: &Tmux) {
    let start = t.mark(CTRL);
    let m = enter(t, CTRL, "/start remote host 1 addr=127.0.0.1");
    let (at, _) = t.wait_for(CTRL, m, "Remote session invitation:", STEP);
    let link = t.line_after(CTRL, at, STEP);
    let m = enter(t, HOST, &format!("/connect remote ctrl {link}"));
    let (_, verify) = t.wait_for(HOST, m, "/verify remote ctrl ", STEP);
    let code = verify.trim_start_matches("/verify remote ctrl ").to_owned();
    let m = enter(t, HOST, &format!("/verify remote ctrl {code}"));
    t.wait_for(HOST, m, "session started with desk", STEP);
    t.wait_for(CTRL, start, "remote host 1 connected", STEP);
}
