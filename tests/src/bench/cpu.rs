//! CPU costs measured in the same run as the loopback figures (the criterion benches in
//! `xrcp/benches/` have the same items in more detail): what session setup is made of, what
//! one command round trip spends in the session layer's crypto, and what one file byte
//! costs in each primitive on its path. The targets (`mod.rs`) are computed from these.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use serde_json::json;
use xrcp::crypto::{
    chain_init, BoxKey, ChainKey, Ed25519SecretKey, HybridSecret, KemKeyPair, KeyHash, Nonce,
    StreamSealer, X25519SecretKey,
};
use xrcp::handshake::{ControllerHandshake, HostHandshake, SessionKeys};
use xrcp::message::{CtrlEncHello, HostEncHello, HostHello, SignedInvitation};
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::session::{
    FileDecryptor, FileDigest, FileEncryptor, RRResult, RemoteCommand, RemoteResponse,
    RemoteSession, RemoteSignatures, SbKeyNonce, SessionSecrets,
};
use xrcp::tls::{recover_client_finished, CaRole, FinishedSuite, TlsIdentity};

use super::fixtures::{server_name, PlainTls, Res};
use super::stats::{micro, micro_batched, Row, Section, Unit};
use super::{Config, Results};

fn ctrl_app() -> serde_json::Value {
    json!({"appVersionRange": {"minVersion": "6.0", "maxVersion": "6.4"}, "deviceName": "bench desktop", "compression": true})
}

fn host_app() -> serde_json::Value {
    json!({"appVersion": "6.4.0", "deviceName": "bench phone", "encoding": "kotlin", "encryptFiles": false, "compression": true})
}

pub(crate) fn controller(pairing: HostPairing) -> Res<ControllerHandshake> {
    Ok(ControllerHandshake::new(
        pairing,
        Ipv4Addr::LOCALHOST,
        40000,
        ctrl_app(),
        1_700_000_000,
    )?)
}

fn known_ctrl(inv: &SignedInvitation) -> Res<CtrlPairing> {
    Ok(CtrlPairing {
        ca: TlsIdentity::generate(CaRole::Host)?,
        ctrl_ca: inv.invitation.ca,
        ctrl_identity: inv.invitation.idkey,
        dh: X25519SecretKey::generate(),
        prev_dh: None,
    })
}

/// A controller session and the host session facing it (no handshake: fixed chains).
pub(crate) fn session_pair(compression: bool) -> Res<(RemoteSession, RemoteSession)> {
    let (a, b) = chain_init(&HybridSecret::from_bytes([1; 32]));
    let copy = |c: &ChainKey| ChainKey::from_bytes(*c.as_bytes());
    let session_key = Ed25519SecretKey::generate();
    let identity_key = Ed25519SecretKey::generate();
    let ctrl = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(&[0x33; 32], copy(&a), copy(&b)),
            RemoteSignatures::Sign {
                session_key: session_key.clone(),
                identity_key: identity_key.clone(),
            },
        ),
        compression,
    )?;
    let host = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(&[0x33; 32], b, a),
            RemoteSignatures::Verify {
                session_key: session_key.public(),
                identity_key: identity_key.public(),
            },
        ),
        compression,
    )?;
    Ok((ctrl, host))
}

/// The command and response the round-trip measurement sends.
pub(crate) fn rtt_command() -> RemoteCommand {
    RemoteCommand::Send {
        command: "/bench".into(),
        retry_number: 0,
    }
}

pub(crate) fn rtt_response() -> RemoteResponse {
    RemoteResponse::ChatResponse {
        chat_response: RRResult::Result(json!({"type": "cmdOk"})),
    }
}

/// Request and response body lengths of one round trip, as XRCP sends them.
pub(crate) fn rtt_body_lengths(compression: bool) -> Res<(usize, usize)> {
    let (mut ctrl, mut host) = session_pair(compression)?;
    let req = ctrl.encode_command(&rtt_command())?.bytes.len();
    let resp = host.encode_response(&rtt_response())?.bytes.len();
    Ok((req, resp))
}

/// Keeps the client handshake traffic secret, as `xrcp::tls`'s key log does.
#[derive(Default, Debug)]
struct SecretLog(Mutex<Option<(Vec<u8>, Vec<u8>)>>);

impl rustls::KeyLog for SecretLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET" {
            *self.0.lock().expect("lock") = Some((client_random.to_vec(), secret.to_vec()));
        }
    }
    fn will_log(&self, label: &str) -> bool {
        label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
    }
}

/// One whole TLS handshake in memory (both roles, no sockets); returns the client's bytes.
fn handshake_in_memory(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Res<Vec<u8>> {
    let mut c = ClientConnection::new(client, server_name())?;
    let mut s = ServerConnection::new(server)?;
    let mut flight = Vec::new();
    let mut buf = Vec::new();
    loop {
        let mut progressed = false;
        while c.wants_write() {
            buf.clear();
            c.write_tls(&mut buf)?;
            flight.extend_from_slice(&buf);
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd)?;
                s.process_new_packets()?;
            }
            progressed = true;
        }
        while s.wants_write() {
            buf.clear();
            s.write_tls(&mut buf)?;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd)?;
                c.process_new_packets()?;
            }
            progressed = true;
        }
        if !progressed && !c.is_handshaking() && !s.is_handshaking() {
            return Ok(flight);
        }
        if !progressed {
            return Err("in-memory handshake stalled".into());
        }
    }
}

fn time_row(s: &mut Section, r: &mut Results, key: &str, name: &str, samples: Vec<f64>) {
    let row = Row::new(name, Unit::Time, &samples);
    r.put(key, row.summary);
    s.row(row);
}

/// Rate row from seconds per `bytes`.
fn rate_row(s: &mut Section, r: &mut Results, key: &str, name: &str, bytes: usize, secs: Vec<f64>) {
    let rates: Vec<f64> = secs.iter().map(|t| bytes as f64 / t / 1e6).collect();
    let row = Row::new(name, Unit::Rate, &rates);
    r.put(key, row.summary);
    s.row(row);
}

/// Session-setup pieces.
pub(crate) fn setup_parts(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("1b. Session setup, CPU breakdown (no sockets)");
    let n = cfg.samples(30);
    let t = Duration::from_millis(if cfg.quick { 2 } else { 20 });

    // The KEM (the "KEM's own cost" of the setup target is the sum of these three).
    time_row(
        &mut s,
        r,
        "kem.keygen",
        "sntrup761 keygen (xrcp::crypto::kem)",
        micro(n, t, KemKeyPair::generate),
    );
    let kp = KemKeyPair::generate();
    time_row(
        &mut s,
        r,
        "kem.encaps",
        "sntrup761 encapsulate",
        micro(n, t, || kp.public().encapsulate()),
    );
    let (ct, _) = kp.public().encapsulate();
    time_row(
        &mut s,
        r,
        "kem.decaps",
        "sntrup761 decapsulate",
        micro(n, t, || kp.decapsulate(&ct)),
    );

    // Keys and certificates.
    time_row(
        &mut s,
        r,
        "keys.x25519",
        "X25519 key generation",
        micro(n, t, X25519SecretKey::generate),
    );
    let a = X25519SecretKey::generate();
    let bp = X25519SecretKey::generate().public();
    time_row(&mut s, r, "keys.dh", "X25519 DH", micro(n, t, || a.dh(&bp)));
    time_row(
        &mut s,
        r,
        "keys.ed25519",
        "Ed25519 key generation",
        micro(n, t, Ed25519SecretKey::generate),
    );
    time_row(
        &mut s,
        r,
        "certs.ca",
        "CA certificate generation (TlsIdentity::generate)",
        micro(n, t, || TlsIdentity::generate(CaRole::Host)),
    );
    let ca = TlsIdentity::generate(CaRole::Controller)?;
    time_row(
        &mut s,
        r,
        "certs.leaf",
        "per-session leaf certificate (session_credentials)",
        micro(n, t, || ca.session_credentials()),
    );

    // Invitation signatures.
    let pairing = HostPairing::new()?;
    let hs = controller(pairing.clone())?;
    let inv = hs.invitation().clone();
    let sk = Ed25519SecretKey::generate();
    let ik = Ed25519SecretKey::generate();
    let mut unsigned = inv.invitation.clone();
    unsigned.skey = sk.public();
    unsigned.idkey = ik.public();
    time_row(
        &mut s,
        r,
        "inv.sign",
        "invitation sign (2 × Ed25519)",
        micro(n, t, || unsigned.clone().sign(&sk, &ik)),
    );
    let link = inv.to_uri();
    time_row(
        &mut s,
        r,
        "inv.parse",
        "invitation parse (link → struct)",
        micro(n, t, || SignedInvitation::parse(&link)),
    );
    time_row(
        &mut s,
        r,
        "inv.verify",
        "invitation verify (2 × Ed25519)",
        micro(n, t, || inv.verify()),
    );

    // HELLO boxes.
    let key = BoxKey::from_bytes([4; 32]);
    let hello = HostHello {
        version: xrcp::codec::version::Version(1),
        ca: KeyHash([9; 32]),
        app: host_app(),
        kem: kp.public().clone(),
    };
    let dh_pub = a.public();
    time_row(
        &mut s,
        r,
        "hello.host_seal",
        "host HELLO seal (JSON, pad 12288, box)",
        micro(n, t, || {
            HostEncHello::seal(&hello, &key, dh_pub, Nonce([1; 24]))
        }),
    );
    let enc = HostEncHello::seal(&hello, &key, dh_pub, Nonce([1; 24]))?;
    time_row(
        &mut s,
        r,
        "hello.host_open",
        "host HELLO open (box, unpad, JSON)",
        micro(n, t, || enc.open(&key)),
    );
    let nonce = Nonce([2; 24]);
    time_row(
        &mut s,
        r,
        "hello.ctrl_seal",
        "controller HELLO seal",
        micro(n, t, || CtrlEncHello::seal_hello(ct.clone(), &key, &nonce)),
    );
    let CtrlEncHello::Hello { ciphertext, .. } =
        CtrlEncHello::seal_hello(ct.clone(), &key, &nonce)?
    else {
        return Err("not a HELLO".into());
    };
    time_row(
        &mut s,
        r,
        "hello.ctrl_open",
        "controller HELLO open",
        micro(n, t, || CtrlEncHello::open_hello(&ciphertext, &key, &nonce)),
    );

    // The state machines' whole steps.
    let nb = cfg.samples(20);
    time_row(
        &mut s,
        r,
        "sansio.ctrl_new",
        "ControllerHandshake::new (keys, invitation, leaf)",
        micro_batched(nb, || pairing.clone(), controller),
    );
    let cp = known_ctrl(&inv)?;
    time_row(
        &mut s,
        r,
        "sansio.host_new",
        "HostHandshake::new, known pairing (verify, DH, KEM keygen, leaf)",
        micro_batched(
            nb,
            || (inv.clone(), cp.clone()),
            |(i, c)| HostHandshake::new(i, Some(c)),
        ),
    );
    let tls_unique = [0x5a; 32];
    let mk = || -> (ControllerHandshake, HostHandshake, Vec<u8>) {
        let ctrl = controller(pairing.clone()).expect("controller");
        let cp = known_ctrl(ctrl.invitation()).expect("pairing");
        let host = HostHandshake::new(ctrl.invitation().clone(), Some(cp)).expect("host");
        let block = host.hello_block(host_app()).expect("block");
        (ctrl, host, block)
    };
    time_row(
        &mut s,
        r,
        "sansio.host_hello_block",
        "HostHandshake::hello_block",
        micro_batched(nb, mk, |(_c, h, _b)| h.hello_block(host_app())),
    );
    time_row(
        &mut s,
        r,
        "sansio.handle_host_hello",
        "ControllerHandshake::handle_host_hello (open, encaps, seal)",
        micro_batched(nb, mk, |(c, h, b)| {
            c.handle_host_hello(&b, h.ca_fingerprint(), &tls_unique)
                .is_ok()
        }),
    );
    time_row(
        &mut s,
        r,
        "sansio.handle_ctrl_hello",
        "HostHandshake::handle_ctrl_hello (decaps, open)",
        micro_batched(
            nb,
            || {
                let (c, h, b) = mk();
                let out = c
                    .handle_host_hello(&b, h.ca_fingerprint(), &tls_unique)
                    .map_err(|e| e.error)
                    .expect("accepted");
                (h, out.reply)
            },
            |(h, reply)| h.handle_ctrl_hello(&reply, &tls_unique).is_ok(),
        ),
    );

    // TLS.
    let tls = PlainTls::new()?;
    time_row(
        &mut s,
        r,
        "tls.configs",
        "client_config + server_config",
        micro(n, t, || {
            (
                xrcp::tls::client_config(&tls.host_creds, tls.ctrl_pin),
                xrcp::tls::server_config(&tls.ctrl_creds, tls.host_pin),
            )
        }),
    );
    time_row(
        &mut s,
        r,
        "tls.handshake_mem",
        "rustls handshake, both roles in memory (pure CPU)",
        micro(n, t, || {
            handshake_in_memory(tls.client.clone(), tls.server.clone()).expect("handshake")
        }),
    );
    let log = Arc::new(SecretLog::default());
    let mut logged = ClientConfig::clone(&tls.client);
    logged.key_log = log.clone();
    let flight = handshake_in_memory(Arc::new(logged), tls.server.clone())?;
    let (random, secret) = log
        .0
        .lock()
        .expect("lock")
        .take()
        .ok_or("no secret logged")?;
    time_row(
        &mut s,
        r,
        "tls.recover",
        "tls-unique recovery alone (recover_client_finished)",
        micro(n, t, || {
            recover_client_finished(
                &flight,
                &random,
                &secret,
                FinishedSuite::Chacha20Poly1305Sha256,
            )
            .expect("recovered")
        }),
    );
    time_row(
        &mut s,
        r,
        "tls.session_code",
        "session code from tls-unique",
        micro(n, t, || xrcp::session_code::session_code(&[0xa5; 32])),
    );

    let kem = r.get("kem.keygen").median + r.get("kem.encaps").median + r.get("kem.decaps").median;
    r.put_value("kem.total", kem);
    s.note(format!(
        "KEM's own cost per session (keygen + encaps + decaps, medians): {}",
        super::stats::fmt_time(kem)
    ));
    Ok(s)
}

/// Per-message costs of one command round trip.
pub(crate) fn message_parts(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("2b. Command round trip, session-layer CPU per message (no sockets)");
    let n = cfg.samples(30);
    let t = Duration::from_millis(if cfg.quick { 2 } else { 20 });
    for compression in [true, false] {
        let tag = if compression { "zstd" } else { "plain" };
        let (mut ctrl, mut host) = session_pair(compression)?;
        let cmd = rtt_command();
        let resp = rtt_response();
        let key = |k: &str| format!("msg.{tag}.{k}");
        time_row(
            &mut s,
            r,
            &key("cmd_encode"),
            &format!("controller: encode command ({tag}: seal + 2 signatures)"),
            micro(n, t, || ctrl.encode_command(&cmd).expect("encode")),
        );
        let (mut ctrl, mut host2) = session_pair(compression)?;
        time_row(
            &mut s,
            r,
            &key("cmd_decode"),
            &format!("host: decode command ({tag}: 2 verifications + open)"),
            micro_batched(
                n * 10,
                || ctrl.encode_command(&cmd).expect("encode").bytes,
                |b| host2.decode_command(&b).map(|_| ()).expect("decode"),
            ),
        );
        time_row(
            &mut s,
            r,
            &key("resp_encode"),
            &format!("host: encode response ({tag})"),
            micro(n, t, || host.encode_response(&resp).expect("encode")),
        );
        let (mut ctrl2, mut host3) = session_pair(compression)?;
        time_row(
            &mut s,
            r,
            &key("resp_decode"),
            &format!("controller: decode response ({tag})"),
            micro_batched(
                n * 10,
                || host3.encode_response(&resp).expect("encode").bytes,
                |b| ctrl2.decode_response(&b).map(|_| ()).expect("decode"),
            ),
        );
        let total = ["cmd_encode", "cmd_decode", "resp_encode", "resp_decode"]
            .iter()
            .map(|k| r.get(&key(k)).median)
            .sum::<f64>();
        r.put_value(&key("total"), total);
        s.note(format!(
            "session-layer CPU per round trip ({tag}), sum of medians: {}",
            super::stats::fmt_time(total)
        ));
    }
    let json = rtt_command().to_json_bytes();
    time_row(
        &mut s,
        r,
        "zstd.new",
        "zstd compress, new context per call (body.rs before 8237fbb)",
        micro(n, t, || zstd_new(&json)),
    );
    let mut cctx = zstd::bulk::Compressor::new(3)?;
    time_row(
        &mut s,
        r,
        "zstd.reused",
        "zstd compress, reused context (body.rs now)",
        micro(n, t, || cctx.compress(&json).expect("zstd")),
    );
    let sk = Ed25519SecretKey::generate();
    time_row(
        &mut s,
        r,
        "ed25519.sign",
        "Ed25519 sign (64-byte digest)",
        micro(n, t, || sk.sign(&[1; 64])),
    );
    let sig = sk.sign(&[1; 64]);
    let pk = sk.public();
    time_row(
        &mut s,
        r,
        "ed25519.verify",
        "Ed25519 verify (64-byte digest)",
        micro(n, t, || pk.verify(&[1; 64], &sig)),
    );
    let ring_pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, *pk.as_raw());
    time_row(
        &mut s,
        r,
        "ed25519.verify_ring",
        "Ed25519 verify, ring (same key and signature)",
        micro(n, t, || ring_pk.verify(&[1; 64], &sig.0).is_ok()),
    );
    Ok(s)
}

fn zstd_new(json: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(json, 3).expect("zstd")
}

/// What one file byte costs in each step of its path.
pub(crate) fn byte_parts(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("3b. File path, CPU per byte (one core, no sockets)");
    let n = cfg.samples(20);
    let t = Duration::from_millis(if cfg.quick { 5 } else { 40 });
    const LEN: usize = 4 << 20;
    let plain: Vec<u8> = (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    let (mut chain, _) = chain_init(&HybridSecret::from_bytes([5; 32]));
    let (k, nonce) = chain.advance();
    let key = SbKeyNonce { key: k, nonce };
    let mut buf = plain.clone();

    rate_row(
        &mut s,
        r,
        "byte.sealer",
        "XSalsa20-Poly1305 StreamSealer, 64 KiB chunks (file send)",
        LEN,
        micro(n, t, || {
            let mut sealer = StreamSealer::new(&key.key, &key.nonce);
            for c in buf.chunks_mut(64 << 10) {
                sealer.update(c);
            }
            sealer.finish()
        }),
    );
    rate_row(
        &mut s,
        r,
        "byte.encryptor",
        "FileEncryptor (sealer + size checks), 64 KiB chunks",
        LEN,
        micro(n, t, || {
            let mut e = FileEncryptor::new(&key, LEN as u32).expect("size");
            for c in buf.chunks_mut(64 << 10) {
                e.encrypt(c).expect("encrypt");
            }
            e.finish().expect("tag")
        }),
    );
    let mut e = FileEncryptor::new(&key, LEN as u32)?;
    let mut wire = e.header().to_vec();
    let mut ct = plain.clone();
    e.encrypt(&mut ct)?;
    wire.extend_from_slice(&ct);
    wire.extend_from_slice(&e.finish()?);
    let digest = FileDigest::of(&plain);
    let mut out = Vec::with_capacity(16 << 10);
    rate_row(
        &mut s,
        r,
        "byte.decryptor",
        "FileDecryptor with its own SHA-512 (copy + opener + digest), 16 KiB frames (file receive under 1 MiB; larger files hash on another thread)",
        LEN,
        micro(n, t, || {
            let mut d = FileDecryptor::new(&key, LEN as u32, digest);
            for c in wire.chunks(16 << 10) {
                out.clear();
                d.push(c, &mut out).expect("push");
            }
            d.finish().expect("verified")
        }),
    );
    rate_row(
        &mut s,
        r,
        "byte.sha512",
        if xrcp::session::FileDigester::implementation() == "OpenSSL" {
            "SHA-512 alone (the library's FileDigester: OpenSSL)"
        } else {
            "SHA-512 alone (the library's FileDigester: sha2)"
        },
        LEN,
        micro(n, t, || xrcp::session::FileDigest::of(&plain)),
    );
    rate_row(
        &mut s,
        r,
        "byte.sha512_sha2",
        "SHA-512 alone (sha2)",
        LEN,
        micro(n, t, || {
            use sha2::Digest;
            sha2::Sha512::digest(&plain)
        }),
    );
    rate_row(
        &mut s,
        r,
        "byte.sha512_ring",
        "SHA-512 alone (ring::digest)",
        LEN,
        micro(n, t, || ring::digest::digest(&ring::digest::SHA512, &plain)),
    );
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32])
            .map_err(|_| "ring key")?,
    );
    rate_row(
        &mut s,
        r,
        "byte.chacha",
        "ChaCha20-Poly1305 (ring), 16 KiB records (TLS)",
        LEN,
        micro(n, t, || {
            for c in buf.chunks_mut(16 << 10) {
                let tag = ring_key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key([1; 12]),
                        ring::aead::Aad::empty(),
                        c,
                    )
                    .expect("seal");
                let _ = std::hint::black_box(tag);
            }
        }),
    );
    rate_row(
        &mut s,
        r,
        "byte.memcpy",
        "memcpy (one copy)",
        LEN,
        micro(n, t, || buf.copy_from_slice(&plain)),
    );
    Ok(s)
}

/// Paired A/B measurements behind the library's choices: A and B run alternately, the ratio
/// is A's time ÷ B's time per pair. Each label says which of the two the library uses.
pub(crate) fn alternatives(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("5b. Paired A/B behind the library's choices (same load)");
    let n = cfg.samples(30);
    let t = Duration::from_millis(if cfg.quick { 5 } else { 30 });
    let mut pair = |s: &mut Section,
                    key: &str,
                    base: &str,
                    alt: &str,
                    unit_bytes: Option<usize>,
                    (a, b): (Vec<f64>, Vec<f64>)| {
        let conv = |v: &[f64]| match unit_bytes {
            Some(bytes) => v.iter().map(|t| bytes as f64 / t / 1e6).collect::<Vec<_>>(),
            None => v.to_vec(),
        };
        let unit = if unit_bytes.is_some() {
            Unit::Rate
        } else {
            Unit::Time
        };
        s.row(Row::new(format!("A: {base}"), unit, &conv(&a)));
        // Speed-up of B: A's time / B's time, per pair.
        let row = Row::new(format!("B: {alt}"), unit, &conv(&b))
            .with_ratio("A above (speed-up of B)", &super::stats::ratios(&a, &b));
        r.put(
            &format!("alt.{key}"),
            row.ratio.as_ref().map(|q| q.1).expect("ratio"),
        );
        s.row(row);
    };

    // sntrup761: the pure-Rust crate the library uses vs PQClean (pqcrypto-ntruprime,
    // AVX2 code chosen at run time where the CPU has it).
    {
        use pqcrypto_ntruprime::sntrup761 as pq;
        pair(
            &mut s,
            "kem.keygen",
            "sntrup761 keygen, sntrup761 crate (the library's)",
            "sntrup761 keygen, PQClean (not adopted: no zeroizing)",
            None,
            super::stats::micro_pair(n.min(15), t, KemKeyPair::generate, pq::keypair),
        );
        let kp = KemKeyPair::generate();
        let (pk, sk) = pq::keypair();
        pair(
            &mut s,
            "kem.encaps",
            "sntrup761 encaps, sntrup761 crate (the library's)",
            "sntrup761 encaps, PQClean",
            None,
            super::stats::micro_pair(n, t, || kp.public().encapsulate(), || pq::encapsulate(&pk)),
        );
        let (ct, _) = kp.public().encapsulate();
        let (_, pct) = pq::encapsulate(&pk);
        pair(
            &mut s,
            "kem.decaps",
            "sntrup761 decaps, sntrup761 crate (the library's)",
            "sntrup761 decaps, PQClean",
            None,
            super::stats::micro_pair(n, t, || kp.decapsulate(&ct), || pq::decapsulate(&pct, &sk)),
        );
    }

    // Poly1305 as `secretbox::Stream::authenticate` feeds it (one block per call) vs in bulk.
    {
        use poly1305::universal_hash::{KeyInit, UniversalHash};
        const LEN: usize = 64 << 10;
        let data: Vec<u8> = (0..LEN)
            .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
            .collect();
        let key = poly1305::Key::from([3u8; 32]);
        pair(
            &mut s,
            "poly1305",
            "Poly1305 over 64 KiB, one block per update call (before 8237fbb)",
            "Poly1305 over 64 KiB, update_padded in bulk (the library's)",
            Some(LEN),
            super::stats::micro_pair(
                n,
                t,
                || {
                    let mut mac = poly1305::Poly1305::new(&key);
                    for block in data.chunks_exact(16) {
                        mac.update(&[*poly1305::Block::from_slice(block)]);
                    }
                    mac.finalize()
                },
                || {
                    let mut mac = poly1305::Poly1305::new(&key);
                    mac.update_padded(&data);
                    mac.finalize()
                },
            ),
        );

        // SHA-512 of the file digest: sha2 vs the library's FileDigester (OpenSSL's with
        // the feature `openssl-sha512`).
        pair(
            &mut s,
            "sha512",
            "SHA-512 over 64 KiB, sha2",
            "SHA-512 over 64 KiB, the library's FileDigester",
            Some(LEN),
            super::stats::micro_pair(
                n,
                t,
                || {
                    use sha2::Digest;
                    sha2::Sha512::digest(&data)
                },
                || xrcp::session::FileDigest::of(&data),
            ),
        );
    }

    // zstd: a context per body (body.rs) vs a reused one.
    let json = rtt_command().to_json_bytes();
    let mut cctx = zstd::bulk::Compressor::new(3)?;
    pair(
        &mut s,
        "zstd",
        "zstd level 3 compress of one command, new context (before 8237fbb)",
        "same, reused context (the library's)",
        None,
        super::stats::micro_pair(
            n,
            t,
            || zstd_new(&json),
            || cctx.compress(&json).expect("zstd"),
        ),
    );
    let frame = zstd_new(&json);
    let mut dctx = zstd::bulk::Decompressor::new()?;
    pair(
        &mut s,
        "unzstd",
        "zstd decompress of one command, new streaming decoder (before 8237fbb)",
        "same, reused bulk context (the library's for sized frames)",
        None,
        super::stats::micro_pair(
            n,
            t,
            || {
                use std::io::Read;
                let mut out = Vec::new();
                zstd::stream::read::Decoder::with_buffer(&frame[..])
                    .expect("zstd")
                    .take(64 << 20)
                    .read_to_end(&mut out)
                    .expect("zstd");
                out
            },
            || dctx.decompress(&frame, 64 << 20).expect("zstd"),
        ),
    );
    Ok(s)
}
