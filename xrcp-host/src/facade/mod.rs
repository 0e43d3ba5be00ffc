//! The host in four calls: [`Host::builder`] (with the [`Application`] to serve) →
//! [`Host::connect`] (the controller's link) → [`PendingSession::confirm`] (or `verify` with
//! the code the person read on the controller) → [`Session::serve`].
//!
//! ```no_run
//! # use xrcp::session::RRResult;
//! # use xrcp_host::BoxFuture;
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
//! Finding a paired controller on the local network is [`Host::find`], or, to show what is
//! going on in between, [`Host::listen`] → [`Listening::found`] → [`Found::connect`].
//!
//! Underneath it runs the handshake (TLS, session code, HELLO), multicast discovery, the
//! app info check and the HTTP/2 server; the `xrcp-host` program uses nothing else than
//! this facade.

mod app;
mod store;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use xrcp::message::SignedInvitation;
use xrcp::session::{AppVersionRange, CtrlAppInfo, RRResult};

pub(crate) use app::DynApp;
pub use app::{Application, BoxFuture, BoxReader, UploadFile};
pub use store::PairingStore;

use crate::connect::{CodeCheck, HostOptions, PendingConfirmation};
use crate::discover::{listening_address, DiscoverOptions, Discovered, Discovery};
use crate::error::{PairingStoreError, RemoteCtrlError};
use crate::remote::{prepare_session, HostAppSettings, ServedSession};
use crate::store::CtrlStore;

/// Events buffered for the controller's polls before [`EventSender::send`] waits (unless
/// [`HostBuilder::event_buffer`] says otherwise).
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
    event_buffer: usize,
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

    /// How many events ([`Session::events`]) wait for the controller's polls before
    /// [`EventSender::send`] waits and [`EventSender::try_send`] refuses (default: 64).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
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
                settings: Mutex::new(self.settings),
                step_timeout: self.step_timeout,
                connect_via: self.connect_via,
                discover: self.discover,
                discovery: Discovery::new(),
                event_buffer: self.event_buffer,
            }),
        })
    }
}

struct Inner {
    app: Arc<dyn Application>,
    store: Mutex<Box<dyn PairingStore>>,
    /// Behind a lock: the device name may change while the host runs.
    settings: Mutex<HostAppSettings>,
    step_timeout: Duration,
    connect_via: Option<SocketAddr>,
    discover: DiscoverOptions,
    /// Shared by every [`Host::listen`] of this host (and its clones): one multicast
    /// membership per group, and the addresses controllers were found at, tried first.
    discovery: Discovery,
    event_buffer: usize,
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
            .field("device_name", &self.settings().device_name)
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
            event_buffer: EVENT_BUFFER,
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Box<dyn PairingStore>> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> HostAppSettings {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The name controllers are shown for this host from the next connection on (a setting
    /// the person may change while the host runs).
    pub fn set_device_name(&self, name: impl Into<String>) {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .device_name = name.into();
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
        self.connect_invitation_via(invitation, self.inner.connect_via)
            .await
    }

    /// [`Host::connect_invitation`] dialing `via` (an SSH tunnel, say) instead of the
    /// link's address for this connection only (`None`: the link's address); every identity
    /// check of the link still applies.
    pub async fn connect_invitation_via(
        &self,
        invitation: SignedInvitation,
        via: Option<SocketAddr>,
    ) -> Result<PendingSession, RemoteCtrlError> {
        let (id, pairing) = self.known(&invitation)?.unzip();
        self.dial(invitation, pairing, id, via).await
    }

    /// The id of the link's controller in the pairing store, when it is paired already.
    pub fn known_id(&self, invitation: &SignedInvitation) -> Result<Option<i64>, RemoteCtrlError> {
        Ok(self.known(invitation)?.map(|(id, _)| id))
    }

    fn known(
        &self,
        invitation: &SignedInvitation,
    ) -> Result<Option<(i64, xrcp::pairing::CtrlPairing)>, RemoteCtrlError> {
        self.store()
            .find(&invitation.invitation.ca)
            .map_err(RemoteCtrlError::Store)
    }

    /// Listens for a paired controller's multicast announcement (spec/xrcp.md §5), then
    /// connects to it as [`Host::connect`] does. The controller is known, so the caller may
    /// [`PendingSession::confirm`] without asking the person to compare the code.
    pub async fn find(&self) -> Result<PendingSession, RemoteCtrlError> {
        self.listen(None)?.found().await?.connect().await
    }

    /// [`Host::find`] in steps: joins the multicast group (the options of
    /// [`HostBuilder::discovery`]; `timeout` replaces theirs) for the stored pairings; then
    /// [`Listening::found`] waits for an announcement. `CTRL_NOT_FOUND` when no controller is
    /// paired.
    pub fn listen(&self, timeout: Option<Duration>) -> Result<Listening, RemoteCtrlError> {
        let known = self.store().known().map_err(RemoteCtrlError::Store)?;
        let mut options = self.inner.discover.clone();
        if let Some(t) = timeout {
            options.timeout = t;
        }
        let listener = self.inner.discovery.listener(known, &options)?;
        Ok(Listening {
            listener,
            options,
            host: self.clone(),
        })
    }

    async fn dial(
        &self,
        invitation: SignedInvitation,
        pairing: Option<xrcp::pairing::CtrlPairing>,
        id: Option<i64>,
        via: Option<SocketAddr>,
    ) -> Result<PendingSession, RemoteCtrlError> {
        let hello = self.settings().hello_info(&invitation.invitation.app)?;
        let controller = CtrlAppInfo::from_json(&invitation.invitation.app)
            .map_err(|e| RemoteCtrlError::BadAppInfo(e.to_string()))?;
        let options = HostOptions {
            app: serde_json::to_value(&hello).unwrap_or_default(),
            connect_via: via,
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

/// Listening for the announcement of a paired controller; see [`Host::listen`].
pub struct Listening {
    listener: crate::discover::Listener,
    options: DiscoverOptions,
    host: Host,
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("group", &self.group())
            .field("timeout", &self.options.timeout)
            .finish_non_exhaustive()
    }
}

impl Listening {
    /// The multicast group and port listened on.
    pub fn group(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.options.group, self.options.port)
    }

    /// The local address whose interface receives the announcements: the configured
    /// interface, or the one the system routes the group through (`None`: no route).
    pub fn interface_address(&self) -> Option<Ipv4Addr> {
        listening_address(&self.options)
    }

    /// How long [`Listening::found`] waits.
    pub fn timeout(&self) -> Duration {
        self.options.timeout
    }

    /// Waits for a genuine announcement of a paired controller; `NOT_DISCOVERED`
    /// ([`xrcp::RcError::NotDiscovered`]) when none came within [`Listening::timeout`].
    pub async fn found(mut self) -> Result<Found, RemoteCtrlError> {
        let found = self.listener.find(self.options.timeout).await?;
        Ok(Found {
            found,
            host: self.host,
        })
    }
}

/// A paired controller announced itself; nothing was sent to it yet.
pub struct Found {
    found: Discovered,
    host: Host,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("controller_id", &self.found.id)
            .field("source", &self.found.source)
            .finish_non_exhaustive()
    }
}

impl Found {
    /// The controller's id in the pairing store.
    pub fn controller_id(&self) -> i64 {
        self.found.id
    }

    /// The announced invitation (signed by the paired controller), with its app info.
    pub fn invitation(&self) -> &SignedInvitation {
        &self.found.invitation
    }

    /// Connects to the controller with its stored pairing, as [`Host::connect`] does.
    pub async fn connect(self) -> Result<PendingSession, RemoteCtrlError> {
        let Found { found, host } = self;
        host.dial(
            found.invitation,
            Some(found.pairing),
            Some(found.id),
            host.inner.connect_via,
        )
        .await
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

    /// The controller's link (or announcement) this connection was made from.
    pub fn invitation(&self) -> &SignedInvitation {
        self.pending.invitation()
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
    /// A sender and the queue it fills, for the session layer underneath.
    pub(crate) fn channel(capacity: usize) -> (EventSender, mpsc::Receiver<RRResult>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (EventSender(tx), rx)
    }

    /// Queues an event; waits while the queue is full ([`HostBuilder::event_buffer`]).
    /// `false` once the session ended.
    pub async fn send(&self, event: RRResult) -> bool {
        self.0.send(event).await.is_ok()
    }

    /// Queues an event without waiting (from code that cannot wait, such as a lock held);
    /// `false` if the queue is full or the session ended.
    pub fn try_send(&self, event: RRResult) -> bool {
        self.0.try_send(event).is_ok()
    }
}

impl Session {
    fn start(host: Host, connected: crate::connect::Connected) -> Result<Session, RemoteCtrlError> {
        let (served, pairing) = prepare_session(connected, &host.settings())?;
        let id = host
            .store()
            .save(&served.ctrl_info.device_name, &pairing)
            .map_err(RemoteCtrlError::Store)?;
        let (sender, events) = EventSender::channel(host.inner.event_buffer);
        Ok(Session {
            served,
            id,
            app: Arc::clone(&host.inner.app),
            events,
            sender,
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
