//! A throwaway OpenSSH server for tunnel tests: its own host key, one authorized throwaway
//! client key, everything in a temporary directory, killed on drop. It listens on loopback in
//! the test's own network namespace, or on a given address inside a namespace the test made.
//! Without OpenSSH the tests fail with a clear message: CI installs Debian's
//! `openssh-server` and `openssh-client` (`.ci/run`).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{run, Proc};

const STEP: Duration = Duration::from_secs(15);

/// The first of `names` found as an executable file (absolute paths, then `$PATH`).
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
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

/// The program, or a panic that says which package to install.
pub fn require(names: &[&str], package: &str) -> PathBuf {
    find_program(names).unwrap_or_else(|| {
        panic!(
            "{} is not installed: this test needs OpenSSH (Debian package {package}; .ci/run \
             installs it)",
            names[0]
        )
    })
}

/// The user the tests run as (the SSH login name).
pub fn user_name() -> String {
    let mut c = Command::new("id");
    c.arg("-un");
    let out = run(c, STEP).unwrap();
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

/// Where and how the server listens.
pub struct SshdSetup<'a> {
    /// The address to listen on.
    pub listen: Ipv4Addr,
    /// `GatewayPorts`: `no` keeps remote forwards on the server's loopback,
    /// `clientspecified` binds what the client asks for.
    pub gateway_ports: &'a str,
    /// Run inside this network namespace (`ip netns exec`).
    pub netns: Option<&'a str>,
}

/// A running throwaway sshd.
pub struct Sshd {
    _proc: Proc,
    /// The address and port it listens on.
    pub listen: Ipv4Addr,
    pub port: u16,
    /// The private key it accepts.
    pub client_key: PathBuf,
}

impl Sshd {
    /// On 127.0.0.1 of this namespace, remote forwards kept on loopback.
    pub fn start(dir: &Path) -> Sshd {
        Sshd::start_with(
            dir,
            &SshdSetup {
                listen: Ipv4Addr::LOCALHOST,
                gateway_ports: "no",
                netns: None,
            },
        )
    }

    pub fn start_with(dir: &Path, setup: &SshdSetup) -> Sshd {
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
            // A namespace of the test's own has every port free; here, find one (sshd cannot
            // report one it chose itself).
            let port = match setup.netns {
                Some(_) => 22,
                None => TcpListener::bind((setup.listen, 0))
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
            };
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\n\
                     ListenAddress {listen}\n\
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
                     GatewayPorts {gateway}\n\
                     X11Forwarding no\n\
                     PrintMotd no\n\
                     Subsystem sftp internal-sftp\n",
                    listen = setup.listen,
                    gateway = setup.gateway_ports,
                    host_key = host_key.display(),
                    dir = dir.display(),
                ),
            )
            .unwrap();
            let mut cmd = match setup.netns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns]).arg(&sshd);
                    c
                }
                None => Command::new(&sshd),
            };
            cmd.args(["-D", "-e", "-f"]).arg(&config);
            let p = Proc::spawn("sshd", cmd, Duration::from_secs(300));
            let ready = format!("Server listening on {} port {port}", setup.listen);
            let end = Instant::now() + STEP;
            loop {
                let err = p.stderr();
                if err.contains(&ready) {
                    return Sshd {
                        _proc: p,
                        listen: setup.listen,
                        port,
                        client_key,
                    };
                }
                if err.contains("Address already in use") {
                    break;
                }
                if Instant::now() > end {
                    panic!("sshd did not start:\n{err}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd: no free port after 5 tries");
    }

    /// ssh options that log in to this server with its throwaway key and no prompts, in the
    /// `KEY=VALUE` form of `ssh -o` (and `xrcp-ctrl --ssh-option`).
    pub fn client_options(&self) -> Vec<String> {
        vec![
            "BatchMode=yes".into(),
            "StrictHostKeyChecking=no".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "IdentitiesOnly=yes".into(),
            format!("IdentityFile={}", self.client_key.display()),
            format!("Port={}", self.port),
        ]
    }

    /// `ssh -N -R <remote>:127.0.0.1:<target>` (with `remote` as `[bind:]port`), run in
    /// `netns` if given: sshd forwards every connection to `remote` on its side to `target` on
    /// the client's loopback. Returns the tunnel (killed on drop) and the relay port, once the
    /// forward is up.
    pub fn reverse_tunnel(&self, remote: &str, target: u16, netns: Option<&str>) -> (Proc, u16) {
        let ssh = require(&["ssh"], "openssh-client");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&ssh);
                c
            }
            None => Command::new(&ssh),
        };
        cmd.args(["-F", "/dev/null", "-N", "-v"])
            .args(["-o", "ExitOnForwardFailure=yes"]);
        for o in self.client_options() {
            cmd.args(["-o", &o]);
        }
        cmd.args(["-R", &format!("{remote}:127.0.0.1:{target}")])
            .arg(format!("{}@{}", user_name(), self.listen));
        let fixed: Option<u16> = remote.rsplit(':').next().and_then(|p| p.parse().ok());
        let p = Proc::spawn("ssh -R", cmd, Duration::from_secs(300));
        let end = Instant::now() + STEP;
        loop {
            let err = p.stderr();
            let allocated = err
                .lines()
                .find_map(|l| l.strip_prefix("Allocated port "))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok());
            if let Some(port) = allocated {
                return (p, port);
            }
            if let Some(port) = fixed.filter(|&p| p != 0) {
                if err.contains("remote forward success for: listen") {
                    return (p, port);
                }
            }
            if Instant::now() > end {
                panic!("ssh -R did not set up the tunnel:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
