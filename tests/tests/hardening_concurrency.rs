//! Hardening: 50 hosts connect to one invitation at the same moment. Exactly one of them
//! completes the HELLO exchange; the other 49 are refused (TLS failure, connection refused
//! or reset, or a HELLO that is never answered), all within their timeouts; the winner's
//! session works; and nothing is left behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;
use xrcp::pairing::HostPairing;
use xrcp::RcError;
use xrcp_ctrl::remote::open_session;
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::prepare_session;
use xrcp_host::RemoteCtrlError;
use xrcp_tests::hardening::{chat_result, start_controller, Baseline, LinkSettings};

const HOSTS: usize = 50;
/// The hosts' step timeout.
const STEP: Duration = Duration::from_secs(2);
/// A host spends at most connect + TLS + HELLO + controller HELLO steps.
const HOST_BOUND: Duration = Duration::from_secs(4 * 2 + 3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_hosts_one_session() {
    let baseline = Baseline::now();
    let started = Instant::now();
    let settings = LinkSettings {
        // Long enough for 50 handshakes to be attempted on a loaded machine.
        tls_timeout: Duration::from_secs(20),
        hello_timeout: Duration::from_secs(20),
        step_timeout: STEP,
        ..LinkSettings::default()
    };
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &settings)
        .await
        .unwrap();
    let app = settings.ctrl_app.clone();
    let ctrl = tokio::spawn(async move {
        let connected = listening.accept().await?.finish().await?;
        let peer = connected.peer;
        open_session(connected, &app).await.map(|r| (r, peer))
    });

    let data = tempfile::tempdir().unwrap();
    let notes = NotesApp::open(data.path()).unwrap();
    let barrier = Arc::new(Barrier::new(HOSTS));
    let mut hosts = Vec::new();
    for _ in 0..HOSTS {
        let barrier = Arc::clone(&barrier);
        let inv = inv.clone();
        let opts = settings.host_options(&inv, None).unwrap();
        let host_app = settings.host_app.clone();
        let notes = notes.clone();
        hosts.push(tokio::spawn(async move {
            barrier.wait().await;
            let t = Instant::now();
            let result = async {
                let pending = xrcp_host::connect(inv, None, opts).await?;
                let code = pending.session_code().to_owned();
                pending.verify(&code).await
            }
            .await;
            let result = match result {
                Ok(connected) => {
                    let local = connected.stream.get_ref().local_addr().unwrap();
                    let (served, _) = prepare_session(connected, &host_app).unwrap();
                    let events = notes.subscribe();
                    // The winner serves until the controller leaves.
                    let serving =
                        tokio::spawn(async move { served.serve(Arc::new(notes), events).await });
                    Ok((local, serving))
                }
                Err(e) => Err(e),
            };
            (result, t.elapsed())
        }));
    }

    let mut winners = Vec::new();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for h in hosts {
        let (result, took) = tokio::time::timeout(HOST_BOUND + Duration::from_secs(2), h)
            .await
            .expect("every host ends")
            .unwrap();
        slowest = slowest.max(took);
        assert!(took <= HOST_BOUND, "a host took {took:?}");
        match result {
            Ok(w) => winners.push(w),
            Err(e) => {
                let kind = match &e {
                    RemoteCtrlError::Protocol(RcError::Exception(m)) => {
                        format!("EXCEPTION {}", m.split(':').next().unwrap_or(""))
                    }
                    RemoteCtrlError::Protocol(RcError::BlockSize) => "BLOCK_SIZE".into(),
                    // The listener closed once the winner was accepted; a host scheduled
                    // late dials a closed port.
                    RemoteCtrlError::Dial { source, .. }
                        if matches!(
                            source.kind(),
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        "connection refused or reset".into()
                    }
                    // Closed before the first byte of an answer to its HELLO.
                    RemoteCtrlError::ControllerStoppedWaiting => "DISCONNECTED".into(),
                    RemoteCtrlError::Timeout(xrcp_host::Stage::CtrlHello) => {
                        "HELLO never answered".into()
                    }
                    other => panic!("a host failed otherwise than by refusal: {other:?}"),
                };
                *refusals.entry(kind).or_default() += 1;
            }
        }
    }
    println!(
        "refusals: {refusals:?}; slowest host {} ms",
        slowest.as_millis()
    );
    assert_eq!(
        winners.len(),
        1,
        "exactly one host completes the HELLO exchange"
    );
    assert_eq!(refusals.values().sum::<usize>(), HOSTS - 1);

    let (remote, peer) = tokio::time::timeout(Duration::from_secs(10), ctrl)
        .await
        .expect("controller ends")
        .unwrap()
        .expect("controller session");
    let (winner_addr, serving) = winners.pop().unwrap();
    assert_eq!(
        peer, winner_addr,
        "the controller's session is the winner's"
    );
    let created = chat_result(remote.client.send_command("/note one of fifty", 0).await).unwrap();
    assert_eq!(created["type"], "noteCreated");
    let list = chat_result(remote.client.send_command("/notes", 0).await).unwrap();
    assert_eq!(list["notes"].as_array().map(Vec::len), Some(1));
    drop(remote);
    let _served = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the winner's session ends after the controller left")
        .unwrap();
    drop(notes);
    println!("total {} ms", started.elapsed().as_millis());
    baseline.check(Duration::from_secs(3)).await.unwrap();
}
