//! rustls configurations restricted to what the reference negotiates (spec/xrcp.md §6.1).
//!
//! The reference offers TLS_CHACHA20_POLY1305_SHA256 only, groups X448 then X25519,
//! signatures Ed448/Ed25519, no resumption, no 0-RTT, no ALPN, and the controller demands a
//! client certificate. Our controller additionally sends one session ticket that cannot be
//! redeemed, as a signal of acceptance (`ticket`). ring has neither X448 nor Ed448, so we offer X25519 and Ed25519; a
//! Haskell client leading with an X448 key share gets a HelloRetryRequest for X25519, which
//! both sides support (and which the tls-unique capture handles).
//!
//! Configs are built once per session and cloned per connection by [`super::connect`] /
//! [`super::accept`], which install their own key log.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::server::NoServerSessionStorage;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig};

use super::certs::SessionCredentials;
use super::ticket::UnredeemableTickets;
use super::verify::{Pin, PinnedChainVerifier};
use super::TlsError;

/// The ring provider cut down to TLS_CHACHA20_POLY1305_SHA256 and X25519.
pub fn xrcp_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
    provider.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    provider
}

/// Client (host) config: presents `credentials`, accepts a server chain matching `pin`.
pub fn client_config(
    credentials: &SessionCredentials,
    pin: Pin,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_for_testing(credentials, pin, TestKnobs::default())
}

/// Server (controller) config: presents `credentials`, requires a client chain matching
/// `pin`.
pub fn server_config(
    credentials: &SessionCredentials,
    pin: Pin,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_for_testing(credentials, pin, TestKnobs::default())
}

/// Deviations from the XRCP parameters, for tests that must provoke a HelloRetryRequest,
/// record fragmentation, or a peer whose key does not match its certificate. Production code
/// uses [`client_config`] / [`server_config`].
#[cfg_attr(not(feature = "test-knobs"), allow(unreachable_pub))]
#[derive(Debug, Default)]
pub struct TestKnobs {
    /// Key exchange groups in preference order instead of X25519 alone. A client listing
    /// another group first sends that key share, so an X25519-only server answers HRR.
    pub kx_groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    /// Maximum TLS record payload (rustls `max_fragment_size`).
    pub max_fragment_size: Option<usize>,
    /// Skip the check that the key matches the leaf certificate.
    pub allow_key_mismatch: bool,
    /// Send no session ticket after accepting the client, like the reference controller, so
    /// the host must wait out its alert peek (see `ticket`).
    pub no_tickets: bool,
}

/// [`client_config`] with [`TestKnobs`] applied.
#[cfg_attr(not(feature = "test-knobs"), allow(unreachable_pub))]
pub fn client_config_for_testing(
    credentials: &SessionCredentials,
    pin: Pin,
    knobs: TestKnobs,
) -> Result<Arc<ClientConfig>, TlsError> {
    let certified = certified_key(credentials, knobs.allow_key_mismatch)?;
    let mut config = ClientConfig::builder_with_provider(provider(&knobs))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedChainVerifier::new(pin)))
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    config.enable_sni = false;
    config.alpn_protocols.clear();
    config.cert_compressors.clear();
    config.cert_decompressors.clear();
    config.max_fragment_size = knobs.max_fragment_size;
    Ok(Arc::new(config))
}

/// [`server_config`] with [`TestKnobs`] applied.
#[cfg_attr(not(feature = "test-knobs"), allow(unreachable_pub))]
pub fn server_config_for_testing(
    credentials: &SessionCredentials,
    pin: Pin,
    knobs: TestKnobs,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certified = certified_key(credentials, knobs.allow_key_mismatch)?;
    let mut config = ServerConfig::builder_with_provider(provider(&knobs))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(PinnedChainVerifier::new(pin)))
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    // One unredeemable ticket tells the host at once that its certificate was accepted.
    if knobs.no_tickets {
        config.send_tls13_tickets = 0;
    } else {
        config.ticketer = Arc::new(UnredeemableTickets);
        config.send_tls13_tickets = 1;
    }
    config.max_early_data_size = 0;
    config.alpn_protocols.clear();
    config.cert_compressors.clear();
    config.cert_decompressors.clear();
    config.max_fragment_size = knobs.max_fragment_size;
    Ok(Arc::new(config))
}

fn provider(knobs: &TestKnobs) -> Arc<CryptoProvider> {
    let mut provider = xrcp_provider();
    if let Some(groups) = &knobs.kx_groups {
        provider.kx_groups = groups.clone();
    }
    Arc::new(provider)
}

fn certified_key(
    credentials: &SessionCredentials,
    allow_key_mismatch: bool,
) -> Result<CertifiedKey, TlsError> {
    if credentials.chain().is_empty() {
        return Err(TlsError::Credentials("empty certificate chain".into()));
    }
    let certified = CertifiedKey::new(credentials.chain().to_vec(), credentials.signing_key()?);
    if !allow_key_mismatch {
        certified
            .keys_match()
            .map_err(|e| TlsError::Credentials(format!("key does not match the leaf: {e}")))?;
    }
    Ok(certified)
}
