//! The controller in four calls: [`Controller::builder`] → [`Controller::invite`] (the link
//! to show) → [`Invitation::accept`] (a verified session, once the host connected and its
//! user confirmed the session code) → [`Session::command`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ctrl = xrcp_ctrl::Controller::builder()
//!     .device_name("my desktop app")
//!     .data_dir("/tmp/my-app")
//!     .build()?;
//! let invitation = ctrl.invite().await?;
//! println!("scan or paste: {}", invitation.link());
//! let session = invitation
//!     .accept_with(|event| {
//!         if let xrcp_ctrl::WaitEvent::Code { code, .. } = event {
//!             println!("compare with the phone: {code}");
//!         }
//!     })
//!     .await?;
//! match session.command("/help").await? {
//!     xrcp::session::RRResult::Result(json) => println!("{json}"),
//!     xrcp::session::RRResult::Error(json) => eprintln!("the host refused: {json}"),
//! }
//! # Ok(()) }
//! ```
//!
//! It wraps [`crate::connect`] (listener, admission, HELLO), [`crate::announce`]
//! (multicast), [`crate::remote::open_session`] (app info check, HTTP/2 client) and a
//! [`PairingStore`]; programs that need more control use those directly.

mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use xrcp::message::TransportHost;
use xrcp::pairing::HostPairing;
use xrcp::session::{AppVersionRange, HostAppInfo, RRResult, RemoteFile};

pub use store::PairingStore;

use crate::address::{check, choose, local_addresses, AddressPreference, LocalAddress};
use crate::announce::{AnnounceOptions, Announcer};
use crate::connect::{Admission, ControllerOptions, Listening, WaitEvent};
use crate::error::{PairingStoreError, RemoteHostError};
use crate::remote::{open_session, ControllerApp, RemoteHost};
use crate::session::{HostEvent, RemoteHostClient};
use crate::store::{Binding, HostStore};

/// How long a link takes connections unless [`ControllerBuilder::link_timeout`] says
/// otherwise: a person reads the link, starts the host and compares a 76-digit code.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(600);

/// Why [`ControllerBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither [`ControllerBuilder::store`] nor [`ControllerBuilder::data_dir`] was given.
    #[error("no pairing store — give a data folder (data_dir) or a store of your own")]
    NoStore,
    /// The SQLite store in the data folder could not be opened.
    #[error("cannot open the pairing store in {} ({source}) — check the folder and its permissions", dir.display())]
    Store {
        /// The data folder.
        dir: PathBuf,
        /// What the store said.
        #[source]
        source: PairingStoreError,
    },
}

/// Settings of a [`Controller`]; see [`Controller::builder`].
#[must_use]
pub struct ControllerBuilder {
    app: ControllerApp,
    store: Option<Box<dyn PairingStore>>,
    data_dir: Option<PathBuf>,
    address: AddressPreference,
    bind: Option<Ipv4Addr>,
    port: u16,
    advertise: Option<(TransportHost, Option<u16>)>,
    link_timeout: Duration,
    admission: Admission,
    announce: AnnounceOptions,
    candidates: Option<Vec<LocalAddress>>,
}

impl ControllerBuilder {
    /// The name hosts show for this controller (`+` and `%` are replaced, spec/xrcp.md §4.3).
    pub fn device_name(mut self, name: impl Into<String>) -> Self {
        self.app.device_name = name.into();
        self
    }

    /// The app versions this controller speaks (default: this library's).
    pub fn version_range(mut self, range: AppVersionRange) -> Self {
        self.app.version_range = range;
        self
    }

    /// Whether to offer zstd compression of session bodies (default: yes).
    pub fn compression(mut self, on: bool) -> Self {
        self.app.compression = on;
        self
    }

    /// Keep pairings in the SQLite store of this folder (the `xrcp-ctrl` program's format).
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Keep pairings in a store of the application's own.
    pub fn store(mut self, store: impl PairingStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Put this local address into links (default: the best of this machine's).
    pub fn address(mut self, address: Ipv4Addr) -> Self {
        self.address.address = Some(address);
        self
    }

    /// Prefer the address of this network interface.
    pub fn interface(mut self, interface: impl Into<String>) -> Self {
        self.address.interface = Some(interface.into());
        self
    }

    /// The address the listener binds (default: the one in the link).
    pub fn bind(mut self, address: Ipv4Addr) -> Self {
        self.bind = Some(address);
        self
    }

    /// The port to listen on (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Put this host name or address (and port) into links instead of one of this machine's
    /// addresses: a relay or port forward that reaches the listener.
    pub fn advertise(mut self, host: TransportHost, port: Option<u16>) -> Self {
        self.advertise = Some((host, port));
        self
    }

    /// How long a link takes new connections, and how long a host that connected in time
    /// may take to confirm the session code (default [`LINK_TIMEOUT`]).
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.link_timeout = timeout;
        self
    }

    /// Limits on connections that have not proven they hold the link.
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Where and how often [`Controller::announce`] sends its multicast datagrams.
    pub fn announce_options(mut self, options: AnnounceOptions) -> Self {
        self.announce = options;
        self
    }

    /// The local addresses to choose the link's from (default: this machine's interfaces).
    pub fn candidates(mut self, candidates: Vec<LocalAddress>) -> Self {
        self.candidates = Some(candidates);
        self
    }

    /// Opens the store; the controller is ready to invite.
    pub fn build(self) -> Result<Controller, BuildError> {
        let store = match (self.store, &self.data_dir) {
            (Some(store), _) => store,
            (None, Some(dir)) => Box::new(HostStore::open(dir).map_err(|e| BuildError::Store {
                dir: dir.clone(),
                source: e.into(),
            })?),
            (None, None) => return Err(BuildError::NoStore),
        };
        Ok(Controller {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                app: self.app,
                address: self.address,
                bind: self.bind,
                port: self.port,
                advertise: self.advertise,
                link_timeout: self.link_timeout,
                admission: self.admission,
                announce: self.announce,
                candidates: self.candidates,
            }),
        })
    }
}

struct Inner {
    store: Mutex<Box<dyn PairingStore>>,
    app: ControllerApp,
    address: AddressPreference,
    bind: Option<Ipv4Addr>,
    port: u16,
    advertise: Option<(TransportHost, Option<u16>)>,
    link_timeout: Duration,
    admission: Admission,
    announce: AnnounceOptions,
    candidates: Option<Vec<LocalAddress>>,
}

/// An embedded controller: makes links, waits for hosts, keeps their pairings. Cheap to
/// clone; clones share the store.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("device_name", &self.inner.app.device_name)
            .finish_non_exhaustive()
    }
}

/// Which host an invitation is for.
#[derive(Clone, Copy, Debug)]
enum Target {
    New,
    Known { id: i64, multicast: bool },
}

impl Controller {
    /// Starts the settings; [`ControllerBuilder::build`] makes the controller.
    pub fn builder() -> ControllerBuilder {
        ControllerBuilder {
            app: ControllerApp::default(),
            store: None,
            data_dir: None,
            address: AddressPreference::default(),
            bind: None,
            port: 0,
            advertise: None,
            link_timeout: LINK_TIMEOUT,
            admission: Admission::default(),
            announce: AnnounceOptions::default(),
            candidates: None,
        }
    }

    /// Listens and makes a link for a new host (show it as text or QR code).
    pub async fn invite(&self) -> Result<Invitation, RemoteHostError> {
        self.start(Target::New).await
    }

    /// Listens and makes a link for paired host `id` (its identity is pinned: anyone else
    /// is refused in TLS).
    pub async fn reconnect(&self, id: i64) -> Result<Invitation, RemoteHostError> {
        self.start(Target::Known {
            id,
            multicast: false,
        })
        .await
    }

    /// As [`Controller::reconnect`], and announces the session by LAN multicast, so that
    /// the host finds this controller without a link (spec/xrcp.md §5).
    pub async fn announce(&self, id: i64) -> Result<Invitation, RemoteHostError> {
        self.start(Target::Known {
            id,
            multicast: true,
        })
        .await
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn PairingStore>> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn start(&self, target: Target) -> Result<Invitation, RemoteHostError> {
        let inner = &*self.inner;
        let candidates = inner.candidates.clone().unwrap_or_else(local_addresses);
        check(&inner.address, &candidates)?;
        let multicast = matches!(
            target,
            Target::Known {
                multicast: true,
                ..
            }
        );
        let (pairing, stored) = match target {
            Target::New => (HostPairing::new()?, None),
            Target::Known { id, .. } => {
                let (pairing, binding) = self
                    .store()
                    .load(id)
                    .map_err(RemoteHostError::Store)?
                    .ok_or(RemoteHostError::UnknownHost(id))?;
                (pairing, Some(binding))
            }
        };
        let mut options = ControllerOptions {
            app: serde_json::to_value(inner.app.info()).unwrap_or_default(),
            address: inner.address.clone(),
            port: inner.port,
            advertise: inner.advertise.clone(),
            bind: inner.bind.unwrap_or(if inner.advertise.is_some() {
                Ipv4Addr::LOCALHOST
            } else {
                Ipv4Addr::UNSPECIFIED
            }),
            tls_timeout: inner.link_timeout,
            hello_timeout: inner.link_timeout,
            admission: inner.admission.clone(),
            candidates: None,
        };
        // A known host's last address and port are used again unless this controller was
        // told where to listen (as the program does).
        let told = inner.address != AddressPreference::default()
            || inner.port != 0
            || inner.advertise.is_some();
        if let (Some(binding), false) = (&stored, told) {
            binding.apply(&mut options);
        }
        let binding = Binding::of(&options);
        if options.advertise.is_none() {
            let (chosen, _) = choose(&options.address, candidates.clone())?;
            if multicast && chosen.address.is_loopback() {
                return Err(RemoteHostError::MulticastOnLoopback {
                    addr: chosen.address,
                });
            }
            options.address.address = Some(chosen.address);
            if inner.bind.is_none() {
                options.bind = chosen.address;
            }
            options.candidates = Some(candidates);
        }
        let listening = crate::connect::start(pairing, options).await?;
        let announcer = if multicast {
            Some(Announcer::start(&listening, &inner.announce)?)
        } else {
            None
        };
        Ok(Invitation {
            listening,
            announcer,
            target,
            binding,
            controller: self.clone(),
        })
    }
}

/// A link, and the listener waiting for the host that holds it.
pub struct Invitation {
    listening: Listening,
    announcer: Option<Announcer>,
    target: Target,
    binding: Binding,
    controller: Controller,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("bound", &self.listening.bound())
            .finish_non_exhaustive()
    }
}

impl Invitation {
    /// The `xrcp:/` link for the host (as text, or in a QR code).
    pub fn link(&self) -> String {
        self.listening.link()
    }

    /// Where the listener is bound.
    pub fn bound(&self) -> SocketAddr {
        self.listening.bound()
    }

    /// The underlying listener, for what the facade does not offer.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// [`Invitation::accept_with`], ignoring the session codes shown meanwhile (the host's
    /// user compares the code with [`Session::session_code`] afterwards, or a known host
    /// connects without comparing).
    pub async fn accept(self) -> Result<Session, RemoteHostError> {
        self.accept_with(|_| {}).await
    }

    /// Waits for the host that holds this link, reporting the session code of every
    /// connection that completes TLS (show it to the person, who compares it with the
    /// host's), then opens the session and keeps the pairing.
    pub async fn accept_with(
        self,
        on_event: impl FnMut(WaitEvent) + Send,
    ) -> Result<Session, RemoteHostError> {
        let Invitation {
            listening,
            announcer,
            target,
            binding,
            controller,
        } = self;
        let connected = listening.connect(on_event).await;
        drop(announcer);
        let connected = connected.map_err(|e| match (target, e) {
            (Target::Known { id, .. }, RemoteHostError::HostCaRefused) => {
                RemoteHostError::PairingLost(id)
            }
            (_, e) => e,
        })?;
        let contested = connected.contested.clone();
        let remote = open_session(connected, &controller.inner.app).await?;
        let name = remote.host_info.device_name.clone();
        let id = {
            let mut store = controller.store();
            match target {
                Target::New => store.insert(&name, &remote.pairing, &binding),
                Target::Known { id, .. } => store
                    .update(id, &name, &remote.pairing, &binding)
                    .map(|()| id),
            }
            .map_err(RemoteHostError::Store)?
        };
        Ok(Session {
            remote,
            id,
            contested,
        })
    }
}

/// A verified session with a host: send commands and files, read its events.
pub struct Session {
    remote: RemoteHost,
    id: i64,
    contested: Vec<SocketAddr>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host_id", &self.id)
            .field("host", &self.remote.host_info.device_name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The host's id in the pairing store (for [`Controller::reconnect`] and
    /// [`Controller::announce`]).
    pub fn host_id(&self) -> i64 {
        self.id
    }

    /// What the host said about itself in its HELLO.
    pub fn host_info(&self) -> &HostAppInfo {
        &self.remote.host_info
    }

    /// This session's code (both sides showed it).
    pub fn session_code(&self) -> &str {
        &self.remote.session_code
    }

    /// Whether session bodies are compressed.
    pub fn compression(&self) -> bool {
        self.remote.compression
    }

    /// Other connections that were waiting with the same link when this host proved it
    /// holds it: normally none; otherwise someone else has the link too.
    pub fn contested(&self) -> &[SocketAddr] {
        &self.contested
    }

    /// Runs a command on the host; gives its result or its application error.
    pub async fn command(&self, command: &str) -> Result<RRResult, RemoteHostError> {
        Ok(self.remote.client.send_command(command, 0).await?)
    }

    /// Uploads a local file; gives the path the host stored it at.
    pub async fn send_file(&self, path: &Path) -> Result<String, RemoteHostError> {
        Ok(self
            .remote
            .client
            .store_file_path(path, &mut |_, _| {})
            .await?)
    }

    /// Downloads a host file into `dir` (never replacing a file there); gives its path.
    pub async fn get_file(
        &self,
        file: &RemoteFile,
        dir: &Path,
    ) -> Result<PathBuf, RemoteHostError> {
        Ok(self
            .remote
            .client
            .get_file_to_dir(file, dir, &mut |_, _| {})
            .await?)
    }

    /// The next event the host sent; `None` once the session ended.
    pub async fn next_event(&mut self) -> Option<HostEvent> {
        self.remote.events.recv().await
    }

    /// The session client, for progress reports and the other requests.
    pub fn client(&self) -> &RemoteHostClient {
        &self.remote.client
    }

    /// Ends the session on purpose (the host tells this from a cut connection).
    pub async fn close(self) {
        self.remote.close().await;
    }
}
