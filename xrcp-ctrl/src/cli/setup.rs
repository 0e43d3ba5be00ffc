//! What both modes share: the data directory and pairing store, logging, and one session's
//! establishment with progress reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use xrcp::message::TransportHost;
use xrcp::pairing::HostPairing;

use super::Listen;
use xrcp_ctrl::{
    Binding, BuildError, Controller, HostStore, PairingStore, PairingStoreError, RemoteHostError,
    Session, WaitEvent, Withdrawal,
};

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
    /// The device name the next invitation carries.
    pub(crate) device_name: Arc<Mutex<String>>,
}

impl Context {
    pub(crate) fn open(
        dir: Option<PathBuf>,
        device_name: Option<String>,
    ) -> Result<Context, String> {
        let dir = dir.unwrap_or_else(default_data_dir);
        let store = HostStore::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut app = String::from("xrcp-ctrl");
        // `--device-name`, else the name set with `/set device name`, else this machine's
        // host name: what a person calls this computer is what the host should show.
        let saved = store.saved_device_name().unwrap_or_else(|e| {
            tracing::warn!("cannot read the saved device name: {e}");
            None
        });
        if let Some(name) = device_name.or(saved).or_else(machine_name) {
            app = name;
        }
        Ok(Context {
            store: Arc::new(Mutex::new(store)),
            device_name: Arc::new(Mutex::new(app)),
        })
    }

    /// `/set device name`: used from now on and saved for the next starts (a
    /// `--device-name` given then still wins).
    pub(crate) fn set_device_name(&self, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give the name: /set device name <name>".into());
        }
        *self
            .device_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = name.to_owned();
        self.store()
            .save_device_name(name)
            .map_err(|e| format!("the name is used until you quit, but could not be saved: {e}"))
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, HostStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn device_name(&self) -> String {
        self.device_name
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

/// The program's pairing store as the controller facade keeps pairings in it (the program
/// also lists, deletes and names hosts in it between sessions).
struct SharedStore(Arc<Mutex<HostStore>>);

impl SharedStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HostStore> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PairingStore for SharedStore {
    fn load(&self, id: i64) -> Result<Option<(HostPairing, Binding)>, PairingStoreError> {
        PairingStore::load(&*self.lock(), id)
    }

    fn insert(
        &mut self,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<i64, PairingStoreError> {
        PairingStore::insert(&mut *self.lock(), device_name, pairing, binding)
    }

    fn update(
        &mut self,
        id: i64,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<(), PairingStoreError> {
        PairingStore::update(&mut *self.lock(), id, device_name, pairing, binding)
    }
}

/// The controller for one session, from the command-line flags (a known host without flags
/// listens where its last session did).
fn controller(ctx: &Context, listen: &Listen) -> Result<Controller, RemoteHostError> {
    let mut builder = Controller::builder()
        .device_name(ctx.device_name())
        .store(SharedStore(ctx.store.clone()))
        .link_timeout(Duration::from_secs(listen.timeout));
    if let Some(addr) = listen.addr {
        builder = builder.address(addr);
    }
    if let Some(iface) = &listen.iface {
        builder = builder.interface(iface.clone());
    }
    let bind_port = listen.bind.and_then(|(_, port)| port);
    if bind_port.is_some() || listen.port != 0 {
        builder = builder.port(bind_port.unwrap_or(listen.port));
    }
    if let Some((addr, _)) = listen.bind {
        builder = builder.bind(addr);
    }
    if let Some((host, port)) = &listen.advertise {
        builder = builder.advertise(host.clone(), *port);
    }
    if let Some(relay) = &listen.ssh_relay {
        let mut relay = relay.clone();
        relay.remote_port = listen.relay_port;
        relay.ssh_options = listen.ssh_options.clone();
        builder = builder.ssh_relay(relay);
    }
    builder.build().map_err(|e| match e {
        BuildError::Store { source, .. } => RemoteHostError::Store(source),
        // The store is given above: there is nothing else to fail.
        other => RemoteHostError::Store(PairingStoreError::new(other)),
    })
}

/// Runs one session from start to connected, reporting progress; the facade stores the
/// pairing. Returns the host's id and the running session (which owns the SSH tunnel it runs
/// through, if any).
pub(super) async fn establish(
    ctx: &Context,
    target: Target,
    listen: &Listen,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(i64, Session), RemoteHostError> {
    let controller = controller(ctx, listen)?;
    let invitation = match target {
        Target::New => controller.invite().await?,
        Target::Known {
            id,
            multicast: false,
        } => controller.reconnect(id).await?,
        Target::Known {
            id,
            multicast: true,
        } => controller.announce(id).await?,
    };
    let (address, port) = invitation.advertised();
    progress(Progress::Started(Started {
        link: invitation.link(),
        address: address.clone(),
        port,
        bound: invitation.bound(),
        relayed: invitation.relayed(),
        others: invitation.other_addresses(),
        lifetime: Duration::from_secs(listen.timeout),
    }));
    let session = invitation
        .accept_with(|event| match event {
            WaitEvent::Code { peer, code } => {
                progress(Progress::Connecting(peer));
                progress(Progress::SessionCode { peer, code });
            }
            WaitEvent::Withdrawn { peer, reason, .. } => {
                progress(Progress::Withdrawn { peer, reason })
            }
            WaitEvent::TimeLeft(left) => progress(Progress::TimeLeft(left)),
            WaitEvent::Contested { peer, others } => progress(Progress::Contested { peer, others }),
            // Events a newer library adds are not shown by this version of the program.
            _ => {}
        })
        .await?;
    Ok((session.host_id(), session))
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
