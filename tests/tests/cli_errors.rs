//! Options that are checked and errors that say what to do (issue 14, items 4 and 5), on the
//! real programs: JSON mode keeps the machine code in `error` and puts structured fields
//! beside it; people get one plain line with the cause and the next step, never an enum name,
//! Debug text or escaped JSON. Wrong options are refused at once, never ignored.

use std::time::Duration;

use serde_json::Value;
use xrcp_tests::cli::{binaries, ctrl_cmd, host_cmd, json_lines, run, Proc, Tmux};

/// Bound on each expected output line, and on a refusal: each is reported at once, so a
/// program still waiting after this is a failure.
const STEP: Duration = Duration::from_secs(15);
/// Bound on each program's whole life.
const LIFE: Duration = Duration::from_secs(60);
/// A program's start in a terminal (a loaded machine may take a while to load a debug binary).
const START: Duration = Duration::from_secs(30);

/// What no message for people may contain: the reference's constructor names, Rust's Debug
/// quoting, escaped JSON, a library's documentation link.
fn assert_plain(message: &str) {
    for leak in [
        "RCE", "RHE", "RPE", "PRE", "{", "\\\"", "docs.rs", "Http2(", "Some(",
    ] {
        assert!(!message.contains(leak), "{leak:?} in {message:?}");
    }
}

/// Runs a one-shot JSON command that must fail at once; returns its one `error` event.
fn refused(cmd: std::process::Command) -> (Value, i32) {
    let out = run(cmd, STEP).expect("refused at once");
    assert!(!out.status.success(), "accepted");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "error", "{lines:?}");
    let message = lines[0]["message"].as_str().expect("message");
    assert_plain(message);
    (lines[0].clone(), out.status.code().unwrap_or(-1))
}

#[test]
fn a_port_in_use_names_the_port_and_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    let (e, _) = refused(ctrl_cmd(
        &tmp.path().join("ctrl"),
        &["link", "--json", "--addr", "127.0.0.1", "--port", &port],
    ));
    assert_eq!(e["error"], "CTRL_TLS_START", "{e}");
    assert_eq!(e["port"].to_string(), port, "{e}");
    assert_eq!(e["addr"], "127.0.0.1", "{e}");
    assert_eq!(
        e["message"],
        format!("port {port} is in use — pick another with port= / --port")
    );

    // The same in the interactive mode.
    let t = Tmux::new(tmp.path());
    let d = tmp.path().join("ctrl-i");
    t.open(
        "ctrl",
        &binaries().ctrl,
        &["--data-dir", d.to_str().unwrap()],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    let m = t.mark("ctrl");
    t.type_line(
        "ctrl",
        &format!("/start remote host new addr=127.0.0.1 port={port}"),
    );
    let (_, line) = t.wait_for("ctrl", m + 1, "new remote host error:", STEP);
    assert_eq!(
        line,
        format!("new remote host error: port {port} is in use — pick another with port= / --port")
    );
    drop(taken);
}

#[test]
fn wrong_interactive_options_are_refused_with_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    t.open(
        "ctrl",
        &binaries().ctrl,
        &["--data-dir", d1.to_str().unwrap()],
    );
    t.open(
        "host",
        &binaries().host,
        &["--data-dir", d2.to_str().unwrap()],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    t.wait_for("host", 0, "xrcp-host: /help for commands", START);

    let valid = "the options of /start remote host new are: addr=<ip> iface=<name> port=<n> \
                 bind=<ip>[:<port>] advertise=<host>[:<port>] timeout=<seconds>|<n>m \
                 qr_png=<file> qr_svg=<file>";
    for (typed, answer) in [
        (
            "/start remote host new bogus=1",
            format!("unknown option 'bogus=1' — {valid}"),
        ),
        (
            "/start remote host new port=abc",
            format!("bad value for port=: 'abc' is not a port number (0 to 65535) — {valid}"),
        ),
    ] {
        let m = t.mark("ctrl");
        t.type_line("ctrl", typed);
        let (_, line) = t.wait_for("ctrl", m + 1, "option", STEP);
        assert_eq!(line, answer);
    }
    // Nothing was started by either line.
    let m = t.mark("ctrl");
    t.type_line("ctrl", "/list remote hosts");
    t.wait_for("ctrl", m + 1, "No remote hosts", STEP);

    let m = t.mark("host");
    t.type_line("host", "/connect remote ctrl xrcp:/x bogus=1");
    let (_, line) = t.wait_for("host", m + 1, "option", STEP);
    assert!(
        line.starts_with(
            "unknown option 'bogus=1' — the option of /connect remote ctrl is: via=<host>:<port>"
        ),
        "{line:?}"
    );
}

#[test]
fn an_address_that_is_not_this_machines_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // 192.0.2.0/24 is reserved for documentation: no machine has it.
    let (e, _) = refused(ctrl_cmd(
        &tmp.path().join("ctrl"),
        &["link", "--json", "--addr", "192.0.2.7"],
    ));
    assert_eq!(e["error"], "BAD_OPTION", "{e}");
    assert_eq!(e["option"], "addr", "{e}");
    assert_eq!(e["addr"], "192.0.2.7", "{e}");
    assert!(
        e["local_addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a == "127.0.0.1")),
        "{e}"
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("192.0.2.7 is not one of this machine's addresses"),
        "{message}"
    );
    assert!(message.contains("--advertise"), "{message}");
}

#[test]
fn an_unknown_interface_lists_the_interfaces() {
    let tmp = tempfile::tempdir().unwrap();
    let (e, _) = refused(ctrl_cmd(
        &tmp.path().join("ctrl"),
        &["link", "--json", "--iface", "nosuch0"],
    ));
    assert_eq!(e["error"], "BAD_OPTION", "{e}");
    assert_eq!(e["option"], "iface", "{e}");
    assert!(
        e["interfaces"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i == "lo")),
        "{e}"
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("there is no interface 'nosuch0'") && message.contains("lo"),
        "{message}"
    );
}

/// The listener binds the address the link names (the SSH recipe's loopback, here), not every
/// interface; `--bind` still decides when given.
#[test]
fn the_listener_binds_the_address_in_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
            &["link", "--json", "--addr", "127.0.0.1"],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["bound"], format!("127.0.0.1:{}", inv["port"]), "{inv}");
    drop(c);

    let mut c = Proc::spawn(
        "xrcp-ctrl link --bind",
        ctrl_cmd(
            &tmp.path().join("ctrl"),
            &["link", "--json", "--addr", "127.0.0.1", "--bind", "0.0.0.0"],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["bound"], format!("0.0.0.0:{}", inv["port"]), "{inv}");
}

#[test]
fn json_start_up_errors_are_events_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    // A data directory that cannot be one: a file.
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let (e, _) = refused(ctrl_cmd(&file, &["link", "--json"]));
    assert_eq!(e["error"], "STORE", "{e}");
    assert!(e["message"].as_str().unwrap().contains("--data-dir"), "{e}");
    let (e, _) = refused(host_cmd(&file, &["connect", "xrcp:/x", "--json"]));
    assert_eq!(e["error"], "STORE", "{e}");

    // A command line that does not parse: clap's exit status, and the event on stdout.
    let d = tmp.path().join("ctrl");
    let (e, code) = refused(ctrl_cmd(&d, &["link", "--json", "--port", "abc"]));
    assert_eq!(e["error"], "BAD_OPTION", "{e}");
    assert_eq!(code, 2);
    assert!(e["message"].as_str().unwrap().contains("--port"), "{e}");
    let (e, code) = refused(host_cmd(&d, &["connect", "xrcp:/x", "--json", "--bogus"]));
    assert_eq!(e["error"], "BAD_OPTION", "{e}");
    assert_eq!(code, 2);

    // `find` without a paired controller.
    let (e, _) = refused(host_cmd(&tmp.path().join("host"), &["find", "--json"]));
    assert_eq!(e["error"], "NO_PAIRED_CONTROLLERS", "{e}");
}

/// With a paired host: a response that does not fit the command is named by its type (no
/// escaped JSON in the message, the type beside it), and multicast with the stored loopback
/// address is refused at once with the reason.
#[test]
fn a_paired_host_gets_plain_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl_cmd(&d1, &["link", "--json", "--addr", "127.0.0.1"]),
        LIFE,
    );
    let link = c.expect("invitation", STEP)["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = Proc::spawn(
        "xrcp-host connect",
        host_cmd(&d2, &["connect", &link, "--json", "--yes"]),
        LIFE,
    );
    h.expect("session_code", STEP);
    c.expect("session_code", STEP);
    c.expect("connected", STEP);
    h.expect("connected", STEP);

    // The notes app answers a download for another user with a chat error: the controller
    // did not expect that answer.
    c.send(
        r#"/get remote file {"userId":2,"fileId":1,"sent":false,"fileSource":{"filePath":"x"}}"#,
    );
    let e = c.expect("error", STEP);
    assert_eq!(e["error"], "SESSION", "{e}");
    let message = e["message"].as_str().unwrap();
    assert_plain(message);
    assert!(message.contains("differentActiveUser"), "{message}");
    assert_eq!(e["response_type"], "differentActiveUser", "{e}");
    assert_eq!(e["protocol_error"], "unexpectedResponse", "{e}");
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .starts_with("/get remote file "),
        "{e}"
    );
    c.close_stdin();
    c.expect("stopped", STEP);
    assert!(c.wait(STEP).success());
    h.expect("stopped", STEP);

    // The stored binding is 127.0.0.1: multicast announcements would never leave.
    let (e, _) = refused(ctrl_cmd(&d1, &["connect", "1", "--json", "--multicast"]));
    assert_eq!(e["error"], "BAD_OPTION", "{e}");
    assert_eq!(e["option"], "multicast", "{e}");
    assert_eq!(e["addr"], "127.0.0.1", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("multicast announcements do not leave this machine"),
        "{e}"
    );
    let (e, _) = refused(ctrl_cmd(
        &d1,
        &[
            "connect",
            "1",
            "--json",
            "--multicast",
            "--addr",
            "127.0.0.1",
        ],
    ));
    assert_eq!(e["option"], "multicast", "{e}");
}

/// The interactive modes' refusals say what to do, without the reference's error names.
#[test]
fn interactive_refusals_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Tmux::new(tmp.path());
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    t.open(
        "ctrl",
        &binaries().ctrl,
        &["--data-dir", d1.to_str().unwrap()],
    );
    t.open(
        "host",
        &binaries().host,
        &["--data-dir", d2.to_str().unwrap()],
    );
    t.wait_for("ctrl", 0, "xrcp-ctrl: /help for commands", START);
    t.wait_for("host", 0, "xrcp-host: /help for commands", START);
    let answer = |name: &str, typed: &str, needle: &str| {
        let m = t.mark(name);
        t.type_line(name, typed);
        let (_, line) = t.wait_for(name, m + 1, needle, STEP);
        assert_plain(&line);
        assert!(line.contains(" — "), "no next step: {line:?}");
        line
    };
    answer("ctrl", "/stop remote host 5", "remote host 5 error:");
    answer("ctrl", "/start remote host x", "not a host id");
    answer("host", "/stop remote ctrl", "remote controller error:");
    answer(
        "host",
        "/verify remote ctrl 123",
        "remote controller error:",
    );
    answer("host", "/confirm remote ctrl 1", "remote controller error:");
    answer("host", "/find remote ctrl", "remote controller error:");
    let line = answer(
        "host",
        "/connect remote ctrl xrcp:/not-a-link",
        "remote controller error:",
    );
    assert!(line.contains("copy all of it"), "{line:?}");
}

/// A host on a server whose own address is public (a VPS, reached through its own address or
/// a tunnel) is not warned that the link points outside its local network: the address is its
/// own machine's. Run in a network namespace holding 203.0.113.5 (a documentation address).
#[test]
fn the_hosts_own_address_is_not_called_foreign() {
    use xrcp_tests::netns::{skip_or_panic, Namespaces};
    const TEST: &str = "the_hosts_own_address_is_not_called_foreign";
    let ns = match Namespaces::create(&["vps"]) {
        Ok(ns) => ns,
        Err(e) => match skip_or_panic(TEST, e) {
            Some(ns) => ns,
            None => return,
        },
    };
    if let Err(e) = ns.ip("vps", &["addr", "add", "203.0.113.5/32", "dev", "lo"]) {
        skip_or_panic(TEST, e);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let in_ns = |program: &std::path::Path, data: &str, args: &[&str]| {
        let mut c = ns.command("vps", program);
        c.arg("--data-dir").arg(tmp.path().join(data)).args(args);
        c
    };
    let bins = binaries();
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        in_ns(
            &bins.ctrl,
            "ctrl",
            &["link", "--json", "--addr", "203.0.113.5"],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["address"], "203.0.113.5", "{inv}");
    let link = inv["link"].as_str().unwrap().to_owned();
    let mut h = Proc::spawn(
        "xrcp-host connect",
        in_ns(&bins.host, "host", &["connect", &link, "--json", "--yes"]),
        LIFE,
    );
    h.expect("session_code", STEP);
    h.expect("connected", STEP);
    let stderr = h.stderr();
    assert!(!stderr.contains("local network"), "{stderr}");
}
