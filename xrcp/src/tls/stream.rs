//! The tokio driver: a TLS handshake over any byte stream, returning the stream and the
//! session binding.
//!
//! Each call clones the given config with a fresh [`FinishedCapture`]'s key log, wraps the
//! transport in a recorder that feeds the capture, lets tokio-rustls run the handshake, then recovers the client Finished from the
//! recording (see `capture`). tokio-rustls's `connect` resolves only after the client flight
//! has been flushed and `accept` only after the client Finished has been processed, so the
//! recording is complete when they return.
//!
//! Timeouts are the caller's job (the reference uses 60 s on the controller and 15 s on the
//! host, spec/xrcp.md §6.4): wrap these futures in `tokio::time::timeout`.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::binding::{FinishedCapture, TlsSession};
use super::recorder::Recorder;
use super::ticket::AcceptanceSignal;
use super::TlsError;

/// An established TLS connection (either role) over transport `S`.
///
/// Reads and writes application data; the handshake recorder underneath has stopped
/// recording and only forwards.
pub struct TlsStream<S> {
    inner: tokio_rustls::TlsStream<Recorder<S>>,
    /// Application data read by [`TlsStream::peek_alert`], served before new reads.
    peeked: Vec<u8>,
    /// Client side: learns when the server sent a session ticket (`ticket`).
    acceptance: Option<Arc<AcceptanceSignal>>,
    /// How the peer's side of the stream ended, if it has.
    end: PeerEnd,
}

/// How the peer ended its side of a [`TlsStream`], readable after the stream itself has been
/// handed to another layer (HTTP/2 reports both kinds of end alike).
///
/// A peer that closes on purpose sends TLS `close_notify` first (RFC 8446 §6.1); a transport
/// that ends without it was cut — by the network, a crash, or an attacker.
#[derive(Clone, Debug, Default)]
pub struct PeerEnd(Arc<AtomicU8>);

const END_OPEN: u8 = 0;
const END_CLOSE_NOTIFY: u8 = 1;
const END_TRUNCATED: u8 = 2;

impl PeerEnd {
    /// The transport ended without `close_notify`.
    pub fn truncated(&self) -> bool {
        self.0.load(Ordering::Acquire) == END_TRUNCATED
    }

    /// The peer sent `close_notify`.
    pub fn closed_cleanly(&self) -> bool {
        self.0.load(Ordering::Acquire) == END_CLOSE_NOTIFY
    }

    fn record(&self, state: u8) {
        let _ = self
            .0
            .compare_exchange(END_OPEN, state, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

/// Runs the client (host) side of the handshake over `io`.
///
/// In TLS 1.3 the server judges the client certificate only after the client has finished,
/// so success here does **not** mean the server accepted us: a rejection arrives as an alert
/// on the first read. Call [`TlsStream::peek_alert`] before relying on the session (the
/// reference host waits 100 ms, spec/xrcp.md §6.4); a first-read error of
/// [`TlsError::CertificateRejected`] maps to `IDENTITY`.
pub async fn connect<S>(
    io: S,
    config: &Arc<ClientConfig>,
) -> Result<(TlsStream<S>, TlsSession), TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let acceptance = Arc::new(AcceptanceSignal::default());
    let (capture, mut config) = FinishedCapture::client(config);
    config.resumption =
        Resumption::store(acceptance.clone()).tls12_resumption(Tls12Resumption::Disabled);
    // The verifier ignores names and rustls sends no SNI for an IP address; the reference
    // controller ignores SNI anyway (spec/xrcp.md §6.1).
    let server_name = ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, Recorder::new(io, capture))
        .await
        .map_err(TlsError::from_io)?;
    let (recorder, connection) = tls.get_mut();
    let session = recorder.capture.finish(connection)?;
    let mut stream = TlsStream::new(tokio_rustls::TlsStream::Client(tls));
    stream.acceptance = Some(acceptance);
    Ok((stream, session))
}

/// Runs the server (controller) side of the handshake over `io`.
pub async fn accept<S>(
    io: S,
    config: &Arc<ServerConfig>,
) -> Result<(TlsStream<S>, TlsSession), TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (capture, config) = FinishedCapture::server(config);
    let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(config))
        .accept(Recorder::new(io, capture))
        .await
        .map_err(TlsError::from_io)?;
    let (recorder, connection) = tls.get_mut();
    let session = recorder.capture.finish(connection)?;
    Ok((
        TlsStream::new(tokio_rustls::TlsStream::Server(tls)),
        session,
    ))
}

impl<S> TlsStream<S> {
    fn new(inner: tokio_rustls::TlsStream<Recorder<S>>) -> TlsStream<S> {
        TlsStream {
            inner,
            peeked: Vec::new(),
            acceptance: None,
            end: PeerEnd::default(),
        }
    }

    /// A handle that tells, later, how the peer ended the stream.
    pub fn peer_end(&self) -> PeerEnd {
        self.end.clone()
    }

    /// The underlying transport (e.g. for `peer_addr`).
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().0.get_ref()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Waits up to `wait` for the peer's verdict on our certificate.
    ///
    /// Returns `Ok(())` as soon as the server sent a session ticket (it accepted us, see
    /// `ticket`), if nothing arrived in time, or if application data arrived (it is kept and
    /// returned by later reads); [`TlsError::CertificateRejected`] if the peer sent
    /// `unknown_ca`; another error if the connection failed or closed. Without a ticket this is
    /// the reference host's post-handshake 100 ms peek (spec/xrcp.md §6.4).
    pub async fn peek_alert(&mut self, wait: Duration) -> Result<(), TlsError> {
        if !self.peeked.is_empty() {
            return Ok(());
        }
        let acceptance = self.acceptance.clone();
        let accepted = async {
            match &acceptance {
                Some(signal) => signal.wait().await,
                None => std::future::pending().await,
            }
        };
        let mut chunk = vec![0u8; 4096];
        // `read` is cancel-safe: if the timer or the ticket comes first, no application data
        // has been consumed (the ticket itself is handled inside rustls).
        tokio::select! {
            biased;
            read = self.inner.read(&mut chunk) => match read {
                Ok(0) => Err(TlsError::Closed),
                Ok(n) => {
                    chunk.truncate(n);
                    self.peeked = chunk;
                    Ok(())
                }
                Err(e) => Err(TlsError::from_io(e)),
            },
            () = accepted => Ok(()),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }

    /// Whether the server has signalled that it accepted our certificate (client side;
    /// always `false` on the server side and with a peer that sends no ticket).
    pub fn peer_accepted(&self) -> bool {
        self.acceptance.as_ref().is_some_and(|a| a.accepted())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.peeked.is_empty() {
            let n = this.peeked.len().min(buf.remaining());
            buf.put_slice(&this.peeked[..n]);
            this.peeked.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                this.end.record(END_CLOSE_NOTIFY)
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                this.end.record(END_TRUNCATED)
            }
            _ => {}
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
