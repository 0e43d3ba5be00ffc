//! The controller's handshake over tokio (spec/xrcp.md §6–§8): bind, show the invitation,
//! accept exactly one TLS connection, show the session code, take the host HELLO, answer.
//!
//! The protocol decisions live in [`xrcp::handshake::ControllerHandshake`]; this module only
//! moves bytes and enforces the reference's timeouts (60 s for the TLS connection, 60 s for
//! the HELLO).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use xrcp::crypto::KeyHash;
use xrcp::handshake::io::{read_block_or_close, write_block};
use xrcp::handshake::{ControllerHandshake, ControllerKeys};
use xrcp::message::SignedInvitation;
use xrcp::pairing::HostPairing;
use xrcp::session_code::session_code;
use xrcp::tls::{self, TlsSession, TlsStream};
use xrcp::RcError;

use crate::address::{choose, local_addresses, AddressPreference, LocalAddress};
use crate::error::{RemoteHostError, Stage};

/// At most this many TLS handshakes run at once while waiting for the host; further
/// connections are closed at once so a flood cannot exhaust the controller.
const MAX_PENDING_HANDSHAKES: usize = 16;

/// How to start a controller session.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// The controller's app info, sent in the invitation.
    pub app: Value,
    /// `addr=` / `iface=`: which local address to advertise.
    pub address: AddressPreference,
    /// The port to listen on; 0 lets the OS choose.
    pub port: u16,
    /// The address the listener binds. The reference binds the wildcard; binding loopback
    /// suits an SSH tunnel.
    pub bind: Ipv4Addr,
    /// Candidate addresses to advertise; `None` reads the machine's interfaces.
    pub candidates: Option<Vec<LocalAddress>>,
    pub tls_timeout: Duration,
    pub hello_timeout: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            app: Value::Null,
            address: AddressPreference::default(),
            port: 0,
            bind: Ipv4Addr::UNSPECIFIED,
            candidates: None,
            tls_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(60),
        }
    }
}

/// A session listening for its host.
pub struct Listening {
    handshake: ControllerHandshake,
    listener: TcpListener,
    advertised: LocalAddress,
    port: u16,
    other_addresses: Vec<LocalAddress>,
    options: ControllerOptions,
}

/// Binds the listener and makes the signed invitation for the chosen address.
pub async fn start(
    pairing: HostPairing,
    options: ControllerOptions,
) -> Result<Listening, RemoteHostError> {
    let candidates = options.candidates.clone().unwrap_or_else(local_addresses);
    let (advertised, other_addresses) = choose(&options.address, candidates)?;
    let listener = TcpListener::bind(SocketAddrV4::new(options.bind, options.port))
        .await
        .map_err(|_| RcError::TlsStartFailed)?;
    let port = listener
        .local_addr()
        .map_err(|_| RcError::TlsStartFailed)?
        .port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let handshake =
        ControllerHandshake::new(pairing, advertised.address, port, options.app.clone(), now)?;
    Ok(Listening {
        handshake,
        listener,
        advertised,
        port,
        other_addresses,
        options,
    })
}

impl Listening {
    pub fn invitation(&self) -> &SignedInvitation {
        self.handshake.invitation()
    }

    /// The `xrcp:/` link to show.
    pub fn link(&self) -> String {
        self.handshake.invitation().to_uri()
    }

    /// The address and port in the invitation.
    pub fn advertised(&self) -> (&LocalAddress, u16) {
        (&self.advertised, self.port)
    }

    /// Other usable local addresses (shown to the user, as the reference does).
    pub fn other_addresses(&self) -> &[LocalAddress] {
        &self.other_addresses
    }

    /// A fresh encrypted announcement datagram (known hosts only, else `NEW_CONTROLLER`).
    pub fn announcement(&self) -> Result<Vec<u8>, RcError> {
        self.handshake.announcement()
    }

    /// Waits for the first TLS connection that completes a handshake with an acceptable
    /// host certificate. Other connections are dropped, and once this returns the listener
    /// is closed, so later attempts are refused.
    pub async fn accept(self) -> Result<PendingHello, RemoteHostError> {
        let config = tls::server_config(self.handshake.credentials(), self.handshake.tls_pin())
            .map_err(RcError::from)?;
        let listener = self.listener;
        let first = timeout(self.options.tls_timeout, first_handshake(&listener, config))
            .await
            .map_err(|_| RemoteHostError::Timeout(Stage::TlsConnection))??;
        drop(listener);
        let (stream, session, peer) = first;
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
}

type Accepted = (TlsStream<TcpStream>, TlsSession, SocketAddr);
type Handshaking = (
    SocketAddr,
    Result<(TlsStream<TcpStream>, TlsSession), tls::TlsError>,
);

async fn first_handshake(
    listener: &TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> Result<Accepted, RemoteHostError> {
    let mut pending: JoinSet<Handshaking> = JoinSet::new();
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((tcp, peer)) if pending.len() < MAX_PENDING_HANDSHAKES => {
                    // HTTP/2 writes small frames; Nagle would hold them for the peer's ACK.
                    let _ = tcp.set_nodelay(true);
                    let config = config.clone();
                    pending.spawn(async move { (peer, tls::accept(tcp, &config).await) });
                }
                Ok((_tcp, peer)) => tracing::warn!(%peer, "too many pending handshakes; dropped"),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = pending.join_next(), if !pending.is_empty() => match done {
                Ok((peer, Ok((stream, session)))) => return Ok((stream, session, peer)),
                Ok((peer, Err(e))) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                Err(e) => tracing::warn!(error = %e, "handshake task failed"),
            },
        }
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
    pub stream: TlsStream<TcpStream>,
    pub keys: ControllerKeys,
    /// The updated pairing; persist it.
    pub pairing: HostPairing,
    pub session_code: String,
    pub peer: SocketAddr,
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
                })
            }
            Err(rejected) => {
                if let Some(reply) = rejected.reply {
                    let _ = timeout(Duration::from_secs(5), write_block(&mut stream, &reply)).await;
                }
                let _ = timeout(
                    Duration::from_secs(1),
                    tokio::io::AsyncWriteExt::shutdown(&mut stream),
                )
                .await;
                Err(rejected.error.into())
            }
        }
    }
}
