//! Helpers of the hardening tests (`tests/hardening_*.rs`): process resource counters, option
//! builders for loopback sessions, and one full session (handshake, HTTP/2, notes app).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use xrcp::message::SignedInvitation;
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::session::RemoteProtocolError;
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::connect::{ControllerOptions, Listening};
use xrcp_ctrl::remote::{open_session, ControllerApp, RemoteHost};
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::{prepare_session, HostAppSettings};
use xrcp_host::HostOptions;

/// What this process's open file descriptors point to (`socket:[…]`, paths, `pipe:[…]`),
/// leaving out anonymous inodes (`anon_inode:[eventpoll]`, `[eventfd]`, `[timerfd]`): those
/// belong to tokio runtimes, and the runtime of another test starting in parallel in the
/// same binary must not count as a leak of this one. Sockets, files and pipes do count.
pub fn fd_targets() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return vec!["/proc/self/fd unreadable".into()];
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        // (and the directory handle of this very listing)
        .filter(|t| !t.starts_with("anon_inode:") && !t.starts_with("/proc/"))
        .collect()
}

/// Open file descriptors of this process (see [`fd_targets`] for which count).
pub fn open_fds() -> usize {
    fd_targets().len()
}

/// Resident set size of this process in bytes (`VmRSS`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Tasks alive on the current tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (up to `within`) until `probe()` is at most `baseline`; returns the last value.
pub async fn settle(baseline: usize, within: Duration, probe: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = probe();
        if now <= baseline || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resource counters at one point, to compare after the work is done.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// Open fds (as [`open_fds`] counts them).
    pub fds: usize,
    /// Alive tasks of the current runtime.
    pub tasks: usize,
    targets: std::collections::HashSet<String>,
}

impl Baseline {
    pub fn now() -> Baseline {
        let targets = fd_targets();
        Baseline {
            fds: targets.len(),
            tasks: alive_tasks(),
            targets: targets.into_iter().collect(),
        }
    }

    /// Descriptors opened since the baseline: their targets were not open then. (A new
    /// connection or file always is a new target; a duplicate of a descriptor that was open
    /// — tokio's process-wide signal socket, cloned by every runtime — is not a leak.)
    pub fn new_fds(&self) -> Vec<String> {
        let mut new = fd_targets();
        new.retain(|t| !self.targets.contains(t));
        new
    }

    /// After a settle time of up to `within`: what is left above the baseline, described,
    /// or `Ok` if nothing is.
    pub async fn check(&self, within: Duration) -> Result<(), String> {
        let new = settle(0, within, || self.new_fds().len()).await;
        let tasks = settle(self.tasks, within, alive_tasks).await;
        if new == 0 && tasks <= self.tasks {
            return Ok(());
        }
        Err(format!(
            "left behind: {new} new open fds {:?} (baseline {} fds), {tasks} alive tasks \
             (baseline {})",
            self.new_fds(),
            self.fds,
            self.tasks
        ))
    }
}

/// Both sides' application settings and the network options of a loopback session.
#[derive(Clone, Debug)]
pub struct LinkSettings {
    pub ctrl_app: ControllerApp,
    pub host_app: HostAppSettings,
    pub tls_timeout: Duration,
    pub hello_timeout: Duration,
    pub step_timeout: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            ctrl_app: ControllerApp {
                device_name: "desk".into(),
                ..ControllerApp::default()
            },
            host_app: HostAppSettings {
                device_name: "phone".into(),
                ..HostAppSettings::default()
            },
            tls_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            step_timeout: Duration::from_secs(10),
        }
    }
}

impl LinkSettings {
    /// Controller options: listen and advertise on loopback only.
    pub fn ctrl_options(&self) -> ControllerOptions {
        ControllerOptions {
            app: serde_json::to_value(self.ctrl_app.info()).expect("app info is JSON"),
            bind: Ipv4Addr::LOCALHOST,
            candidates: Some(vec![LocalAddress {
                address: Ipv4Addr::LOCALHOST,
                interface: "lo".into(),
            }]),
            tls_timeout: self.tls_timeout,
            hello_timeout: self.hello_timeout,
            ..ControllerOptions::default()
        }
    }

    /// Host options for the controller app of `inv`, dialing `via` if given.
    pub fn host_options(
        &self,
        inv: &SignedInvitation,
        via: Option<SocketAddr>,
    ) -> Result<HostOptions, String> {
        let hello = self
            .host_app
            .hello_info(&inv.invitation.app)
            .map_err(|e| format!("host app info: {e}"))?;
        Ok(HostOptions {
            app: serde_json::to_value(&hello).map_err(|e| e.to_string())?,
            connect_via: via,
            step_timeout: self.step_timeout,
            ..HostOptions::default()
        })
    }
}

/// A linked pair: the controller's session, and the host's serving task (its result is
/// what `serve` returned).
pub struct Linked {
    pub remote: RemoteHost,
    pub host: JoinHandle<Result<(), RemoteProtocolError>>,
    /// The host's updated record of the controller.
    pub host_pairing: CtrlPairing,
}

/// Starts a controller for `pairing`; gives the listener and its parsed invitation.
pub async fn start_controller(
    pairing: HostPairing,
    settings: &LinkSettings,
) -> Result<(Listening, SignedInvitation), String> {
    let listening = xrcp_ctrl::connect::start(pairing, settings.ctrl_options())
        .await
        .map_err(|e| format!("start: {e}"))?;
    let inv = SignedInvitation::parse(&listening.link()).map_err(|e| e.to_string())?;
    Ok((listening, inv))
}

/// The controller's listening socket address (loopback).
pub fn listening_addr(listening: &Listening) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, listening.advertised().1))
}

/// Runs a full session: handshake (the host confirms its own code), HTTP/2 session, the
/// host serving `notes`. The host dials `via` if given.
pub async fn link(
    listening: Listening,
    inv: SignedInvitation,
    host_pairing: Option<CtrlPairing>,
    notes: NotesApp,
    settings: &LinkSettings,
    via: Option<SocketAddr>,
) -> Result<Linked, String> {
    let app = settings.ctrl_app.clone();
    let ctrl = tokio::spawn(async move {
        let pending = listening.accept().await?;
        let connected = pending.finish().await?;
        open_session(connected, &app).await
    });
    let host_side = async {
        let opts = settings.host_options(&inv, via)?;
        let pending = xrcp_host::connect(inv.clone(), host_pairing, opts)
            .await
            .map_err(|e| format!("host connect: {e}"))?;
        let code = pending.session_code().to_owned();
        let connected = pending
            .verify(&code)
            .await
            .map_err(|e| format!("host verify: {e}"))?;
        prepare_session(connected, &settings.host_app).map_err(|e| format!("host session: {e}"))
    };
    let (served, host_pairing) = match host_side.await {
        Ok(v) => v,
        Err(e) => {
            ctrl.abort();
            let _ = ctrl.await;
            return Err(e);
        }
    };
    let events = notes.subscribe();
    let host = tokio::spawn(async move { served.serve(Arc::new(notes), events).await });
    let remote = match ctrl.await {
        Ok(Ok(remote)) => remote,
        Ok(Err(e)) => {
            host.abort();
            return Err(format!("controller: {e}"));
        }
        Err(e) => {
            host.abort();
            return Err(format!("controller task: {e}"));
        }
    };
    Ok(Linked {
        remote,
        host,
        host_pairing,
    })
}

/// The JSON of a successful chat response, or a description of what came instead.
pub fn chat_result(
    r: Result<xrcp::session::RRResult, RemoteProtocolError>,
) -> Result<Value, String> {
    match r {
        Ok(xrcp::session::RRResult::Result(v)) => Ok(v),
        Ok(xrcp::session::RRResult::Error(e)) => Err(format!("chat error {e}")),
        Err(e) => Err(format!("protocol error {e:?}")),
    }
}

/// One text form a secret could take in logs or `Debug` output.
#[derive(Clone, Debug)]
pub struct LeakForm {
    pub label: String,
    pub text: String,
    /// Hex: compared case-insensitively.
    pub any_case: bool,
}

/// Bytes of a secret compared in windows of this many (partial dumps are leaks too).
pub const LEAK_WINDOW: usize = 12;
/// Windows start every this many bytes: any leaked run of `LEAK_WINDOW + LEAK_STRIDE - 1`
/// consecutive secret bytes contains one.
pub const LEAK_STRIDE: usize = 4;

/// The forms of `secret` to look for: hex, base64 and base64url (padded or not), `Debug`
/// lists (decimal and hex), and the same for [`LEAK_WINDOW`]-byte windows.
pub fn leak_forms(secret: &[u8]) -> Vec<LeakForm> {
    use xrcp::codec::text::base64url_encode;
    let form = |label: &str, text: String, any_case: bool| LeakForm {
        label: label.to_owned(),
        text,
        any_case,
    };
    let std_b64 = |url: &str| url.replace('-', "+").replace('_', "/");
    let url = base64url_encode(secret);
    let mut forms = vec![
        form("hex", hex::encode(secret), true),
        form("base64url", url.clone(), false),
        form(
            "base64url unpadded",
            url.trim_end_matches('=').to_owned(),
            false,
        ),
        form("base64", std_b64(&url), false),
        form("base64 unpadded", std_b64(url.trim_end_matches('=')), false),
        form("Debug", format!("{secret:?}"), false),
        form("Debug hex", format!("{secret:x?}"), true),
        form("Debug 02x", format!("{secret:02x?}"), true),
    ];
    if secret.len() > LEAK_WINDOW {
        // (windows of the whole secret are the full forms above)
        for (i, w) in secret.windows(LEAK_WINDOW).enumerate().step_by(LEAK_STRIDE) {
            let url = base64url_encode(w);
            let list = format!("{w:?}");
            forms.extend([
                form(&format!("hex of bytes {i}.."), hex::encode(w), true),
                form(&format!("base64url of bytes {i}.."), url.clone(), false),
                form(&format!("base64 of bytes {i}.."), std_b64(&url), false),
                form(
                    &format!("Debug of bytes {i}.."),
                    list[1..list.len() - 1].to_owned(),
                    false,
                ),
            ]);
        }
    }
    forms
}

/// Where any of `secrets` (name, bytes) shows up in `haystack`, in any [`leak_forms`] form or
/// as raw bytes; one line per finding.
pub fn find_leaks(haystack: &[u8], secrets: &[(String, Vec<u8>)]) -> Vec<String> {
    let lower = haystack.to_ascii_lowercase();
    let exact = WindowIndex::new(haystack);
    let any_case = WindowIndex::new(&lower);
    let mut found = Vec::new();
    for (name, secret) in secrets {
        assert!(
            secret.len() >= LEAK_WINDOW,
            "secret {name} too short to search for without false positives"
        );
        for f in leak_forms(secret) {
            let hit = if f.any_case {
                any_case.contains(f.text.to_ascii_lowercase().as_bytes())
            } else {
                exact.contains(f.text.as_bytes())
            };
            if hit {
                found.push(format!("{name} found as {}: {}", f.label, f.text));
                break;
            }
        }
    }
    // Raw bytes: every window of every secret.
    let mut raw: Vec<&str> = secrets
        .iter()
        .filter(|(_, secret)| secret.windows(LEAK_WINDOW).any(|w| exact.contains(w)))
        .map(|(name, _)| name.as_str())
        .collect();
    raw.dedup();
    for name in raw {
        found.push(format!("{name} found as raw bytes"));
    }
    found
}

/// Substring search over a large haystack for many needles: positions by their first
/// [`LEAK_WINDOW`] bytes.
struct WindowIndex<'a> {
    haystack: &'a [u8],
    starts: std::collections::HashMap<&'a [u8], Vec<usize>>,
}

impl<'a> WindowIndex<'a> {
    fn new(haystack: &'a [u8]) -> Self {
        let mut starts: std::collections::HashMap<&[u8], Vec<usize>> =
            std::collections::HashMap::new();
        for (i, w) in haystack.windows(LEAK_WINDOW).enumerate() {
            starts.entry(w).or_default().push(i);
        }
        WindowIndex { haystack, starts }
    }

    fn contains(&self, needle: &[u8]) -> bool {
        if needle.len() < LEAK_WINDOW {
            return self.haystack.windows(needle.len()).any(|w| w == needle);
        }
        self.starts
            .get(&needle[..LEAK_WINDOW])
            .is_some_and(|at| at.iter().any(|&i| self.haystack[i..].starts_with(needle)))
    }
}
