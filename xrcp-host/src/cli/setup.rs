//! What both modes share: data directory, pairing store and notes, logging, the checks made
//! before dialing, and serving a session.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use xrcp::message::SignedInvitation;
use xrcp::pairing::CtrlPairing;
use xrcp::session::{CtrlAppInfo, RRResult, RemoteFile};
use xrcp_host::notes::{NotesApp, EVENT_BUFFER};
use xrcp_host::{
    Application, BoxFuture, BoxReader, CtrlStore, Host, HostAppError, OutgoingFile, PairingStore,
    PairingStoreError, RemoteCtrlError, Session, UploadFile,
};

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
    /// Also the [`Host`]'s pairing store ([`SharedStore`]); the program lists and deletes
    /// pairings and keeps the device name in it.
    pub(crate) store: Arc<Mutex<CtrlStore>>,
    pub(crate) notes: NotesApp,
    /// The name controllers see, as chosen at start.
    device_name: Option<String>,
}

impl Context {
    pub(crate) fn open(
        dir: Option<PathBuf>,
        device_name: Option<String>,
    ) -> Result<Context, String> {
        let dir = dir.unwrap_or_else(default_data_dir);
        let store = CtrlStore::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let notes = NotesApp::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // `--device-name`, else the name set with `/set device name`, else this machine's
        // host name: what a person calls this computer is what the controller should show.
        let saved = store.saved_device_name().unwrap_or_else(|e| {
            tracing::warn!("cannot read the saved device name: {e}");
            None
        });
        Ok(Context {
            store: Arc::new(Mutex::new(store)),
            notes,
            device_name: device_name.or(saved).or_else(machine_name),
        })
    }

    /// The host serving the notes app, reporting each command the controller sends to
    /// `on_command`.
    pub(crate) fn host(&self, on_command: impl Fn(&str) + Send + Sync + 'static) -> Host {
        let app = Observed {
            notes: self.notes.clone(),
            on_command: Box::new(on_command),
        };
        let mut builder = Host::builder()
            .app(app)
            .store(SharedStore(Arc::clone(&self.store)))
            .event_buffer(EVENT_BUFFER);
        if let Some(name) = &self.device_name {
            builder = builder.device_name(name.clone());
        }
        // Only a missing app or store fails the build, and both were given.
        builder.build().expect("the host has its app and store")
    }

    /// `/set device name`: used from now on and saved for the next starts (a
    /// `--device-name` given then still wins).
    pub(crate) fn set_device_name(&self, host: &Host, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give the name: /set device name <name>".into());
        }
        host.set_device_name(name);
        self.store()
            .save_device_name(name)
            .map_err(|e| format!("the name is used until you quit, but could not be saved: {e}"))
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, CtrlStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The program's SQLite store, shared between the [`Host`] and the program's own commands
/// (`list`, `delete`, the device name).
struct SharedStore(Arc<Mutex<CtrlStore>>);

impl SharedStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, CtrlStore> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PairingStore for SharedStore {
    fn find(
        &self,
        ctrl_ca: &xrcp::crypto::KeyHash,
    ) -> Result<Option<(i64, CtrlPairing)>, PairingStoreError> {
        PairingStore::find(&*self.lock(), ctrl_ca)
    }

    fn known(&self) -> Result<Vec<(i64, CtrlPairing)>, PairingStoreError> {
        PairingStore::known(&*self.lock())
    }

    fn save(&mut self, device_name: &str, pairing: &CtrlPairing) -> Result<i64, PairingStoreError> {
        PairingStore::save(&mut *self.lock(), device_name, pairing)
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

/// The notes app, reporting each command it runs.
struct Observed {
    notes: NotesApp,
    on_command: Box<dyn Fn(&str) + Send + Sync>,
}

impl Application for Observed {
    fn execute(&self, command: String, retry_number: i64) -> BoxFuture<'_, RRResult> {
        (self.on_command)(&command);
        Application::execute(&self.notes, command, retry_number)
    }

    fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> BoxFuture<'_, Result<Box<dyn UploadFile>, HostAppError>> {
        Application::store_file(&self.notes, file_name, file_size)
    }

    fn get_file(
        &self,
        file: RemoteFile,
    ) -> BoxFuture<'_, Result<OutgoingFile<BoxReader>, HostAppError>> {
        Application::get_file(&self.notes, file)
    }
}

/// A session that reached HELLO (its pairing kept): `started` is told the controller's id,
/// name and compression, then the notes app is served (its events going to this session)
/// until the controller leaves.
pub(crate) async fn serve(
    ctx: &Context,
    session: Session,
    started: impl FnOnce(i64, &str, bool),
) -> Result<(), RemoteCtrlError> {
    started(
        session.controller_id(),
        &session.controller().device_name,
        session.compression(),
    );
    ctx.notes.attach(session.events());
    session.serve().await
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
