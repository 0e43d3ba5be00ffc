//! The host in four calls: [`Host::builder`] (with the [`Application`] to serve) →
//! [`Host::connect`] (the controller's link) → [`PendingSession::confirm`] (or `verify` with
//! the code the person read on the controller) → [`Session::serve`].
//!
//! ```no_run
//! # use xrcp::session::RRResult;
//! # use xrcp_host::facade::BoxFuture;
//! struct Echo;
//! impl xrcp_host::Application for Echo {
//!     fn execute(&self, command: String, _retry: i64) -> BoxFuture<'_, RRResult> {
//!         Box::pin(async move { RRResult::Result(serde_json::json!({"echo": command})) })
//!     }
//! }
//! # async fn run(link: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let host = xrcp_host::Host::builder().app(Echo).data_dir("/tmp/my-host").build()?;
//! let pending = host.connect(link).await?;
//! println!("compare with the controller: {}", pending.session_code());
//! let session = pending.confirm().await?;
//! session.serve().await?;
//! # Ok(()) }
//! ```
//!
//! It wraps [`crate::connect()`] (TLS, session code, HELLO), [`crate::discover`] (multicast),
//! [`crate::remote`] (app info check, HTTP/2 server) and a [`PairingStore`]; programs that
//! need more control use those directly.

mod app;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use xrcp::message::SignedInvitation;
use xrcp::session::{AppVersionRange, CtrlAppInfo, RRResult};

pub use app::{Application, BoxFuture, BoxReader, DynApp, DynUpload, UploadFile};
pub use store::PairingStore;

use crate::connect::{CodeCheck, HostOptions, PendingConfirmation};
use crate::discover::DiscoverOptions;
use crate::error::{PairingStoreError, RemoteCtrlError};
use crate::remote::{prepare_session, HostAppSettings, ServedSession};
use crate::store::CtrlStore;

/// Events buffered for the controller's polls before [`EventSender::send`] waits.
const EVENT_BUFFER: usize = 64;

/// Why [`HostBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// [`HostBuilder::app`] was not given.
    #[error("no application to serve — give one with app()")]
    NoApp,
    /// Neither [`HostBuilder::store`] nor [`HostBuilder::data_dir`] was given.
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

/// Settings of a [`Host`]; see [`Host::builder`].
#[must_use]
pub struct HostBuilder {
    app: Option<Arc<dyn Application>>,
    store: Option<Box<dyn PairingStore>>,
    data_dir: Option<PathBuf>,
    settings: HostAppSettings,
    step_timeout: Duration,
    connect_via: Option<SocketAddr>,
    discover: DiscoverOptions,
}

impl HostBuilder {
    /// The application the controller drives (required).
    pub fn app(mut self, app: impl Application) -> Self {
        self.app = Some(Arc::new(app));
        self
    }

    /// [`HostBuilder::app`] for an application already shared.
    pub fn shared_app(mut self, app: Arc<dyn Application>) -> Self {
        self.app = Some(app);
        self
    }

    /// The name controllers show for this host.
    pub fn device_name(mut self, name: impl Into<String>) -> Self {
        self.settings.device_name = name.into();
        self
    }

    /// The app versions this host speaks (default: this library's).
    pub fn version_range(mut self, range: AppVersionRange) -> Self {
        self.settings.version_range = range;
        self
    }

    /// Whether to accept zstd compression of session bodies (default: yes).
    pub fn compression(mut self, on: bool) -> Self {
        self.settings.compression = on;
        self
    }

    /// Keep pairings in the SQLite store of this folder (the `xrcp-host` program's format).
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Keep pairings in a store of the application's own.
    pub fn store(mut self, store: impl PairingStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Bound on each network step of the handshake (default: the reference's 15 s).
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = timeout;
        self
    }

    /// Dial this address (an SSH tunnel, say) instead of the link's; every identity check
    /// of the link still applies.
    pub fn connect_via(mut self, addr: SocketAddr) -> Self {
        self.connect_via = Some(addr);
        self
    }

    /// Where and how long [`Host::find`] listens for announcements.
    pub fn discovery(mut self, options: DiscoverOptions) -> Self {
        self.discover = options;
        self
    }

    /// Opens the store; the host is ready to connect.
    pub fn build(self) -> Result<Host, BuildError> {
        let app = self.app.ok_or(BuildError::NoApp)?;
        let store = match (self.store, &self.data_dir) {
            (Some(store), _) => store,
            (None, Some(dir)) => Box::new(CtrlStore::open(dir).map_err(|e| BuildError::Store {
                dir: dir.clone(),
                source: e.into(),
            })?),
            (None, None) => return Err(BuildError::NoStore),
        };
        Ok(Host {
            inner: Arc::new(Inner {
                app,
                store: Mutex::new(store),
                settings: self.settings,
                step_timeout: self.step_timeout,
                connect_via: self.connect_via,
                discover: self.discover,
            }),
        })
    }
}

struct Inner {
    app: Arc<dyn Application>,
    store: Mutex<Box<dyn PairingStore>>,
    settings: HostAppSettings,
    step_timeout: Duration,
    connect_via: Option<SocketAddr>,
    discover: DiscoverOptions,
}

/// An embedded host: connects to controllers and serves its [`Application`] to them. Cheap
/// to clone; clones share the store and the application.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("device_name", &self.inner.settings.device_name)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Starts the settings; [`HostBuilder::build`] makes the host.
    pub fn builder() -> HostBuilder {
        HostBuilder {
            app: None,
            store: None,
            data_dir: None,
            settings: HostAppSettings::default(),
            step_timeout: HostOptions::default().step_timeout,
            connect_via: None,
            discover: DiscoverOptions::default(),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn PairingStore>> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies the controller's `xrcp:/` link, connects and sets up TLS. The result shows
    /// the session code to compare; nothing of the session was sent yet.
    pub async fn connect(&self, link: &str) -> Result<PendingSession, RemoteCtrlError> {
        let invitation = SignedInvitation::parse_verified(link.trim())?;
        self.connect_invitation(invitation).await
    }

    /// [`Host::connect`] for a link already parsed and verified.
    pub async fn connect_invitation(
        &self,
        invitation: SignedInvitation,
    ) -> Result<PendingSession, RemoteCtrlError> {
        let known = self
            .store()
            .find(&invitation.invitation.ca)
            .map_err(RemoteCtrlError::Store)?;
        let (id, pairing) = known.unzip();
        self.dial(invitation, pairing, id).await
    }

    /// Listens for a paired controller's multicast announcement (spec/xrcp.md §5), then
    /// connects to it as [`Host::connect`] does. The controller is known, so the caller may
    /// [`PendingSession::confirm`] without asking the person to compare the code.
    pub async fn find(&self) -> Result<PendingSession, RemoteCtrlError> {
        let known = self.store().known().map_err(RemoteCtrlError::Store)?;
        let found = crate::discover::discover(known, &self.inner.discover).await?;
        self.dial(found.invitation, Some(found.pairing), Some(found.id))
            .await
    }

    async fn dial(
        &self,
        invitation: SignedInvitation,
        pairing: Option<xrcp::pairing::CtrlPairing>,
        id: Option<i64>,
    ) -> Result<PendingSession, RemoteCtrlError> {
        let hello = self.inner.settings.hello_info(&invitation.invitation.app)?;
        let controller = CtrlAppInfo::from_json(&invitation.invitation.app)
            .map_err(|e| RemoteCtrlError::BadAppInfo(e.to_string()))?;
        let options = HostOptions {
            app: serde_json::to_value(&hello).unwrap_or_default(),
            connect_via: self.inner.connect_via,
            step_timeout: self.inner.step_timeout,
            ..HostOptions::default()
        };
        let pending = crate::connect::connect(invitation, pairing, options).await?;
        Ok(PendingSession {
            pending,
            controller,
            known: id,
            host: self.clone(),
        })
    }
}

/// TLS is up and the session code known; the person compares it with the controller's.
pub struct PendingSession {
    pending: PendingConfirmation,
    controller: CtrlAppInfo,
    known: Option<i64>,
    host: Host,
}

impl std::fmt::Debug for PendingSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSession")
            .field("peer", &self.pending.peer())
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl PendingSession {
    /// The code to compare with the one the controller shows.
    pub fn session_code(&self) -> &str {
        self.pending.session_code()
    }

    /// What the controller says about itself in its link.
    pub fn controller(&self) -> &CtrlAppInfo {
        &self.controller
    }

    /// The controller's id in the pairing store, when it is paired already.
    pub fn known_id(&self) -> Option<i64> {
        self.known
    }

    /// The address the connection went to.
    pub fn peer(&self) -> SocketAddr {
        self.pending.peer()
    }

    /// The handshake underneath, for what the facade does not offer.
    pub fn handshake(&mut self) -> &mut PendingConfirmation {
        &mut self.pending
    }

    /// Compares a code the person typed, counting wrong ones ([`crate::CODE_TRIES`]).
    pub fn check_code(&mut self, typed: &str) -> CodeCheck {
        self.pending.check_code(typed)
    }

    /// Completes when the controller stops waiting (cancel-safe: race it with the person).
    pub async fn controller_left(&mut self) -> RemoteCtrlError {
        self.pending.controller_left().await
    }

    /// The person confirmed the code: exchange HELLOs, keep the pairing, and give the
    /// session to serve.
    pub async fn confirm(self) -> Result<Session, RemoteCtrlError> {
        let PendingSession { pending, host, .. } = self;
        let connected = pending.confirm().await?;
        Session::start(host, connected)
    }

    /// The person typed the controller's code: [`PendingSession::confirm`] if it matches,
    /// else the connection ends without a HELLO ([`RemoteCtrlError::BadVerificationCode`]).
    pub async fn verify(self, typed: &str) -> Result<Session, RemoteCtrlError> {
        let PendingSession { pending, host, .. } = self;
        let connected = pending.verify(typed).await?;
        Session::start(host, connected)
    }

    /// The person rejected the code: close, sending nothing of XRCP.
    pub async fn reject(self) {
        self.pending.reject().await;
    }
}

/// A verified session with a controller, ready to serve.
pub struct Session {
    served: ServedSession,
    id: i64,
    app: Arc<dyn Application>,
    events: mpsc::Receiver<RRResult>,
    sender: EventSender,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("controller_id", &self.id)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

/// Hands events to the controller's polls (in order) while a [`Session`] is served.
#[derive(Clone, Debug)]
pub struct EventSender(mpsc::Sender<RRResult>);

impl EventSender {
    /// Queues an event; waits while 64 are queued. `false` once the session
    /// ended.
    pub async fn send(&self, event: RRResult) -> bool {
        self.0.send(event).await.is_ok()
    }
}

impl Session {
    fn start(host: Host, connected: crate::Connected) -> Result<Session, RemoteCtrlError> {
        let (served, pairing) = prepare_session(connected, &host.inner.settings)?;
        let id = host
            .store()
            .save(&served.ctrl_info.device_name, &pairing)
            .map_err(RemoteCtrlError::Store)?;
        let (tx, events) = mpsc::channel(EVENT_BUFFER);
        Ok(Session {
            served,
            id,
            app: Arc::clone(&host.inner.app),
            events,
            sender: EventSender(tx),
        })
    }

    /// The controller's id in the pairing store.
    pub fn controller_id(&self) -> i64 {
        self.id
    }

    /// What the controller says about itself.
    pub fn controller(&self) -> &CtrlAppInfo {
        &self.served.ctrl_info
    }

    /// This session's code.
    pub fn session_code(&self) -> &str {
        &self.served.session_code
    }

    /// Whether session bodies are compressed.
    pub fn compression(&self) -> bool {
        self.served.compression
    }

    /// Where to send events for the controller.
    pub fn events(&self) -> EventSender {
        self.sender.clone()
    }

    /// Serves the application until the controller ends the session (`Ok`) or the
    /// connection fails.
    pub async fn serve(self) -> Result<(), RemoteCtrlError> {
        let Session {
            served,
            app,
            events,
            sender,
            ..
        } = self;
        // Events come from the senders handed out; this one would keep the channel open.
        drop(sender);
        served
            .serve(Arc::new(DynApp(app)), events)
            .await
            .map_err(RemoteCtrlError::Session)
    }
}
