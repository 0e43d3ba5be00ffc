//! A session through a real SSH reverse tunnel, the SimpleX way of driving a host on another
//! machine (docs/cli.md "Over SSH"): the
//! controller listens on one loopback port, `ssh -R` exposes it on another port of the "server"
//! (the SSH server's side), and the host dials that port (`--connect-via`, or `via=` in the
//! interactive mode) while every identity check of the link still applies.
//!
//! The test runs its own `sshd` on 127.0.0.1 (a throwaway host key, one authorized throwaway
//! client key, everything in a temporary directory) and OpenSSH's `ssh`. Without OpenSSH it
//! fails with a clear message: CI installs Debian's `openssh-server` and `openssh-client`
//! (`.ci/run`). The interactive half also needs tmux.

use std::process::Command;
use std::time::Duration;

use xrcp_tests::cli::{binaries, Proc, Tmux};
use xrcp_tests::ssh::Sshd;

const STEP: Duration = Duration::from_secs(15);
const LIFE: Duration = Duration::from_secs(60);

use xrcp_tests::cli::ctrl_cmd as ctrl;

#[test]
fn sessions_through_an_ssh_reverse_tunnel() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&tmp.path().join("ssh"));
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));

    // --- The controller on one loopback port; the tunnel exposes it on another.
    let mut c = Proc::spawn(
        "xrcp-ctrl link",
        ctrl(
            &d1,
            &[
                "link",
                "--json",
                "--addr",
                "127.0.0.1",
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
            ],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    let p1 = inv["port"].as_u64().unwrap() as u16;
    let link = inv["link"].as_str().unwrap().to_owned();
    let (tunnel, p2) = sshd.reverse_tunnel("0", p1, None);
    assert_ne!(p1, p2);

    // The host dials the tunnel; the link (address 127.0.0.1:p1, CA, keys) is checked as is.
    let mut host = Command::new(&binaries().host);
    host.arg("--data-dir")
        .arg(&d2)
        .args(["--device-name", "server"])
        .args(["connect", &link, "--json", "--yes"])
        .args(["--connect-via", &format!("127.0.0.1:{p2}")]);
    let mut h = Proc::spawn("xrcp-host connect --connect-via", host, LIFE);
    let host_code = h.expect("session_code", STEP)["code"].clone();
    let ctrl_code = c.expect("session_code", STEP)["code"].clone();
    assert_eq!(
        host_code, ctrl_code,
        "the same session code through the tunnel"
    );
    assert_eq!(
        h.expect("connected", STEP)["controller_device_name"],
        "desk"
    );
    assert_eq!(c.expect("connected", STEP)["host_device_name"], "server");
    c.send("/note through the tunnel");
    let r = c.expect("response", STEP);
    assert_eq!(r["response"]["result"]["type"], "noteCreated", "{r}");
    assert_eq!(
        h.expect("command", STEP)["command"],
        "/note through the tunnel"
    );
    c.close_stdin();
    assert_eq!(c.expect("stopped", STEP)["reason"], "eof");
    assert!(c.wait(STEP).success());
    assert_eq!(h.expect("stopped", STEP)["reason"], "disconnected");
    assert!(h.wait(STEP).success());

    // --- Next session, the SSH recipe: the controller reuses the fixed port the tunnel
    // points to, the host (interactive) connects with `via=`.
    let mut c = Proc::spawn(
        "xrcp-ctrl connect 1",
        ctrl(
            &d1,
            &[
                "connect",
                "1",
                "--json",
                "--addr",
                "127.0.0.1",
                "--port",
                &p1.to_string(),
                "--bind",
                "127.0.0.1",
            ],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["port"], p1);
    let link2 = inv["link"].as_str().unwrap().to_owned();
    let t = Tmux::new(tmp.path());
    t.open(
        "host",
        &binaries().host,
        &[
            "--data-dir",
            d2.to_str().unwrap(),
            "--device-name",
            "server",
        ],
    );
    t.wait_for("host", 0, "xrcp-host: /help for commands", STEP);
    t.type_line(
        "host",
        &format!("/connect remote ctrl {link2} via=127.0.0.1:{p2}"),
    );
    t.wait_for("host", 0, "connecting remote controller 1: desk, v", STEP);
    let (at, _) = t.wait_for(
        "host",
        0,
        "Compare session code with controller and use:",
        STEP,
    );
    let verify = t.line_after("host", at, STEP);
    let code = c.expect("session_code", STEP)["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify, format!("/verify remote ctrl {code}"));
    t.type_line("host", &verify);
    t.wait_for(
        "host",
        at,
        "remote controller 1 session started with desk",
        STEP,
    );
    assert_eq!(c.expect("connected", STEP)["host_id"], 1);
    c.send("/notes");
    let r = c.expect("response", STEP);
    assert_eq!(
        r["response"]["result"]["notes"][0]["text"], "through the tunnel",
        "{r}"
    );
    let mark = t.mark("host");

    // The session lives in the tunnel: closing it ends the session on both sides.
    drop(tunnel);
    assert_eq!(c.expect("stopped", STEP)["reason"], "disconnected");
    assert!(c.wait(STEP).success());
    t.wait_for("host", mark, "remote controller stopped", STEP);
}
