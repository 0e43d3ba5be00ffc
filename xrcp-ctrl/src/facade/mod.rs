//! The controller facade; its documentation is the crate's (lib.rs).

mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use xrcp::RcError;

use xrcp::message::TransportHost;
use xrcp::pairing::HostPairing;
use xrcp::session::{AppVersionRange, HostAppInfo, RRResult, RemoteFile};

pub use store::PairingStore;

use crate::address::{check, choose, local_addresses, AddressPreference, LocalAddress};
use crate::announce::{AnnounceOptions, Announcer};
use crate::connect::{Admission, ControllerOptions, Listening, WaitEvent};
use crate::error::{ListenFailure, PairingStoreError, RemoteHostError};
use crate::relay::{RelayError, SshRelay, SshRelayOptions};
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
    relay: Option<SshRelayOptions>,
    /// Where to listen was given (address, interface, port, advertised name or relay): a
    /// known host's stored listening options are then not used again.
    explicit: bool,
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
        self.explicit = true;
        self
    }

    /// Prefer the address of this network interface.
    pub fn interface(mut self, interface: impl Into<String>) -> Self {
        self.address.interface = Some(interface.into());
        self.explicit = true;
        self
    }

    /// The address the listener binds (default: the one in the link; loopback when the
    /// link names a relay, see [`ControllerBuilder::advertise`] and
    /// [`ControllerBuilder::ssh_relay`]). `0.0.0.0` listens on every interface.
    pub fn bind(mut self, address: Ipv4Addr) -> Self {
        self.bind = Some(address);
        self
    }

    /// The port to listen on (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self.explicit = true;
        self
    }

    /// Put this host name or address (and port) into links instead of one of this machine's
    /// addresses: a relay or port forward that reaches the listener.
    pub fn advertise(mut self, host: TransportHost, port: Option<u16>) -> Self {
        self.advertise = Some((host, port));
        self.explicit = true;
        self
    }

    /// Reach this controller through an SSH server: each invitation runs `ssh -N -R` to it
    /// and puts the server (or [`ControllerBuilder::advertise`]'s host) and the port opened
    /// there into the link; the tunnel lasts as long as the [`Session`]. The server needs
    /// key-based login and `GatewayPorts clientspecified` (or `yes`).
    pub fn ssh_relay(mut self, relay: SshRelayOptions) -> Self {
        self.relay = Some(relay);
        self.explicit = true;
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
                relay: self.relay,
                explicit: self.explicit,
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
    relay: Option<SshRelayOptions>,
    explicit: bool,
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
            relay: None,
            explicit: false,
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
        // What the caller chose is checked before anything else, so a wrong address is
        // reported at once (not after the link's lifetime).
        let candidates = inner.candidates.clone().unwrap_or_else(local_addresses);
        check(&inner.address, &candidates)?;
        let multicast = matches!(
            target,
            Target::Known {
                multicast: true,
                ..
            }
        );
        if let Some(addr) = inner
            .address
            .address
            .filter(|a| multicast && a.is_loopback())
        {
            return Err(RemoteHostError::MulticastOnLoopback { addr });
        }
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
        let relayed = inner.advertise.is_some() || inner.relay.is_some();
        let mut options = ControllerOptions {
            app: serde_json::to_value(inner.app.info()).unwrap_or_default(),
            address: inner.address.clone(),
            port: inner.port,
            advertise: inner.advertise.clone(),
            // A listener behind a relay or tunnel only needs to be reachable from this
            // machine; otherwise it binds the address put into the link (below), never every
            // interface by surprise.
            bind: inner.bind.unwrap_or(if relayed {
                Ipv4Addr::LOCALHOST
            } else {
                Ipv4Addr::UNSPECIFIED
            }),
            tls_timeout: inner.link_timeout,
            // A person compares a 76-digit code and types it: a connection that came in
            // time may take as long as the link lasts to send its HELLO.
            hello_timeout: inner.link_timeout,
            admission: inner.admission.clone(),
            candidates: None,
        };
        // A known host's last address and port are used again unless this controller was
        // told where to listen.
        if let (Some(binding), false) = (&stored, inner.explicit) {
            binding.apply(&mut options);
        }
        let binding = Binding::of(&options);
        if options.advertise.is_none() && inner.relay.is_none() {
            // The address the link names (a stored one may have gone: then the reference's
            // fallback applies) is also the one the listener binds, unless `bind` says
            // otherwise.
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
        let (listening, relay) = match &inner.relay {
            None => (crate::connect::start(pairing, options).await?, None),
            Some(relay) => {
                let listener = TcpListener::bind((options.bind, options.port))
                    .await
                    .map_err(|e| RemoteHostError::Listen {
                        addr: options.bind,
                        port: options.port,
                        failure: ListenFailure::of(&e),
                    })?;
                let local = listener.local_addr().map_err(|_| RcError::TlsStartFailed)?;
                // ssh connects to the listener from this machine: its own address, or
                // loopback when it listens on every address.
                let target = if local.ip().is_unspecified() {
                    SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
                } else {
                    local
                };
                let advertised = match &inner.advertise {
                    Some((host, _)) => host.clone(),
                    None => TransportHost::for_advertising(relay.server()).map_err(|e| {
                        let why = match e {
                            RcError::Syntax(why) => why,
                            other => other.to_string(),
                        };
                        RelayError::BadServerName(format!(
                            "'{}' cannot go into a link: {why}",
                            relay.server()
                        ))
                    })?,
                };
                let tunnel = SshRelay::start(relay, target, &advertised).await?;
                options.advertise = Some((advertised, Some(tunnel.port())));
                let listening = crate::connect::start_on(listener, pairing, options).await?;
                (listening, Some(tunnel))
            }
        };
        let deadline = Instant::now() + inner.link_timeout;
        let announcer = if multicast {
            Some(Announcer::start(&listening, &inner.announce)?)
        } else {
            None
        };
        Ok(Invitation {
            listening,
            announcer,
            relay,
            deadline,
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
    relay: Option<SshRelay>,
    /// When the link stops taking connections.
    deadline: Instant,
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

    /// The host name or address and the port the link names.
    pub fn advertised(&self) -> (&TransportHost, u16) {
        self.listening.advertised()
    }

    /// Whether the link names a relay or port forward rather than one of this machine's
    /// addresses.
    pub fn relayed(&self) -> bool {
        self.listening.local_address().is_none()
    }

    /// This machine's other addresses a host could also reach (the link names one).
    pub fn other_addresses(&self) -> Vec<Ipv4Addr> {
        self.listening
            .other_addresses()
            .iter()
            .map(|a| a.address)
            .collect()
    }

    /// [`Invitation::accept_with`], ignoring the session codes shown meanwhile (the host's
    /// user compares the code with [`Session::session_code`] afterwards, or a known host
    /// connects without comparing).
    pub async fn accept(self) -> Result<Session, RemoteHostError> {
        self.accept_with(|_| {}).await
    }

    /// Waits for the host that holds this link, reporting the session code of every
    /// connection that completes TLS (show it to the person, who compares it with the
    /// host's), the codes that no longer count, reminders of the time left while nobody
    /// compares a code, and other connections that waited with the link when the host
    /// proved it holds it ([`WaitEvent`]); then opens the session and keeps the pairing.
    pub async fn accept_with(
        self,
        on_event: impl FnMut(WaitEvent) + Send,
    ) -> Result<Session, RemoteHostError> {
        let Invitation {
            listening,
            announcer,
            relay,
            deadline,
            target,
            binding,
            controller,
        } = self;
        // The wait reports codes while the reminders below report the time left: both
        // report through `on_event`, one at a time.
        let on_event = Mutex::new(on_event);
        let report = |e: WaitEvent| (on_event.lock().unwrap_or_else(PoisonError::into_inner))(e);
        let connected = {
            // Connections showing a code: while someone compares one, reminders would only
            // distract.
            let comparing = AtomicUsize::new(0);
            let wait = listening.connect(|event| {
                match &event {
                    WaitEvent::Code { .. } => {
                        comparing.fetch_add(1, Ordering::Relaxed);
                    }
                    WaitEvent::Withdrawn { .. } => {
                        let _ = comparing.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            n.checked_sub(1)
                        });
                    }
                    _ => {}
                }
                report(event);
            });
            tokio::pin!(wait);
            let lifetime = deadline.saturating_duration_since(Instant::now());
            let mut reminders = reminders(lifetime).into_iter();
            let mut next = reminders.next();
            loop {
                let at = next.map(|left| deadline - left);
                tokio::select! {
                    connected = &mut wait => break connected,
                    () = sleep_until_some(at) => {
                        if let Some(left) = next {
                            if comparing.load(Ordering::Relaxed) == 0 {
                                report(WaitEvent::TimeLeft(left));
                            }
                        }
                        next = reminders.next();
                    }
                }
            }
        };
        drop(announcer);
        let connected = connected.map_err(|e| match (target, e) {
            (Target::Known { id, .. }, RemoteHostError::HostCaRefused) => {
                RemoteHostError::PairingLost(id)
            }
            (_, e) => e,
        })?;
        let contested = connected.contested.clone();
        if !contested.is_empty() {
            report(WaitEvent::Contested {
                peer: connected.peer,
                others: contested.clone(),
            });
        }
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
            relay,
        })
    }
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

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A verified session with a host: send commands and files, read its events.
pub struct Session {
    remote: RemoteHost,
    id: i64,
    contested: Vec<SocketAddr>,
    /// The SSH tunnel the session runs through ([`ControllerBuilder::ssh_relay`]).
    relay: Option<SshRelay>,
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
        self.send_file_with(path, |_, _| {}).await
    }

    /// [`Session::send_file`], reporting `(bytes sent, file size)` as the upload goes.
    pub async fn send_file_with(
        &self,
        path: &Path,
        mut on_progress: impl FnMut(u64, u64) + Send,
    ) -> Result<String, RemoteHostError> {
        Ok(self
            .remote
            .client
            .store_file_path(path, &mut on_progress)
            .await?)
    }

    /// Downloads a host file into `dir` (never replacing a file there); gives its path.
    pub async fn get_file(
        &self,
        file: &RemoteFile,
        dir: &Path,
    ) -> Result<PathBuf, RemoteHostError> {
        self.get_file_with(file, dir, |_, _| {}).await
    }

    /// [`Session::get_file`], reporting `(bytes received, file size)` as the download goes.
    pub async fn get_file_with(
        &self,
        file: &RemoteFile,
        dir: &Path,
        mut on_progress: impl FnMut(u64, u64) + Send,
    ) -> Result<PathBuf, RemoteHostError> {
        Ok(self
            .remote
            .client
            .get_file_to_dir(file, dir, &mut on_progress)
            .await?)
    }

    /// The next event the host sent; `None` once the session ended.
    pub async fn next_event(&mut self) -> Option<HostEvent> {
        self.remote.events.recv().await
    }

    /// The session client: cheap to clone for other tasks, with progress reports for
    /// transfers, the other requests, and [`RemoteHostClient::closed`] to learn that the
    /// connection ended.
    pub fn client(&self) -> &RemoteHostClient {
        &self.remote.client
    }

    /// Ends the session on purpose (the host tells this from a cut connection), then the
    /// SSH tunnel it ran through, if any.
    pub async fn close(self) {
        self.remote.close().await;
        if let Some(relay) = self.relay {
            relay.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_in_the_last_minutes() {
        let s = Duration::from_secs;
        assert_eq!(reminders(s(600)), [s(180), s(120), s(60), s(30)]);
        assert_eq!(reminders(s(70)), [s(60), s(30)]);
        assert!(reminders(s(20)).is_empty());
    }

    fn loopback_controller(dir: &Path) -> ControllerBuilder {
        Controller::builder()
            .data_dir(dir)
            .candidates(vec![LocalAddress {
                address: Ipv4Addr::LOCALHOST,
                interface: "lo".into(),
            }])
            .address(Ipv4Addr::LOCALHOST)
    }

    /// The program's `connect <id> --multicast --addr 127.0.0.1` says what is wrong with the
    /// address before it looks the host up.
    #[tokio::test]
    async fn multicast_on_a_typed_loopback_address_is_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        let ctrl = loopback_controller(dir.path()).build().unwrap();
        let err = ctrl.announce(42).await.unwrap_err();
        assert!(
            matches!(err, RemoteHostError::MulticastOnLoopback { addr } if addr.is_loopback()),
            "{err:?}"
        );
        // Without multicast the same unknown host is what is wrong.
        let err = ctrl.reconnect(42).await.unwrap_err();
        assert!(matches!(err, RemoteHostError::UnknownHost(42)), "{err:?}");
    }

    /// While nobody compares a code, the invitation reminds of the time left (the program
    /// prints these lines): a 31-second link reminds after one second that 30 are left.
    #[tokio::test]
    async fn an_invitation_reminds_of_the_time_left() {
        let dir = tempfile::tempdir().unwrap();
        let ctrl = loopback_controller(dir.path())
            .link_timeout(Duration::from_secs(31))
            .build()
            .unwrap();
        let invitation = ctrl.invite().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let accept = tokio::spawn(invitation.accept_with(move |e| {
            let _ = tx.send(e);
        }));
        let first = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("no reminder within 20 s");
        assert_eq!(first, Some(WaitEvent::TimeLeft(Duration::from_secs(30))));
        accept.abort();
    }
}
