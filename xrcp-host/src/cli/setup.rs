//! What both modes share: data directory, pairing store and notes, logging, the checks made
//! before dialing, and serving a session.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use xrcp::message::SignedInvitation;
use xrcp::session::{CtrlAppInfo, RRResult, RemoteFile};

use crate::error::RemoteCtrlError;
use crate::notes::NotesApp;
use crate::remote::{prepare_session, HostAppSettings};
use crate::session::{HostApp, HostAppError, OutgoingFile};
use crate::store::CtrlStore;
use crate::{Connected, HostOptions};

/// `RUST_LOG` controls the logs (default: warnings), on stderr.
pub(crate) fn init_tracing() {
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
        return PathBuf::from(d).join("xrcp-host");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/xrcp-host"),
        None => PathBuf::from(".xrcp-host"),
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
pub(crate) struct Context {
    pub(crate) store: Arc<Mutex<CtrlStore>>,
    pub(crate) settings: Arc<Mutex<HostAppSettings>>,
    pub(crate) notes: NotesApp,
}

impl Context {
    pub(crate) fn open(
        dir: Option<PathBuf>,
        device_name: Option<String>,
    ) -> Result<Context, String> {
        let dir = dir.unwrap_or_else(default_data_dir);
        let store = CtrlStore::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let notes = NotesApp::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut settings = HostAppSettings::default();
        // `--device-name`, else the name set with `/set device name`, else this machine's
        // host name: what a person calls this computer is what the controller should show.
        let saved = store.saved_device_name().unwrap_or_else(|e| {
            tracing::warn!("cannot read the saved device name: {e}");
            None
        });
        if let Some(name) = device_name.or(saved).or_else(machine_name) {
            settings.device_name = name;
        }
        Ok(Context {
            store: Arc::new(Mutex::new(store)),
            settings: Arc::new(Mutex::new(settings)),
            notes,
        })
    }

    /// `/set device name`: used from now on and saved for the next starts (a
    /// `--device-name` given then still wins).
    pub(crate) fn set_device_name(&self, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give the name: /set device name <name>".into());
        }
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .device_name = name.to_owned();
        self.store()
            .save_device_name(name)
            .map_err(|e| format!("the name is used until you quit, but could not be saved: {e}"))
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, CtrlStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn settings(&self) -> HostAppSettings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether an address is one a controller on the user's own network or machine would have.
/// A link pointing elsewhere is suspicious (a QR code swapped by someone else).
pub(crate) fn is_local_address(ip: Ipv4Addr) -> bool {
    ip.is_private() || ip.is_loopback() || ip.is_link_local()
        // 100.64/10 (carrier-grade NAT, also VPN overlays such as Tailscale)
        || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
}

/// Whether `ip` is one of this machine's addresses: only those can be bound.
fn is_own_address(ip: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The warning shown before connecting to a non-local address.
pub(crate) fn address_warning(inv: &SignedInvitation, via: Option<SocketAddr>) -> Option<String> {
    let host = &inv.invitation.host;
    // This machine's own address (a server's public address, say) is as trusted as loopback.
    let local = host
        .ipv4()
        .is_some_and(|ip| is_local_address(ip) || is_own_address(ip));
    if via.is_none() && !local {
        Some(format!(
            "warning: this link points to {host}, which is not on your local network. \
             Only continue if you created this link yourself."
        ))
    } else {
        None
    }
}

/// Controller name and version from the link's app info, for the SimpleX texts.
pub(crate) fn ctrl_summary(inv: &SignedInvitation) -> (String, String) {
    match CtrlAppInfo::from_json(&inv.invitation.app) {
        Ok(info) => (
            info.device_name,
            info.app_version_range.max_version().to_string(),
        ),
        Err(_) => (String::new(), "?".into()),
    }
}

/// Options for dialing: the HELLO's app info (after checking the controller's version).
pub(crate) fn host_options(
    ctx: &Context,
    inv: &SignedInvitation,
    via: Option<SocketAddr>,
) -> Result<HostOptions, RemoteCtrlError> {
    let hello = ctx.settings().hello_info(&inv.invitation.app)?;
    Ok(HostOptions {
        app: serde_json::to_value(&hello).unwrap_or_default(),
        connect_via: via,
        ..HostOptions::default()
    })
}

/// The stored pairing of the link's controller, if any.
pub(crate) fn known_pairing(
    ctx: &Context,
    inv: &SignedInvitation,
) -> Option<(i64, xrcp::pairing::CtrlPairing)> {
    ctx.store()
        .find_by_fingerprint(&inv.invitation.ca)
        .ok()
        .flatten()
        .map(|r| (r.id, r.pairing))
}

/// The notes app, reporting each command it runs.
pub(crate) struct Observed {
    notes: NotesApp,
    on_command: Box<dyn Fn(&str) + Send + Sync>,
}

impl HostApp for Observed {
    type Stored = <NotesApp as HostApp>::Stored;
    type Reader = <NotesApp as HostApp>::Reader;

    async fn execute(&self, command: String, retry_number: i64) -> RRResult {
        (self.on_command)(&command);
        self.notes.execute(command, retry_number).await
    }

    async fn store_file(&self, name: String, size: u32) -> Result<Self::Stored, HostAppError> {
        self.notes.store_file(name, size).await
    }

    async fn get_file(&self, file: RemoteFile) -> Result<OutgoingFile<Self::Reader>, HostAppError> {
        self.notes.get_file(file).await
    }
}

/// A session that reached HELLO: persist the pairing, then serve the notes app until the
/// controller leaves. `started` is told the controller's id, name and compression first.
pub(crate) async fn serve(
    ctx: &Context,
    connected: Connected,
    started: impl FnOnce(i64, &str, bool),
    on_command: impl Fn(&str) + Send + Sync + 'static,
) -> Result<(), RemoteCtrlError> {
    let (served, pairing) = prepare_session(connected, &ctx.settings())?;
    let name = served.ctrl_info.device_name.clone();
    let id = ctx
        .store()
        .upsert(&name, &pairing)
        .map_err(|e| RemoteCtrlError::Store(e.into()))?;
    started(id, &name, served.compression);
    let events = ctx.notes.subscribe();
    let app = Observed {
        notes: ctx.notes.clone(),
        on_command: Box::new(on_command),
    };
    served
        .serve(Arc::new(app), events)
        .await
        .map_err(RemoteCtrlError::Session)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link to this machine's own address is not "outside your local network", whatever
    /// the address (a server's public one, say); an address this machine does not have is
    /// judged by its range.
    #[test]
    fn own_addresses_are_recognised() {
        assert!(is_own_address(Ipv4Addr::LOCALHOST));
        // 192.0.2.0/24 is reserved for documentation: no machine has it.
        assert!(!is_own_address(Ipv4Addr::new(192, 0, 2, 7)));
        assert!(!is_local_address(Ipv4Addr::new(192, 0, 2, 7)));
    }
}
