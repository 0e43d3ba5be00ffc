//! Denial of linking (issue 12, finding 1): connections that never finish TLS, finish it
//! slowly, or finish it with a certificate of their own must not keep the real host out or
//! use the invitation up.
//!
//! Everything runs on loopback; extra source addresses come from 127.0.0.0/8, which Linux
//! routes to `lo` without configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use xrcp::handshake::io::write_block;
use xrcp::message::BLOCK_SIZE;
use xrcp::pairing::HostPairing;
use xrcp::tls::{self, CaRole, Pin, TlsIdentity};
use xrcp_ctrl::{Admission, RemoteHostError, WaitEvent, Withdrawal};
use xrcp_tests::hardening::{listening_addr, start_controller, LinkSettings};

const LIMIT: Duration = Duration::from_secs(60);

/// A TCP connection to `to` from the loopback address `from`.
async fn dial_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// The first bytes of a TLS 1.3 ClientHello record, then nothing: enough to make a server
/// start a handshake and wait for the rest.
const CLIENT_HELLO_START: [u8; 9] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

/// A peer that reached the port but never saw the invitation: it completes TLS with a
/// certificate chain of its own (the controller of a new pairing accepts any well-formed
/// chain) and accepts whatever the controller presents.
async fn stranger_tls(
    from: Ipv4Addr,
    to: SocketAddr,
) -> Result<tls::TlsStream<TcpStream>, tls::TlsError> {
    let identity = TlsIdentity::generate(CaRole::Host)?;
    let config = tls::client_config(&identity.session_credentials()?, Pin::Any)?;
    let tcp = dial_from(from, to).await;
    let (stream, _session) = tls::connect(tcp, &config).await?;
    Ok(stream)
}

type Recorded = Arc<Mutex<Vec<WaitEvent>>>;

/// A controller for a new pairing running [`xrcp_ctrl::connect::Listening::connect`], recording what
/// it reports; gives its task, the invitation, the listening address and the record.
async fn connect_recording(
    settings: &LinkSettings,
) -> (
    tokio::task::JoinHandle<Result<xrcp_ctrl::connect::Connected, RemoteHostError>>,
    xrcp::message::SignedInvitation,
    SocketAddr,
    Recorded,
) {
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), settings)
        .await
        .unwrap();
    let addr = listening_addr(&listening);
    let events: Recorded = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let ctrl = tokio::spawn(async move {
        listening
            .connect(move |e| seen.lock().unwrap().push(e))
            .await
    });
    (ctrl, inv, addr, events)
}

/// 200 idle TCP connections (from two addresses) and a slowloris ClientHello (from a third)
/// are open before the host dials: the host still completes TLS and its HELLO within 2 s.
/// Before per-connection deadlines and eviction, 16 idle sockets filled every handshake slot
/// and the host was reset at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_do_not_keep_the_host_out() {
    tokio::time::timeout(LIMIT, async {
        let settings = LinkSettings::default();
        let (listening, inv) = start_controller(HostPairing::new().unwrap(), &settings)
            .await
            .unwrap();
        let addr = listening_addr(&listening);
        let ctrl = tokio::spawn(async move {
            let pending = listening.accept().await?;
            pending.finish().await
        });

        let mut idle = Vec::new();
        for i in 0..200 {
            let from = Ipv4Addr::new(127, 0, 0, if i % 2 == 0 { 1 } else { 2 });
            idle.push(dial_from(from, addr).await);
        }
        let mut slow = dial_from(Ipv4Addr::new(127, 0, 0, 3), addr).await;
        let slowloris = tokio::spawn(async move {
            for byte in CLIENT_HELLO_START {
                if slow.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        // Let the controller accept every one of them before the host comes.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let started = Instant::now();
        let opts = settings.host_options(&inv, None).unwrap();
        let pending = xrcp_host::connect(inv, None, opts)
            .await
            .expect("the host gets through the crowd");
        let code = pending.session_code().to_owned();
        pending.verify(&code).await.expect("HELLO exchange");
        let connected = ctrl.await.unwrap().expect("the controller takes the host");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "linking took {took:?}");
        assert_eq!(connected.session_code, code);
        slowloris.abort();
        drop(idle);
    })
    .await
    .unwrap();
}

/// A TLS handshake that never completes is dropped after the handshake deadline, so it
/// cannot hold a slot for the invitation's whole lifetime.
#[tokio::test]
async fn a_stalled_handshake_is_dropped_at_its_deadline() {
    tokio::time::timeout(LIMIT, async {
        let settings = LinkSettings {
            tls_timeout: Duration::from_secs(20),
            ..LinkSettings::default()
        };
        let mut options = settings.ctrl_options();
        options.admission = Admission {
            handshake_timeout: Duration::from_millis(500),
            ..Admission::default()
        };
        let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), options)
            .await
            .unwrap();
        let addr = listening_addr(&listening);
        let ctrl = tokio::spawn(listening.accept());
        let mut slow = dial_from(Ipv4Addr::LOCALHOST, addr).await;
        slow.write_all(&CLIENT_HELLO_START[..4]).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        // The controller closes the connection (EOF or reset) at the deadline.
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut slow, &mut buf),
        )
        .await
        .expect("the stalled handshake is closed within its deadline");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        assert!(started.elapsed() >= Duration::from_millis(400));
        ctrl.abort();
    })
    .await
    .unwrap();
}

/// Strangers that complete TLS with their own certificates, then send a HELLO that does not
/// decrypt, leave, or stay silent, each get a code labelled with their address, withdrawn
/// when they fail; the real host, arriving last, still links with the same invitation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_past_tls_do_not_use_up_a_new_link() {
    tokio::time::timeout(LIMIT, async {
        let settings = LinkSettings::default();
        let (ctrl, inv, addr, events) = connect_recording(&settings).await;

        // 1. Completes TLS, sends a full block of garbage as its HELLO.
        let mut junk = stranger_tls(Ipv4Addr::new(127, 0, 0, 4), addr)
            .await
            .expect("a stranger completes TLS on a new link");
        write_block(&mut junk, &vec![b'x'; BLOCK_SIZE]).await.unwrap();
        // 2. Completes TLS and leaves without a HELLO (with close_notify, as a host whose
        //    user rejected the code does).
        let mut leaver = stranger_tls(Ipv4Addr::new(127, 0, 0, 5), addr).await.unwrap();
        leaver.shutdown().await.unwrap();
        // 3. Completes TLS and stays silent while the host links.
        let _silent = stranger_tls(Ipv4Addr::new(127, 0, 0, 6), addr).await.unwrap();

        let opts = settings.host_options(&inv, None).unwrap();
        let pending = xrcp_host::connect(inv, None, opts)
            .await
            .expect("the host connects after the strangers");
        let code = pending.session_code().to_owned();
        pending.verify(&code).await.expect("HELLO exchange");
        let connected = ctrl.await.unwrap().expect("the controller takes the host");
        assert_eq!(connected.session_code, code);
        assert_eq!(connected.peer.ip(), Ipv4Addr::LOCALHOST);

        let events = events.lock().unwrap().clone();
        let code_from = |last: u8| {
            events.iter().any(|e| {
                matches!(e, WaitEvent::Code { peer, .. } if peer.ip() == Ipv4Addr::new(127, 0, 0, last))
            })
        };
        let withdrawn = |last: u8, why: Withdrawal| {
            events.iter().any(|e| matches!(e,
                WaitEvent::Withdrawn { peer, reason, .. }
                    if peer.ip() == Ipv4Addr::new(127, 0, 0, last) && *reason == why))
        };
        for last in [4, 5, 6, 1] {
            assert!(code_from(last), "a code for 127.0.0.{last}: {events:?}");
        }
        assert!(withdrawn(4, Withdrawal::NotInvited), "{events:?}");
        assert!(withdrawn(5, Withdrawal::Left), "{events:?}");
        assert!(withdrawn(6, Withdrawal::Superseded), "{events:?}");
        // The host's own code is never withdrawn.
        assert!(
            !events.iter().any(|e| matches!(e,
                WaitEvent::Withdrawn { code: c, .. } if *c == code)),
            "{events:?}"
        );
    })
    .await
    .unwrap();
}

/// With nobody holding the invitation, the wait ends when the invitation expires and the
/// last connection past TLS is gone; a stranger that left is reported as `Disconnected`.
#[tokio::test]
async fn a_new_link_with_only_strangers_ends_when_it_expires() {
    tokio::time::timeout(LIMIT, async {
        let settings = LinkSettings {
            tls_timeout: Duration::from_millis(1500),
            ..LinkSettings::default()
        };
        let (listening, _inv) = start_controller(HostPairing::new().unwrap(), &settings)
            .await
            .unwrap();
        let addr = listening_addr(&listening);
        let started = Instant::now();
        let ctrl = tokio::spawn(listening.connect(|_| {}));
        let mut leaver = stranger_tls(Ipv4Addr::LOCALHOST, addr).await.unwrap();
        leaver.shutdown().await.unwrap();
        let err = ctrl.await.unwrap().unwrap_err();
        assert!(matches!(err, RemoteHostError::Disconnected), "{err}");
        assert!(
            started.elapsed() >= Duration::from_millis(1400),
            "the link stays open for its lifetime"
        );
    })
    .await
    .unwrap();
}

/// The host is past TLS and its user is comparing codes; then strangers complete TLS with
/// certificates of their own and sit silent: more of them than there are places for waiting
/// connections, from addresses of their own and from the host's own address. The host, which
/// came first, keeps its place and links when its user confirms. (With the first admission
/// policy the oldest waiting connection — always the host — was pushed out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_arriving_later_do_not_push_out_a_waiting_host() {
    tokio::time::timeout(LIMIT, async {
        let settings = LinkSettings::default();
        let (ctrl, inv, addr, events) = connect_recording(&settings).await;
        let opts = settings.host_options(&inv, None).unwrap();
        let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
        let code = pending.session_code().to_owned();

        let admission = Admission::default();
        let mut strangers = Vec::new();
        for i in 0..admission.max_waiting + 8 {
            let from = Ipv4Addr::new(127, 0, 1, 10 + i as u8);
            strangers.push(stranger_tls(from, addr).await.unwrap());
        }
        for _ in 0..admission.max_waiting_per_source + 2 {
            strangers.push(stranger_tls(Ipv4Addr::LOCALHOST, addr).await.unwrap());
        }
        // Let the controller book every one of them.
        tokio::time::sleep(Duration::from_millis(300)).await;

        pending.verify(&code).await.expect("the waiting host links");
        let connected = ctrl.await.unwrap().expect("the controller takes the host");
        assert_eq!(connected.session_code, code);
        assert!(
            !connected.contested.is_empty(),
            "the strangers still waiting are reported"
        );
        let events = events.lock().unwrap().clone();
        assert!(
            !events.iter().any(|e| matches!(e,
                WaitEvent::Withdrawn { code: c, .. } if *c == code)),
            "{events:?}"
        );
        drop(strangers);
    })
    .await
    .unwrap();
}
