//! The host's handshake over tokio (spec/xrcp.md §6–§8): verify the invitation, dial the
//! controller, hand the session code to the user, and — only once the user confirmed it —
//! exchange HELLOs. Every network step is bounded by the reference's 15 s. The sntrup761 key
//! pair is made on a blocking thread meanwhile; the HELLO waits for it.
//!
//! The protocol decisions live in [`xrcp::handshake::HostHandshake`]; this module moves bytes.

use std::future::Future;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use xrcp::crypto::KemKeyPair;
use xrcp::handshake::io::read_block_or_close;
use xrcp::handshake::{AwaitingKem, HostHandshake, HostKeys};
use xrcp::message::{SignedInvitation, TransportHost, BLOCK_SIZE};
use xrcp::pairing::CtrlPairing;
use xrcp::session_code::{same_session_code, session_code};
use xrcp::tls::{self, TlsError, TlsSession, TlsStream};
use xrcp::{ErrorDetail, RcError};

use crate::error::{RemoteCtrlError, Stage};

/// How long the host waits after its TLS handshake for the controller to object to its
/// certificate (the reference's post-handshake peek).
pub const ALERT_PEEK: Duration = Duration::from_millis(100);

/// How many wrong session codes a person may type before the host gives up on the
/// connection ([`crate::PendingSession::check_code`]).
pub const CODE_TRIES: u32 = 3;

/// How to connect to a controller.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// The host's app info, sent in its HELLO.
    pub app: Value,
    /// Dial this address instead of the invitation's (an SSH tunnel, say). Every identity
    /// check of the invitation still applies.
    pub connect_via: Option<SocketAddr>,
    /// Bound on each network step.
    pub step_timeout: Duration,
    /// How long to wait after TLS for a rejection of our certificate ([`ALERT_PEEK`]).
    pub alert_peek: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            app: Value::Null,
            connect_via: None,
            step_timeout: Duration::from_secs(15),
            alert_peek: ALERT_PEEK,
        }
    }
}

/// Verifies `invitation` against `pairing` (the stored pairing of this controller, if any),
/// connects and completes TLS. The result waits for the user's verdict on the session code.
pub async fn connect(
    invitation: SignedInvitation,
    pairing: Option<CtrlPairing>,
    options: HostOptions,
) -> Result<PendingConfirmation, RemoteCtrlError> {
    // The KEM key pair is the slowest part of the handshake and first needed for the HELLO,
    // after the user compared the codes: make it meanwhile.
    let kem = tokio::task::spawn_blocking(KemKeyPair::generate);
    let handshake = HostHandshake::without_kem(invitation, pairing)?;
    let inv = &handshake.invitation().invitation;
    let config =
        tls::client_config(handshake.credentials(), handshake.tls_pin()).map_err(RcError::from)?;
    let step = options.step_timeout;

    let tcp = match options.connect_via {
        Some(via) => dial_one(via, step).await?,
        None => dial(&inv.host, inv.port, step).await?,
    };
    let peer = tcp
        .peer_addr()
        .map_err(|e| RcError::Exception(ErrorDetail::with_source(format!("connection lost: {e}"), e)))?;
    let _ = tcp.set_nodelay(true);
    let (mut stream, session) = timeout(step, tls::connect(tcp, &config))
        .await
        .map_err(|_| RemoteCtrlError::Timeout(Stage::Tls))?
        .map_err(tls_error)?;
    // In TLS 1.3 the controller judges our certificate after we finished; a known
    // controller paired with another host answers `unknown_ca` here.
    stream
        .peek_alert(options.alert_peek)
        .await
        .map_err(|e| match e {
            TlsError::CertificateRejected => RemoteCtrlError::Protocol(RcError::Identity),
            other => RemoteCtrlError::Protocol(other.into()),
        })?;
    let code = session_code(&session.tls_unique);
    Ok(PendingConfirmation {
        handshake,
        kem,
        stream,
        session,
        code,
        peer,
        options,
        early: Vec::new(),
        tries_left: CODE_TRIES,
    })
}

/// Most addresses of one name that are tried: a hostile resolver answer cannot make the
/// host spend more than this many connection attempts (each within the step timeout).
pub const MAX_DIAL_ADDRESSES: usize = 8;

/// Dials the invitation's host: an IPv4 address directly; a domain name through the
/// system's resolver, trying each address it gives in order until one answers, as the
/// reference host does (spec/xrcp.md §4.3). The whole step is bounded by `step`.
async fn dial(
    host: &TransportHost,
    port: u16,
    step: Duration,
) -> Result<TcpStream, RemoteCtrlError> {
    let name = match host {
        TransportHost::Ipv4(ip) => return dial_one(SocketAddr::from((*ip, port)), step).await,
        TransportHost::Onion(_) => {
            return Err(RcError::Exception(
                format!("{host} is a Tor onion address, which this host cannot reach").into(),
            )
            .into())
        }
        TransportHost::Domain(name) => name,
    };
    let deadline = tokio::time::Instant::now() + step;
    let resolved =
        tokio::time::timeout_at(deadline, tokio::net::lookup_host((name.as_str(), port)))
            .await
            .map_err(|_| RemoteCtrlError::Timeout(Stage::Connect))?
            .map_err(|source| RemoteCtrlError::Resolve {
                name: name.clone(),
                source,
            })?;
    let mut last_error = None;
    for addr in resolved.take(MAX_DIAL_ADDRESSES) {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                tracing::info!(%name, %addr, "connected");
                return Ok(tcp);
            }
            Ok(Err(e)) => {
                tracing::info!(%name, %addr, error = %e, "address did not answer");
                last_error = Some(RemoteCtrlError::Dial { addr, source: e });
            }
            Err(_) => return Err(RemoteCtrlError::Timeout(Stage::Connect)),
        }
    }
    Err(last_error
        .unwrap_or_else(|| RcError::Exception(format!("{name} resolves to no address").into()).into()))
}

async fn dial_one(addr: SocketAddr, step: Duration) -> Result<TcpStream, RemoteCtrlError> {
    timeout(step, TcpStream::connect(addr))
        .await
        .map_err(|_| RemoteCtrlError::Timeout(Stage::Connect))?
        .map_err(|source| RemoteCtrlError::Dial { addr, source })
}

/// A controller whose CA is not the invitation's is an identity failure. The reference
/// reports its own rejection of the chain as `EXCEPTION`; we say `IDENTITY`, which is what it
/// is, so users see "this is not the controller of the link" (spec/xrcp.md §13).
fn tls_error(e: TlsError) -> RcError {
    match e {
        TlsError::Tls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )) => RcError::Identity,
        other => other.into(),
    }
}

/// TLS is up and the session code is known; nothing of the XRCP handshake was sent yet.
pub struct PendingConfirmation {
    handshake: HostHandshake<AwaitingKem>,
    kem: JoinHandle<KemKeyPair>,
    stream: TlsStream<TcpStream>,
    session: TlsSession,
    code: String,
    /// The address the TCP connection went to.
    peer: SocketAddr,
    options: HostOptions,
    /// Bytes the controller sent before our HELLO (it should send none: its HELLO answers
    /// ours), read while watching for its leaving; served first when its HELLO is read.
    early: Vec<u8>,
    /// Wrong codes the person may still type.
    tries_left: u32,
}

/// What a typed session code means for the connection ([`crate::PendingSession::check_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The codes match: [`crate::PendingSession::confirm`].
    Matches,
    /// Nothing was typed: ask again (this costs no try).
    Empty,
    /// Another code: ask again; `tries_left` more wrong codes are allowed.
    Mismatch {
        /// Wrong codes still allowed.
        tries_left: u32,
    },
    /// The last try was wrong: [`crate::PendingSession::reject`].
    NoTriesLeft,
}

/// A host session after the HELLO exchange, ready for the session layer.
pub struct Connected {
    /// The TLS stream, with the HELLO exchange done: the session layer runs on it.
    pub stream: TlsStream<TcpStream>,
    /// The session's keys and the controller's HELLO data.
    pub keys: HostKeys,
    /// The updated pairing (new DH key, previous kept); persist it.
    pub pairing: CtrlPairing,
    /// The session code both sides showed.
    pub session_code: String,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected").finish_non_exhaustive()
    }
}

impl PendingConfirmation {
    /// The code to compare with the one the controller shows.
    pub fn session_code(&self) -> &str {
        &self.code
    }

    /// The verified invitation this connection is for.
    pub fn invitation(&self) -> &SignedInvitation {
        self.handshake.invitation()
    }

    /// The address the connection went to (the invitation's, one its name resolved to, or
    /// the `connect_via` address).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Compares a code the person typed with ours, counting wrong ones: a slip of the finger
    /// asks again instead of ending the connection, [`CODE_TRIES`] times. Nothing is sent.
    pub fn check_code(&mut self, typed: &str) -> CodeCheck {
        if typed.trim().is_empty() {
            CodeCheck::Empty
        } else if same_session_code(&self.code, typed) {
            CodeCheck::Matches
        } else {
            self.tries_left = self.tries_left.saturating_sub(1);
            match self.tries_left {
                0 => CodeCheck::NoTriesLeft,
                tries_left => CodeCheck::Mismatch { tries_left },
            }
        }
    }

    /// Completes when the controller closes the connection before our HELLO: it stopped
    /// waiting (its link expired, or its user stopped it), and the code is no use any more.
    /// Returns [`RemoteCtrlError::ControllerStoppedWaiting`], or the protocol error when the
    /// controller sends more than a HELLO's worth before ours. Cancel-safe: race it with the
    /// person's typing.
    pub async fn controller_left(&mut self) -> RemoteCtrlError {
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return RemoteCtrlError::ControllerStoppedWaiting,
                Ok(n) if self.early.len() + n > BLOCK_SIZE => {
                    return RemoteCtrlError::Protocol(RcError::BlockSize)
                }
                Ok(n) => self.early.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the controller already closed the connection (without waiting).
    ///
    /// Polls [`Self::controller_left`] once instead of racing it with a zero timeout: tokio
    /// rounds every deadline up to its next millisecond tick, so `timeout(ZERO, …)` waited up
    /// to 1 ms on every confirmation (a third of a scripted connect on loopback).
    async fn controller_gone(&mut self) -> Option<RemoteCtrlError> {
        poll_once(self.controller_left()).await
    }

    /// The user typed the controller's code: continue if it matches ours, else end the
    /// connection without sending a HELLO ([`RemoteCtrlError::BadVerificationCode`]).
    pub async fn verify(self, typed: &str) -> Result<Connected, RemoteCtrlError> {
        if same_session_code(&self.code, typed) {
            self.confirm().await
        } else {
            self.reject().await;
            Err(RemoteCtrlError::BadVerificationCode)
        }
    }

    /// The user rejected the code: close cleanly, sending nothing of XRCP.
    pub async fn reject(mut self) {
        let _ = timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }

    /// The user confirmed the code: send the HELLO and process the controller's answer. A
    /// controller that stopped waiting meanwhile gives
    /// [`RemoteCtrlError::ControllerStoppedWaiting`].
    pub async fn confirm(mut self) -> Result<Connected, RemoteCtrlError> {
        if let Some(e) = self.controller_gone().await {
            return Err(e);
        }
        let PendingConfirmation {
            handshake,
            kem,
            mut stream,
            session,
            code,
            options,
            early,
            ..
        } = self;
        let step = options.step_timeout;
        let kem = kem
            .await
            .map_err(|e| RcError::Internal(format!("KEM key generation: {e}")))?;
        let handshake = handshake.with_kem(kem);
        let hello = handshake.hello_block(options.app)?;
        // Written here rather than with `write_block` to tell a closed connection (the
        // controller gave up just now) from other failures.
        let write = async {
            stream.write_all(&hello).await?;
            stream.flush().await
        };
        match timeout(step, write).await {
            Err(_) => return Err(RemoteCtrlError::Timeout(Stage::HostHello)),
            Ok(Err(e)) if closed(&e) => return Err(RemoteCtrlError::ControllerStoppedWaiting),
            Ok(Err(e)) => return Err(RcError::Exception(e.into()).into()),
            Ok(Ok(())) => {}
        }
        let read = async {
            let mut chained = (&early[..]).chain(&mut stream);
            read_block_or_close(&mut chained).await
        };
        let reply = match timeout(step, read).await {
            Err(_) => return Err(RemoteCtrlError::Timeout(Stage::CtrlHello)),
            Ok(Ok(Some(block))) => block,
            Ok(Ok(None)) => return Err(RemoteCtrlError::ControllerStoppedWaiting),
            Ok(Err(e)) => return Err(e.into()),
        };
        let (keys, pairing) = handshake.handle_ctrl_hello(&reply, &session.tls_unique)?;
        Ok(Connected {
            stream,
            keys,
            pairing,
            session_code: code,
        })
    }
}

/// `Some` with the output if `fut` is ready at its first poll, else `None` (dropping it): "has it
/// happened yet?" without a timer.
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// An error that means the peer closed or reset the connection.
fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `poll_once` needs no timer: on a runtime without one, a `timeout(ZERO, …)` (what
    /// `controller_gone` used, and which waited for the next millisecond tick) panics.
    #[test]
    fn poll_once_answers_at_once_without_a_timer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            assert_eq!(poll_once(std::future::ready(7)).await, Some(7));
            assert_eq!(poll_once(std::future::pending::<u8>()).await, None);
            let (mut a, _b) = tokio::io::duplex(64);
            let mut byte = [0u8; 1];
            assert!(poll_once(a.read(&mut byte)).await.is_none());
        });
    }
}
