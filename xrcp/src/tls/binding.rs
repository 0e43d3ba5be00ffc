//! The session binding of one TLS connection, fed from rustls' own byte interface.
//!
//! [`FinishedCapture`] is everything the client-Finished recovery (`capture`) needs from a
//! live connection: the key log that receives `CLIENT_HANDSHAKE_TRAFFIC_SECRET` and a copy of
//! the client's flight — what the client writes, or what the server reads (spec/xrcp.md §5.4).
//! It does no I/O: the caller hands it the bytes rustls' `write_tls` produced (client) or the
//! bytes given to `read_tls` (server), directly or through [`FinishedCapture::tap_write`] /
//! [`FinishedCapture::tap_read`], and asks for the [`TlsSession`] once the handshake is done.
//! The tokio driver (`stream`, feature `tokio`) is one such caller.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::{ClientConfig, CommonState, ServerConfig};
use zeroize::Zeroizing;

use super::capture::{recover_client_finished, CaptureError, FinishedSuite};
use super::certs::fingerprint;
use super::keylog::HandshakeSecretLog;
use super::TlsError;

/// Enough for any client flight with a two-certificate Ed25519 chain (about 1 KiB observed)
/// plus a first application record that may arrive in the same read; beyond it we keep the
/// prefix, and a flight whose Finished lies past it fails to parse.
pub const RECORDING_CAP: usize = 64 * 1024;

/// What a completed handshake established.
#[derive(Clone)]
pub struct TlsSession {
    /// The client's Finished verify_data (32 bytes with XRCP's suite): the session code
    /// both screens show, and the binding the HELLOs are tied to (spec/xrcp.md §5.4).
    pub tls_unique: Zeroizing<Vec<u8>>,
    /// SHA-256 of the CA certificate the peer presented (already checked against the pin).
    pub peer_ca_fingerprint: [u8; 32],
    /// Whether the server answered the first ClientHello with a HelloRetryRequest (e.g. a
    /// Haskell client leading with an X448 key share).
    pub hello_retried: bool,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("hello_retried", &self.hello_retried)
            .finish_non_exhaustive()
    }
}

/// Which bytes carry the client's flight on this side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// TLS client: the bytes it writes.
    Client,
    /// TLS server: the bytes it reads.
    Server,
}

/// Records one connection's client flight and handshake secret, for [`TlsSession`].
///
/// Use: [`FinishedCapture::client`] / [`FinishedCapture::server`] with the configuration the
/// connection will be built from (it installs its key log in a copy and returns the capture
/// with that copy), build the rustls connection from the returned configuration, feed the
/// bytes, and call [`FinishedCapture::finish`] after the handshake. Recording stops
/// for good at `finish`; bytes fed later are ignored.
pub struct FinishedCapture {
    side: Side,
    key_log: Arc<HandshakeSecretLog>,
    flight: Option<Vec<u8>>,
}

impl fmt::Debug for FinishedCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishedCapture")
            .field("side", &self.side)
            .field("recorded", &self.flight.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl FinishedCapture {
    fn new(side: Side) -> FinishedCapture {
        FinishedCapture {
            side,
            key_log: Arc::new(HandshakeSecretLog::default()),
            flight: Some(Vec::new()),
        }
    }

    /// A capture for a TLS client (the host) and the configuration its connection must use:
    /// `config` with this capture's key log.
    pub fn client(config: &ClientConfig) -> (FinishedCapture, ClientConfig) {
        let capture = FinishedCapture::new(Side::Client);
        let mut config = config.clone();
        config.key_log = capture.key_log.clone();
        (capture, config)
    }

    /// A capture for a TLS server (the controller) and the configuration its connection must
    /// use: `config` with this capture's key log.
    pub fn server(config: &ServerConfig) -> (FinishedCapture, ServerConfig) {
        let capture = FinishedCapture::new(Side::Server);
        let mut config = config.clone();
        config.key_log = capture.key_log.clone();
        (capture, config)
    }

    /// Bytes rustls wrote to the transport (`write_tls`); kept on the client side.
    pub fn outgoing(&mut self, bytes: &[u8]) {
        if self.side == Side::Client {
            self.record(bytes);
        }
    }

    /// Bytes read from the transport and handed to rustls (`read_tls`); kept on the server
    /// side.
    pub fn incoming(&mut self, bytes: &[u8]) {
        if self.side == Side::Server {
            self.record(bytes);
        }
    }

    /// Whether bytes are still being recorded (`finish` not yet called).
    pub fn is_recording(&self) -> bool {
        self.flight.is_some()
    }

    fn record(&mut self, bytes: &[u8]) {
        if let Some(buf) = &mut self.flight {
            let room = RECORDING_CAP.saturating_sub(buf.len());
            buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// A writer for `write_tls` that records what passes through into `out`.
    pub fn tap_write<'a, W: io::Write>(&'a mut self, out: &'a mut W) -> impl io::Write + 'a {
        Tap {
            capture: self,
            inner: out,
        }
    }

    /// A reader for `read_tls` that records what passes through from `input`.
    pub fn tap_read<'a, R: io::Read>(&'a mut self, input: &'a mut R) -> impl io::Read + 'a {
        Tap {
            capture: self,
            inner: input,
        }
    }

    /// Stops recording and recovers the binding from what was recorded and the connection's
    /// state (negotiated suite, peer chain). Call once the handshake is complete: on the
    /// client after its flight was written, on the server after its Finished was processed.
    pub fn finish(&mut self, state: &CommonState) -> Result<TlsSession, TlsError> {
        let flight = self.flight.take().unwrap_or_default();
        let logged = self.key_log.take().ok_or(CaptureError::NoSecret)?;
        let negotiated = state
            .negotiated_cipher_suite()
            .ok_or(CaptureError::UnsupportedSuite("(none negotiated)".into()))?
            .suite();
        let suite = FinishedSuite::from_rustls(negotiated).ok_or_else(|| {
            CaptureError::UnsupportedSuite(
                negotiated
                    .as_str()
                    .map_or_else(|| format!("0x{:04x}", u16::from(negotiated)), str::to_owned),
            )
        })?;
        let recovered =
            recover_client_finished(&flight, &logged.client_random, &logged.secret, suite)?;
        let peer_ca_fingerprint = match state.peer_certificates() {
            Some([_leaf, ca]) => fingerprint(ca),
            _ => {
                return Err(TlsError::Tls(rustls::Error::General(
                    "peer chain is not [leaf, ca]".into(),
                )))
            }
        };
        Ok(TlsSession {
            tls_unique: recovered.verify_data,
            peer_ca_fingerprint,
            hello_retried: recovered.client_hellos > 1,
        })
    }
}

/// [`FinishedCapture::tap_write`] / [`FinishedCapture::tap_read`].
struct Tap<'a, T> {
    capture: &'a mut FinishedCapture,
    inner: &'a mut T,
}

impl<W: io::Write> io::Write for Tap<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.capture.outgoing(&buf[..n.min(buf.len())]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        let mut left = n;
        for slice in bufs {
            if left == 0 {
                break;
            }
            let k = slice.len().min(left);
            self.capture.outgoing(&slice[..k]);
            left -= k;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: io::Read> io::Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.capture.incoming(&buf[..n.min(buf.len())]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn server_capture() -> FinishedCapture {
        FinishedCapture::new(Side::Server)
    }

    #[test]
    fn each_side_keeps_one_direction_until_finished() {
        let mut client = FinishedCapture::new(Side::Client);
        let mut sink = Vec::new();
        client.tap_write(&mut sink).write_all(b"hello").unwrap();
        let slices = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        let n = client.tap_write(&mut sink).write_vectored(&slices).unwrap();
        client.incoming(b"ignored");
        assert_eq!(client.flight.as_deref(), Some(&b"helloabcd"[..5 + n]));
        assert_eq!(sink, &b"helloabcd"[..5 + n]);

        let mut server = server_capture();
        let mut got = Vec::new();
        server
            .tap_read(&mut &b"client flight"[..])
            .read_to_end(&mut got)
            .unwrap();
        server.outgoing(b"ignored");
        assert_eq!(server.flight.as_deref(), Some(&b"client flight"[..]));
        assert_eq!(got, b"client flight");
    }

    #[test]
    fn recording_is_capped() {
        let mut server = server_capture();
        let data = vec![7u8; RECORDING_CAP + 100];
        let mut out = Vec::new();
        server
            .tap_read(&mut &data[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), data.len());
        assert_eq!(server.flight.as_ref().map(Vec::len), Some(RECORDING_CAP));
    }
}
