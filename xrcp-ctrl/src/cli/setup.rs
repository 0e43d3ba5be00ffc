//! What both modes share: the data directory and pairing store, logging, and one session's
//! establishment with progress reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use xrcp::pairing::HostPairing;

use super::Listen;
use crate::address::{choose, local_addresses, AddressPreference};
use crate::announce::{AnnounceOptions, Announcer};
use crate::connect::{WaitEvent, Withdrawal};
use crate::error::RemoteHostError;
use crate::relay::{RelayError, SshRelay};
use crate::remote::{open_session, ControllerApp, RemoteHost};
use crate::store::{device_name, Binding, HostStore};
use crate::ControllerOptions;
use tokio::net::TcpListener;
use xrcp::message::TransportHost;
use xrcp::RcError;

/// `RUST_LOG` controls the logs (default: warnings), written to stderr so stdout stays
/// clean for scripting.
pub(super) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Log lines can quote the peer: escaped like everything else shown on a terminal, and
    // without colours (their escape sequences would be escaped too).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| xrcp::display::EscapingWriter(std::io::stderr()))
        .try_init();
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("xrcp-ctrl");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/xrcp-ctrl"),
        None => PathBuf::from(".xrcp-ctrl"),
    }
}

/// This machine's host name (`uname`), if it has a usable one.
pub(crate) fn machine_name() -> Option<String> {
    #[cfg(unix)]
    {
        let uname = rustix::system::uname();
        let name = uname.nodename().to_string_lossy().trim().to_owned();
        (!name.is_empty() && name != "(none)").then_some(name)
    }
    #[cfg(not(unix))]
    None
}

/// The program's state shared by its tasks.
#[derive(Clone)]
pub(super) struct Context {
    pub(crate) store: Arc<Mutex<HostStore>>,
    pub(crate) app: Arc<Mutex<ControllerApp>>,
}

impl Context {
    pub(crate) fn open(
        dir: Option<PathBuf>,
        device_name: Option<String>,
    ) -> Result<Context, String> {
        let dir = dir.unwrap_or_else(default_data_dir);
        let store = HostStore::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut app = ControllerApp::default();
        // `--device-name`, else the name set with `/set device name`, else this machine's
        // host name: what a person calls this computer is what the host should show.
        let saved = store.saved_device_name().unwrap_or_else(|e| {
            tracing::warn!("cannot read the saved device name: {e}");
            None
        });
        if let Some(name) = device_name.or(saved).or_else(machine_name) {
            app.device_name = name;
        }
        Ok(Context {
            store: Arc::new(Mutex::new(store)),
            app: Arc::new(Mutex::new(app)),
        })
    }

    /// `/set device name`: used from now on and saved for the next starts (a
    /// `--device-name` given then still wins).
    pub(crate) fn set_device_name(&self, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give the name: /set device name <name>".into());
        }
        self.app
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .device_name = name.to_owned();
        self.store()
            .save_device_name(name)
            .map_err(|e| format!("the name is used until you quit, but could not be saved: {e}"))
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, HostStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn app(&self) -> ControllerApp {
        self.app
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Which host a session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    New,
    Known { id: i64, multicast: bool },
}

/// The listener is up and the link made.
#[derive(Debug)]
pub(super) struct Started {
    pub(super) link: String,
    /// What the link names.
    pub(super) address: TransportHost,
    pub(super) port: u16,
    /// Where the listener is bound.
    pub(super) bound: SocketAddr,
    /// The link names a relay or forward rather than one of this machine's addresses.
    pub(super) relayed: bool,
    pub(super) others: Vec<Ipv4Addr>,
    /// How long the link takes new connections from now (`--timeout`, `timeout=`).
    pub(super) lifetime: Duration,
}

/// What happens while a session is set up.
#[derive(Debug)]
pub(super) enum Progress {
    Started(Started),
    /// Nobody is comparing a code and the link expires in this long: remind the person.
    TimeLeft(Duration),
    /// A connection from this address completed TLS.
    Connecting(SocketAddr),
    /// The session code of the connection from `peer`.
    SessionCode {
        peer: SocketAddr,
        code: String,
    },
    /// The connection from `peer` is gone before proving it holds the invitation; its code
    /// no longer counts.
    Withdrawn {
        peer: SocketAddr,
        reason: Withdrawal,
    },
    /// The host connected from `peer` while `others` were still waiting with this link.
    Contested {
        peer: SocketAddr,
        others: Vec<SocketAddr>,
    },
}

/// Options for a session from the command-line flags and, for a known host without flags,
/// its stored binding.
pub(super) fn controller_options(
    app: &ControllerApp,
    listen: &Listen,
    stored: Option<&Binding>,
) -> ControllerOptions {
    let mut options = ControllerOptions {
        app: serde_json::to_value(app.info()).unwrap_or_default(),
        address: AddressPreference {
            address: listen.addr,
            interface: listen.iface.clone(),
        },
        port: listen
            .bind
            .and_then(|(_, port)| port)
            .unwrap_or(listen.port),
        advertise: listen.advertise.clone(),
        // A listener behind a relay or tunnel only needs to be reachable from this machine;
        // otherwise `establish` binds the address put into the link (never every interface
        // by surprise).
        bind: listen.bind.map(|(addr, _)| addr).unwrap_or(
            if listen.advertise.is_some() || listen.ssh_relay.is_some() {
                Ipv4Addr::LOCALHOST
            } else {
                Ipv4Addr::UNSPECIFIED
            },
        ),
        tls_timeout: Duration::from_secs(listen.timeout),
        // A person compares a 76-digit code and types it: a connection that came in time may
        // take as long as the link lasts to send its HELLO.
        hello_timeout: Duration::from_secs(listen.timeout),
        ..ControllerOptions::default()
    };
    if let Some(binding) = stored {
        let told = listen.addr.is_some()
            || listen.iface.is_some()
            || listen.port != 0
            || listen.bind.is_some_and(|(_, port)| port.is_some())
            || listen.advertise.is_some()
            || listen.ssh_relay.is_some();
        if !told {
            binding.apply(&mut options);
        }
    }
    options
}

/// Runs one session from start to connected, reporting progress; stores the pairing.
/// Returns the host's id, the running session, and the SSH tunnel it runs through (keep it
/// for as long as the session).
pub(super) async fn establish(
    ctx: &Context,
    target: Target,
    listen: &Listen,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(i64, RemoteHost, Option<SshRelay>), RemoteHostError> {
    let app = ctx.app();
    // What the user typed is checked before anything else, so a wrong option is reported at
    // once (not after the link's lifetime).
    let candidates = local_addresses();
    let typed = AddressPreference {
        address: listen.addr,
        interface: listen.iface.clone(),
    };
    crate::address::check(&typed, &candidates)?;
    let multicast = matches!(
        target,
        Target::Known {
            multicast: true,
            ..
        }
    );
    if let Some(addr) = listen.addr.filter(|a| multicast && a.is_loopback()) {
        return Err(RemoteHostError::MulticastOnLoopback { addr });
    }
    let (pairing, stored_binding) = match target {
        Target::New => (HostPairing::new()?, None),
        Target::Known { id, .. } => {
            let rec = ctx
                .store()
                .get(id)
                .map_err(|e| RemoteHostError::Store(e.into()))?
                .ok_or(RemoteHostError::UnknownHost(id))?;
            (rec.pairing, Some(rec.binding))
        }
    };
    let mut options = controller_options(&app, listen, stored_binding.as_ref());
    let binding = Binding::of(&options);
    if options.advertise.is_none() && listen.ssh_relay.is_none() {
        // The address the link names (a stored one may have gone: then the reference's
        // fallback applies) is also the one the listener binds, unless --bind/bind= says
        // otherwise.
        let (chosen, _) = choose(&options.address, candidates.clone())?;
        if multicast && chosen.address.is_loopback() {
            return Err(RemoteHostError::MulticastOnLoopback {
                addr: chosen.address,
            });
        }
        options.address.address = Some(chosen.address);
        if listen.bind.is_none() {
            options.bind = chosen.address;
        }
        options.candidates = Some(candidates);
    }
    let mut relay = None;
    let listening = match &listen.ssh_relay {
        None => crate::connect::start(pairing, options).await?,
        Some(relay_options) => {
            let listener = TcpListener::bind((options.bind, options.port))
                .await
                .map_err(|e| RemoteHostError::Listen {
                    addr: options.bind,
                    port: options.port,
                    failure: crate::error::ListenFailure::of(&e),
                })?;
            let local = listener.local_addr().map_err(|_| RcError::TlsStartFailed)?;
            // ssh connects to the listener from this machine: its own address, or loopback
            // when it listens on every address.
            let target = if local.ip().is_unspecified() {
                SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
            } else {
                local
            };
            let advertised = match &listen.advertise {
                Some((host, _)) => host.clone(),
                None => TransportHost::for_advertising(relay_options.server()).map_err(|e| {
                    let why = match e {
                        RcError::Syntax(why) => why,
                        other => other.to_string(),
                    };
                    RelayError::BadServerName(format!(
                        "'{}' cannot go into a link: {why}",
                        relay_options.server()
                    ))
                })?,
            };
            let mut relay_options = relay_options.clone();
            relay_options.remote_port = listen.relay_port;
            relay_options.ssh_options = listen.ssh_options.clone();
            let tunnel = SshRelay::start(&relay_options, target, &advertised).await?;
            options.advertise = Some((advertised, Some(tunnel.port())));
            relay = Some(tunnel);
            crate::connect::start_on(listener, pairing, options).await?
        }
    };
    let (advertised, port) = listening.advertised();
    let lifetime = Duration::from_secs(listen.timeout);
    let deadline = tokio::time::Instant::now() + lifetime;
    progress(Progress::Started(Started {
        link: listening.link(),
        address: advertised.clone(),
        port,
        bound: listening.bound(),
        relayed: listening.local_address().is_none(),
        others: listening
            .other_addresses()
            .iter()
            .map(|a| a.address)
            .collect(),
        lifetime,
    }));
    let announcer = match target {
        Target::Known {
            multicast: true, ..
        } => Some(Announcer::start(&listening, &AnnounceOptions::default())?),
        _ => None,
    };
    // The wait reports codes while the reminders below report the time left: both report
    // through `progress`, one at a time.
    let progress = Mutex::new(progress);
    let report = |p: Progress| (progress.lock().unwrap_or_else(PoisonError::into_inner))(p);
    let connected = {
        // Connections showing a code: while someone compares one, reminders would only
        // distract.
        let comparing = AtomicUsize::new(0);
        let wait = listening.connect(|event| match event {
            WaitEvent::Code { peer, code } => {
                comparing.fetch_add(1, Ordering::Relaxed);
                report(Progress::Connecting(peer));
                report(Progress::SessionCode { peer, code });
            }
            WaitEvent::Withdrawn { peer, reason, .. } => {
                let _ = comparing
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                report(Progress::Withdrawn { peer, reason })
            }
        });
        tokio::pin!(wait);
        let mut reminders = reminders(lifetime).into_iter();
        let mut next = reminders.next();
        loop {
            let at = next.map(|left| deadline - left);
            tokio::select! {
                connected = &mut wait => break connected,
                () = sleep_until_some(at) => {
                    if let Some(left) = next {
                        if comparing.load(Ordering::Relaxed) == 0 {
                            report(Progress::TimeLeft(left));
                        }
                    }
                    next = reminders.next();
                }
            }
        }
    };
    let mut progress = progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(a) = announcer {
        a.stop();
    }
    let connected = connected.map_err(|e| match (target, e) {
        (Target::Known { id, .. }, RemoteHostError::HostCaRefused) => {
            RemoteHostError::PairingLost(id)
        }
        (_, e) => e,
    })?;
    if !connected.contested.is_empty() {
        progress(Progress::Contested {
            peer: connected.peer,
            others: connected.contested.clone(),
        });
    }
    let remote = open_session(connected, &app).await?;
    let name = device_name(&serde_json::to_value(&remote.host_info).unwrap_or_default());
    let id = {
        let mut store = ctx.store();
        let result = match target {
            Target::New => store.insert(&name, &remote.pairing, &binding),
            Target::Known { id, .. } => store
                .update_after_session(id, &name, &remote.pairing, &binding)
                .map(|()| id),
        };
        result.map_err(|e| RemoteHostError::Store(e.into()))?
    };
    Ok((id, remote, relay))
}

/// When to remind the person how long the link still works (time left, longest first): each
/// of the last few minutes and half a minute before the end, within the link's lifetime.
fn reminders(lifetime: Duration) -> Vec<Duration> {
    [180, 120, 60, 30]
        .into_iter()
        .map(Duration::from_secs)
        .filter(|left| *left < lifetime)
        .collect()
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "10 more minutes", "1 more minute", "45 more seconds": minutes from two minutes up.
pub(super) fn time_left(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_millis() >= 500);
    let (n, unit) = if secs >= 120 {
        ((secs + 30) / 60, "minute")
    } else if secs == 60 {
        (1, "minute")
    } else {
        (secs, "second")
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} more {unit}{s}")
}

/// The line that says how long the link still works.
pub(super) fn waiting_line(left: Duration) -> String {
    format!(
        "waiting for the host — the link works for {}",
        time_left(left)
    )
}

/// How the QR code is shown when a link starts.
pub(super) struct QrChoice {
    /// Draw it in the terminal (where it fits).
    pub(super) terminal: bool,
    pub(super) png: Option<PathBuf>,
    pub(super) svg: Option<PathBuf>,
    /// How to ask for the image files in this mode, for the line that says the code does not
    /// fit.
    pub(super) files_hint: &'static str,
}

/// The start-up block of a link, in order: where it listens (`first`), the notes, the time it
/// works, the QR code (or what the terminal needs for it, or where its image was saved), and
/// the link itself last, so that it stays on screen.
pub(super) fn started_lines(first: String, s: &Started, qr: &QrChoice) -> Vec<String> {
    let mut out = vec![first];
    if s.relayed {
        out.extend(relayed_lines(&s.address, s.port, s.bound));
    }
    if !s.others.is_empty() {
        let o: Vec<String> = s.others.iter().map(|a| a.to_string()).collect();
        out.push(format!("other addresses: {}", o.join(" ")));
    }
    out.push(waiting_line(s.lifetime));
    let mut saved = false;
    for (path, write, what) in [
        (&qr.png, super::qr::write_png as fn(&str, &Path) -> _, "PNG"),
        (&qr.svg, super::qr::write_svg, "SVG"),
    ] {
        if let Some(path) = path {
            match write(&s.link, path) {
                Ok(()) => {
                    saved = true;
                    out.push(format!("QR code saved as {what}: {}", path.display()));
                }
                Err(e) => out.push(format!(
                    "cannot save the QR code ({e}): check the folder exists and is writable"
                )),
            }
        }
    }
    if qr.terminal {
        match super::qr::place(&s.link, super::qr::terminal_size()) {
            Ok(super::qr::Placement::Draw(text)) => out.push(text),
            Ok(super::qr::Placement::TooSmall { .. }) if saved => {}
            Ok(super::qr::Placement::TooSmall { needs, has }) => out.push(format!(
                "The QR code needs a terminal of {}×{} (this one is {}×{}): enlarge it and \
                 start again, or save the code as an image with {}.",
                needs.0, needs.1, has.0, has.1, qr.files_hint
            )),
            Err(e) => out.push(format!("cannot make the QR code: {e}")),
        }
    }
    out.push("Remote session invitation:".to_owned());
    out.push(s.link.clone());
    out
}

/// What a person is told when a connection's session code no longer counts.
pub(super) fn withdrawn_line(peer: SocketAddr, reason: Withdrawal) -> String {
    match reason {
        Withdrawal::Superseded => {
            format!("closed the other connection from {peer}: another host connected with this link")
        }
        _ => format!(
            "the connection from {peer} ended ({reason}): ignore its session code; still waiting for the host"
        ),
    }
}

/// Said once when the link names a relay: what was advertised and why that is safe.
pub(super) fn relayed_lines(address: &TransportHost, port: u16, bound: SocketAddr) -> [String; 2] {
    [
        format!(
            "The link points to {address}:{port}; this controller listens on {bound}. \
             Hosts reach it through your relay or port forward."
        ),
        "That is safe: the host checks this controller's identity from the link, and you \
         compare the session code."
            .to_owned(),
    ]
}

/// The warning when other connections were waiting with the same link as the host.
pub(super) fn contested_line(peer: SocketAddr, others: &[SocketAddr]) -> String {
    let others: Vec<String> = others.iter().map(|a| a.to_string()).collect();
    format!(
        "warning: the host connected from {peer} while other connections ({}) were also waiting \
         with this link. If the code your host showed was not the one shown for {peer}, end this \
         session now: someone else has your link.",
        others.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_naturally() {
        let s = Duration::from_secs;
        assert_eq!(time_left(s(600)), "10 more minutes");
        assert_eq!(time_left(s(180)), "3 more minutes");
        assert_eq!(time_left(s(119)), "119 more seconds");
        assert_eq!(time_left(s(60)), "1 more minute");
        assert_eq!(time_left(s(30)), "30 more seconds");
        assert_eq!(time_left(Duration::from_millis(1400)), "1 more second");
        assert_eq!(reminders(s(600)), [s(180), s(120), s(60), s(30)]);
        assert_eq!(reminders(s(70)), [s(60), s(30)]);
        assert!(reminders(s(20)).is_empty());
    }

    #[test]
    fn timeouts_in_seconds_or_minutes() {
        use super::super::parse_seconds;
        assert_eq!(parse_seconds("90"), Ok(90));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("10m"), Ok(600));
        for bad in ["0", "86401", "ten", "", "-5", "5h"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
