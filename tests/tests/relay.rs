//! Linking across networks (docs/cli.md "Across networks"): a *phone* and a *desktop* that
//! cannot reach each other, and a *relay* both can reach, each its own network namespace. The
//! relay runs a throwaway sshd; the controller on the desktop is reached through a reverse
//! tunnel, and a plain `xrcp-host connect LINK` on the phone (no `--connect-via`) dials what
//! the link names.
//!
//! ```text
//!   phone 10.77.1.2 ── 10.77.1.1  relay (10.77.9.1)  10.77.2.1 ── 10.77.2.2 desktop
//! ```
//! The relay does not forward between its links, and neither end has a route to the other.
//! Needs root, iproute2, OpenSSH and python3 (`.ci/run` installs them); nothing leaves the
//! namespaces made here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha512};
use xrcp_tests::cli::{binaries, run, Proc};
use xrcp_tests::netns::{skip_or_panic, Namespaces};
use xrcp_tests::ssh::{user_name, Sshd, SshdSetup};

const STEP: Duration = Duration::from_secs(20);
const LIFE: Duration = Duration::from_secs(120);
const RELAY: &str = "10.77.9.1";

fn topology(test: &str) -> Option<Namespaces> {
    let ns = match Namespaces::create(&["phone", "desk", "relay"]) {
        Ok(ns) => ns,
        Err(e) => return skip_or_panic(test, e),
    };
    let setup = || -> Result<(), String> {
        ns.link("phone", "10.77.1.2/24", "relay", "10.77.1.1/24")?;
        ns.link("desk", "10.77.2.2/24", "relay", "10.77.2.1/24")?;
        ns.ip(
            "relay",
            &["addr", "add", &format!("{RELAY}/32"), "dev", "lo"],
        )?;
        ns.ip("phone", &["route", "add", RELAY, "via", "10.77.1.1"])?;
        ns.ip("desk", &["route", "add", RELAY, "via", "10.77.2.1"])
    };
    match setup() {
        Ok(()) => Some(ns),
        Err(e) => skip_or_panic(test, e),
    }
}

fn relay_sshd(ns: &Namespaces, dir: &Path, gateway_ports: &str) -> Sshd {
    Sshd::start_with(
        dir,
        &SshdSetup {
            listen: RELAY.parse().unwrap(),
            gateway_ports,
            netns: Some(ns.name("relay")),
        },
    )
}

/// Whether a TCP connection from `role`'s namespace to `addr:port` succeeds within 2 s.
fn reaches(ns: &Namespaces, role: &str, addr: &str, port: u16) -> bool {
    let mut c = ns.command(role, "python3");
    c.args([
        "-c",
        "import socket, sys\n\
         try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)\n\
         except OSError:\n    sys.exit(1)",
        addr,
        &port.to_string(),
    ]);
    run(c, STEP).unwrap().status.success()
}

/// 200 TCP connections from `role` to `addr:port`, held open (and silent) until dropped.
fn idle_connections(ns: &Namespaces, role: &str, addr: &str, port: u16) -> Proc {
    let mut c = ns.command(role, "python3");
    c.args([
        "-c",
        "import socket, sys, time\n\
         s = [socket.create_connection((sys.argv[1], int(sys.argv[2])), 5) for _ in range(200)]\n\
         print('open', len(s), flush=True)\n\
         time.sleep(100)",
        addr,
        &port.to_string(),
    ]);
    let mut p = Proc::spawn("200 idle connections", c, LIFE);
    let line = p.line(STEP);
    assert_eq!(line, "open 200", "{}", p.stderr());
    p
}

/// `link --json --ssh-relay <user>@<relay>` with the throwaway server's login options.
fn relay_link_args(sshd: &Sshd) -> Vec<String> {
    let mut args = vec![
        "link".to_owned(),
        "--json".into(),
        "--ssh-relay".into(),
        format!("{}@{RELAY}", user_name()),
    ];
    for o in sshd.client_options() {
        args.extend(["--ssh-option".into(), o]);
    }
    args
}

fn ctrl(ns: &Namespaces, data: &Path, args: &[&str]) -> Command {
    let mut c = ns.command("desk", &binaries().ctrl);
    c.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "desk"])
        .args(args);
    c
}

fn host(ns: &Namespaces, data: &Path, args: &[&str]) -> Command {
    let mut c = ns.command("phone", &binaries().host);
    c.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "phone"])
        .args(args);
    c
}

/// `--ssh-relay`: the controller opens the tunnel itself, advertises the relay, and the host
/// links, runs a command and stores a 20 MiB file while 200 idle connections hold the relay
/// port. When the controller exits, the tunnel is gone.
#[test]
fn ssh_relay_links_an_unmodified_host_across_networks() {
    let Some(ns) = topology("ssh_relay_links_an_unmodified_host_across_networks") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sshd = relay_sshd(&ns, &tmp.path().join("ssh"), "clientspecified");
    assert!(
        !reaches(&ns, "phone", "10.77.2.2", 22),
        "the phone must not reach the desktop directly"
    );
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));

    let args = relay_link_args(&sshd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = Proc::spawn("xrcp-ctrl link --ssh-relay", ctrl(&ns, &d1, &args), LIFE);
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["address"], RELAY, "{inv}");
    let port = inv["port"].as_u64().unwrap() as u16;
    assert!(
        inv["bound"].as_str().unwrap().starts_with("127.0.0.1:"),
        "the listener stays on the desktop's loopback: {inv}"
    );
    let link = inv["link"].as_str().unwrap().to_owned();
    assert!(link.contains(&format!("@{RELAY}:{port}#")), "{link}");

    let _idle = idle_connections(&ns, "phone", RELAY, port);

    let mut h = Proc::spawn(
        "xrcp-host connect",
        host(&ns, &d2, &["connect", &link, "--json", "--yes"]),
        LIFE,
    );
    let hc = h.expect("session_code", STEP);
    assert_eq!(hc["peer"], format!("{RELAY}:{port}"), "{hc}");
    let cc = c.expect("session_code", STEP);
    assert_eq!(cc["code"], hc["code"]);
    assert_eq!(
        h.expect("connected", STEP)["controller_device_name"],
        "desk"
    );
    assert_eq!(c.expect("connected", STEP)["host_device_name"], "phone");

    c.send("/note across networks");
    let r = c.expect("response", STEP);
    assert_eq!(r["response"]["result"]["type"], "noteCreated", "{r}");

    let file = tmp.path().join("big.bin");
    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    c.send(&format!("/store remote file {}", file.display()));
    let stored = c.expect("file_stored", Duration::from_secs(60));
    let name = stored["path"].as_str().unwrap();
    let on_host = std::fs::read(d2.join("files").join(name)).unwrap();
    assert_eq!(
        Sha512::digest(&on_host),
        Sha512::digest(&data),
        "the file arrived whole"
    );

    c.close_stdin();
    assert_eq!(c.expect("stopped", STEP)["reason"], "eof");
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());
    assert!(
        !reaches(&ns, "phone", RELAY, port),
        "the tunnel ends with the session"
    );
}

/// `--advertise NAME:PORT` with a tunnel the user runs: the phone resolves the name through
/// its own hosts file and reports the address it dialed.
#[test]
fn advertised_name_resolves_on_the_host() {
    let Some(ns) = topology("advertised_name_resolves_on_the_host") else {
        return;
    };
    ns.hosts_file(
        "phone",
        &format!("127.0.0.1 localhost\n{RELAY} relay.test\n"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sshd = relay_sshd(&ns, &tmp.path().join("ssh"), "clientspecified");
    let (local, remote) = (45000u16, 45001u16);
    let (_tunnel, port) =
        sshd.reverse_tunnel(&format!("0.0.0.0:{remote}"), local, Some(ns.name("desk")));
    assert_eq!(port, remote);
    let (d1, d2) = (tmp.path().join("ctrl"), tmp.path().join("host"));
    let advertise = format!("relay.test:{remote}");
    let mut c = Proc::spawn(
        "xrcp-ctrl link --advertise",
        ctrl(
            &ns,
            &d1,
            &[
                "link",
                "--json",
                "--port",
                &local.to_string(),
                "--advertise",
                &advertise,
            ],
        ),
        LIFE,
    );
    let inv = c.expect("invitation", STEP);
    assert_eq!(inv["address"], "relay.test", "{inv}");
    assert_eq!(inv["port"], remote, "{inv}");
    assert_eq!(inv["bound"], format!("127.0.0.1:{local}"), "{inv}");
    let link = inv["link"].as_str().unwrap().to_owned();

    let mut h = Proc::spawn(
        "xrcp-host connect",
        host(&ns, &d2, &["connect", &link, "--json", "--yes"]),
        LIFE,
    );
    let hc = h.expect("session_code", STEP);
    assert_eq!(hc["peer"], format!("{RELAY}:{remote}"), "{hc}");
    assert_eq!(c.expect("session_code", STEP)["code"], hc["code"]);
    h.expect("connected", STEP);
    c.expect("connected", STEP);
    c.send("/notes");
    c.expect("response", STEP);
    c.close_stdin();
    assert!(c.wait(STEP).success());
    assert!(h.wait(STEP).success());
}

/// A relay whose sshd keeps remote forwards on its own loopback (`GatewayPorts no`, the
/// OpenSSH default) cannot be reached by hosts: the controller says so and how to fix it,
/// before it shows a link that could never work.
#[test]
fn a_relay_without_gateway_ports_is_reported() {
    let Some(ns) = topology("a_relay_without_gateway_ports_is_reported") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sshd = relay_sshd(&ns, &tmp.path().join("ssh"), "no");
    let args = relay_link_args(&sshd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(ctrl(&ns, &tmp.path().join("ctrl"), &args), LIFE).unwrap();
    assert!(!out.status.success());
    let lines = xrcp_tests::cli::json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["error"], "SSH_RELAY");
    let message = lines[0]["message"].as_str().unwrap();
    assert!(message.contains("GatewayPorts"), "{message}");
}
