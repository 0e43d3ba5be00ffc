//! `xrcp-host find` end to end, in two network namespaces: pair with a link, then the
//! controller announces the session by multicast (spec/xrcp.md §5) and the host program
//! finds it among its pairings, says so (`found`), shows the code and serves the session.
//! The program does this through the library's `Host::listen` → `Listening::found` →
//! `Found::connect` (it can reach nothing else), so this also covers those steps.

use std::process::Command;
use std::time::Duration;

use xrcp_tests::cli::{ctrl_cmd, host_cmd, Proc};
use xrcp_tests::netns::{skip_or_panic, Namespaces};

const STEP: Duration = Duration::from_secs(60);
const LIFE: Duration = Duration::from_secs(180);

/// The next `event`, past other events (at most ten: a stuck program still fails).
fn until(p: &mut Proc, event: &str) -> serde_json::Value {
    for _ in 0..10 {
        let v = p.json(STEP);
        if v["event"] == event {
            return v;
        }
        assert_ne!(v["event"], "error", "waiting for {event}: {v}");
    }
    panic!("no {event} event within ten events");
}

/// `cmd` run inside the namespace of `role`.
fn inside(ns: &Namespaces, role: &str, cmd: Command) -> Command {
    let mut c = ns.command(role, cmd.get_program());
    c.args(cmd.get_args());
    c
}

#[test]
fn the_host_program_finds_a_paired_controller() {
    let setup = || -> Result<Namespaces, String> {
        let ns = Namespaces::create(&["ctrl", "host"])?;
        ns.link("ctrl", "10.81.0.1/24", "host", "10.81.0.2/24")?;
        ns.ip("ctrl", &["route", "add", "224.0.0.0/4", "dev", "v-host"])?;
        ns.ip("host", &["route", "add", "224.0.0.0/4", "dev", "v-ctrl"])?;
        Ok(ns)
    };
    let ns = match setup() {
        Ok(ns) => ns,
        Err(e) => {
            let _ = skip_or_panic("the_host_program_finds_a_paired_controller", e);
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let (cd, hd) = (tmp.path().join("ctrl"), tmp.path().join("host"));

    // First contact: a link.
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        inside(
            &ns,
            "ctrl",
            ctrl_cmd(&cd, &["link", "--json", "--addr", "10.81.0.1"]),
        ),
        LIFE,
    );
    let link = until(&mut c, "invitation")["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = Proc::spawn(
        "xrcp-host connect",
        inside(
            &ns,
            "host",
            host_cmd(&hd, &["connect", &link, "--json", "--yes"]),
        ),
        LIFE,
    );
    until(&mut h, "connected");
    until(&mut c, "connected");
    c.close_stdin();
    until(&mut c, "stopped");
    assert!(c.wait(STEP).success());
    until(&mut h, "stopped");
    assert!(h.wait(STEP).success());

    // Later: the host finds the paired controller's announcement.
    let mut h = Proc::spawn(
        "xrcp-host find",
        inside(
            &ns,
            "host",
            host_cmd(&hd, &["find", "--json", "--yes", "--timeout", "60"]),
        ),
        LIFE,
    );
    let mut c = Proc::spawn(
        "xrcp-ctrl connect --multicast",
        inside(
            &ns,
            "ctrl",
            ctrl_cmd(&cd, &["connect", "1", "--json", "--multicast", "--events"]),
        ),
        LIFE,
    );
    // The contract's order, one event per line: found, session_code, connected.
    let found = h.expect("found", STEP);
    assert_eq!(found["controller_id"], 1, "{found}");
    assert_eq!(found["controller_device_name"], "desk", "{found}");
    let code = h.expect("session_code", STEP);
    assert_eq!(code["code"], until(&mut c, "session_code")["code"]);
    let connected = h.expect("connected", STEP);
    assert_eq!(connected["controller_id"], 1, "{connected}");
    until(&mut c, "connected");
    // A command reaches the notes app through the facade's session.
    c.send("/note found by multicast");
    let command = h.expect("command", STEP);
    assert_eq!(command["command"], "/note found by multicast", "{command}");
    // The answer, and the notes app's event for the new note through the session's event
    // queue (`Session::events`), in either order.
    let (mut response, mut event) = (None, None);
    for _ in 0..10 {
        let v = c.json(STEP);
        match v["event"].as_str() {
            Some("response") => response = Some(v),
            Some("host_event") => event = Some(v),
            _ => panic!("unexpected {v}"),
        }
        if response.is_some() && event.is_some() {
            break;
        }
    }
    let response = response.expect("a response");
    assert_eq!(
        response["response"]["result"]["type"], "noteCreated",
        "{response}"
    );
    let event = event.expect("the note's event");
    assert_eq!(event["data"]["result"]["type"], "noteCreated", "{event}");
    c.close_stdin();
    until(&mut c, "stopped");
    assert!(c.wait(STEP).success());
    until(&mut h, "stopped");
    assert!(h.wait(STEP).success());
}
