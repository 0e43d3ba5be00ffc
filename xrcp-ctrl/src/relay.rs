//! A reverse SSH tunnel to a relay server, so that a host that cannot reach this machine (a
//! phone on mobile data) can dial the relay instead: `ssh -N -R` run as a child process for
//! as long as the session lasts.
//!
//! The relay only carries TCP. The host pins this controller's CA from the link and the
//! users compare the session code, so the relay sees nothing but TLS and cannot stand in for
//! either side (spec/xrcp.md §6.2); what it can do is drop or delay the connection.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use xrcp::message::TransportHost;

/// Lines of ssh's diagnostics kept for error messages; older lines are dropped.
const KEPT_LINES: usize = 64;
/// Longest diagnostic line kept (the server's banner comes through here too).
const MAX_LINE: usize = 512;

/// How to reach the relay.
#[derive(Clone, Debug)]
pub struct SshRelayOptions {
    /// `[USER@]SERVER`, as given to ssh.
    pub destination: String,
    /// The SSH server's port, when not ssh's default.
    pub ssh_port: Option<u16>,
    /// The port to open on the relay; 0 lets the server choose.
    pub remote_port: u16,
    /// Extra `-o` options for ssh (`KEY=VALUE`).
    pub ssh_options: Vec<String>,
    /// The ssh program.
    pub program: PathBuf,
    /// Bound on setting the tunnel up (login and the forward).
    pub timeout: Duration,
}

impl SshRelayOptions {
    /// Options for `[USER@]SERVER[:PORT]`.
    pub fn parse(text: &str) -> Result<SshRelayOptions, RelayAddressError> {
        let (destination, ssh_port) = match text.rsplit_once(':') {
            Some((d, p)) => (
                d,
                Some(
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| RelayAddressError::BadPort(p.to_owned()))?,
                ),
            ),
            None => (text, None),
        };
        let server = destination.rsplit_once('@').map_or(destination, |(_, s)| s);
        if server.is_empty() || destination.starts_with('-') {
            return Err(RelayAddressError::BadDestination(text.to_owned()));
        }
        Ok(SshRelayOptions {
            destination: destination.to_owned(),
            ssh_port,
            remote_port: 0,
            ssh_options: Vec::new(),
            program: PathBuf::from("ssh"),
            timeout: Duration::from_secs(30),
        })
    }

    /// The server part of the destination: what the link advertises unless told otherwise.
    pub fn server(&self) -> &str {
        self.destination
            .rsplit_once('@')
            .map_or(&self.destination, |(_, s)| s)
    }
}

/// Why an SSH relay's address (`[USER@]SERVER[:PORT]`) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayAddressError {
    /// The part after the last `:` is not a port number.
    #[error("'{0}' is not an SSH port (1 to 65535)")]
    BadPort(String),
    /// No server name, or one that ssh would take for an option.
    #[error("'{0}' is not [USER@]SERVER[:PORT]")]
    BadDestination(String),
}

/// Why the tunnel could not be set up; each says what to do.
#[derive(Debug)]
pub enum RelayError {
    /// The ssh program could not be started.
    NoSsh(std::io::Error),
    /// The server refused the login (ssh cannot ask for a password here).
    Login,
    /// ssh does not know the server's host key.
    HostKey,
    /// The server refused to open the port.
    ForwardRefused(u16),
    /// The server is unreachable or unknown.
    Unreachable(String),
    /// The forward is up but only on the server's own loopback (`GatewayPorts`).
    LoopbackOnly {
        /// The relay server.
        server: String,
        /// The port it opened.
        port: u16,
    },
    /// The server name cannot go into a link.
    BadServerName(String),
    /// Setting the tunnel up took too long.
    Timeout,
    /// ssh ended for another reason; its last diagnostic line.
    Failed(String),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::NoSsh(e) => write!(
                f,
                "cannot run ssh ({e}): install OpenSSH's client or use --advertise with a tunnel of your own"
            ),
            RelayError::Login => f.write_str(
                "the SSH server refused the login: set up key-based login first (ssh-copy-id), \
                 since ssh cannot ask for a password here",
            ),
            RelayError::HostKey => f.write_str(
                "ssh does not know the relay's host key: connect once with ssh to check and \
                 accept it, then try again",
            ),
            RelayError::ForwardRefused(port) => write!(
                f,
                "the relay refused to open {}: the port may be in use, or the server may not \
                 allow remote forwarding (AllowTcpForwarding in sshd_config)",
                if *port == 0 { "a port".to_owned() } else { format!("port {port}") }
            ),
            RelayError::Unreachable(why) => write!(f, "cannot reach the SSH server: {why}"),
            RelayError::LoopbackOnly { server, port } => write!(
                f,
                "{server}:{port} does not answer although the relay opened the port: most likely \
                 the server keeps remote forwards on its own loopback (set 'GatewayPorts \
                 clientspecified' or 'yes' in its sshd_config), or a firewall blocks the port"
            ),
            RelayError::BadServerName(why) => write!(
                f,
                "{why}; give the address hosts should dial with --advertise"
            ),
            RelayError::Timeout => f.write_str(
                "setting up the SSH tunnel took too long: check that the server answers",
            ),
            RelayError::Failed(line) => write!(f, "ssh failed: {line}"),
        }
    }
}

impl std::error::Error for RelayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RelayError::NoSsh(e) => Some(e),
            _ => None,
        }
    }
}

/// A running tunnel; it is taken down when this is dropped.
pub struct SshRelay {
    child: Child,
    port: u16,
}

impl SshRelay {
    /// Starts `ssh -N -R` forwarding port `remote_port` on every address of the relay to
    /// `local` on this machine, and waits until the forward is up. Then checks that the relay
    /// port answers from here on `advertised` (the address hosts will dial), which fails when
    /// the server bound the port to its loopback only.
    pub async fn start(
        options: &SshRelayOptions,
        local: SocketAddr,
        advertised: &TransportHost,
    ) -> Result<SshRelay, RelayError> {
        let mut cmd = Command::new(&options.program);
        cmd.arg("-N")
            .arg("-v")
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args(["-o", "ServerAliveInterval=15"])
            .args(["-o", "ServerAliveCountMax=3"]);
        for o in &options.ssh_options {
            cmd.arg("-o").arg(o);
        }
        if let Some(port) = options.ssh_port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.arg("-R").arg(format!(
            "0.0.0.0:{}:{}:{}",
            options.remote_port,
            local.ip(),
            local.port()
        ));
        cmd.arg("--").arg(&options.destination);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(RelayError::NoSsh)?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let (ready_tx, mut ready_rx) = watch::channel(None::<u16>);
        let requested = options.remote_port;
        let kept = lines.clone();
        // Reads ssh's diagnostics for the tunnel's whole life, so that ssh never blocks on a
        // full pipe (with -v it logs every forwarded connection); keeps the last few lines,
        // each bounded, for error messages. Bytes that are not UTF-8 (a server's banner) are
        // shown lossily rather than ending the reader.
        tokio::spawn(async move {
            let mut stderr = stderr;
            let mut chunk = [0u8; 4096];
            let mut line: Vec<u8> = Vec::new();
            loop {
                let n = match stderr.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                for &b in &chunk[..n] {
                    if b != b'\n' {
                        if line.len() < MAX_LINE {
                            line.push(b);
                        }
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    line.clear();
                    if let Some(port) = forward_ready(&text, requested) {
                        let _ = ready_tx.send(Some(port));
                    }
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() == KEPT_LINES {
                        kept.remove(0);
                    }
                    kept.push(printable(&text));
                }
            }
            if !line.is_empty() {
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.push(printable(String::from_utf8_lossy(&line).trim_end()));
            }
        });
        let port = tokio::time::timeout(options.timeout, async {
            loop {
                tokio::select! {
                    changed = ready_rx.changed() => {
                        if let Some(port) = *ready_rx.borrow() {
                            return Ok(port);
                        }
                        if changed.is_err() {
                            // ssh closed its stderr: it is ending.
                            let _ = child.wait().await;
                            return Err(diagnose(&lines, requested));
                        }
                    }
                    _ = child.wait() => {
                        // Give the reader a moment to take ssh's last words.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return Err(diagnose(&lines, requested));
                    }
                }
            }
        })
        .await
        .map_err(|_| RelayError::Timeout)??;
        let relay = SshRelay { child, port };
        relay.check_reachable(advertised).await?;
        Ok(relay)
    }

    /// The port opened on the relay.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Takes the tunnel down.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }

    async fn check_reachable(&self, advertised: &TransportHost) -> Result<(), RelayError> {
        let target = format!("{advertised}:{}", self.port);
        let port = self.port;
        let probe = tokio::task::spawn_blocking(move || {
            use std::net::ToSocketAddrs;
            let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
                Ok(a) => a.take(4).collect(),
                Err(_) => return Probe::Unresolved,
            };
            if addrs
                .iter()
                .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).is_ok())
            {
                Probe::Answered
            } else {
                Probe::Silent
            }
        })
        .await
        .unwrap_or(Probe::Silent);
        match probe {
            Probe::Answered => Ok(()),
            Probe::Unresolved => Err(RelayError::Unreachable(format!(
                "'{advertised}' does not resolve from this machine, so hosts could not dial it \
                 either; give the relay's public name or address with --advertise"
            ))),
            Probe::Silent => Err(RelayError::LoopbackOnly {
                server: advertised.to_string(),
                port,
            }),
        }
    }
}

/// What the reachability check of the relay port found.
enum Probe {
    Answered,
    Unresolved,
    Silent,
}

/// The relay port once ssh reports the forward up: "Allocated port N for remote forward" when
/// the server chose, "remote forward success for: listen …N" (with -v) for a fixed port.
fn forward_ready(line: &str, requested: u16) -> Option<u16> {
    if let Some(rest) = line.strip_prefix("Allocated port ") {
        return rest.split(' ').next()?.parse().ok();
    }
    if requested != 0 && line.contains("remote forward success for: listen") {
        return Some(requested);
    }
    None
}

/// What went wrong, from ssh's diagnostics.
fn diagnose(lines: &Mutex<Vec<String>>, requested: u16) -> RelayError {
    let lines = lines.lock().unwrap_or_else(|e| e.into_inner());
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    if has("Permission denied") {
        RelayError::Login
    } else if has("Host key verification failed") {
        RelayError::HostKey
    } else if has("remote port forwarding failed") || has("forwarding request failed") {
        RelayError::ForwardRefused(requested)
    } else if let Some(l) = lines.iter().rev().find(|l| {
        l.contains("Could not resolve hostname")
            || l.contains("Connection refused")
            || l.contains("Connection timed out")
            || l.contains("No route to host")
            || l.contains("Network is unreachable")
    }) {
        RelayError::Unreachable(l.trim_start_matches("ssh: ").to_owned())
    } else {
        let last = lines
            .iter()
            .rev()
            .find(|l| !l.starts_with("debug"))
            .cloned()
            .unwrap_or_else(|| "it ended without saying why".into());
        RelayError::Failed(last)
    }
}

/// A diagnostic line safe to print: bounded, and escaped (a server's banner may hold any
/// bytes).
fn printable(line: &str) -> String {
    let bounded: String = line.chars().take(MAX_LINE).collect();
    xrcp::display::escape(&bounded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        let o = SshRelayOptions::parse("me@relay.example.com:2222").unwrap();
        assert_eq!(o.destination, "me@relay.example.com");
        assert_eq!(o.ssh_port, Some(2222));
        assert_eq!(o.server(), "relay.example.com");
        let o = SshRelayOptions::parse("relay.example.com").unwrap();
        assert_eq!((o.server(), o.ssh_port), ("relay.example.com", None));
        assert!(SshRelayOptions::parse("me@").is_err());
        assert!(SshRelayOptions::parse("-oProxyCommand=x").is_err());
        assert!(SshRelayOptions::parse("relay:0").is_err());
    }

    #[test]
    fn readiness_lines() {
        assert_eq!(
            forward_ready(
                "Allocated port 41033 for remote forward to 127.0.0.1:5000",
                0
            ),
            Some(41033)
        );
        assert_eq!(
            forward_ready(
                "debug1: remote forward success for: listen 0.0.0.0:5225, connect 127.0.0.1:5000",
                5225
            ),
            Some(5225)
        );
        assert_eq!(
            forward_ready("debug1: Authentication succeeded", 5225),
            None
        );
    }

    #[test]
    fn diagnoses_say_what_to_do() {
        let lines = |l: &[&str]| Mutex::new(l.iter().map(|s| s.to_string()).collect());
        assert!(matches!(
            diagnose(&lines(&["me@relay: Permission denied (publickey)."]), 0),
            RelayError::Login
        ));
        assert!(matches!(
            diagnose(
                &lines(&["Error: remote port forwarding failed for listen port 5225"]),
                5225
            ),
            RelayError::ForwardRefused(5225)
        ));
        assert!(matches!(
            diagnose(
                &lines(&["ssh: Could not resolve hostname nowhere: Name or service not known"]),
                0
            ),
            RelayError::Unreachable(_)
        ));
        let shown = printable("banner\u{1b}[2J\u{7}");
        assert!(!shown.contains(['\u{1b}', '\u{7}']), "{shown}");
    }
}
