//! Hardening: a full session — handshake, a command, a small file stored and fetched back —
//! with every `tracing` event at TRACE level (ours, h2's, and rustls's `log` records through
//! the `tracing-log` bridge) captured into a buffer. No secret the public API lets us see may
//! appear in it, in hex, base64/base64url, `Debug` or raw form, whole or in part: the
//! tls-unique bytes, the session code, the chain keys and the message keys they yield, the
//! controller's session and identity signing keys, the CA keys and the host's DH key from
//! both pairings.
//!
//! Secrets internal to the handshake (the X25519 session key, the KEM key pair and shared
//! secret, the hybrid secret, the HELLO box key, TLS leaf keys and traffic secrets) are not
//! reachable through the API; the chain keys derived from them are checked instead.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use xrcp::codec::text::base64url_decode;
use xrcp::crypto::ChainKey;
use xrcp::pairing::HostPairing;
use xrcp::session::{CryptoFile, RemoteFile};
use xrcp_ctrl::remote::open_session;
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::prepare_session;
use xrcp_tests::hardening::{chat_result, find_leaks, start_controller, LinkSettings};

/// Chain steps derived per chain (each message takes two; a session of a few commands and
/// polls uses far fewer).
const CHAIN_STEPS: usize = 64;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the global subscriber (TRACE, no colours) and the `log` bridge.
    fn install() -> Captured {
        let captured = Captured::default();
        let buf = Arc::clone(&captured.0);
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&buf)))
            .try_init()
            .expect("global subscriber and log bridge installed once");
        captured
    }

    fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The 32-byte seed of a PKCS#8 Ed25519 key (v1 or v2): after `OCTET STRING { OCTET STRING`.
fn ed25519_seed(pkcs8: &[u8]) -> Vec<u8> {
    let at = pkcs8
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .expect("PKCS#8 Ed25519 private key");
    pkcs8[at + 4..at + 36].to_vec()
}

fn decoded(b64: &str) -> Vec<u8> {
    base64url_decode(b64).expect("stored keys are base64url")
}

/// A chain key and everything it yields for `CHAIN_STEPS` steps.
fn chain_secrets(name: &str, chain: &ChainKey, out: &mut Vec<(String, Vec<u8>)>) {
    let mut c = ChainKey::from_bytes(*chain.as_bytes());
    out.push((format!("{name} chain key"), c.as_bytes().to_vec()));
    for step in 1..=CHAIN_STEPS {
        let (key, _nonce) = c.advance();
        out.push((
            format!("{name} message key {step}"),
            key.as_bytes().to_vec(),
        ));
        out.push((format!("{name} chain key {step}"), c.as_bytes().to_vec()));
    }
}

#[test]
fn the_leak_scanner_finds_planted_secrets() {
    let secret: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let secrets = [("planted".to_owned(), secret.clone())];
    let planted = [
        format!("key={}", hex::encode_upper(&secret)),
        format!("part {} of it", hex::encode(&secret[5..22])),
        format!(
            "b64 {}",
            xrcp::codec::text::base64url_encode(&secret[9..30])
        ),
        format!("dbg {:?}", &secret[2..20]),
    ];
    for p in planted {
        assert!(
            !find_leaks(p.as_bytes(), &secrets).is_empty(),
            "not found in {p}"
        );
    }
    let mut raw = b"binary: ".to_vec();
    raw.extend_from_slice(&secret[4..18]);
    assert!(!find_leaks(&raw, &secrets).is_empty());
    assert!(find_leaks(b"nothing to see here", &secrets).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_full_session_hold_no_secrets() {
    let captured = Captured::install();
    let settings = LinkSettings::default();
    let ctrl_pairing = HostPairing::new().unwrap();
    let (listening, inv) = start_controller(ctrl_pairing.clone(), &settings)
        .await
        .unwrap();
    let ctrl = tokio::spawn(async move {
        let pending = listening.accept().await?;
        pending.finish().await
    });
    let opts = settings.host_options(&inv, None).unwrap();
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let code = pending.session_code().to_owned();
    let host = pending.verify(&code).await.unwrap();
    let ctrl = ctrl.await.unwrap().unwrap();
    assert_eq!(ctrl.session_code, code);

    // Copies of every secret we can reach, taken before the session consumes them.
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("tls-unique".into(), ctrl.keys.keys.tls_unique().to_vec()),
        (
            "controller session signing key".into(),
            ctrl.keys.session_key.to_bytes().to_vec(),
        ),
        (
            "controller identity key".into(),
            ctrl.keys.identity_key.to_bytes().to_vec(),
        ),
    ];
    assert_eq!(host.keys.keys.tls_unique(), ctrl.keys.keys.tls_unique());
    chain_secrets("controller send", ctrl.keys.keys.send_chain(), &mut secrets);
    chain_secrets(
        "controller receive",
        ctrl.keys.keys.recv_chain(),
        &mut secrets,
    );
    assert_eq!(
        host.keys.keys.send_chain().as_bytes(),
        ctrl.keys.keys.recv_chain().as_bytes()
    );
    for (when, stored) in [
        ("before", ctrl_pairing.to_stored()),
        ("after", ctrl.pairing.to_stored()),
    ] {
        secrets.push((
            format!("controller CA key ({when})"),
            ed25519_seed(&decoded(&stored.ca_key)),
        ));
        secrets.push((
            format!("controller identity key ({when})"),
            decoded(&stored.id_key),
        ));
    }
    let stored = host.pairing.to_stored();
    secrets.push(("host CA key".into(), ed25519_seed(&decoded(&stored.ca_key))));
    secrets.push(("host DH key".into(), decoded(&stored.dh_priv_key)));
    if let Some(prev) = &stored.prev_dh_priv_key {
        secrets.push(("host previous DH key".into(), decoded(prev)));
    }

    // The session: a command, a small file up and back.
    let remote = open_session(ctrl, &settings.ctrl_app).await.unwrap();
    let (served, _) = prepare_session(host, &settings.host_app).unwrap();
    let data = tempfile::tempdir().unwrap();
    let notes = NotesApp::open(data.path()).unwrap();
    let events = notes.subscribe();
    let serving = tokio::spawn(async move { served.serve(Arc::new(notes), events).await });
    let created = chat_result(remote.client.send_command("/note logged?", 0).await).unwrap();
    assert_eq!(created["type"], "noteCreated");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("small.txt");
    let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let stored = remote
        .client
        .store_file_path(&path, &mut |_, _| {})
        .await
        .unwrap();
    let list = chat_result(remote.client.send_command("/files", 0).await).unwrap();
    let file = RemoteFile {
        user_id: 1,
        file_id: list["files"][0]["fileId"].as_i64().unwrap(),
        sent: false,
        file_source: CryptoFile {
            file_path: stored,
            crypto_args: None,
        },
    };
    let back = files.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let got = remote
        .client
        .get_file_to_dir(&file, &back, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(got).unwrap(), content);
    drop(remote);
    let _served = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();

    let logs = captured.bytes();
    let text = String::from_utf8_lossy(&logs);
    println!(
        "captured {} lines, {} bytes of TRACE output",
        text.lines().count(),
        logs.len()
    );
    // The capture really holds all three sources.
    assert!(
        text.contains("host connected over TLS"),
        "xrcp's own events"
    );
    assert!(
        text.contains("rustls::"),
        "rustls's log records through the bridge"
    );
    assert!(text.contains("h2"), "h2's events");

    let mut leaks = find_leaks(&logs, &secrets);
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    assert!(digits.len() >= 40, "{code}");
    if text.contains(&code) {
        leaks.push(format!("session code found as shown: {code}"));
    }
    for w in digits.as_bytes().windows(16).step_by(4) {
        let w = std::str::from_utf8(w).unwrap();
        if text.contains(w) {
            leaks.push(format!("session code digits found: {w}"));
            break;
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the logs ({} checked):\n{}",
        secrets.len(),
        leaks.join("\n")
    );
}
