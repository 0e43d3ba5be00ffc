//! The XRCP handshake end to end on loopback: our controller against our host, both drivers,
//! real TLS. Each test bounds its own run time.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;
use xrcp::crypto::chain::ChainKey;
use xrcp::crypto::secretbox::{open_tail_tag, seal_tail_tag, BoxKey, Nonce};
use xrcp::handshake::io::{read_block, write_block};
use xrcp::message::{decode_block, encode_block, SignedInvitation};
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::RcError;
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::connect::ControllerOptions;
use xrcp_ctrl::RemoteHostError;
use xrcp_host::{HostOptions, RemoteCtrlError};

const LIMIT: Duration = Duration::from_secs(30);

fn ctrl_options() -> ControllerOptions {
    ControllerOptions {
        app: json!({"deviceName": "test desktop"}),
        bind: Ipv4Addr::LOCALHOST,
        candidates: Some(vec![LocalAddress {
            address: Ipv4Addr::LOCALHOST,
            interface: "lo".into(),
        }]),
        ..ControllerOptions::default()
    }
}

fn host_options() -> HostOptions {
    HostOptions {
        app: json!({"deviceName": "test phone"}),
        ..HostOptions::default()
    }
}

struct Outcome {
    ctrl: xrcp_ctrl::connect::Connected,
    host: xrcp_host::Connected,
}

/// One full session; the host types the controller's code.
async fn session(hp: HostPairing, cp: Option<CtrlPairing>) -> Outcome {
    let listening = xrcp_ctrl::connect::start(hp, ctrl_options()).await.unwrap();
    let inv = SignedInvitation::parse(&listening.link()).unwrap();
    let ctrl = tokio::spawn(async move {
        let pending = listening.accept().await?;
        let code = pending.session_code().to_owned();
        pending.finish().await.map(|c| (code, c))
    });
    let pending = xrcp_host::connect(inv, cp, host_options()).await.unwrap();
    let host_code = pending.session_code().to_owned();
    let host = pending.verify(&host_code).await.unwrap();
    let (ctrl_code, ctrl) = ctrl.await.unwrap().unwrap();
    assert_eq!(
        ctrl_code, host_code,
        "both sides show the same session code"
    );
    assert_eq!(ctrl.session_code, host.session_code);
    Outcome { ctrl, host }
}

/// The first message key and nonce of a chain, leaving the session's chain as it is.
fn first_step(chain: &ChainKey) -> (BoxKey, Nonce) {
    ChainKey::from_bytes(*chain.as_bytes()).advance()
}

/// The exchange the reference's own test makes after the HELLOs: one block each way under
/// the chain keys (tail tag, no inner padding).
async fn exchange_first_blocks(o: &mut Outcome) {
    let (k, n) = first_step(o.ctrl.keys.keys.send_chain());
    let block = encode_block(&seal_tail_tag(&k, &n, b"hello host")).unwrap();
    write_block(&mut o.ctrl.stream, &block).await.unwrap();
    let got = read_block(&mut o.host.stream).await.unwrap();
    let (k, n) = first_step(o.host.keys.keys.recv_chain());
    assert_eq!(
        open_tail_tag(&k, &n, decode_block(&got).unwrap()).unwrap(),
        b"hello host"
    );

    let (k, n) = first_step(o.host.keys.keys.send_chain());
    let block = encode_block(&seal_tail_tag(&k, &n, b"hello controller")).unwrap();
    write_block(&mut o.host.stream, &block).await.unwrap();
    let got = read_block(&mut o.ctrl.stream).await.unwrap();
    let (k, n) = first_step(o.ctrl.keys.keys.recv_chain());
    assert_eq!(
        open_tail_tag(&k, &n, decode_block(&got).unwrap()).unwrap(),
        b"hello controller"
    );
}

#[tokio::test]
async fn new_pairing_then_existing_pairing_sessions() {
    tokio::time::timeout(LIMIT * 2, async {
        let mut o = session(HostPairing::new().unwrap(), None).await;
        exchange_first_blocks(&mut o).await;
        assert_eq!(o.ctrl.keys.host_app["deviceName"], "test phone");
        assert_eq!(o.host.keys.ctrl_app["deviceName"], "test desktop");
        let host_ca = o.ctrl.pairing.known_host.unwrap().host_ca;

        // Reuse the pairing; the third session offers the controller's stale pairing (it
        // "lost" the update of the second), as the reference's testExistingPairing does.
        let (mut hp, mut cp) = (o.ctrl.pairing, o.host.pairing);
        let mut stale = None;
        for i in 0..4 {
            let offered = if i == 2 {
                stale.take().unwrap()
            } else {
                hp.clone()
            };
            if i == 1 {
                stale = Some(hp.clone());
            }
            let mut o = session(offered, Some(cp)).await;
            exchange_first_blocks(&mut o).await;
            assert_eq!(o.ctrl.pairing.known_host.unwrap().host_ca, host_ca);
            hp = o.ctrl.pairing;
            cp = o.host.pairing;
        }
    })
    .await
    .expect("sessions finish in time");
}

#[tokio::test]
async fn tampered_invitation_is_refused_before_connecting() {
    let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
        .await
        .unwrap();
    let mut inv = SignedInvitation::parse(&listening.link()).unwrap();
    inv.invitation.ts += 1;
    let err = xrcp_host::connect(inv, None, host_options())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, RemoteCtrlError::Protocol(RcError::Invitation)),
        "{err}"
    );
}

#[tokio::test]
async fn host_paired_elsewhere_is_refused_by_a_known_controller() {
    tokio::time::timeout(LIMIT, async {
        let o = session(HostPairing::new().unwrap(), None).await;
        // The controller knows the host CA; a host with a fresh identity (another phone, or
        // the same phone after losing its pairing) presents a different one.
        let opts = ControllerOptions {
            tls_timeout: Duration::from_secs(2),
            ..ctrl_options()
        };
        let listening = xrcp_ctrl::connect::start(o.ctrl.pairing, opts)
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        let ctrl = tokio::spawn(listening.accept());
        let err = xrcp_host::connect(inv, None, host_options())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, RemoteCtrlError::Protocol(RcError::Identity)),
            "{err}"
        );
        // The link expired with only a refused foreign CA: the paired host most likely lost
        // its pairing (PAIRING_LOST in the CLI).
        let ctrl_err = ctrl.await.unwrap().err().unwrap();
        assert!(
            matches!(ctrl_err, RemoteHostError::HostCaRefused),
            "{ctrl_err}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn rejected_code_sends_no_hello_and_both_sides_end() {
    tokio::time::timeout(LIMIT, async {
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
        let pending = xrcp_host::connect(inv, None, host_options()).await.unwrap();
        let err = pending.verify("12345 67890").await.err().unwrap();
        assert!(matches!(err, RemoteCtrlError::BadVerificationCode));
        let ctrl_err = ctrl.await.unwrap().err().unwrap();
        assert!(
            matches!(ctrl_err, RemoteHostError::Disconnected),
            "{ctrl_err}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn second_connection_is_refused_once_a_session_runs() {
    tokio::time::timeout(LIMIT, async {
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
            .await
            .unwrap();
        let port = listening.advertised().1;
        let link = listening.link();
        let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
        let inv = SignedInvitation::parse(&link).unwrap();
        let pending = xrcp_host::connect(inv.clone(), None, host_options())
            .await
            .unwrap();
        // The first TLS handshake completed: the listener is gone.
        let second = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await;
        assert!(second.is_err(), "a second TCP connection must be refused");
        let err = xrcp_host::connect(inv, None, host_options())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, RemoteCtrlError::Dial { .. }), "{err}");
        assert_eq!(
            err.kind(),
            "EXCEPTION",
            "the wire kind stays the reference's"
        );
        let code = pending.session_code().to_owned();
        pending.verify(&code).await.unwrap();
        ctrl.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn silent_peers_end_in_typed_timeouts() {
    tokio::time::timeout(LIMIT, async {
        // A TCP client that never speaks TLS.
        let opts = ControllerOptions {
            tls_timeout: Duration::from_millis(500),
            ..ctrl_options()
        };
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), opts)
            .await
            .unwrap();
        let port = listening.advertised().1;
        let _mute = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let err = listening.accept().await.err().unwrap();
        assert!(matches!(
            err,
            RemoteHostError::Timeout(xrcp_ctrl::Stage::TlsConnection)
        ));

        // A host that completes TLS and then never sends its HELLO.
        let opts = ControllerOptions {
            hello_timeout: Duration::from_millis(500),
            ..ctrl_options()
        };
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), opts)
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
        let pending = xrcp_host::connect(inv, None, host_options()).await.unwrap();
        let err = ctrl.await.unwrap().err().unwrap();
        assert!(
            matches!(err, RemoteHostError::Timeout(xrcp_ctrl::Stage::HostHello)),
            "{err}"
        );
        drop(pending);

        // A controller that completes TLS and never answers the HELLO.
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        let ctrl = tokio::spawn(async move {
            let pending = listening.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(pending);
        });
        let opts = HostOptions {
            step_timeout: Duration::from_millis(500),
            ..host_options()
        };
        let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
        let err = pending.confirm().await.err().unwrap();
        assert!(
            matches!(err, RemoteCtrlError::Timeout(xrcp_host::Stage::CtrlHello)),
            "{err}"
        );
        ctrl.abort();
    })
    .await
    .unwrap();
}

/// A server presenting a CA other than the invitation's: the host refuses with `IDENTITY`.
#[tokio::test]
async fn wrong_controller_ca_is_identity() {
    use xrcp::tls::{self, CaRole, Pin, TlsIdentity};
    tokio::time::timeout(LIMIT, async {
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
            .await
            .unwrap();
        let inv = SignedInvitation::parse(&listening.link()).unwrap();
        drop(listening);
        // An impostor on another port with its own CA.
        let impostor = TlsIdentity::generate(CaRole::Controller).unwrap();
        let config =
            tls::server_config(&impostor.session_credentials().unwrap(), Pin::Any).unwrap();
        let server = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let serve = tokio::spawn(async move {
            let (tcp, _) = server.accept().await.unwrap();
            let _ = tls::accept(tcp, &config).await;
        });
        let opts = HostOptions {
            connect_via: Some(addr),
            ..host_options()
        };
        let err = xrcp_host::connect(inv, None, opts).await.err().unwrap();
        assert!(
            matches!(err, RemoteCtrlError::Protocol(RcError::Identity)),
            "{err}"
        );
        serve.await.unwrap();
    })
    .await
    .unwrap();
}

/// An invitation whose only version is one we do not speak.
#[tokio::test]
async fn incompatible_version_is_refused() {
    use xrcp::codec::{Version, VersionRange};
    use xrcp::crypto::Ed25519SecretKey;
    let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), ctrl_options())
        .await
        .unwrap();
    let inv = SignedInvitation::parse(&listening.link()).unwrap();
    let (s, id) = (Ed25519SecretKey::generate(), Ed25519SecretKey::generate());
    let v2 = xrcp::message::Invitation {
        version: VersionRange::single(Version(2)),
        skey: s.public(),
        idkey: id.public(),
        ..inv.invitation
    }
    .sign(&s, &id)
    .unwrap();
    let err = xrcp_host::connect(v2, None, host_options())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, RemoteCtrlError::Protocol(RcError::Version)),
        "{err}"
    );
}
