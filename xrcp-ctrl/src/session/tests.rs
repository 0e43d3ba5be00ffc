//! Host HTTP/2 server and controller HTTP/2 client end to end over an in-memory duplex
//! stream (no network, no TLS): commands, the event long-poll, files, and rejected
//! messages (spec/xrcp.md §10). Kept here rather than in `xrcp/tests` so that the core
//! crate's tests do not depend on the two role crates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xrcp::crypto::chain::{chain_init, HybridSecret};
use xrcp::crypto::keys::Ed25519SecretKey;
use xrcp::handshake::SessionKeys;
use xrcp::session::{
    CryptoFile, FileDigest, PlatformEncoding, RRResult, RemoteCommand, RemoteFile,
    RemoteProtocolError, RemoteResponse, RemoteSession, RemoteSignatures, SessionSecrets,
};

use super::{CtrlSessionConfig, HostEvent, RemoteHostClient};
use xrcp_host::session::{
    serve_session, FolderFile, FolderStore, HostApp, HostAppError, HostSessionConfig, OutgoingFile,
};

// Fixed keys and session pairs, as the handshake would leave them.

const TLS_UNIQUE: [u8; 32] = [0x5a; 32];
const HYBRID: [u8; 32] = [0x42; 32];
/// RFC 8032 test 1 secret (session key) and test 2 secret (identity key).
const SESSION_KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const IDENTITY_KEY: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn key(hex_str: &str) -> Ed25519SecretKey {
    Ed25519SecretKey::from_bytes(hex::decode(hex_str).unwrap().try_into().unwrap())
}

/// Controller and host sessions as the handshake would leave them: `chain_init` of a fixed
/// hybrid secret, the controller's send chain (= the host's receive chain) stepped once by
/// the controller HELLO.
fn pair_with(
    hybrid: [u8; 32],
    ctrl_unique: &[u8],
    host_unique: &[u8],
    ctrl_compress: bool,
    host_compress: bool,
) -> (RemoteSession, RemoteSession) {
    let sess = key(SESSION_KEY);
    let id = key(IDENTITY_KEY);
    let (mut a, b) = chain_init(&HybridSecret::from_bytes(hybrid));
    let _hello = a.advance();
    let (mut a2, b2) = chain_init(&HybridSecret::from_bytes(hybrid));
    let _hello = a2.advance();
    let ctrl = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(ctrl_unique, a, b),
            RemoteSignatures::Sign {
                session_key: sess.clone(),
                identity_key: id.clone(),
            },
        ),
        ctrl_compress,
    )
    .unwrap();
    let host = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(host_unique, b2, a2),
            RemoteSignatures::Verify {
                session_key: sess.public(),
                identity_key: id.public(),
            },
        ),
        host_compress,
    )
    .unwrap();
    (ctrl, host)
}

fn pair(compression: bool) -> (RemoteSession, RemoteSession) {
    pair_with(HYBRID, &TLS_UNIQUE, &TLS_UNIQUE, compression, compression)
}

/// A stand-in chat application.
struct ToyApp {
    store: FolderStore,
}

impl HostApp for ToyApp {
    type Stored = FolderFile;
    type Reader = xrcp_host::session::FileReader;

    async fn execute(&self, command: String, retry_number: i64) -> RRResult {
        match command.as_str() {
            "/fail" => {
                RRResult::Error(json!({"type": "error", "errorType": {"type": "noActiveUser"}}))
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                RRResult::Result(json!({"type": "cmdOk"}))
            }
            _ => {
                RRResult::Result(json!({"type": "echo", "command": command, "retry": retry_number}))
            }
        }
    }

    async fn store_file(&self, file_name: String, _size: u32) -> Result<FolderFile, HostAppError> {
        self.store.create(&file_name).await
    }

    async fn get_file(
        &self,
        file: RemoteFile,
    ) -> Result<OutgoingFile<xrcp_host::session::FileReader>, HostAppError> {
        if file.user_id != 1 {
            return Err(HostAppError::Chat(
                json!({"type": "error", "errorType": {"type": "differentActiveUser"}}),
            ));
        }
        let name = Path::new(&file.file_source.file_path)
            .file_name()
            .ok_or_else(|| HostAppError::Chat(json!({"type": "errorStore"})))?;
        OutgoingFile::open(&self.store.dir().join(name)).await
    }
}

struct Setup {
    client: RemoteHostClient,
    events: mpsc::Receiver<HostEvent>,
    host_events: mpsc::Sender<RRResult>,
    server: JoinHandle<Result<(), RemoteProtocolError>>,
    host_dir: tempfile::TempDir,
}

fn ctrl_config() -> CtrlSessionConfig {
    CtrlSessionConfig {
        recv_wait: Duration::from_millis(200),
        ..CtrlSessionConfig::default()
    }
}

/// Host server on one end of a duplex.
async fn start_host(
    host_io: DuplexStream,
    host: RemoteSession,
) -> (
    JoinHandle<Result<(), RemoteProtocolError>>,
    mpsc::Sender<RRResult>,
    tempfile::TempDir,
) {
    let host_dir = tempfile::tempdir().unwrap();
    let app = Arc::new(ToyApp {
        store: FolderStore::new(host_dir.path()),
    });
    let (host_events, events_rx) = mpsc::channel(16);
    let host = host.into_host().unwrap();
    let server = tokio::spawn(async move {
        serve_session(
            host_io,
            xrcp::tls::PeerEnd::default(),
            host,
            app,
            events_rx,
            &HostSessionConfig::default(),
        )
        .await
    });
    (server, host_events, host_dir)
}

async fn start(compression: bool) -> Setup {
    let (ctrl_io, host_io) = tokio::io::duplex(256 << 10);
    let (ctrl, host) = pair(compression);
    // The controller writes the HTTP/2 preface during `connect`, before the host reads.
    let (client, events) = RemoteHostClient::connect(
        ctrl_io,
        ctrl.into_controller().unwrap(),
        PlatformEncoding::Kotlin,
        ctrl_config(),
    )
    .await
    .unwrap();
    let (server, host_events, host_dir) = start_host(host_io, host).await;
    Setup {
        client,
        events,
        host_events,
        server,
        host_dir,
    }
}

fn test_data(n: usize) -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn echo(client: &RemoteHostClient, text: &str) -> serde_json::Value {
    match client.send_command(text, 0).await.unwrap() {
        RRResult::Result(v) => v,
        RRResult::Error(e) => panic!("chat error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_events_run_concurrently() {
    for compression in [false, true] {
        let mut s = start(compression).await;
        assert_eq!(echo(&s.client, "/u").await["command"], "/u");

        // Many commands in flight at once, while the long-poll is open.
        let slow = {
            let c = s.client.clone();
            tokio::spawn(async move { c.send_command("/slow", 0).await })
        };
        let mut handles = Vec::new();
        for i in 0..20 {
            let c = s.client.clone();
            handles.push(tokio::spawn(async move {
                let r = c.send_command(&format!("/c {i}"), i).await.unwrap();
                (i, r)
            }));
        }
        for h in handles {
            let (i, r) = h.await.unwrap();
            assert_eq!(
                r,
                RRResult::Result(json!({"type": "echo", "command": format!("/c {i}"), "retry": i}))
            );
        }
        assert_eq!(
            slow.await.unwrap().unwrap(),
            RRResult::Result(json!({"type": "cmdOk"}))
        );

        // Chat errors are results, not session failures.
        assert_eq!(
            s.client.send_command("/fail", 0).await.unwrap(),
            RRResult::Error(json!({"type": "error", "errorType": {"type": "noActiveUser"}}))
        );

        // Events come out of the background poll in order, also after idle polls.
        tokio::time::sleep(Duration::from_millis(450)).await;
        for n in 0..3 {
            s.host_events
                .send(RRResult::Result(json!({"type": "newChatItems", "n": n})))
                .await
                .unwrap();
        }
        for n in 0..3 {
            let ev = tokio::time::timeout(Duration::from_secs(5), s.events.recv())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(
                ev,
                RRResult::Result(json!({"type": "newChatItems", "n": n}))
            );
        }
        // A direct poll with nothing queued times out with no event.
        assert_eq!(
            s.client.recv(Duration::from_millis(50)).await.unwrap(),
            None
        );

        drop(s.client);
        let ended = tokio::time::timeout(Duration::from_secs(5), s.server).await;
        assert!(ended.unwrap().unwrap().is_ok(), "host sees a clean close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_notices_when_the_host_goes_away() {
    let mut s = start(false).await;
    assert_eq!(echo(&s.client, "/u").await["command"], "/u");
    assert!(!s.client.is_closed());
    s.server.abort();
    tokio::time::timeout(Duration::from_secs(5), s.client.closed())
        .await
        .unwrap();
    assert!(s.client.is_closed());
    assert!(matches!(
        s.client.send_command("/u", 0).await,
        Err(RemoteProtocolError::Http2(_))
    ));
    // The poll task stops and the event stream ends (possibly after one last error).
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = s.events.recv().await {
            assert!(ev.is_err());
        }
    })
    .await;
    assert!(drained.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_and_get_round_trip() {
    let s = start(true).await;
    let local = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let data = test_data(size);
    let src = local.path().join("photo.jpg");
    tokio::fs::write(&src, &data).await.unwrap();
    let digest = FileDigest::of(&data);

    let t0 = Instant::now();
    let mut last = (0, 0);
    let stored = s
        .client
        .store_file_path(&src, &mut |done, total| last = (done, total))
        .await
        .unwrap();
    let t_store = t0.elapsed();
    assert_eq!(stored, "photo.jpg");
    assert_eq!(last, (size as u64, size as u64));
    let on_host = tokio::fs::read(s.host_dir.path().join("photo.jpg"))
        .await
        .unwrap();
    assert_eq!(FileDigest::of(&on_host), digest);

    // Same name again gets a unique name.
    let small = b"small file".to_vec();
    let again = s
        .client
        .store_file(
            &small[..],
            small.len() as u32,
            FileDigest::of(&small),
            "photo.jpg",
            &mut |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(again, "photo_1.jpg");

    let remote = RemoteFile {
        user_id: 1,
        file_id: 7,
        sent: false,
        file_source: CryptoFile {
            file_path: "photo.jpg".into(),
            crypto_args: None,
        },
    };
    let dest_dir = tempfile::tempdir().unwrap();
    let t1 = Instant::now();
    let mut got_progress = 0;
    let path: PathBuf = s
        .client
        .get_file_to_dir(&remote, dest_dir.path(), &mut |done, _| got_progress = done)
        .await
        .unwrap();
    let t_get = t1.elapsed();
    assert_eq!(got_progress, size as u64);
    let back = tokio::fs::read(&path).await.unwrap();
    assert_eq!(FileDigest::of(&back), digest);
    assert_eq!(back.len(), size);
    eprintln!("8 MiB store {t_store:?}, get {t_get:?}");

    // Host-side chat errors for getFile are unexpected responses.
    let other_user = RemoteFile {
        user_id: 2,
        ..remote.clone()
    };
    let err = s
        .client
        .get_file_to_dir(&other_user, dest_dir.path(), &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteProtocolError::UnexpectedResponse(r) if r.contains("differentActiveUser")),
        "{err:?}"
    );
    // A missing file is a protocol error from the host; nothing is left behind.
    let missing = RemoteFile {
        file_source: CryptoFile {
            file_path: "nope.bin".into(),
            crypto_args: None,
        },
        ..remote.clone()
    };
    assert!(s
        .client
        .get_file_to_dir(&missing, dest_dir.path(), &mut |_, _| {})
        .await
        .is_err());
    assert!(!dest_dir.path().join("nope.bin").exists());
    assert!(!dest_dir.path().join("nope.bin.part").exists());

    // A wrong digest is refused by the host and the upload is discarded.
    let err = s
        .client
        .store_file(
            &small[..],
            small.len() as u32,
            FileDigest::of(b"x"),
            "bad.txt",
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err, RemoteProtocolError::FileDigest);
    assert!(!s.host_dir.path().join("bad.txt").exists());

    // The same from the size on which the digest is computed on its own thread.
    let large = test_data(xrcp::session::http2::PARALLEL_DIGEST_MIN as usize + 100);
    let mut wrong = FileDigest::of(&large);
    wrong.0[63] ^= 1;
    let err = s
        .client
        .store_file(
            &large[..],
            large.len() as u32,
            wrong,
            "bad-large.bin",
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err, RemoteProtocolError::FileDigest);
    assert!(!s.host_dir.path().join("bad-large.bin").exists());

    // A reader shorter than announced fails locally; the host discards its partial file.
    let err = s
        .client
        .store_file(
            &small[..],
            small.len() as u32 + 5,
            FileDigest::of(&small),
            "short.txt",
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err, RemoteProtocolError::FileSize);

    // The host refuses an upload before reading it (bad name): the early answer arrives
    // although most of the 2 MiB attachment (twice the stream window) was never read.
    let big = test_data(2 << 20);
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        s.client.store_file(
            &big[..],
            big.len() as u32,
            FileDigest::of(&big),
            "..",
            &mut |_, _| {},
        ),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, RemoteProtocolError::Exception(_)), "{err:?}");

    // The session is still fine.
    assert_eq!(echo(&s.client, "/after").await["command"], "/after");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!s.host_dir.path().join("short.txt").exists());
}

/// Drives the host with hand-made bodies from a raw h2 client, checking each rejection and
/// that the session keeps serving valid commands afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_each_rejected_message() {
    let (ctrl_io, host_io) = tokio::io::duplex(256 << 10);
    let (mut ctrl, host) = pair(false);
    let (send_request, connection) = h2::client::handshake(ctrl_io).await.unwrap();
    tokio::spawn(connection);
    let (server, _host_events, _dir) = start_host(host_io, host).await;

    async fn post(sr: &h2::client::SendRequest<Bytes>, body: Vec<u8>) -> Vec<u8> {
        let mut sr = sr.clone().ready().await.unwrap();
        let req = http::Request::post("https://0.0.0.0/").body(()).unwrap();
        let (resp, mut stream) = sr.send_request(req, false).unwrap();
        stream.send_data(Bytes::from(body), true).unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    }
    let cmd = |t: &str| RemoteCommand::Send {
        command: t.into(),
        retry_number: 0,
    };
    let expect_ok = |ctrl: &mut RemoteSession, bytes: &[u8], t: &str| {
        let (resp, _, _) = ctrl.decode_response(bytes).unwrap();
        assert_eq!(
            resp,
            RemoteResponse::ChatResponse {
                chat_response: RRResult::Result(json!({"type": "echo", "command": t, "retry": 0}))
            }
        );
    };
    let expect_err = |ctrl: &mut RemoteSession, bytes: &[u8], want: RemoteProtocolError| {
        let (resp, _, _) = ctrl.decode_response(bytes).unwrap();
        assert_eq!(
            resp,
            RemoteResponse::ProtocolError {
                remote_procotol_error: want
            }
        );
    };

    let first = ctrl.encode_command(&cmd("/one")).unwrap();
    let r = post(&send_request, first.bytes.clone()).await;
    expect_ok(&mut ctrl, &r, "/one");

    // Replay.
    let r = post(&send_request, first.bytes.clone()).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::DuplicateId);

    // Bad signature, then the genuine body with that id still works.
    let second = ctrl.encode_command(&cmd("/two")).unwrap();
    let mut forged = second.bytes.clone();
    let n = forged.len();
    forged[n - 3] ^= 1;
    let r = post(&send_request, forged).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::CTRL_AUTH);
    let r = post(&send_request, second.bytes).await;
    expect_ok(&mut ctrl, &r, "/two");

    // Wrong tls-unique, correctly keyed and signed.
    let (mut wrong_code, _) = pair_with(HYBRID, &[7; 32], &TLS_UNIQUE, false, false);
    for _ in 0..2 {
        wrong_code.keys_mut().snd_keys().unwrap();
    }
    let bad = wrong_code.encode_command(&cmd("/x")).unwrap();
    assert_eq!(bad.corr_id, 3);
    ctrl.keys_mut().snd_keys().unwrap(); // id 3 is now spent on the host
    let r = post(&send_request, bad.bytes).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::SessionCode);

    // Signed but encrypted under the wrong key: DECRYPT.
    let snd = ctrl.keys_mut().snd_keys().unwrap();
    let body = ctrl
        .crypto()
        .encrypt_encode_body(snd.corr_id, &snd.keys.file, &cmd("/x").to_json_bytes())
        .unwrap();
    let r = post(&send_request, body).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::DECRYPT);

    // Valid crypto, invalid JSON.
    let junk = ctrl.encode(b"not json").unwrap();
    let r = post(&send_request, junk.bytes).await;
    let (resp, _, _) = ctrl.decode_response(&r).unwrap();
    assert!(matches!(
        resp,
        RemoteResponse::ProtocolError {
            remote_procotol_error: RemoteProtocolError::InvalidJson(_)
        }
    ));

    // Too far ahead.
    for _ in 0..300 {
        ctrl.keys_mut().snd_keys().unwrap();
    }
    let far = ctrl.encode_command(&cmd("/far")).unwrap();
    let r = post(&send_request, far.bytes).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::ManySkippedIds(301));

    // Garbage and empty bodies.
    let r = post(&send_request, vec![1, 2, 3]).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::InvalidSize);
    let r = post(&send_request, Vec::new()).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::InvalidSize);
    let mut huge = 99u32.to_be_bytes().to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let r = post(&send_request, huge).await;
    expect_err(&mut ctrl, &r, RemoteProtocolError::InvalidSize);

    // After all that, a fresh controller session with the right window works: rebuild the
    // send side at an id inside the window (the host's last id is 5).
    let (mut fresh, _) = pair(false);
    for _ in 0..5 {
        fresh.keys_mut().snd_keys().unwrap();
    }
    let ok = fresh.encode_command(&cmd("/alive")).unwrap();
    let r = post(&send_request, ok.bytes).await;
    expect_ok(&mut ctrl, &r, "/alive");

    drop(send_request);
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(ended.unwrap().unwrap().is_ok());
}

/// A 50 MiB file stored and fetched back (issue 4). Debug builds optimise the crypto crates
/// (root Cargo.toml), which keeps this around 20 s on a loaded 2-core machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_round_trip() {
    let s = start(false).await;
    let size = 50 << 20;
    let data = test_data(size);
    let digest = FileDigest::of(&data);
    let t0 = Instant::now();
    let stored = s
        .client
        .store_file(&data[..], size as u32, digest, "big.bin", &mut |_, _| {})
        .await
        .unwrap();
    let t_store = t0.elapsed();
    let remote = RemoteFile {
        user_id: 1,
        file_id: 1,
        sent: true,
        file_source: CryptoFile {
            file_path: stored,
            crypto_args: None,
        },
    };
    let mut out = Vec::with_capacity(size);
    let t1 = Instant::now();
    let n = s
        .client
        .get_file(&remote, &mut out, &mut |_, _| {})
        .await
        .unwrap();
    let t_get = t1.elapsed();
    assert_eq!(n as usize, size);
    assert_eq!(FileDigest::of(&out), digest);
    eprintln!("50 MiB store {t_store:?}, get {t_get:?}");
}
