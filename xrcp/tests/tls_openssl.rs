//! Independent check of the tls-unique recovery against OpenSSL 3 (CPython's `ssl`):
//! `get_channel_binding('tls-unique')` is the client Finished on both sides (spec/xrcp.md
//! §6.5), so the Python peer and our side must print the same bytes.
//!
//! Needs `python3` (and, for the SNI case, the `openssl` command) on PATH; if they are missing
//! the tests fail rather than skip. OpenSSL cannot validate an extension-less CA, so an
//! OpenSSL peer that verifies our chain gets one made by a CA with basicConstraints
//! (`support::test_ca(.., true)`); where OpenSSL does not verify (Python client), our side
//! presents genuine reference-shaped credentials.

#[path = "interop/tls_support.rs"]
mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use support::{pem, pkcs8_v1, test_ca, test_leaf, Tapped, TempDir, STEP};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout, Command};
use xrcp::tls::{
    accept, client_config_for_testing, connect, fingerprint, server_config, CaRole, Pin,
    SessionCredentials, TestKnobs, TlsIdentity, TlsSession, TlsStream,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/tls_peer.py");
const CHACHA: &str = "TLS_CHACHA20_POLY1305_SHA256";

/// A chain OpenSSL accepts (CA with basicConstraints) and its files for the Python side.
struct OpensslPeerFiles {
    _dir: TempDir,
    chain: String,
    key: String,
    ca: String,
}

/// Credentials made by a basicConstraints CA: for our side when OpenSSL verifies us, and
/// for the Python side always. Returns the credentials, the CA DER and PEM files.
fn openssl_friendly(tag: &str) -> (SessionCredentials, Vec<u8>, OpensslPeerFiles) {
    let ca = test_ca("ca", true);
    let (leaf, key_v2) = test_leaf(&ca.issuer);
    let dir = TempDir::new(tag);
    let chain = dir.write(
        "chain.pem",
        &(pem("CERTIFICATE", &leaf) + &pem("CERTIFICATE", &ca.der)),
    );
    let key = dir.write("key.pem", &pem("PRIVATE KEY", &pkcs8_v1(&key_v2)));
    let ca_file = dir.write("ca.pem", &pem("CERTIFICATE", &ca.der));
    let creds = SessionCredentials::from_parts(vec![leaf, ca.der.clone()], key_v2);
    let files = OpensslPeerFiles {
        chain: chain.display().to_string(),
        key: key.display().to_string(),
        ca: ca_file.display().to_string(),
        _dir: dir,
    };
    (creds, ca.der, files)
}

struct PythonPeer {
    child: Child,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

fn spawn_python(args: &[&str]) -> PythonPeer {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be on PATH for the OpenSSL interop tests");
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    PythonPeer { child, stdout }
}

impl PythonPeer {
    async fn line(&mut self) -> String {
        tokio::time::timeout(STEP, self.stdout.next_line())
            .await
            .expect("python peer timed out")
            .unwrap()
            .unwrap_or_default()
    }

    /// Reads the remaining `key=value` lines and checks the exit status.
    async fn finish(mut self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("python peer did not exit")
            .unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr).await;
        }
        assert!(status.success(), "python peer failed: {stderr}");
        out
    }
}

/// After the handshake each side sends its tls-unique hex line; returns the peer's line.
async fn swap_lines<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut TlsStream<S>,
    ours: &str,
) -> String {
    tokio::time::timeout(STEP, async {
        tls.write_all(format!("{ours}\n").as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") && got.len() < 256 {
            if tls.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            got.push(byte[0]);
        }
        String::from_utf8(got).unwrap().trim().to_owned()
    })
    .await
    .expect("line exchange timed out")
}

fn assert_agree(session: &TlsSession, over_tls: &str, python: &HashMap<String, String>) {
    let ours = hex::encode(session.tls_unique.as_slice());
    assert_eq!(session.tls_unique.len(), 32);
    assert_eq!(
        python.get("tls_unique"),
        Some(&ours),
        "OpenSSL's tls-unique"
    );
    assert_eq!(over_tls, ours, "value OpenSSL sent over the channel");
    assert_eq!(python.get("peer"), Some(&ours), "value OpenSSL received");
    assert_eq!(python.get("cipher").map(String::as_str), Some(CHACHA));
}

/// Our client against an OpenSSL server; `groups` is the server's OpenSSL Groups list.
async fn rust_client_vs_openssl_server(knobs: TestKnobs, groups: &str) -> TlsSession {
    let (our_creds, _, our_files) = openssl_friendly("ours");
    let (_, their_ca, their_files) = openssl_friendly("theirs");
    let mut peer = spawn_python(&[
        "server",
        "--chain",
        &their_files.chain,
        "--key",
        &their_files.key,
        "--ca",
        &our_files.ca,
        "--groups",
        groups,
    ]);
    let port_line = peer.line().await;
    let port = port_line
        .strip_prefix("port=")
        .unwrap_or_else(|| panic!("unexpected first line {port_line:?}"));
    let config =
        client_config_for_testing(&our_creds, Pin::Fingerprint(fingerprint(&their_ca)), knobs)
            .unwrap();
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let (mut tls, session) = tokio::time::timeout(STEP, connect(tcp, &config))
        .await
        .expect("handshake timed out")
        .unwrap();
    let over_tls = swap_lines(&mut tls, &hex::encode(session.tls_unique.as_slice())).await;
    let python = peer.finish().await;
    assert_agree(&session, &over_tls, &python);
    assert_eq!(session.peer_ca_fingerprint, fingerprint(&their_ca));
    session
}

/// An OpenSSL client against our server presenting reference-shaped (extension-less)
/// credentials; `groups` is the client's OpenSSL Groups list.
async fn openssl_client_vs_rust_server(groups: &str) -> TlsSession {
    let controller = TlsIdentity::generate(CaRole::Controller).unwrap();
    let (_, their_ca, their_files) = openssl_friendly("client");
    let config = server_config(
        &controller.session_credentials().unwrap(),
        Pin::Fingerprint(fingerprint(&their_ca)),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let peer = spawn_python(&[
        "client",
        "--chain",
        &their_files.chain,
        "--key",
        &their_files.key,
        "--port",
        &port,
        "--groups",
        groups,
    ]);
    let (tcp, _) = tokio::time::timeout(STEP, listener.accept())
        .await
        .expect("python client did not connect")
        .unwrap();
    let (mut tls, session) = tokio::time::timeout(STEP, accept(tcp, &config))
        .await
        .expect("handshake timed out")
        .unwrap();
    let over_tls = swap_lines(&mut tls, &hex::encode(session.tls_unique.as_slice())).await;
    let python = peer.finish().await;
    assert_agree(&session, &over_tls, &python);
    assert_eq!(session.peer_ca_fingerprint, fingerprint(&their_ca));
    session
}

#[tokio::test]
async fn rust_client_matches_openssl_server() {
    let session = rust_client_vs_openssl_server(TestKnobs::default(), "X25519").await;
    assert!(!session.hello_retried);
}

#[tokio::test]
async fn openssl_client_matches_rust_server() {
    let session = openssl_client_vs_rust_server("X25519").await;
    assert!(!session.hello_retried);
}

/// OpenSSL 3.0 sends a key share for its first group only; P-256 first makes our
/// X25519-only server answer HelloRetryRequest (as it must for a Haskell client's X448).
#[tokio::test]
async fn openssl_client_after_hello_retry_matches_rust_server() {
    let session = openssl_client_vs_rust_server("P-256:X25519").await;
    assert!(session.hello_retried);
}

/// Our client leading with a P-256 share against an X25519-only OpenSSL server.
#[tokio::test]
async fn rust_client_after_hello_retry_matches_openssl_server() {
    let knobs = TestKnobs {
        kx_groups: Some(vec![
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::X25519,
        ]),
        ..TestKnobs::default()
    };
    let session = rust_client_vs_openssl_server(knobs, "X25519").await;
    assert!(session.hello_retried);
}

#[tokio::test]
async fn fragmented_rust_client_matches_openssl_server() {
    let knobs = TestKnobs {
        max_fragment_size: Some(64),
        ..TestKnobs::default()
    };
    rust_client_vs_openssl_server(knobs, "X25519").await;
}

/// Haskell hosts send SNI even for an IP literal (spec/xrcp.md §6.1); Python never does, so
/// `openssl s_client -servername 127.0.0.1` plays that client here.
#[tokio::test]
async fn server_tolerates_ip_literal_sni() {
    let controller = TlsIdentity::generate(CaRole::Controller).unwrap();
    let (_, their_ca, files) = openssl_friendly("sni");
    let config: Arc<_> = server_config(
        &controller.session_credentials().unwrap(),
        Pin::Fingerprint(fingerprint(&their_ca)),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "127.0.0.1",
            "-tls1_3",
            "-ciphersuites",
            CHACHA,
            "-cert",
            &files.chain,
            "-cert_chain",
            &files.ca,
            "-key",
            &files.key,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl must be on PATH for the SNI interop test");
    let (tcp, _) = tokio::time::timeout(STEP, listener.accept())
        .await
        .expect("openssl s_client did not connect")
        .unwrap();
    let tapped = Tapped::new(tcp);
    let received = tapped.read.clone();
    let (_tls, session) = tokio::time::timeout(STEP, accept(tapped, &config))
        .await
        .expect("handshake timed out")
        .unwrap();
    assert_eq!(session.tls_unique.len(), 32);
    assert_eq!(session.peer_ca_fingerprint, fingerprint(&their_ca));
    let hello = received.lock().unwrap().clone();
    assert!(
        hello.windows(9).any(|w| w == b"127.0.0.1"),
        "the ClientHello carried the IP literal as SNI"
    );
    drop(client.stdin.take());
    let _ = tokio::time::timeout(STEP, client.wait()).await;
}
