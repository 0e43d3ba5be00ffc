//! The CPU side of session setup, piece by piece (BENCHMARKS.md §1): everything the two
//! drivers run between the invitation and the session keys, without sockets.
//!
//! - `keys/*`, `certs/*`: session key generation, CA and per-session leaf certificates;
//! - `invitation/*`: signing, the link, parsing and verifying (two Ed25519 each way);
//! - `hello/*`: the HELLO boxes (tag-first, padded to 12288 inside a 16384-byte block);
//! - `sansio/*`: the state machines' whole steps (`ControllerHandshake::new`,
//!   `HostHandshake::new`, `handle_host_hello`, `handle_ctrl_hello`), which include the KEM;
//! - `tls/*`: building the rustls configs, a whole TLS 1.3 handshake in memory (both roles,
//!   no sockets: its pure CPU cost), and recovering tls-unique from the recorded client
//!   flight (`recover_client_finished`), the one thing our capture adds per connection.
//!
//! Run: `cargo bench -p xrcp --bench handshake`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use serde_json::json;
use xrcp::crypto::{
    chain_init, BoxKey, Ed25519SecretKey, HybridSecret, KemKeyPair, KemSharedSecret, KeyHash,
    Nonce, X25519SecretKey,
};
use xrcp::handshake::{ControllerHandshake, HostHandshake};
use xrcp::message::{decode_block, CtrlEncHello, HostEncHello, HostHello, SignedInvitation};
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::session_code::session_code;
use xrcp::tls::{
    client_config, recover_client_finished, server_config, CaRole, FinishedSuite, Pin, TlsIdentity,
};

fn controller(pairing: HostPairing) -> ControllerHandshake {
    ControllerHandshake::new(
        pairing,
        Ipv4Addr::LOCALHOST,
        40000,
        json!({"appVersionRange": {"minVersion": "6.0", "maxVersion": "6.4"}, "deviceName": "bench desktop", "compression": true}),
        1_700_000_000,
    )
    .expect("controller handshake")
}

/// A host pairing for the controller of `inv` (as after a first session).
fn known_ctrl(inv: &SignedInvitation) -> CtrlPairing {
    CtrlPairing {
        ca: TlsIdentity::generate(CaRole::Host).expect("ca"),
        ctrl_ca: inv.invitation.ca,
        ctrl_identity: inv.invitation.idkey,
        dh: X25519SecretKey::generate(),
        prev_dh: None,
    }
}

fn host_app() -> serde_json::Value {
    json!({"appVersion": "6.4.0", "deviceName": "bench phone", "encoding": "kotlin", "encryptFiles": false, "compression": true})
}

fn keys_and_certs(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys");
    g.bench_function("x25519-generate", |b| b.iter(X25519SecretKey::generate));
    g.bench_function("ed25519-generate", |b| b.iter(Ed25519SecretKey::generate));
    g.bench_function("sntrup761-generate", |b| b.iter(KemKeyPair::generate));
    g.finish();

    let mut g = c.benchmark_group("certs");
    g.bench_function("ca-generate", |b| {
        b.iter(|| TlsIdentity::generate(CaRole::Controller).expect("ca"))
    });
    let ca = TlsIdentity::generate(CaRole::Controller).expect("ca");
    g.bench_function("session-credentials", |b| {
        b.iter(|| ca.session_credentials().expect("leaf"))
    });
    g.bench_function("host-pairing-new", |b| {
        b.iter(|| HostPairing::new().expect("pairing"))
    });
    g.finish();
}

fn invitation(c: &mut Criterion) {
    let mut g = c.benchmark_group("invitation");
    let hs = controller(HostPairing::new().expect("pairing"));
    let signed = hs.invitation().clone();
    let session_key = Ed25519SecretKey::generate();
    let identity_key = Ed25519SecretKey::generate();
    let mut unsigned = signed.invitation.clone();
    unsigned.skey = session_key.public();
    unsigned.idkey = identity_key.public();
    g.bench_function("sign", |b| {
        b.iter(|| {
            unsigned
                .clone()
                .sign(&session_key, &identity_key)
                .expect("sign")
        })
    });
    g.bench_function("to-uri", |b| b.iter(|| signed.to_uri()));
    let link = signed.to_uri();
    g.bench_function("parse", |b| {
        b.iter(|| SignedInvitation::parse(black_box(&link)).expect("parse"))
    });
    g.bench_function("verify", |b| b.iter(|| signed.verify().expect("verify")));
    g.finish();
}

fn hello(c: &mut Criterion) {
    let mut g = c.benchmark_group("hello");
    let key = BoxKey::from_bytes([4; 32]);
    let kem = KemKeyPair::generate();
    let hello = HostHello {
        version: xrcp::codec::version::Version(1),
        ca: KeyHash([9; 32]),
        app: host_app(),
        kem: kem.public().clone(),
    };
    let dh_pub = X25519SecretKey::generate().public();
    g.bench_function("host-seal", |b| {
        b.iter(|| HostEncHello::seal(&hello, &key, dh_pub, Nonce([1; 24])).expect("seal"))
    });
    let enc = HostEncHello::seal(&hello, &key, dh_pub, Nonce([1; 24])).expect("seal");
    g.bench_function("host-open", |b| b.iter(|| enc.open(&key).expect("open")));
    let (ct, _) = kem.public().encapsulate();
    let nonce = Nonce([2; 24]);
    g.bench_function("ctrl-seal", |b| {
        b.iter(|| CtrlEncHello::seal_hello(ct.clone(), &key, &nonce).expect("seal"))
    });
    let CtrlEncHello::Hello { ciphertext, .. } =
        CtrlEncHello::seal_hello(ct.clone(), &key, &nonce).expect("seal")
    else {
        unreachable!()
    };
    g.bench_function("ctrl-open", |b| {
        b.iter(|| CtrlEncHello::open_hello(&ciphertext, &key, &nonce).expect("open"))
    });
    g.finish();

    let mut g = c.benchmark_group("chain");
    let secret = HybridSecret::new(&key, &KemSharedSecret::from_bytes([3; 32]));
    g.bench_function("hybrid+init", |b| {
        b.iter(|| {
            chain_init(&HybridSecret::new(
                &key,
                &KemSharedSecret::from_bytes([3; 32]),
            ))
        })
    });
    let (mut chain, _) = chain_init(&secret);
    g.bench_function("advance", |b| b.iter(|| chain.advance()));
    g.bench_function("session-code", |b| {
        b.iter(|| session_code(black_box(&[0xa5; 32])))
    });
    g.finish();
}

fn sansio(c: &mut Criterion) {
    let mut g = c.benchmark_group("sansio");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    let pairing = HostPairing::new().expect("pairing");
    g.bench_function("controller-new", |b| b.iter(|| controller(pairing.clone())));
    let ctrl = controller(pairing.clone());
    let inv = ctrl.invitation().clone();
    let cp = known_ctrl(&inv);
    g.bench_function("host-new-known-pairing", |b| {
        b.iter(|| HostHandshake::new(inv.clone(), Some(cp.clone())).expect("host"))
    });
    g.bench_function("host-new-new-pairing", |b| {
        b.iter(|| HostHandshake::new(inv.clone(), None).expect("host"))
    });
    let host = HostHandshake::new(inv.clone(), Some(cp.clone())).expect("host");
    g.bench_function("host-hello-block", |b| {
        b.iter(|| host.hello_block(host_app()).expect("block"))
    });
    // Whole HELLO steps; each consumes its state, so states are made outside the timing.
    let tls_unique = [0x5a; 32];
    g.bench_function("handle-host-hello", |b| {
        b.iter_batched(
            || {
                let ctrl = controller(pairing.clone());
                let host = HostHandshake::new(
                    ctrl.invitation().clone(),
                    Some(known_ctrl(ctrl.invitation())),
                )
                .expect("host");
                let block = host.hello_block(host_app()).expect("block");
                (ctrl, host.ca_fingerprint(), block)
            },
            |(ctrl, ca, block)| {
                ctrl.handle_host_hello(&block, ca, &tls_unique)
                    .map_err(|r| r.error)
                    .expect("host hello accepted")
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("handle-ctrl-hello", |b| {
        b.iter_batched(
            || {
                let ctrl = controller(pairing.clone());
                let host = HostHandshake::new(
                    ctrl.invitation().clone(),
                    Some(known_ctrl(ctrl.invitation())),
                )
                .expect("host");
                let block = host.hello_block(host_app()).expect("block");
                let out = ctrl
                    .handle_host_hello(&block, host.ca_fingerprint(), &tls_unique)
                    .map_err(|r| r.error)
                    .expect("accepted");
                assert!(decode_block(&out.reply).is_ok());
                (host, out.reply)
            },
            |(host, reply)| {
                host.handle_ctrl_hello(&reply, &tls_unique)
                    .expect("ctrl hello")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Keeps the client handshake traffic secret, as `xrcp::tls`'s own key log does.
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

/// One TLS handshake in memory; returns the bytes the client wrote.
fn handshake_in_memory(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Vec<u8> {
    let name = ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut c = ClientConnection::new(client, name).expect("client");
    let mut s = ServerConnection::new(server).expect("server");
    let mut flight = Vec::new();
    let mut buf = Vec::new();
    loop {
        let mut progressed = false;
        while c.wants_write() {
            buf.clear();
            c.write_tls(&mut buf).expect("client write");
            flight.extend_from_slice(&buf);
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).expect("server read");
                s.process_new_packets().expect("server process");
            }
            progressed = true;
        }
        while s.wants_write() {
            buf.clear();
            s.write_tls(&mut buf).expect("server write");
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
                c.process_new_packets().expect("client process");
            }
            progressed = true;
        }
        if !progressed && !c.is_handshaking() && !s.is_handshaking() {
            return flight;
        }
        assert!(progressed, "handshake stalled");
    }
}

fn tls(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls");
    let ctrl_ca = TlsIdentity::generate(CaRole::Controller).expect("ca");
    let host_ca = TlsIdentity::generate(CaRole::Host).expect("ca");
    let ctrl_creds = ctrl_ca.session_credentials().expect("leaf");
    let host_creds = host_ca.session_credentials().expect("leaf");
    let ctrl_pin = Pin::Fingerprint(ctrl_ca.fingerprint());
    let host_pin = Pin::Fingerprint(host_ca.fingerprint());
    g.bench_function("client-config", |b| {
        b.iter(|| client_config(&host_creds, ctrl_pin).expect("config"))
    });
    g.bench_function("server-config", |b| {
        b.iter(|| server_config(&ctrl_creds, host_pin).expect("config"))
    });
    let client = client_config(&host_creds, ctrl_pin).expect("config");
    let server = server_config(&ctrl_creds, host_pin).expect("config");
    g.bench_function("handshake-in-memory", |b| {
        b.iter(|| handshake_in_memory(client.clone(), server.clone()))
    });

    let log = Arc::new(SecretLog::default());
    let mut logged = ClientConfig::clone(&client);
    logged.key_log = log.clone();
    let flight = handshake_in_memory(Arc::new(logged), server.clone());
    let (random, secret) = log.0.lock().expect("lock").take().expect("secret logged");
    g.bench_function("recover-client-finished", |b| {
        b.iter(|| {
            recover_client_finished(
                black_box(&flight),
                &random,
                &secret,
                FinishedSuite::Chacha20Poly1305Sha256,
            )
            .expect("recovered")
        })
    });
    g.finish();
}

criterion_group!(benches, keys_and_certs, invitation, hello, sansio, tls);
criterion_main!(benches);
