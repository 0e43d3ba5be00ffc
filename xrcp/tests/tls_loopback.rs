//! rustls ↔ rustls over 127.0.0.1: both ends must derive the same tls-unique, with
//! reference-shaped certificates, after a HelloRetryRequest and with a fragmented flight; and
//! every malformed or mispinned chain must be refused with the right error kind.

#[path = "interop/tls_support.rs"]
mod support;

use std::time::Duration;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::CertificateError;
use support::{loopback, test_ca, test_leaf, unix_now, Side, Tapped, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::prelude::*;
use xrcp::tls::{
    accept, check_chain, client_config, client_config_for_testing, connect, server_config,
    server_config_for_testing, CaRole, ChainError, Pin, SessionCredentials, TestKnobs, TlsError,
    TlsIdentity,
};
use xrcp::RcError;
use zeroize::Zeroizing;

const HOUR: i64 = 3600;
const FAR_HOURS: i64 = 23_999_976;

struct Pair {
    controller: TlsIdentity,
    host: TlsIdentity,
}

fn pair() -> Pair {
    Pair {
        controller: TlsIdentity::generate(CaRole::Controller).unwrap(),
        host: TlsIdentity::generate(CaRole::Host).unwrap(),
    }
}

impl Pair {
    /// The host's client config, pinning this pair's controller.
    fn host_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        client_config(
            &self.host.session_credentials().unwrap(),
            Pin::Fingerprint(self.controller.fingerprint()),
        )
        .unwrap()
    }
}

fn ok(
    side: Side,
) -> (
    xrcp::tls::TlsStream<tokio::net::TcpStream>,
    xrcp::tls::TlsSession,
) {
    side.unwrap_or_else(|e| panic!("handshake failed: {e}"))
}

/// The rustls certificate error behind a handshake failure.
fn cert_error(side: Side) -> CertificateError {
    match side {
        Err(TlsError::Tls(rustls::Error::InvalidCertificate(e))) => e,
        Err(other) => panic!("expected a certificate error, got {other}"),
        Ok(_) => panic!("expected a certificate error, handshake succeeded"),
    }
}

fn chain_error(side: Side) -> ChainError {
    match cert_error(side) {
        CertificateError::Other(other) => other
            .0
            .downcast_ref::<ChainError>()
            .cloned()
            .expect("a ChainError"),
        e => panic!("expected CertificateError::Other, got {e:?}"),
    }
}

fn unix_time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs as u64))
}

fn certificate(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn assert_reference_shape(der: &[u8], cn: &str, issuer_cn: &str, not_before: i64, now: i64) {
    let cert = certificate(der);
    assert_eq!(cert.version(), X509Version::V3);
    assert_eq!(cert.tbs_certificate.raw_serial(), [1]);
    assert!(cert.extensions().is_empty(), "{cn}: no extensions at all");
    assert_eq!(
        cert.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ED25519
    );
    for (name, expected) in [(cert.subject(), cn), (cert.issuer(), issuer_cn)] {
        let attrs: Vec<_> = name.iter_attributes().collect();
        assert_eq!(attrs.len(), 1);
        assert_eq!(
            attrs[0].attr_type(),
            &x509_parser::oid_registry::OID_X509_COMMON_NAME
        );
        assert_eq!(
            attrs[0].attr_value().tag(),
            x509_parser::asn1_rs::Tag::Utf8String
        );
        assert_eq!(attrs[0].as_str().unwrap(), expected);
    }
    assert_eq!(cert.validity().not_before.timestamp(), not_before);
    assert_eq!(
        cert.validity().not_after.timestamp(),
        now + FAR_HOURS * HOUR
    );
}

#[test]
fn certificates_have_the_reference_shape() {
    let now = 1_800_000_000;
    let controller = TlsIdentity::generate_at(CaRole::Controller, now).unwrap();
    let host = TlsIdentity::generate_at(CaRole::Host, now).unwrap();
    assert_reference_shape(controller.ca_cert_der(), "ca", "ca", now - 25 * HOUR, now);
    assert_reference_shape(host.ca_cert_der(), "ca", "ca", now - HOUR, now);

    let creds = controller.session_credentials_at(now).unwrap();
    assert_eq!(creds.chain().len(), 2);
    assert_eq!(creds.chain()[1].as_ref(), controller.ca_cert_der());
    assert_reference_shape(&creds.chain()[0], "localhost", "ca", now - HOUR, now);

    assert_eq!(
        controller.fingerprint(),
        xrcp::tls::fingerprint(controller.ca_cert_der())
    );
    assert_eq!(
        check_chain(
            &creds.chain()[0],
            &creds.chain()[1..],
            &Pin::Fingerprint(controller.fingerprint()),
            unix_time(now)
        ),
        Ok(controller.fingerprint())
    );
    // Fresh leaves are different certificates under the same CA.
    let again = controller.session_credentials_at(now).unwrap();
    assert_ne!(again.chain()[0], creds.chain()[0]);
}

#[test]
fn identity_survives_storage_and_bad_storage_is_refused() {
    let id = TlsIdentity::generate(CaRole::Host).unwrap();
    let (key, cert) = id.to_der_parts();
    let back = TlsIdentity::from_der_parts(&key, &cert).unwrap();
    assert_eq!(back.fingerprint(), id.fingerprint());
    assert_eq!(back.ca_cert_der(), id.ca_cert_der());

    let other = TlsIdentity::generate(CaRole::Host).unwrap();
    let (other_key, _) = other.to_der_parts();
    assert!(matches!(
        TlsIdentity::from_der_parts(&other_key, &cert),
        Err(TlsError::Credentials(_))
    ));
    assert!(TlsIdentity::from_der_parts(&key, b"not a certificate").is_err());
    assert!(TlsIdentity::from_der_parts(b"not a key", &cert).is_err());
}

#[test]
fn validity_is_checked_at_handshake_time() {
    let now = unix_now();
    let id = TlsIdentity::generate_at(CaRole::Host, now).unwrap();
    let creds = id.session_credentials_at(now).unwrap();
    let pin = Pin::Fingerprint(id.fingerprint());
    let check = |at: i64| check_chain(&creds.chain()[0], &creds.chain()[1..], &pin, unix_time(at));
    assert!(check(now - HOUR).is_ok());
    assert_eq!(check(now - HOUR - 1), Err(ChainError::NotYetValid("leaf")));
    assert_eq!(
        check(now + FAR_HOURS * HOUR + 1),
        Err(ChainError::Expired("leaf"))
    );
}

#[tokio::test]
async fn reference_shaped_sessions_agree_on_tls_unique() {
    let p = pair();
    let host_creds = p.host.session_credentials().unwrap();
    let ctrl_creds = p.controller.session_credentials().unwrap();
    let (client, server) = loopback(
        client_config(&host_creds, Pin::Fingerprint(p.controller.fingerprint())).unwrap(),
        server_config(&ctrl_creds, Pin::Fingerprint(p.host.fingerprint())).unwrap(),
    )
    .await;
    let (mut client, client_session) = ok(client);
    let (mut server, server_session) = ok(server);

    assert_eq!(client_session.tls_unique.len(), 32);
    assert_eq!(client_session.tls_unique, server_session.tls_unique);
    assert_eq!(
        client_session.peer_ca_fingerprint,
        p.controller.fingerprint()
    );
    assert_eq!(server_session.peer_ca_fingerprint, p.host.fingerprint());
    assert!(!client_session.hello_retried && !server_session.hello_retried);

    // The server accepted us and said so with a session ticket: the peek ends at once
    // instead of waiting out its bound (the ticket is never stored or offered again).
    let started = std::time::Instant::now();
    client.peek_alert(STEP).await.unwrap();
    assert!(client.peer_accepted());
    assert!(started.elapsed() < STEP / 2, "{:?}", started.elapsed());

    // 16384-byte XRCP blocks both ways, through the (now idle) recorder.
    let block: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8).collect();
    tokio::time::timeout(STEP, async {
        client.write_all(&block).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0u8; block.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, block);
        server.write_all(&block).await.unwrap();
        server.flush().await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, block);
    })
    .await
    .unwrap();
}

/// A controller that sends no ticket (the reference): the peek waits its whole bound, then
/// reports nothing, and the session works as before.
#[tokio::test]
async fn without_a_ticket_the_peek_waits_its_bound() {
    let p = pair();
    let (client, server) = loopback(
        p.host_config(),
        server_config_for_testing(
            &p.controller.session_credentials().unwrap(),
            Pin::Fingerprint(p.host.fingerprint()),
            TestKnobs {
                no_tickets: true,
                ..TestKnobs::default()
            },
        )
        .unwrap(),
    )
    .await;
    let (mut client, _) = ok(client);
    let (mut server, _) = ok(server);
    let wait = Duration::from_millis(300);
    let started = std::time::Instant::now();
    client.peek_alert(wait).await.unwrap();
    assert!(started.elapsed() >= wait);
    assert!(!client.peer_accepted());
    tokio::time::timeout(STEP, async {
        client.write_all(b"hello").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    })
    .await
    .unwrap();
}

/// The controller's tickets cannot be redeemed: a client that offers one (here: a rustls
/// client with an ordinary session cache, connecting twice) gets a full handshake with the
/// certificate checks again, never a resumed session.
#[tokio::test]
async fn controller_tickets_cannot_resume_a_session() {
    let p = pair();
    let host_creds = p.host.session_credentials().unwrap();
    let ctrl_creds = p.controller.session_credentials().unwrap();
    let mut client =
        xrcp::tls::client_config(&host_creds, Pin::Fingerprint(p.controller.fingerprint()))
            .unwrap()
            .as_ref()
            .clone();
    client.resumption = rustls::client::Resumption::in_memory_sessions(8);
    let client = std::sync::Arc::new(client);
    let server = server_config(&ctrl_creds, Pin::Fingerprint(p.host.fingerprint())).unwrap();
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            tls.flush().await.unwrap();
            let kind = tls.get_ref().1.handshake_kind();
            // Stay up until the client has read the ticket and closed.
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
            kind
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = tokio::time::timeout(
            STEP,
            tokio_rustls::TlsConnector::from(client.clone()).connect(name.clone(), tcp),
        )
        .await
        .unwrap()
        .unwrap();
        // Let rustls process the ticket (a read that sees no application data).
        let mut buf = [0u8; 16];
        let _ = tokio::time::timeout(Duration::from_millis(300), tls.read(&mut buf)).await;
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        tls.shutdown().await.unwrap();
        drop(tls);
        let server_kind = tokio::time::timeout(STEP, server_task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(server_kind, Some(rustls::HandshakeKind::Full));
    }
}

#[tokio::test]
async fn new_host_is_accepted_with_pin_any_and_its_fingerprint_reported() {
    let p = pair();
    let (client, server) = loopback(
        p.host_config(),
        server_config(&p.controller.session_credentials().unwrap(), Pin::Any).unwrap(),
    )
    .await;
    let (_, client_session) = ok(client);
    let (_, server_session) = ok(server);
    assert_eq!(server_session.peer_ca_fingerprint, p.host.fingerprint());
    assert_eq!(client_session.tls_unique, server_session.tls_unique);
}

#[tokio::test]
async fn hello_retry_request_is_handled() {
    let p = pair();
    let knobs = TestKnobs {
        kx_groups: Some(vec![
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::X25519,
        ]),
        ..TestKnobs::default()
    };
    let (client, server) = loopback(
        client_config_for_testing(
            &p.host.session_credentials().unwrap(),
            Pin::Fingerprint(p.controller.fingerprint()),
            knobs,
        )
        .unwrap(),
        server_config(&p.controller.session_credentials().unwrap(), Pin::Any).unwrap(),
    )
    .await;
    let (_, client_session) = ok(client);
    let (_, server_session) = ok(server);
    assert!(client_session.hello_retried && server_session.hello_retried);
    assert_eq!(client_session.tls_unique.len(), 32);
    assert_eq!(client_session.tls_unique, server_session.tls_unique);
}

fn record_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        types.push(rest[0]);
        rest = &rest[(5 + len).min(rest.len())..];
    }
    types
}

#[tokio::test]
async fn fragmented_client_flight_over_duplex() {
    let p = pair();
    let knobs = TestKnobs {
        max_fragment_size: Some(64),
        ..TestKnobs::default()
    };
    let client_cfg = client_config_for_testing(
        &p.host.session_credentials().unwrap(),
        Pin::Fingerprint(p.controller.fingerprint()),
        knobs,
    )
    .unwrap();
    let server_cfg = server_config(&p.controller.session_credentials().unwrap(), Pin::Any).unwrap();
    let (a, b) = tokio::io::duplex(1 << 16);
    let client_io = Tapped::new(a);
    let written = client_io.written.clone();
    let (client, server) = tokio::time::timeout(STEP, async {
        tokio::join!(connect(client_io, &client_cfg), accept(b, &server_cfg))
    })
    .await
    .unwrap();
    let (_, client_session) = client.unwrap();
    let (_, server_session) = server.unwrap();
    assert_eq!(client_session.tls_unique, server_session.tls_unique);

    let types = record_types(&written.lock().unwrap());
    let hello_records = types.iter().take_while(|t| **t == 22).count();
    let encrypted = types.iter().filter(|t| **t == 23).count();
    assert!(hello_records > 1, "ClientHello fragmented: {types:?}");
    assert!(encrypted > 5, "encrypted flight fragmented: {types:?}");
}

#[tokio::test]
async fn server_rejecting_the_host_surfaces_as_identity_on_first_read() {
    let p = pair();
    let stranger = TlsIdentity::generate(CaRole::Host).unwrap();
    let (client, server) = loopback(
        p.host_config(),
        server_config(
            &p.controller.session_credentials().unwrap(),
            Pin::Fingerprint(stranger.fingerprint()),
        )
        .unwrap(),
    )
    .await;
    let server_err = server.unwrap_err();
    assert!(
        matches!(
            server_err,
            TlsError::Tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{server_err}"
    );
    assert!(matches!(RcError::from(server_err), RcError::Exception(_)));

    // TLS 1.3: the client finished before the server judged its certificate.
    let (mut client, _) = ok(client);
    let verdict = client.peek_alert(STEP).await.unwrap_err();
    assert!(
        matches!(verdict, TlsError::CertificateRejected),
        "{verdict}"
    );
    assert_eq!(RcError::from(verdict), RcError::Identity);
}

#[tokio::test]
async fn host_rejecting_the_controller_is_exception_there_identity_here() {
    let p = pair();
    let stranger = TlsIdentity::generate(CaRole::Controller).unwrap();
    let (client, server) = loopback(
        client_config(
            &p.host.session_credentials().unwrap(),
            Pin::Fingerprint(stranger.fingerprint()),
        )
        .unwrap(),
        server_config(&p.controller.session_credentials().unwrap(), Pin::Any).unwrap(),
    )
    .await;
    let client_err = client.unwrap_err();
    assert!(matches!(
        client_err,
        TlsError::Tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    ));
    assert!(matches!(RcError::from(client_err), RcError::Exception(_)));
    let server_err = server.unwrap_err();
    assert!(
        matches!(server_err, TlsError::CertificateRejected),
        "{server_err}"
    );
    assert_eq!(RcError::from(server_err), RcError::Identity);
}

/// What a normal client pinning `pin` makes of a server presenting `server_chain`.
async fn client_sees(server_chain: Vec<Vec<u8>>, server_key: Zeroizing<Vec<u8>>, pin: Pin) -> Side {
    let host = TlsIdentity::generate(CaRole::Host).unwrap();
    let knobs = TestKnobs {
        allow_key_mismatch: true,
        ..TestKnobs::default()
    };
    let server_creds = SessionCredentials::from_parts(server_chain, server_key);
    let (client, _server) = loopback(
        client_config(&host.session_credentials().unwrap(), pin).unwrap(),
        server_config_for_testing(&server_creds, Pin::Any, knobs).unwrap(),
    )
    .await;
    client
}

/// What a normal server pinning `pin` makes of a client presenting `client_chain`.
async fn server_sees(client_chain: Vec<Vec<u8>>, client_key: Zeroizing<Vec<u8>>, pin: Pin) -> Side {
    let controller = TlsIdentity::generate(CaRole::Controller).unwrap();
    let knobs = TestKnobs {
        allow_key_mismatch: true,
        ..TestKnobs::default()
    };
    let client_creds = SessionCredentials::from_parts(client_chain, client_key);
    let (_client, server) = loopback(
        client_config_for_testing(
            &client_creds,
            Pin::Fingerprint(controller.fingerprint()),
            knobs,
        )
        .unwrap(),
        server_config(&controller.session_credentials().unwrap(), pin).unwrap(),
    )
    .await;
    server
}

#[tokio::test]
async fn wrong_chain_lengths_are_refused_both_ways() {
    let ca = test_ca("ca", false);
    let pin = Pin::Fingerprint(xrcp::tls::fingerprint(&ca.der));
    let (leaf, key) = test_leaf(&ca.issuer);

    let one = client_sees(vec![leaf.clone()], key.clone(), pin).await;
    assert_eq!(chain_error(one), ChainError::ChainLength(1));
    let three = client_sees(
        vec![leaf.clone(), ca.der.clone(), ca.der.clone()],
        key.clone(),
        pin,
    )
    .await;
    assert_eq!(chain_error(three), ChainError::ChainLength(3));

    let one = server_sees(vec![leaf.clone()], key.clone(), pin).await;
    assert_eq!(chain_error(one), ChainError::ChainLength(1));
    let three = server_sees(vec![leaf, ca.der.clone(), ca.der.clone()], key, pin).await;
    assert_eq!(chain_error(three), ChainError::ChainLength(3));
}

#[tokio::test]
async fn leaf_not_issued_by_the_pinned_ca_is_refused_both_ways() {
    let pinned = test_ca("ca", false);
    let pin = Pin::Fingerprint(xrcp::tls::fingerprint(&pinned.der));

    // Same DN, different key: the signature check catches it.
    let impostor = test_ca("ca", false);
    let (leaf, key) = test_leaf(&impostor.issuer);
    let chain = vec![leaf, pinned.der.clone()];
    assert_eq!(
        cert_error(client_sees(chain.clone(), key.clone(), pin).await),
        CertificateError::BadSignature
    );
    assert_eq!(
        cert_error(server_sees(chain, key, pin).await),
        CertificateError::BadSignature
    );

    // Another CA's leaf with the pinned CA appended: the issuer check catches it.
    let other = test_ca("other", false);
    let (leaf, key) = test_leaf(&other.issuer);
    let chain = vec![leaf, pinned.der.clone()];
    assert_eq!(
        cert_error(client_sees(chain.clone(), key.clone(), pin).await),
        CertificateError::UnknownIssuer
    );
    assert_eq!(
        cert_error(server_sees(chain, key, pin).await),
        CertificateError::UnknownIssuer
    );
}

#[tokio::test]
async fn key_not_matching_the_leaf_is_refused_locally_and_by_the_peer() {
    let ca = test_ca("ca", false);
    let pin = Pin::Fingerprint(xrcp::tls::fingerprint(&ca.der));
    let (leaf, _right_key) = test_leaf(&ca.issuer);
    let (_, wrong_key) = test_leaf(&ca.issuer);
    let chain = vec![leaf, ca.der.clone()];

    let creds = SessionCredentials::from_parts(chain.clone(), wrong_key.clone());
    assert!(matches!(
        server_config(&creds, Pin::Any),
        Err(TlsError::Credentials(_))
    ));
    assert!(matches!(
        client_config(&creds, Pin::Any),
        Err(TlsError::Credentials(_))
    ));

    // Forced through: the peer's CertificateVerify check fails.
    assert!(matches!(
        client_sees(chain.clone(), wrong_key.clone(), pin).await,
        Err(TlsError::Tls(_))
    ));
    assert!(matches!(
        server_sees(chain, wrong_key, pin).await,
        Err(TlsError::Tls(_))
    ));
}

#[test]
fn malformed_certificates_are_refused() {
    let ca = test_ca("ca", false);
    let (leaf, _) = test_leaf(&ca.issuer);
    let now = unix_time(unix_now());
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    assert_eq!(
        check_chain(
            &garbage,
            &[CertificateDer::from(ca.der.clone())],
            &Pin::Any,
            now
        ),
        Err(ChainError::Malformed("leaf"))
    );
    assert_eq!(
        check_chain(
            &CertificateDer::from(leaf.clone()),
            &[garbage],
            &Pin::Any,
            now
        ),
        Err(ChainError::Malformed("CA"))
    );
    let mut trailing = leaf;
    trailing.push(0);
    assert_eq!(
        check_chain(
            &CertificateDer::from(trailing),
            &[CertificateDer::from(ca.der)],
            &Pin::Any,
            now
        ),
        Err(ChainError::Malformed("leaf"))
    );
}

/// Later layers move the stream into tasks and run HTTP/2 over it.
#[test]
fn stream_and_session_types_are_task_friendly() {
    fn task_friendly<T: Send + Sync + Unpin + 'static>() {}
    fn send<T: Send + Unpin + 'static>() {}
    send::<xrcp::tls::TlsStream<tokio::net::TcpStream>>();
    task_friendly::<xrcp::tls::TlsSession>();
    task_friendly::<TlsIdentity>();
    task_friendly::<SessionCredentials>();
}

/// Extension types and lengths (sorted: rustls shuffles the order) of a ClientHello record.
fn client_hello_shape(wire: &[u8]) -> Vec<(u16, usize)> {
    let u16_at = |i: usize| u16::from_be_bytes([wire[i], wire[i + 1]]) as usize;
    // record header (5), handshake header (4), version (2), random (32)
    let mut i = 5 + 4 + 2 + 32;
    i += 1 + wire[i] as usize; // session id
    i += 2 + u16_at(i); // cipher suites
    i += 1 + wire[i] as usize; // compression methods
    let end = i + 2 + u16_at(i);
    i += 2;
    let mut shape = Vec::new();
    while i < end {
        shape.push((u16_at(i) as u16, u16_at(i + 2)));
        i += 4 + u16_at(i + 2);
    }
    assert_eq!(i, end);
    shape.sort_unstable();
    shape
}

/// The session store `xrcp::tls::connect` installs per connection (it only notices tickets)
/// must not change what the host sends: the same extensions of the same sizes as a rustls
/// client with resumption off, and no pre_shared_key or session_ticket.
#[tokio::test]
async fn the_acceptance_store_leaves_the_client_hello_unchanged() {
    let p = pair();
    let config = p.host_config();
    // Plain rustls with the config as built (resumption disabled).
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut plain = Vec::new();
    conn.write_tls(&mut plain).unwrap();
    // Our driver, up to its first flight.
    let (ours, mut peer) = tokio::io::duplex(1 << 16);
    let client = tokio::spawn(async move { connect(ours, &config).await.map(drop) });
    let mut head = [0u8; 5];
    peer.read_exact(&mut head).await.unwrap();
    let len = u16::from_be_bytes([head[3], head[4]]) as usize;
    let mut record = head.to_vec();
    record.resize(5 + len, 0);
    peer.read_exact(&mut record[5..]).await.unwrap();
    client.abort();
    let (a, b) = (client_hello_shape(&plain), client_hello_shape(&record));
    assert_eq!(a, b);
    assert!(!b.iter().any(|&(kind, _)| kind == 41), "no pre_shared_key");
    assert!(!b.iter().any(|&(kind, _)| kind == 35), "no session_ticket");
}
