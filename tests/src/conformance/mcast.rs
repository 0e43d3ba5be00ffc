//! Multicast scenarios: an IUT host running `find --json --yes --timeout N` while the runner
//! announces (honestly, from a spoofed source, tampered, or replayed) to 224.0.0.251:5227.
//!
//! Multicast needs a link where the group is routed and looped back to local listeners,
//! and nothing may leave the machine. The runner therefore creates a network namespace
//! whose only interface is `lo` (up, multicast on, route `224.0.0.0/4 dev lo`) and runs a
//! copy of itself there (`ip netns exec NS xrcp-conformance --netns-child ...`), which runs
//! these scenarios entirely inside the namespace: pairing by link, the IUT's `find`, the
//! announcements and the TLS server. Without root or iproute2 the scenarios are `SKIP`.
//!
//! Inside, `mcast-honest-discovery` runs first as the positive control: if honest
//! announcements are not discovered, a missing discovery in the other scenarios proves
//! nothing, so they are not judged.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use xrcp::pairing::HostPairing;
use xrcp::tls::{self, CaRole, Pin, TlsIdentity};

use super::host::{open_session, race};
use super::iut::Iut;
use super::peer::{ctrl_hello, CtrlListen, RawClient, LOCALHOST, RUNNER_CTRL_NAME};
use super::{
    bail, run_one, scenario, Config, Cx, Note, Outcome, Res, Role, Scenario, ScenarioFuture,
};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const PORT: u16 = 5227;
/// The spoofed source: a loopback address other than the invitation's 127.0.0.1.
const SPOOFED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CONTROL: &str = "mcast-honest-discovery";

pub(crate) fn scenarios() -> Vec<Scenario> {
    fn s(name: &'static str, secs: u64, run: fn(Cx) -> ScenarioFuture) -> Scenario {
        scenario(name, Role::Mcast, secs, run)
    }
    vec![
        s(CONTROL, 40, |cx| Box::pin(honest(cx))),
        s("mcast-spoofed-source", 40, |cx| {
            Box::pin(rejected(cx, Forgery::Spoofed))
        }),
        s("mcast-tampered", 40, |cx| {
            Box::pin(rejected(cx, Forgery::Tampered))
        }),
        s("mcast-replayed", 50, |cx| Box::pin(replayed(cx))),
    ]
}

// ----------------------------------------------------------------------------------------
// The parent: a namespace and a child runner inside it

/// A network namespace with only `lo`, multicast-capable; deleted on drop.
struct Netns {
    name: String,
}

async fn ip(args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    async fn create() -> Result<Netns, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "xrcpconf-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).await?;
        let ns = Netns { name };
        let n = ns.name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"]).await?;
        ip(&["-n", n, "link", "set", "lo", "multicast", "on"]).await?;
        ip(&["-n", n, "route", "add", "224.0.0.0/4", "dev", "lo"]).await?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs the named multicast scenarios in a child runner inside a fresh namespace and maps
/// its result lines back.
pub(crate) async fn run_in_netns(
    config: &Config,
    base: &Path,
    names: &[&'static str],
) -> Vec<Outcome> {
    let all = |o: &dyn Fn() -> Outcome| names.iter().map(|_| o()).collect::<Vec<_>>();
    let Some(host_cmd) = config.host_cmd.as_deref() else {
        return all(&|| Outcome::Skip("no --host-cmd given".into()));
    };
    let ns = match Netns::create().await {
        Ok(ns) => ns,
        Err(e) => {
            let why =
                format!("needs a network namespace with multicast on lo (root and iproute2): {e}");
            return all(&|| Outcome::Skip(why.clone()));
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            let why = format!("cannot find the runner's own executable: {e}");
            return all(&|| Outcome::Fail(why.clone()));
        }
    };
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["netns", "exec", &ns.name])
        .arg(&exe)
        .arg("--netns-child")
        .args(["--host-cmd", host_cmd])
        .args(["--find-timeout", &config.find_timeout.to_string()])
        .arg("--scratch")
        .arg(base)
        .args(["--only", &names.join(",")])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(180), cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            let why = format!("cannot run the runner inside the namespace: {e}");
            return all(&|| Outcome::Fail(why.clone()));
        }
        Err(_) => {
            return all(&|| Outcome::Fail("the runner inside the namespace hung (killed)".into()))
        }
    };
    drop(ns);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    names
        .iter()
        .map(|name| {
            for line in stdout.lines() {
                let parse = |word: &str| {
                    let rest = line.strip_prefix(word)?.strip_prefix(name)?;
                    if rest.is_empty() {
                        Some(None)
                    } else {
                        rest.strip_prefix(": ").map(|n| Some(n.to_owned()))
                    }
                };
                if let Some(note) = parse("PASS ") {
                    return Outcome::Pass(note);
                }
                if let Some(why) = parse("FAIL ") {
                    return Outcome::Fail(why.unwrap_or_default());
                }
                if let Some(why) = parse("SKIP ") {
                    return Outcome::Skip(why.unwrap_or_default());
                }
            }
            Outcome::Fail(format!(
                "no result from the runner inside the namespace ({}): {}",
                out.status,
                stderr.lines().last().unwrap_or("")
            ))
        })
        .collect()
}

// ----------------------------------------------------------------------------------------
// The child: scenarios inside the namespace

/// Runs the chosen multicast scenarios: the positive control first, then the others at
/// once (each has its own pairing, so datagrams meant for one IUT are noise to the others,
/// which they must ignore anyway).
pub(crate) async fn run_inside(
    config: Arc<Config>,
    base: PathBuf,
    chosen: Arc<Vec<Scenario>>,
    indices: &[usize],
) -> Vec<(usize, Outcome)> {
    let mut results = Vec::new();
    let control_at = indices.iter().copied().find(|&i| chosen[i].name == CONTROL);
    let control = match control_at {
        Some(i) => run_one(config.clone(), base.clone(), &chosen[i]).await,
        None => {
            let all = scenarios();
            let s = all.iter().find(|s| s.name == CONTROL).expect("registered");
            run_one(config.clone(), base.clone(), s).await
        }
    };
    let control_failed = match &control {
        Outcome::Pass(_) => None,
        Outcome::Fail(why) | Outcome::Skip(why) => Some(why.clone()),
    };
    if let Some(i) = control_at {
        results.push((i, control));
    }
    let mut tasks = Vec::new();
    for &i in indices.iter().filter(|&&i| Some(i) != control_at) {
        match (&control_failed, control_at) {
            (Some(_), Some(_)) => results.push((
                i,
                Outcome::Skip(format!(
                    "not judged: the positive control {CONTROL} failed, so a missing discovery proves nothing"
                )),
            )),
            (Some(why), None) => results.push((
                i,
                Outcome::Fail(format!(
                    "the positive control {CONTROL} (honest announcements) failed: {why}"
                )),
            )),
            (None, _) => {
                let (config, base, chosen) = (config.clone(), base.clone(), chosen.clone());
                tasks.push(tokio::spawn(async move {
                    (i, run_one(config, base, &chosen[i]).await)
                }));
            }
        }
    }
    // `run_one` turns panics into failures; a lost task shows as "no result reported".
    for t in tasks {
        if let Ok(r) = t.await {
            results.push(r);
        }
    }
    results
}

fn path_arg(p: &Path) -> Res<&str> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

fn spawn_find(cx: &Cx, data: &Path) -> Res<Iut> {
    let timeout = cx.config.find_timeout.to_string();
    Iut::spawn(
        cx.host_cmd()?,
        &[
            "--data-dir",
            path_arg(data)?,
            "find",
            "--json",
            "--yes",
            "--timeout",
            &timeout,
        ],
    )
}

/// Sends `datagram` to the group from `source` four times a second until aborted.
async fn announce(datagram: Vec<u8>, source: Ipv4Addr) -> Res<JoinHandle<()>> {
    let socket = UdpSocket::bind(SocketAddrV4::new(source, 0))
        .await
        .map_err(|e| format!("UDP socket on {source}: {e}"))?;
    let _ = socket.set_multicast_ttl_v4(1);
    let _ = socket.set_multicast_loop_v4(true);
    Ok(tokio::spawn(async move {
        loop {
            let _ = socket
                .send_to(&datagram, SocketAddrV4::new(GROUP, PORT))
                .await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }))
}

/// Pairs the IUT host (in `data`) with a fresh runner controller by link.
async fn pair(cx: &Cx, data: &Path) -> Res<HostPairing> {
    let listen = CtrlListen::new(HostPairing::new().map_err(|e| format!("{e}"))?).await?;
    let s = open_session(cx, data, listen, &["--yes"]).await?;
    let pairing = s.pairing.clone();
    let (mut iut, client) = (s.iut, s.client);
    client.close();
    iut.end(cx.within(10)).await?;
    Ok(pairing)
}

/// What an honest discovery leaves behind.
struct Discovered {
    /// The announcement that was found (its invitation is now used up).
    datagram: Vec<u8>,
    port: u16,
}

/// A known-host session announced by multicast: `find` must discover it and connect.
async fn discovery(cx: &Cx, data: &Path, pairing: HostPairing) -> Res<Discovered> {
    let until = cx.until;
    let listen = CtrlListen::new(pairing).await?;
    let datagram = listen
        .handshake
        .announcement()
        .map_err(|e| format!("making the announcement: {e}"))?;
    let mut iut = spawn_find(cx, data)?;
    let sender = announce(datagram.clone(), LOCALHOST).await?;
    let found = iut.expect("found", until).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            sender.abort();
            return Err(e);
        }
    };
    if found["controller_device_name"] != RUNNER_CTRL_NAME {
        bail!("`found` names {found} (expected {RUNNER_CTRL_NAME:?})");
    }
    let tls = race(&mut iut, listen.accept_tls(until)).await;
    sender.abort();
    let (stream, session) = tls?;
    let CtrlListen {
        handshake, port, ..
    } = listen;
    let est = race(&mut iut, ctrl_hello(handshake, stream, session, until)).await?;
    iut.expect("connected", until).await?;
    RawClient::start(est, until).await?.close();
    iut.end(cx.within(10)).await?;
    Ok(Discovered { datagram, port })
}

async fn honest(cx: Cx) -> Res<Note> {
    let data = cx.dir("host")?;
    let pairing = pair(&cx, &data).await?;
    discovery(&cx, &data, pairing).await?;
    Ok(None)
}

#[derive(Clone, Copy)]
enum Forgery {
    /// A genuine announcement sent from 127.0.0.2 while the invitation names 127.0.0.1.
    Spoofed,
    /// A genuine announcement with one bit of its box flipped.
    Tampered,
}

async fn rejected(cx: Cx, forgery: Forgery) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let pairing = pair(&cx, &data).await?;
    let listen = CtrlListen::new(pairing).await?;
    let mut datagram = listen
        .handshake
        .announcement()
        .map_err(|e| format!("making the announcement: {e}"))?;
    let source = match forgery {
        Forgery::Spoofed => SPOOFED,
        Forgery::Tampered => {
            // 45-byte key, 24-byte nonce, then the box: flip a bit in the ciphertext.
            datagram[100] ^= 0x01;
            LOCALHOST
        }
    };
    let listener = listen.listener;
    let connections = tokio::spawn(async move { listener.accept().await.map(|(_, a)| a) });
    let mut iut = spawn_find(&cx, &data)?;
    let sender = announce(datagram, source).await?;
    let result = iut.expect_error(until).await;
    sender.abort();
    let (kind, ev) = result?;
    iut.end(until).await?;
    let connected = connections.is_finished();
    connections.abort();
    if iut.saw("found") {
        bail!("the IUT accepted the forged announcement ({:?})", iut.log());
    }
    if connected {
        bail!("the IUT connected to the forged announcement's address");
    }
    if kind != "NOT_DISCOVERED" {
        bail!("expected NOT_DISCOVERED after the timeout, the IUT reported {ev}");
    }
    Ok(None)
}

async fn replayed(cx: Cx) -> Res<Note> {
    let until = cx.until;
    let data = cx.dir("host")?;
    let pairing = pair(&cx, &data).await?;
    // A second session by multicast: the IUT's DH key rotates (the old one is kept as
    // "previous", so the old announcement still opens).
    let old = discovery(&cx, &data, pairing).await?;
    // That invitation is used up and its listener closed. An impostor without the
    // controller's CA now holds the port and replays the captured datagram.
    let listener = TcpListener::bind((LOCALHOST, old.port))
        .await
        .map_err(|e| format!("impostor bind on port {}: {e}", old.port))?;
    let impostor = TlsIdentity::generate(CaRole::Controller).map_err(|e| format!("{e}"))?;
    let creds = impostor.session_credentials().map_err(|e| format!("{e}"))?;
    let config = tls::server_config(&creds, Pin::Any).map_err(|e| format!("{e}"))?;
    let impostor_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        Some(tls::accept(tcp, &config).await.is_ok())
    });
    let mut iut = spawn_find(&cx, &data)?;
    let sender = announce(old.datagram, LOCALHOST).await?;
    let result = iut.expect_error(until).await;
    sender.abort();
    let (kind, ev) = result?;
    iut.end(until).await?;
    let tls_done = if impostor_task.is_finished() {
        impostor_task.await.ok().flatten()
    } else {
        impostor_task.abort();
        None
    };
    if tls_done == Some(true) {
        bail!("the IUT completed TLS with an impostor after a replayed announcement");
    }
    if iut.saw("found") {
        match kind.as_str() {
            "IDENTITY" | "EXCEPTION" => Ok(Some(format!(
                "found the replay (the reference has no replay protection), then refused the impostor's TLS with {kind}"
            ))),
            _ => bail!("after finding the replay, expected IDENTITY or EXCEPTION; the IUT reported {ev}"),
        }
    } else if kind == "NOT_DISCOVERED" {
        Ok(Some(
            "ignored the replayed announcement (stricter than the reference)".into(),
        ))
    } else {
        bail!("expected NOT_DISCOVERED or a refused connection, the IUT reported {ev}")
    }
}
