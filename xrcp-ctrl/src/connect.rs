//! The controller's handshake over tokio (spec/xrcp.md §6–§8): bind, show the invitation,
//! accept TLS connections under admission limits, show each session code, take the HELLO of
//! the host that holds the invitation, answer.
//!
//! The protocol decisions live in [`xrcp::handshake::ControllerHandshake`]; this module
//! moves bytes, enforces the timeouts (the invitation's lifetime, 60 s by default; 5 s per TLS
//! handshake; 60 s per HELLO) and decides which connections may wait (spec/xrcp.md §6.4).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use xrcp::crypto::KeyHash;
use xrcp::handshake::io::{read_block_or_close, write_block};
use xrcp::handshake::{
    ControllerHandshake, ControllerKeys, HelloAttempt, HelloOutcome, HelloRejected,
};
use xrcp::message::{SignedInvitation, TransportHost};
use xrcp::pairing::HostPairing;
use xrcp::session_code::session_code;
use xrcp::tls::{self, TlsSession, TlsStream};
use xrcp::RcError;

use crate::address::{choose, local_addresses, AddressPreference, LocalAddress};
use crate::error::{RemoteHostError, Stage};

/// How to start a controller session.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// The controller's app info, sent in the invitation.
    pub app: Value,
    /// `addr=` / `iface=`: which local address to advertise.
    pub address: AddressPreference,
    /// The port to listen on; 0 lets the OS choose.
    pub port: u16,
    /// Put this host (and port, else the listener's) into the invitation instead of one of
    /// this machine's addresses: a relay, a router's public address, a VPN address through
    /// which the host can reach this listener. Nothing about the host's checks changes: it
    /// pins this controller's CA from the link whatever address it dials.
    pub advertise: Option<(TransportHost, Option<u16>)>,
    /// The address the listener binds. The reference binds the wildcard; binding loopback
    /// suits an SSH tunnel.
    pub bind: Ipv4Addr,
    /// Candidate addresses to advertise; `None` reads the machine's interfaces.
    pub candidates: Option<Vec<LocalAddress>>,
    /// How long the invitation takes new connections (the reference: 60 s for its one TLS
    /// connection). Connections already past TLS may still finish after it.
    pub tls_timeout: Duration,
    /// How long one connection past TLS may take to send its HELLO (its user compares the
    /// session code meanwhile).
    pub hello_timeout: Duration,
    /// Limits on connections that have not proven they hold the invitation.
    pub admission: Admission,
}

/// Limits on connections that have not (yet) proven they hold the invitation, so that
/// anyone who merely sees the port cannot keep the real host out (spec/xrcp.md §6.4).
///
/// TLS handshakes are short-lived: a new connection always gets a place, and when its address
/// already holds its share, or the set is full, the oldest handshake of its own address, or
/// else of the address holding the most, is dropped for it. A connection must send its
/// ClientHello within [`Admission::hello_start_timeout`] and finish TLS within
/// [`Admission::handshake_timeout`].
///
/// Connections past TLS wait for a person to compare the session code, so they are kept: a
/// newcomer only takes the place of the oldest connection of an address that holds at least
/// two more places than the newcomer's; otherwise, with the set or its address's share full,
/// the newcomer is closed. A host already waiting is never pushed out by strangers that each
/// come from an address of their own. When the link names a relay
/// (`advertise`) and the listener is on loopback, every connection
/// arrives from the tunnel's address, so the per-address shares are not applied.
#[derive(Clone, Debug)]
pub struct Admission {
    /// Deadline for a new connection's first TLS byte.
    pub hello_start_timeout: Duration,
    /// Deadline for one connection's TLS handshake.
    pub handshake_timeout: Duration,
    /// TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// TLS handshakes in progress from one source address.
    pub max_handshakes_per_source: usize,
    /// Connections past TLS waiting for their HELLO at once (each shows a session code).
    pub max_waiting: usize,
    /// Connections past TLS waiting for their HELLO from one source address.
    pub max_waiting_per_source: usize,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            // A lost ClientHello is retransmitted after about 1 s (the initial TCP RTO).
            hello_start_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 256,
            max_handshakes_per_source: 32,
            max_waiting: 32,
            max_waiting_per_source: 4,
        }
    }
}

impl Admission {
    /// The same limits with no per-address shares (every connection comes through a tunnel).
    fn without_shares(&self) -> Admission {
        Admission {
            max_handshakes_per_source: self.max_handshakes,
            max_waiting_per_source: self.max_waiting,
            ..self.clone()
        }
    }
}

/// `now + d`, or a day from now when that overflows (`Duration::MAX` means "no deadline").
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400))
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            app: Value::Null,
            address: AddressPreference::default(),
            port: 0,
            advertise: None,
            bind: Ipv4Addr::UNSPECIFIED,
            candidates: None,
            tls_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(60),
            admission: Admission::default(),
        }
    }
}

/// A session listening for its host.
pub struct Listening {
    handshake: ControllerHandshake,
    listener: TcpListener,
    /// What the invitation names.
    advertised: (TransportHost, u16),
    /// The local address advertised, when the invitation names one of ours.
    local: Option<LocalAddress>,
    other_addresses: Vec<LocalAddress>,
    options: ControllerOptions,
}

/// Binds the listener and makes the signed invitation for the chosen address.
pub async fn start(
    pairing: HostPairing,
    options: ControllerOptions,
) -> Result<Listening, RemoteHostError> {
    let listener = TcpListener::bind(SocketAddrV4::new(options.bind, options.port))
        .await
        .map_err(|e| RemoteHostError::Listen {
            addr: options.bind,
            port: options.port,
            failure: crate::error::ListenFailure::of(&e),
        })?;
    start_on(listener, pairing, options).await
}

/// [`start`] on a listener the caller bound already (to set up a tunnel to its port before
/// the invitation is made); `options.bind` and `options.port` are not used.
pub async fn start_on(
    listener: TcpListener,
    pairing: HostPairing,
    options: ControllerOptions,
) -> Result<Listening, RemoteHostError> {
    let (local, other_addresses) = match &options.advertise {
        Some(_) => (None, Vec::new()),
        None => {
            let candidates = options.candidates.clone().unwrap_or_else(local_addresses);
            let (chosen, others) = choose(&options.address, candidates)?;
            (Some(chosen), others)
        }
    };
    let port = listener
        .local_addr()
        .map_err(|_| RcError::TlsStartFailed)?
        .port();
    let advertised = match (&options.advertise, &local) {
        (Some((host, advertised_port)), _) => (host.clone(), advertised_port.unwrap_or(port)),
        (None, Some(local)) => (TransportHost::Ipv4(local.address), port),
        (None, None) => return Err(RcError::NoLocalAddress.into()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut options = options;
    // Through a tunnel (a relay in the link, a listener on loopback) every connection
    // arrives from the tunnel's address; a router's port forward keeps the real ones.
    let tunnelled = listener
        .local_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    if options.advertise.is_some() && tunnelled {
        options.admission = options.admission.without_shares();
    }
    let handshake = ControllerHandshake::new(
        pairing,
        advertised.0.clone(),
        advertised.1,
        options.app.clone(),
        now,
    )?;
    Ok(Listening {
        handshake,
        listener,
        advertised,
        local,
        other_addresses,
        options,
    })
}

impl Listening {
    /// The signed invitation the link encodes.
    pub fn invitation(&self) -> &SignedInvitation {
        self.handshake.invitation()
    }

    /// The `xrcp:/` link to show.
    pub fn link(&self) -> String {
        self.handshake.invitation().to_uri()
    }

    /// The host and port in the invitation.
    pub fn advertised(&self) -> (&TransportHost, u16) {
        (&self.advertised.0, self.advertised.1)
    }

    /// The advertised address when it is one of this machine's (not with
    /// [`ControllerOptions::advertise`]).
    pub fn local_address(&self) -> Option<&LocalAddress> {
        self.local.as_ref()
    }

    /// The address the listener is bound to.
    pub fn bound(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((self.options.bind, self.options.port)))
    }

    /// Other usable local addresses (shown to the user, as the reference does).
    pub fn other_addresses(&self) -> &[LocalAddress] {
        &self.other_addresses
    }

    /// A fresh encrypted announcement datagram (known hosts only, else `NEW_CONTROLLER`).
    pub fn announcement(&self) -> Result<Vec<u8>, RcError> {
        self.handshake.announcement()
    }

    /// Waits for the first connection that completes TLS with an acceptable host
    /// certificate and returns it for the HELLO; the listener closes then, so later attempts
    /// are refused (as the reference does). Suits a known host, whose CA TLS pins: for a new
    /// pairing anyone who reaches the port can complete TLS with a certificate of their own,
    /// and [`Listening::connect`] keeps waiting for the host that holds the invitation instead.
    ///
    /// Each TLS handshake has [`Admission::handshake_timeout`]; idle or slow connections
    /// cannot crowd out a new one (see [`Admission`]).
    pub async fn accept(self) -> Result<PendingHello, RemoteHostError> {
        let config = tls::server_config(self.handshake.credentials(), self.handshake.tls_pin())
            .map_err(RcError::from)?;
        let deadline = deadline_after(self.options.tls_timeout);
        let mut gate = Gate::new(config, &self.options.admission);
        let listener = self.listener;
        let (stream, session, peer) = loop {
            tokio::select! {
                conn = listener.accept() => gate.admit(conn).await,
                Some(done) = gate.tasks.join_next_with_id(), if !gate.tasks.is_empty() => {
                    if let Some((_, peer, Ok((stream, session)))) = gate.finished(done) {
                        break (stream, session, peer);
                    }
                }
                _ = sleep_until(deadline) => return Err(gate.nobody_came()),
            }
        };
        drop(listener);
        let code = session_code(&session.tls_unique);
        tracing::info!(%peer, "host connected over TLS");
        Ok(PendingHello {
            handshake: self.handshake,
            stream,
            session,
            peer,
            code,
            hello_timeout: self.options.hello_timeout,
        })
    }

    /// Waits for the host that holds this invitation and completes the HELLO exchange.
    ///
    /// Every connection that completes TLS gets a session code, reported with its source
    /// address as [`WaitEvent::Code`] so that the person comparing codes can tell them
    /// apart; the first one whose HELLO decrypts under the invitation's key is the host
    /// (spec/xrcp.md §6.4). Connections that leave, time out or send a HELLO that does not
    /// decrypt are reported as [`WaitEvent::Withdrawn`] and do not use the invitation up;
    /// new connections are taken for [`ControllerOptions::tls_timeout`]. The reference
    /// takes one TLS connection only; we keep listening so that someone who merely reaches
    /// the port cannot deny the link.
    ///
    /// For a known host (its CA pinned in TLS) a connection past TLS is that host, so its
    /// leaving, timing out or failing ends the wait with that error, as with
    /// [`Listening::accept`] and [`PendingHello::finish`].
    pub async fn connect(
        self,
        mut on_event: impl FnMut(WaitEvent) + Send,
    ) -> Result<Connected, RemoteHostError> {
        let pinned = matches!(self.handshake.tls_pin(), tls::Pin::Fingerprint(_));
        let config = tls::server_config(self.handshake.credentials(), self.handshake.tls_pin())
            .map_err(RcError::from)?;
        let Listening {
            handshake,
            listener,
            options,
            ..
        } = self;
        // Handed to each HELLO that arrives and back when it does not decrypt.
        let mut handshake = Some(handshake);
        let deadline = deadline_after(options.tls_timeout);
        let mut gate = Gate::new(config, &options.admission);
        let mut listener = Some(listener);
        let mut waiting = Slots::new(
            options.admission.max_waiting,
            options.admission.max_waiting_per_source,
        );
        let mut shown: HashMap<u64, (SocketAddr, String, AbortHandle)> = HashMap::new();
        let mut hellos: JoinSet<HelloRead> = JoinSet::new();
        let mut hello_tasks: HashMap<tokio::task::Id, u64> = HashMap::new();
        let mut last_failure = None;
        loop {
            if listener.is_none() && gate.tasks.is_empty() && hellos.is_empty() {
                return Err(last_failure.unwrap_or_else(|| gate.nobody_came()));
            }
            tokio::select! {
                conn = accept_on(&listener) => gate.admit(conn).await,
                _ = sleep_until(deadline), if listener.is_some() => {
                    tracing::info!("the invitation no longer takes new connections");
                    listener = None;
                }
                Some(done) = gate.tasks.join_next_with_id(), if !gate.tasks.is_empty() => {
                    let Some((id, peer, Ok((stream, session)))) = gate.finished(done) else {
                        continue;
                    };
                    match waiting.admit_kept(id, peer.ip()) {
                        Place::Taken => {}
                        Place::Refused => {
                            tracing::info!(%peer, "too many connections waiting for a HELLO; closed");
                            continue;
                        }
                        Place::Evicting(old) => {
                            if let Some((peer, code, abort)) = shown.remove(&old) {
                                abort.abort();
                                on_event(WaitEvent::Withdrawn { peer, code, reason: Withdrawal::Crowded });
                            }
                        }
                    }
                    let code = session_code(&session.tls_unique);
                    tracing::info!(%peer, "a connection completed TLS");
                    on_event(WaitEvent::Code { peer, code: code.clone() });
                    let conn = Waiting { stream, session, peer, code: code.clone() };
                    let abort = hellos.spawn(conn.read_hello(id, options.hello_timeout));
                    hello_tasks.insert(abort.id(), id);
                    shown.insert(id, (peer, code, abort));
                }
                Some(done) = hellos.join_next_with_id(), if !hellos.is_empty() => {
                    let (id, conn, block) = match done {
                        Ok((task, read)) => {
                            hello_tasks.remove(&task);
                            read
                        }
                        Err(e) => {
                            // Cancelled: withdrawn when it was crowded out. A panic: forget
                            // its place and its code.
                            if let Some(id) = hello_tasks.remove(&e.id()) {
                                waiting.remove(id);
                                if let Some((peer, code, _)) = shown.remove(&id) {
                                    on_event(WaitEvent::Withdrawn { peer, code, reason: Withdrawal::Failed });
                                }
                            }
                            continue;
                        }
                    };
                    waiting.remove(id);
                    // A task that finished just as it was crowded out was withdrawn already.
                    if shown.remove(&id).is_none() {
                        continue;
                    }
                    let reason = match block {
                        Ok(Some(block)) => {
                            let Some(hs) = handshake.take() else { continue };
                            let ca = KeyHash(conn.session.peer_ca_fingerprint);
                            match hs.offer_host_hello(&block, ca, &conn.session.tls_unique) {
                                HelloAttempt::Accepted(out) => {
                                    let mut contested = Vec::new();
                                    for (_, (peer, code, abort)) in shown.drain() {
                                        abort.abort();
                                        contested.push(peer);
                                        on_event(WaitEvent::Withdrawn { peer, code, reason: Withdrawal::Superseded });
                                    }
                                    let mut connected = conn.complete(out, options.hello_timeout).await?;
                                    connected.contested = contested;
                                    return Ok(connected);
                                }
                                HelloAttempt::Refused(rejected) => {
                                    return Err(conn.refuse(rejected).await);
                                }
                                HelloAttempt::NotInvited { handshake: hs, error } => {
                                    handshake = Some(hs);
                                    tracing::info!(peer = %conn.peer, %error, "a HELLO that does not decrypt under the invitation");
                                    last_failure = Some(RemoteHostError::Protocol(error));
                                    Withdrawal::NotInvited
                                }
                            }
                        }
                        Ok(None) => {
                            last_failure = Some(RemoteHostError::Disconnected);
                            Withdrawal::Left
                        }
                        Err(e) => {
                            let reason = if matches!(e, RemoteHostError::Timeout(_)) {
                                Withdrawal::TimedOut
                            } else {
                                Withdrawal::Failed
                            };
                            last_failure = Some(e);
                            reason
                        }
                    };
                    on_event(WaitEvent::Withdrawn { peer: conn.peer, code: conn.code, reason });
                    if pinned {
                        if let Some(failure) = last_failure.take() {
                            return Err(failure);
                        }
                    }
                }
            }
        }
    }
}

/// Accepts on the listener while there is one; never completes after.
async fn accept_on(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// What the listener and [`crate::Invitation::accept_with`] report while they wait
/// for the host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitEvent {
    /// A connection from `peer` completed TLS: show `code` for it, labelled with `peer`.
    Code {
        /// The connection's source address.
        peer: SocketAddr,
        /// Its session code.
        code: String,
    },
    /// The connection from `peer` is gone without having proven that it holds the
    /// invitation: stop showing its code.
    Withdrawn {
        /// The connection's source address.
        peer: SocketAddr,
        /// The code shown for it.
        code: String,
        /// Why it is gone.
        reason: Withdrawal,
    },
    /// Nobody is comparing a code and the link takes connections for only this much longer:
    /// remind the person (3, 2 and 1 minutes and 30 seconds before the end, within the
    /// link's lifetime). Only [`crate::Invitation::accept_with`] reports it.
    TimeLeft(Duration),
    /// The host proved it holds the link from `peer` while `others` were still waiting with
    /// it: if the code the host showed was not `peer`'s, someone else has the link. Only
    /// [`crate::Invitation::accept_with`] reports it, before it opens the session.
    Contested {
        /// Where the host connected from.
        peer: SocketAddr,
        /// The other connections waiting with the same link.
        others: Vec<SocketAddr>,
    },
}

/// Why a connection's session code was withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// It closed before sending a HELLO (a host whose user rejected the code does this).
    Left,
    /// It sent no HELLO within its deadline (60 s by default).
    TimedOut,
    /// Its HELLO does not decrypt under the invitation: it never saw the link.
    NotInvited,
    /// Reading its HELLO failed.
    Failed,
    /// Newer connections took its place (see [`Admission`]).
    Crowded,
    /// Another connection proved it holds the invitation.
    Superseded,
}

impl Withdrawal {
    /// A stable name for scripting output.
    pub fn name(self) -> &'static str {
        match self {
            Withdrawal::Left => "left",
            Withdrawal::TimedOut => "timeout",
            Withdrawal::NotInvited => "not_invited",
            Withdrawal::Failed => "failed",
            Withdrawal::Crowded => "crowded",
            Withdrawal::Superseded => "superseded",
        }
    }
}

impl fmt::Display for Withdrawal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Withdrawal::Left => "it closed the connection before sending its HELLO",
            Withdrawal::TimedOut => "it did not send its HELLO in time",
            Withdrawal::NotInvited => "its HELLO does not match this link",
            Withdrawal::Failed => "its HELLO could not be read",
            Withdrawal::Crowded => "too many connections were waiting",
            Withdrawal::Superseded => "another host connected with this link",
        })
    }
}

/// The outcome of waiting for one connection's HELLO block.
type HelloRead = (u64, Waiting, Result<Option<Vec<u8>>, RemoteHostError>);

/// A connection past TLS, waiting for its HELLO.
struct Waiting {
    stream: TlsStream<TcpStream>,
    session: TlsSession,
    peer: SocketAddr,
    code: String,
}

impl Waiting {
    async fn read_hello(mut self, id: u64, limit: Duration) -> HelloRead {
        let block = match timeout(limit, read_block_or_close(&mut self.stream)).await {
            Ok(read) => read.map_err(RemoteHostError::from),
            Err(_) => Err(RemoteHostError::Timeout(Stage::HostHello)),
        };
        (id, self, block)
    }

    async fn complete(
        mut self,
        out: HelloOutcome,
        limit: Duration,
    ) -> Result<Connected, RemoteHostError> {
        timeout(limit, write_block(&mut self.stream, &out.reply))
            .await
            .map_err(|_| RemoteHostError::Timeout(Stage::CtrlHello))??;
        Ok(Connected {
            stream: self.stream,
            keys: out.keys,
            pairing: out.pairing,
            session_code: self.code,
            peer: self.peer,
            contested: Vec::new(),
        })
    }

    async fn refuse(mut self, rejected: HelloRejected) -> RemoteHostError {
        refuse(&mut self.stream, rejected.reply).await;
        rejected.error.into()
    }
}

/// Sends the ERROR block, if there is one, and closes; each step briefly.
async fn refuse(stream: &mut TlsStream<TcpStream>, reply: Option<Vec<u8>>) {
    if let Some(reply) = reply {
        let _ = timeout(Duration::from_secs(5), write_block(stream, &reply)).await;
    }
    let _ = timeout(
        Duration::from_secs(1),
        tokio::io::AsyncWriteExt::shutdown(stream),
    )
    .await;
}

type Handshaken = (
    u64,
    SocketAddr,
    Result<(TlsStream<TcpStream>, TlsSession), RemoteHostError>,
);

/// TLS handshakes in progress, under [`Admission`]'s limits.
struct Gate {
    config: Arc<rustls::ServerConfig>,
    hello_start_timeout: Duration,
    handshake_timeout: Duration,
    slots: Slots,
    aborts: HashMap<u64, AbortHandle>,
    ids: HashMap<tokio::task::Id, u64>,
    tasks: JoinSet<Handshaken>,
    next_id: u64,
    /// A client whose CA is not the pinned one was refused: for a known host, most likely
    /// the paired host lost its pairing (spec/xrcp.md §9.3).
    refused_ca: bool,
}

impl Gate {
    fn new(config: Arc<rustls::ServerConfig>, admission: &Admission) -> Gate {
        Gate {
            config,
            hello_start_timeout: admission.hello_start_timeout,
            handshake_timeout: admission.handshake_timeout,
            slots: Slots::new(
                admission.max_handshakes,
                admission.max_handshakes_per_source,
            ),
            aborts: HashMap::new(),
            ids: HashMap::new(),
            tasks: JoinSet::new(),
            next_id: 0,
            refused_ca: false,
        }
    }

    /// Why the wait ended without a host: [`RemoteHostError::HostCaRefused`] if a client
    /// with another CA than the pinned one tried, else a timeout.
    fn nobody_came(&self) -> RemoteHostError {
        if self.refused_ca {
            RemoteHostError::HostCaRefused
        } else {
            RemoteHostError::Timeout(Stage::TlsConnection)
        }
    }

    /// Starts the TLS handshake of a new connection, making room for it if needed.
    async fn admit(&mut self, conn: std::io::Result<(TcpStream, SocketAddr)>) {
        let (tcp, peer) = match conn {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
        };
        self.next_id += 1;
        let id = self.next_id;
        if let Some(old) = self.slots.admit_evicting(id, peer.ip()) {
            if let Some(abort) = self.aborts.remove(&old) {
                tracing::info!("dropped a pending TLS handshake to make room");
                abort.abort();
            }
        }
        // HTTP/2 writes small frames; Nagle would hold them for the peer's ACK.
        let _ = tcp.set_nodelay(true);
        let config = self.config.clone();
        let (first_byte, limit) = (self.hello_start_timeout, self.handshake_timeout);
        let abort = self.tasks.spawn(async move {
            let started = Instant::now();
            // An idle connection goes after a short wait, long before the handshake's deadline.
            let result = match timeout(first_byte, tcp.peek(&mut [0u8; 1])).await {
                Err(_) => Err(RemoteHostError::Timeout(Stage::TlsConnection)),
                Ok(Err(_)) | Ok(Ok(0)) => Err(RemoteHostError::Disconnected),
                Ok(Ok(_)) => match timeout_at(started + limit, tls::accept(tcp, &config)).await {
                    Ok(Ok(done)) => Ok(done),
                    Ok(Err(tls::TlsError::Tls(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer,
                    )))) => Err(RemoteHostError::HostCaRefused),
                    Ok(Err(e)) => Err(RemoteHostError::Protocol(e.into())),
                    Err(_) => Err(RemoteHostError::Timeout(Stage::TlsConnection)),
                },
            };
            (id, peer, result)
        });
        self.ids.insert(abort.id(), id);
        self.aborts.insert(id, abort);
    }

    /// Books a finished handshake task; `None` for one that was dropped to make room (even
    /// if it finished meanwhile) or that failed.
    fn finished(
        &mut self,
        done: Result<(tokio::task::Id, Handshaken), tokio::task::JoinError>,
    ) -> Option<Handshaken> {
        let (task, (id, peer, result)) = match done {
            Ok(h) => h,
            Err(e) => {
                if !e.is_cancelled() {
                    tracing::warn!(error = %e, "handshake task failed");
                }
                if let Some(id) = self.ids.remove(&e.id()) {
                    self.slots.remove(id);
                    self.aborts.remove(&id);
                }
                return None;
            }
        };
        self.ids.remove(&task);
        self.slots.remove(id);
        self.aborts.remove(&id)?;
        if let Err(e) = &result {
            self.refused_ca |= matches!(e, RemoteHostError::HostCaRefused);
            tracing::info!(%peer, error = %e, "TLS handshake failed");
        }
        Some((id, peer, result))
    }
}

/// What [`Slots::admit_kept`] decided for a newcomer.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Taken,
    /// Taken, and this connection lost its place for it.
    Evicting(u64),
    /// No place: close the newcomer.
    Refused,
}

/// Which connections hold a place, by arrival: the policies described at [`Admission`].
#[derive(Debug)]
struct Slots {
    capacity: usize,
    per_source: usize,
    /// (id, source) in arrival order.
    held: VecDeque<(u64, IpAddr)>,
}

impl Slots {
    fn new(capacity: usize, per_source: usize) -> Slots {
        Slots {
            capacity: capacity.max(1),
            per_source: per_source.max(1),
            held: VecDeque::new(),
        }
    }

    fn count(&self, source: IpAddr) -> usize {
        self.held.iter().filter(|(_, s)| *s == source).count()
    }

    /// The source holding the most places, with how many; among equals, the one seen first.
    fn busiest(&self) -> Option<(IpAddr, usize)> {
        let mut busiest: Option<(IpAddr, usize)> = None;
        for (_, s) in &self.held {
            let n = self.count(*s);
            if busiest.is_none_or(|(_, most)| n > most) {
                busiest = Some((*s, n));
            }
        }
        busiest
    }

    fn take_oldest_of(&mut self, source: IpAddr) -> Option<u64> {
        let pos = self.held.iter().position(|(_, s)| *s == source)?;
        self.held.remove(pos).map(|(id, _)| id)
    }

    /// For short-lived places: `id` always gets one; returns the id that lost its place.
    fn admit_evicting(&mut self, id: u64, source: IpAddr) -> Option<u64> {
        let victim = if self.count(source) >= self.per_source {
            Some(source)
        } else if self.held.len() >= self.capacity {
            self.busiest().map(|(s, _)| s)
        } else {
            None
        };
        let evicted = victim.and_then(|v| self.take_oldest_of(v));
        self.held.push_back((id, source));
        evicted
    }

    /// For places held while a person acts: a newcomer never pushes out the connections of
    /// an address that holds no more than one place more than its own.
    fn admit_kept(&mut self, id: u64, source: IpAddr) -> Place {
        let own = self.count(source);
        if own >= self.per_source {
            return Place::Refused;
        }
        if self.held.len() < self.capacity {
            self.held.push_back((id, source));
            return Place::Taken;
        }
        match self.busiest() {
            Some((busiest, most)) if most > own + 1 => {
                let evicted = self.take_oldest_of(busiest);
                self.held.push_back((id, source));
                evicted.map_or(Place::Taken, Place::Evicting)
            }
            _ => Place::Refused,
        }
    }

    fn remove(&mut self, id: u64) {
        self.held.retain(|(held, _)| *held != id);
    }
}

/// TLS is up; the session code is known; the host's HELLO has not arrived yet.
pub struct PendingHello {
    handshake: ControllerHandshake,
    stream: TlsStream<TcpStream>,
    session: TlsSession,
    peer: SocketAddr,
    code: String,
    hello_timeout: Duration,
}

/// A controller session after the HELLO exchange, ready for the session layer.
pub struct Connected {
    /// The TLS stream, with the HELLO exchange done: the session layer runs on it.
    pub stream: TlsStream<TcpStream>,
    /// The session's keys and the host's HELLO data.
    pub keys: ControllerKeys,
    /// The updated pairing; persist it.
    pub pairing: HostPairing,
    /// The session code both sides showed.
    pub session_code: String,
    /// The host's address.
    pub peer: SocketAddr,
    /// Other connections that were past TLS and waiting for their HELLO when this one's
    /// HELLO proved it holds the invitation ([`Listening::connect`]). Normally empty; if one
    /// of them was the user's own host, someone else has the link too.
    pub contested: Vec<SocketAddr>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl PendingHello {
    /// The code to show; the host's user compares it with theirs.
    pub fn session_code(&self) -> &str {
        &self.code
    }

    /// The connection's source address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Waits for the host HELLO and answers it. A host that leaves without a HELLO (its
    /// user rejected the code) is [`RemoteHostError::Disconnected`].
    pub async fn finish(self) -> Result<Connected, RemoteHostError> {
        let PendingHello {
            handshake,
            mut stream,
            session,
            peer,
            code,
            hello_timeout,
        } = self;
        let block = timeout(hello_timeout, read_block_or_close(&mut stream))
            .await
            .map_err(|_| RemoteHostError::Timeout(Stage::HostHello))??
            .ok_or(RemoteHostError::Disconnected)?;
        match handshake.handle_host_hello(
            &block,
            KeyHash(session.peer_ca_fingerprint),
            &session.tls_unique,
        ) {
            Ok(out) => {
                timeout(hello_timeout, write_block(&mut stream, &out.reply))
                    .await
                    .map_err(|_| RemoteHostError::Timeout(Stage::CtrlHello))??;
                Ok(Connected {
                    stream,
                    keys: out.keys,
                    pairing: out.pairing,
                    session_code: code,
                    peer,
                    contested: Vec::new(),
                })
            }
            Err(rejected) => {
                refuse(&mut stream, rejected.reply).await;
                Err(rejected.error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn handshakes_a_source_never_holds_more_than_its_share() {
        let mut slots = Slots::new(8, 3);
        assert_eq!(slots.admit_evicting(1, ip(1)), None);
        assert_eq!(slots.admit_evicting(2, ip(1)), None);
        assert_eq!(slots.admit_evicting(3, ip(1)), None);
        // The fourth from the same address pushes out that address's oldest.
        assert_eq!(slots.admit_evicting(4, ip(1)), Some(1));
        assert_eq!(slots.admit_evicting(5, ip(2)), None);
        assert_eq!(slots.count(ip(1)), 3);
    }

    #[test]
    fn handshakes_a_full_set_evicts_from_the_busiest_source() {
        let mut slots = Slots::new(4, 3);
        assert_eq!(slots.admit_evicting(1, ip(9)), None);
        assert_eq!(slots.admit_evicting(2, ip(1)), None);
        assert_eq!(slots.admit_evicting(3, ip(1)), None);
        assert_eq!(slots.admit_evicting(4, ip(1)), None);
        // Full: the newcomer takes the place of the flooder's oldest, not the first one's.
        assert_eq!(slots.admit_evicting(5, ip(2)), Some(2));
        assert_eq!(slots.admit_evicting(6, ip(3)), Some(3));
        slots.remove(5);
        assert_eq!(slots.admit_evicting(7, ip(6)), None);
    }

    #[test]
    fn waiting_connections_are_not_pushed_out_by_equals() {
        let mut slots = Slots::new(3, 2);
        assert_eq!(slots.admit_kept(1, ip(9)), Place::Taken); // the host, comparing codes
        assert_eq!(slots.admit_kept(2, ip(1)), Place::Taken);
        assert_eq!(slots.admit_kept(3, ip(2)), Place::Taken);
        // Full, and every address holds one place: newcomers are refused, the host stays.
        assert_eq!(slots.admit_kept(4, ip(3)), Place::Refused);
        assert_eq!(slots.admit_kept(5, ip(9)), Place::Refused);
        assert_eq!(slots.count(ip(9)), 1);
        // An address over its share is refused even with room.
        let mut slots = Slots::new(8, 2);
        assert_eq!(slots.admit_kept(1, ip(1)), Place::Taken);
        assert_eq!(slots.admit_kept(2, ip(1)), Place::Taken);
        assert_eq!(slots.admit_kept(3, ip(1)), Place::Refused);
    }

    #[test]
    fn waiting_a_hoarding_address_makes_room_for_another() {
        let mut slots = Slots::new(4, 4);
        for id in 1..=4 {
            assert_eq!(slots.admit_kept(id, ip(1)), Place::Taken);
        }
        // Address 1 holds all four places: a newcomer from address 2 gets one of them.
        assert_eq!(slots.admit_kept(5, ip(2)), Place::Evicting(1));
        assert_eq!(slots.admit_kept(6, ip(2)), Place::Evicting(2));
        // Addresses 1 and 2 hold two each, more than one over a newcomer's none.
        assert_eq!(slots.admit_kept(7, ip(3)), Place::Evicting(3));
        assert_eq!(slots.admit_kept(8, ip(4)), Place::Evicting(5));
        // Every address now holds one place: equals, so the next is refused.
        assert_eq!(slots.admit_kept(9, ip(5)), Place::Refused);
    }

    #[test]
    fn a_far_deadline_does_not_overflow() {
        let _ = deadline_after(Duration::MAX);
    }
}
