//! TLS 1.3 with pinned Ed25519 certificate chains and the tls-unique session binding.
//!
//! XRCP runs its HELLO exchange (and later simplex-chat's HTTP/2) over one mutually
//! authenticated TLS 1.3 connection: the controller (desktop) is the TLS server, the host
//! (mobile) the TLS client (spec/xrcp.md §6). Peers are identified by the SHA-256 of their
//! long-term CA certificate, not by any PKI, and both screens show a session code derived
//! from the *client's* Finished verify_data ("tls-unique", spec/xrcp.md §6.3).
//!
//! Layout, one job per module:
//! - `certs`: reference-shaped certificates ([`TlsIdentity`], [`SessionCredentials`]);
//! - `verify`: the pinning verifier used by both roles ([`Pin`], [`PinnedChainVerifier`]);
//! - `config`: rustls configurations restricted to the reference's parameters;
//! - `capture`: sans-IO recovery of the client Finished from recorded bytes and the
//!   client handshake traffic secret ([`recover_client_finished`]);
//! - `binding`: [`FinishedCapture`], the per-connection key log and flight recording that
//!   feed `capture` from rustls' `read_tls`/`write_tls` bytes (sans-IO), and [`TlsSession`];
//! - `keylog`: the key log inside it;
//! - `recorder`, `stream` (feature `tokio`): the tokio driver (`connect`, `accept`,
//!   `TlsStream`), whose transport wrapper feeds a [`FinishedCapture`].
//!
//! rustls does not expose Finished messages; the capture route (KeyLog + byte recorder +
//! re-decryption of the client's own flight) uses only public rustls 0.23 API and is
//! checked against RFC 8448 and OpenSSL (spec/xrcp.md §6.5).

mod binding;
mod capture;
mod certs;
mod config;
mod keylog;
#[cfg(feature = "tokio")]
mod recorder;
#[cfg(feature = "tokio")]
mod stream;
mod ticket;
mod verify;

use crate::error::RcError;

pub use binding::{FinishedCapture, TlsSession, RECORDING_CAP};
pub use capture::{recover_client_finished, CaptureError, FinishedSuite, RecoveredFinished};
pub use certs::{fingerprint, CaRole, SessionCredentials, TlsIdentity};
pub use config::{client_config, server_config, xrcp_provider};
/// Deviations from XRCP's TLS parameters for tests (HelloRetryRequest, fragmentation, no
/// tickets): only with the feature `test-knobs`, which xrcp's own tests turn on.
#[cfg(feature = "test-knobs")]
pub use config::{client_config_for_testing, server_config_for_testing, TestKnobs};
#[cfg(feature = "tokio")]
pub use stream::{accept, connect, PeerEnd, TlsStream};
pub use verify::{check_chain, ChainError, Pin, PinnedChainVerifier};

/// Why a TLS operation failed.
///
/// Only [`TlsError::CertificateRejected`] has a protocol meaning of its own (`IDENTITY`, wire
/// facts §10); everything else is reported to the peer-facing layers as `EXCEPTION`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer sent an `unknown_ca` alert: it does not accept our CA certificate
    /// (e.g. a controller that paired with a different host identity).
    #[error("peer rejected our certificate (unknown_ca)")]
    CertificateRejected,
    /// The TLS handshake or record layer failed, including our own rejection of the
    /// peer's chain.
    #[error("TLS failure: {0}")]
    Tls(rustls::Error),
    /// The transport failed.
    #[error("TLS transport: {0}")]
    Io(std::io::Error),
    /// The peer closed the connection where data or an alert was expected.
    #[error("connection closed by peer")]
    Closed,
    /// Our own key or certificate material is unusable (caller or storage error, never
    /// caused by the peer).
    #[error("invalid local credentials: {0}")]
    Credentials(String),
    /// The session binding (client Finished) could not be recovered.
    #[error("tls-unique capture failed: {0}")]
    Capture(#[from] CaptureError),
}

impl TlsError {
    #[cfg(feature = "tokio")]
    /// Classifies an error surfaced by tokio-rustls, which wraps rustls errors in
    /// `io::Error`s of kind `InvalidData`.
    pub(crate) fn from_io(err: std::io::Error) -> TlsError {
        let tls = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match tls {
            Some(tls) => TlsError::from(tls),
            None if err.kind() == std::io::ErrorKind::UnexpectedEof => TlsError::Closed,
            None => TlsError::Io(err),
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(err: rustls::Error) -> Self {
        match err {
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA) => {
                TlsError::CertificateRejected
            }
            other => TlsError::Tls(other),
        }
    }
}

/// spec/xrcp.md §6.2 and the error table of §11: a *received* `unknown_ca` alert is
/// `IDENTITY` on either side; our own rejection of the peer's chain, like any other TLS
/// failure, is `EXCEPTION`.
impl From<TlsError> for RcError {
    fn from(err: TlsError) -> Self {
        match err {
            TlsError::CertificateRejected => RcError::Identity,
            other => RcError::Exception(crate::error::ErrorDetail::caused_by(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_unknown_ca_is_identity_everything_else_exception() {
        assert_eq!(
            RcError::from(TlsError::CertificateRejected),
            RcError::Identity
        );

        let other = TlsError::from(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadCertificate,
        ));
        assert!(matches!(RcError::from(other), RcError::Exception(_)));

        let ours = TlsError::from(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(matches!(RcError::from(ours), RcError::Exception(_)));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_rustls_errors_keep_their_kind() {
        let alert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        );
        assert!(matches!(
            TlsError::from_io(alert),
            TlsError::CertificateRejected
        ));
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(TlsError::from_io(eof), TlsError::Closed));
    }
}
