//! The controller's chat view in a real terminal (tmux), linked to a host that speaks the chat
//! API (`src/bin/xrcp-chat-host.rs`, answering with the documented shapes of
//! `xrcp-ctrl/tests/golden/chat/`): the chat list, opening a chat, sending, an event arriving
//! while a line is half typed, a response the view does not know, a huge chat list, a chat
//! file fetched and a file sent into a chat; then the same from an iOS (Swift-encoding) host.
//!
//! Needs tmux (Debian package `tmux`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xrcp_tests::cli::{binaries, Proc, Tmux};

const STEP: Duration = Duration::from_secs(15);
const START: Duration = Duration::from_secs(30);
const CTRL: &str = "ctrl";

/// Types `line` and returns the mark after its echo.
fn enter(t: &Tmux, line: &str) -> usize {
    let mark = t.mark(CTRL);
    t.type_line(CTRL, line);
    let (at, _) = t.wait_for(CTRL, mark, line.get(..40).unwrap_or(line), STEP);
    at + 1
}

fn expect(t: &Tmux, mark: usize, needle: &str) -> (usize, String) {
    let (at, line) = t.wait_for(CTRL, mark, needle, STEP);
    (at + 1, line)
}

/// The next line of the host that starts with `prefix`.
fn host_line(host: &mut Proc, prefix: &str) -> String {
    let end = Instant::now() + STEP;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match host.try_line(left) {
            Some(l) if l.starts_with(prefix) => return l,
            Some(_) => {}
            None => panic!("the chat host said no line starting with {prefix:?}"),
        }
    }
}

/// The controller in a terminal (working folder `dir`: downloads land there, time zone `tz`),
/// a new host session, and the chat host connected to it.
fn link(t: &Tmux, dir: &Path, swift: bool, tz: &str) -> (Proc, usize) {
    let data = dir.join("ctrl");
    let ctrl = binaries().ctrl.to_str().unwrap().to_owned();
    let dir_s = dir.to_str().unwrap().to_owned();
    let data_s = data.to_str().unwrap().to_owned();
    t.open(
        CTRL,
        Path::new("/usr/bin/env"),
        &[
            "-C",
            &dir_s,
            &format!("TZ={tz}"),
            &ctrl,
            "--data-dir",
            &data_s,
            "--device-name",
            "desk",
        ],
    );
    t.wait_for(CTRL, 0, "xrcp-ctrl: /help for commands", START);
    let m = enter(t, "/start remote host new addr=127.0.0.1 iface=lo");
    let (at, _) = t.wait_for(CTRL, m, "Remote session invitation:", STEP);
    let link = t.line_after(CTRL, at, STEP);
    assert!(link.starts_with("xrcp:/"), "{link:?}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xrcp-chat-host"));
    cmd.arg("--files").arg(dir.join("phone"));
    if swift {
        cmd.arg("--swift");
    }
    cmd.arg(&link);
    let mut host = Proc::spawn("chat host", cmd, Duration::from_secs(300));
    host_line(&mut host, "CONNECTED");
    let (m, _) = expect(t, at, "remote host 1 connected");
    (host, m)
}

#[test]
fn chats_messages_events_and_files_in_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    let (mut host, _) = link(&t, tmp.path(), false, "UTC");

    // The chat list, with unread counts and the last message.
    let m = enter(&t, "/chats");
    assert_eq!(
        host_line(&mut host, "COMMAND"),
        "COMMAND /_get chats 1 pcc=on"
    );
    let (m, l) = expect(&t, m, "@alice");
    assert_eq!(l, "@alice (2 unread): 10:15 hi there");
    let (m, l) = expect(&t, m, "#team");
    assert_eq!(l, "#team (1 unread): 10:20 bob> see you at 5");
    let (m, l) = expect(&t, m, "@carol");
    assert_eq!(l, "@carol");
    let (_, l) = expect(&t, m, "<@dave");
    assert_eq!(l, "<@dave (wants to connect: /accept or /reject)");

    // Opening a chat shows its last messages; plain lines then go there.
    let m = enter(&t, "/open @alice");
    let (m, _) = expect(
        &t,
        m,
        "chat @alice is open: plain lines go there (/close to stop)",
    );
    assert_eq!(host_line(&mut host, "COMMAND"), "COMMAND /tail @alice 10");
    let (m, l) = expect(&t, m, "10:15 alice> hi there");
    assert_eq!(l, "10:15 alice> hi there");
    let (m, l) = expect(&t, m, "10:16 ");
    assert_eq!(l, "10:16 @alice hello alice");
    let (_, l) = expect(&t, m, "10:17 ");
    assert_eq!(
        l,
        "10:17 alice> [file 5: photo.jpg, 120.0 KiB, /freceive 5 to accept]"
    );

    let m = enter(&t, "see you");
    assert_eq!(host_line(&mut host, "COMMAND"), "COMMAND @alice see you");
    let (_, l) = expect(&t, m, "@alice see you");
    assert_eq!(l, "10:18 @alice see you");

    // An event arrives while a line is half typed: it is shown above the input line, and
    // what was typed stays, to be finished and sent.
    let m = t.mark(CTRL);
    t.type_text(CTRL, "half a li");
    t.wait_for(CTRL, m.saturating_sub(1), "half a li", STEP);
    host.send("event new_chat_items_group");
    host_line(&mut host, "PUSHED");
    let (m, l) = expect(&t, m, "#team bob>");
    assert_eq!(
        l, "10:20 #team bob> see you at 5",
        "another chat's message names it"
    );
    let screen = t.screen(CTRL);
    let input = screen.iter().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        input.ends_with("half a li"),
        "input line: {input:?}\n{screen:#?}"
    );
    t.type_line(CTRL, "ne");
    assert_eq!(
        host_line(&mut host, "COMMAND"),
        "COMMAND @alice half a line"
    );
    expect(&t, m, "@alice half a line");

    // A response the view does not render: one line with its type.
    let m = enter(&t, "/relays");
    let (_, l) = expect(&t, m, "groupLinkRelaysUpdated");
    assert_eq!(
        l,
        "[groupLinkRelaysUpdated] a response that this view does not show (/json on shows it whole)"
    );
    // An error: one human line.
    let m = enter(&t, "@zoe hi");
    let (_, l) = expect(&t, m, "error:");
    assert_eq!(l, "error: no contact zoe");

    // A huge chat list: 20 chats, then how many more.
    let m = enter(&t, "/chats all");
    let (end, l) = expect(&t, m, "more chats");
    assert_eq!(l, "… 4980 more chats");
    let lines = t.lines(CTRL);
    let shown: Vec<&String> = lines[m..end - 1].iter().collect();
    assert_eq!(shown.len(), 20, "{shown:#?}");
    assert_eq!(shown[0], "@contact0");

    // A file a message refers to: received on the phone, then fetched by its id, twice
    // (the second copy does not replace the first).
    host.send("event rcv_file_complete");
    let (_, l) = expect(&t, m, "is on the phone");
    assert_eq!(
        l,
        "file 5 (photo.jpg) from alice is on the phone: /get remote file 1 5 saves it here"
    );
    let m = enter(&t, "/get remote file 1 5");
    let saved = tmp.path().join("photo.jpg");
    let (_, l) = expect(&t, m, "file received:");
    assert_eq!(l, format!("file received: {}", saved.display()));
    let photo = std::fs::read(&saved).unwrap();
    assert!(photo.starts_with(b"not really a JPEG"));
    let m = enter(&t, "/get remote file 1 5");
    let (_, l) = expect(&t, m, "file received:");
    assert!(
        l.ends_with("(photo.jpg already exists here; nothing was replaced)"),
        "{l}"
    );
    assert_eq!(std::fs::read(&saved).unwrap(), photo);

    // A file sent into the open chat: stored on the host, then sent with its stored name.
    let doc = tmp.path().join("doc.txt");
    std::fs::write(&doc, b"hello alice").unwrap();
    let m = enter(&t, &format!("/file {}", doc.display()));
    let (m, _) = expect(&t, m, "file doc.txt stored on remote host 1");
    assert_eq!(
        host_line(&mut host, "COMMAND /file"),
        "COMMAND /file @alice doc.txt"
    );
    let (_, l) = expect(&t, m, "[file 7:");
    assert_eq!(l, "10:18 @alice [file 7: doc.txt, 11 bytes]");
    assert_eq!(
        std::fs::read(tmp.path().join("phone/doc.txt")).unwrap(),
        b"hello alice"
    );

    // /close: plain lines go as typed again.
    let m = enter(&t, "/close");
    expect(&t, m, "chat @alice closed");
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(CTRL, STEP), 0);
    host_line(&mut host, "ENDED");
}

#[test]
fn a_swift_host_shows_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    // Times are on the reader's clock: the phone's 10:15 UTC is 12:15 two hours east.
    let (mut host, _) = link(&t, tmp.path(), true, "XST-2");
    let m = enter(&t, "/chats");
    let (m, l) = expect(&t, m, "@alice");
    assert_eq!(l, "@alice (2 unread): 12:15 hi there");
    let (_, l) = expect(&t, m, "#team");
    assert_eq!(l, "#team (1 unread): 12:20 bob> see you at 5");
    let m = t.mark(CTRL);
    host.send("event chat_item_reaction");
    let (_, l) = expect(&t, m, "reacted");
    assert_eq!(l, "alice reacted 👍 to: hello alice");
    let m = enter(&t, "@zoe hi");
    let (_, l) = expect(&t, m, "error:");
    assert_eq!(l, "error: no contact zoe");
    t.type_line(CTRL, "/quit");
    assert_eq!(t.exit_status(CTRL, STEP), 0);
    host_line(&mut host, "ENDED");
}
