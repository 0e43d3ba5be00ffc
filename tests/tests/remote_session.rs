//! The whole stack on loopback: handshake, HTTP/2 session, the notes application.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use xrcp::message::SignedInvitation;
use xrcp::pairing::HostPairing;
use xrcp::session::{CryptoFile, RRResult, RemoteFile};
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::connect::ControllerOptions;
use xrcp_ctrl::remote::{open_session, ControllerApp, RemoteHost};
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::{prepare_session, HostAppSettings};
use xrcp_host::HostOptions;

type Served = tokio::task::JoinHandle<Result<(), xrcp::session::RemoteProtocolError>>;

/// Links a controller and a host serving the notes app in `dir`; returns the controller's
/// side and the host's serving task.
async fn link(
    dir: &std::path::Path,
    ctrl_compress: bool,
    host_compress: bool,
) -> (RemoteHost, Served) {
    let (remote, host, _socket) = link_with_socket(dir, ctrl_compress, host_compress).await;
    (remote, host)
}

/// [`link`], plus a second handle on the controller's TCP socket (to cut it under TLS).
async fn link_with_socket(
    dir: &std::path::Path,
    ctrl_compress: bool,
    host_compress: bool,
) -> (RemoteHost, Served, std::net::TcpStream) {
    let app = ControllerApp {
        device_name: "desk".into(),
        compression: ctrl_compress,
        ..ControllerApp::default()
    };
    let options = ControllerOptions {
        app: serde_json::to_value(app.info()).unwrap(),
        bind: Ipv4Addr::LOCALHOST,
        candidates: Some(vec![LocalAddress {
            address: Ipv4Addr::LOCALHOST,
            interface: "lo".into(),
        }]),
        ..ControllerOptions::default()
    };
    let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), options)
        .await
        .unwrap();
    let inv = SignedInvitation::parse(&listening.link()).unwrap();
    let ctrl = tokio::spawn(async move {
        let connected = listening.accept().await.unwrap().finish().await.unwrap();
        let fd = std::os::fd::AsFd::as_fd(connected.stream.get_ref())
            .try_clone_to_owned()
            .unwrap();
        (open_session(connected, &app).await.unwrap(), fd)
    });

    let settings = HostAppSettings {
        device_name: "phone".into(),
        compression: host_compress,
        ..HostAppSettings::default()
    };
    let hello = settings.hello_info(&inv.invitation.app).unwrap();
    let opts = HostOptions {
        app: serde_json::to_value(&hello).unwrap(),
        ..HostOptions::default()
    };
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let code = pending.session_code().to_owned();
    let connected = pending.verify(&code).await.unwrap();
    let (served, _pairing) = prepare_session(connected, &settings).unwrap();
    assert_eq!(served.compression, ctrl_compress && host_compress);
    let notes = NotesApp::open(dir).unwrap();
    let events = notes.subscribe();
    let host = tokio::spawn(async move { served.serve(Arc::new(notes), events).await });
    let (remote, fd) = ctrl.await.unwrap();
    assert_eq!(remote.compression, ctrl_compress && host_compress);
    assert_eq!(remote.host_info.device_name, "phone");
    (remote, host, std::net::TcpStream::from(fd))
}

fn result(r: RRResult) -> Value {
    match r {
        RRResult::Result(v) => v,
        RRResult::Error(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn notes_commands_events_and_errors_in_all_compression_modes() {
    for (c, h) in [(true, true), (true, false), (false, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut remote, host) =
            tokio::time::timeout(Duration::from_secs(30), link(dir.path(), c, h))
                .await
                .unwrap();
        let created = result(
            remote
                .client
                .send_command("/note hello from the desk", 0)
                .await
                .unwrap(),
        );
        assert_eq!(created["type"], "noteCreated");
        // The change also arrives through the event long-poll, concurrently.
        let event = tokio::time::timeout(Duration::from_secs(15), remote.events.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event, RRResult::Result(created.clone()));

        let list = result(remote.client.send_command("/notes", 0).await.unwrap());
        assert_eq!(list["notes"][0]["text"], "hello from the desk");
        // An unknown command is an error response, not a protocol failure.
        match remote
            .client
            .send_command("/launch rockets", 0)
            .await
            .unwrap()
        {
            RRResult::Error(e) => assert_eq!(e["type"], "commandError"),
            other => panic!("{other:?}"),
        }
        // Many requests in flight at once.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let client = remote.client.clone();
            tasks.push(tokio::spawn(async move {
                client.send_command(&format!("/note n{i}"), 0).await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap().unwrap(), RRResult::Result(_)));
        }
        let list = result(remote.client.send_command("/notes", 0).await.unwrap());
        assert_eq!(list["notes"].as_array().unwrap().len(), 21);
        // Alternate the two ways a controller leaves: both end with GOAWAY and close_notify,
        // which the host reports as a clean end (a cut is an error, see hardening_faults).
        if c {
            remote.close().await;
        } else {
            drop(remote);
        }
        tokio::time::timeout(Duration::from_secs(10), host)
            .await
            .unwrap()
            .unwrap()
            .expect("a controller that leaves ends the session cleanly");
    }
}

/// A transport that stops without TLS close_notify (here: the controller's socket is shut
/// down under it) is a cut, not a clean end, although HTTP/2 reports both alike.
#[tokio::test]
async fn a_cut_connection_is_an_error_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, host, socket) = link_with_socket(dir.path(), true, true).await;
    result(remote.client.send_command("/notes", 0).await.unwrap());
    socket.shutdown(std::net::Shutdown::Both).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), host)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ended, Err(xrcp::session::RemoteProtocolError::Http2(_))),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_file_is_stored_and_fetched_back_intact() {
    use sha2::{Digest, Sha512};
    let dir = tempfile::tempdir().unwrap();
    let (remote, _host) = link(dir.path(), true, true).await;
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("report.bin");
    // 8 MiB of non-repeating bytes (the 50 MiB case runs in the session layer's own tests).
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let mut progress = Vec::new();
    let stored = remote
        .client
        .store_file_path(&path, &mut |done, total| progress.push((done, total)))
        .await
        .unwrap();
    assert_eq!(stored, "report.bin");
    assert_eq!(
        progress.last().copied(),
        Some((data.len() as u64, data.len() as u64))
    );

    let files = result(remote.client.send_command("/files", 0).await.unwrap());
    let id = files["files"][0]["fileId"].as_i64().unwrap();
    let file = RemoteFile {
        user_id: 1,
        file_id: id,
        sent: false,
        file_source: CryptoFile {
            file_path: stored.clone(),
            crypto_args: None,
        },
    };
    let out = tempfile::tempdir().unwrap();
    let got = remote
        .client
        .get_file_to_dir(&file, out.path(), &mut |_, _| {})
        .await
        .unwrap();
    let back = std::fs::read(got).unwrap();
    assert_eq!(Sha512::digest(&back), Sha512::digest(&data));
}
