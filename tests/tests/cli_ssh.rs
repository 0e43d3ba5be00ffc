//! A session through a real SSH reverse tunnel, the SimpleX way of driving a host on another
//! machine (shared/research/simplex-chat-session-layer.md §8; docs/cli.md "Over SSH"): the
//! controller listens on one loopback port, `ssh -R` exposes it on another port of the "server"
//! (the SSH server's side), and the host dials that port (`--connect-via`, or `via=` in the
//! interactive mode) while every identity check of the link still applies.
//!
//! The test runs its own `sshd` on 127.0.0.1 (a throwaway host key, one authorized throwaway
//! client key, everything in a temporary directory) and OpenSSH's `ssh`. Without OpenSSH it
//! fails with a clear message: CI installs Debian's `openssh-server` and `openssh-client`
//! (`.ci/run`). The interactive half also needs tmux.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xrcp_tests::cli::{binaries, run, Proc, Tmux};

const STEP: Duration = Duration::from_secs(15);
const LIFE: Duration = Duration::from_secs(60);

/// The first of `names` found as an executable file (absolute paths, then `$PATH`).
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        let p = Path::new(name);
        if p.is_absolute() {
            if p.is_file() {
                return Some(p.to_owned());
            }
            continue;
        }
        for dir in std::env::split_paths(&path) {
            let c = dir.join(name);
            if c.is_file() {
                return Some(c);
            }
        }
    }
    None
}

fn require(names: &[&str], package: &str) -> PathBuf {
    find_program(names).unwrap_or_else(|| {
        panic!(
            "{} is not installed: this test needs OpenSSH (Debian package {package}; .ci/run \
             installs it)",
            names[0]
        )
    })
}

fn user_name() -> String {
    let out = run(
        {
            let mut c = Command::new("id");
            c.arg("-un");
            c
        },
        STEP,
    )
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn keygen(path: &Path) {
    let mut c = Command::new(require(&["ssh-keygen"], "openssh-client"));
    c.args(["-q", "-t", "ed25519", "-N", "", "-C", "xrcp-test", "-f"])
        .arg(path);
    let out = run(c, STEP).unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway sshd on 127.0.0.1; killed on drop.
struct Sshd {
    _proc: Proc,
    port: u16,
    client_key: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        // sshd re-executes itself and so must be started by absolute path.
        let sshd = require(&["/usr/sbin/sshd", "sshd"], "openssh-server");
        let sshd = std::fs::canonicalize(&sshd).unwrap_or(sshd);
        std::fs::create_dir_all(dir).unwrap();
        let (host_key, client_key) = (dir.join("host_key"), dir.join("client_key"));
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // OpenSSH's privilege separation directory; Debian's service creates it at boot, a
        // container may not have it.
        if user_name() == "root" {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        for _ in 0..5 {
            // A free port (sshd cannot report one it chose itself).
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {host_key}\n\
                     PidFile {dir}/sshd.pid\n\
                     AuthorizedKeysFile {dir}/authorized_keys\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\n\
                     AllowTcpForwarding remote\n\
                     GatewayPorts no\n\
                     X11Forwarding no\n\
                     PrintMotd no\n",
                    host_key = host_key.display(),
                    dir = dir.display(),
                ),
            )
            .unwrap();
            let mut cmd = Command::new(&sshd);
            cmd.args(["-D", "-e", "-f"]).arg(&config);
            let p = Proc::spawn("sshd", cmd, Duration::from_secs(120));
            let ready = format!("Server listening on 127.0.0.1 port {port}");
            let end = std::time::Instant::now() + STEP;
            loop {
                let err = p.stderr();
                if err.contains(&ready) {
                    return Sshd {
                        _proc: p,
                        port,
                        client_key,
                    };
                }
                if err.contains("Address already in use") {
                    break;
                }
                if std::time::Instant::now() > end {
                    panic!("sshd did not start:\n{err}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd: no free port after 5 tries");
    }

    /// `ssh -N -R 0:127.0.0.1:<target>`: sshd listens on a port it picks (on its loopback)
    /// and forwards every connection to the controller's port. Returns the tunnel (killed on
    /// drop) and that port.
    fn reverse_tunnel(&self, target: u16) -> (Proc, u16) {
        let mut cmd = Command::new(require(&["ssh"], "openssh-client"));
        cmd.args(["-F", "/dev/null", "-N"])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args(["-o", "IdentitiesOnly=yes"])
            .arg("-i")
            .arg(&self.client_key)
            .args(["-p", &self.port.to_string()])
            .args(["-R", &format!("0:127.0.0.1:{target}")])
            .arg(format!("{}@127.0.0.1", user_name()));
        let p = Proc::spawn("ssh -R", cmd, Duration::from_secs(120));
        let end = std::time::Instant::now() + STEP;
        loop {
            let err = p.stderr();
            if let Some(port) = err
                .lines()
                .find_map(|l| l.strip_prefix("Allocated port "))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
            {
                return (p, port);
            }
            if std::time::Instant::now() > end {
                panic!("ssh -R did not set up the tunnel:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn ctrl(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(&binaries().ctrl);
    c.arg("--data-dir")
        .arg(data)
        .args(["--device-name", "desk"])
        .args(args);
    c
}

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
    let (tunnel, p2) = sshd.reverse_tunnel(p1);
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
