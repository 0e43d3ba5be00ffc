//! The cost of deciding about one announcement datagram with 1, 100 and 1,000 known
//! controllers (xrcp-host `discover.rs`, "Bounded work per datagram"):
//! - *first*: a new session key of the last-listed controller (the worst case: every other
//!   pairing's current and previous key is tried first);
//! - *repeated*: the same controller's next datagram (same key, fresh nonce), answered from
//!   the matched-key cache;
//! - *repeated, no cache*: the same with caching disabled, i.e. what every datagram costs
//!   without the cache (the reference's behaviour);
//! - *unknown first* / *unknown repeated*: a controller nobody paired with.
//!
//! A plain timing harness (`harness = false`), so the workspace needs no benchmark crate:
//! `cargo bench -p xrcp-host --bench discover`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xrcp::crypto::{Ed25519SecretKey, KeyHash, X25519PublicKey, X25519SecretKey};
use xrcp::handshake::ControllerHandshake;
use xrcp::pairing::{CtrlPairing, HostPairing, KnownHost};
use xrcp::tls::{CaRole, TlsIdentity};
use xrcp_host::discover::AnnouncementMatcher;

const ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn controller(host_dh: X25519PublicKey) -> ControllerHandshake {
    let mut hp = HostPairing::new().expect("pairing");
    hp.known_host = Some(KnownHost {
        host_ca: KeyHash([2; 32]),
        host_dh,
    });
    ControllerHandshake::new(
        hp,
        ADDR,
        4000,
        serde_json::json!({"deviceName": "bench"}),
        1,
    )
    .expect("handshake")
}

/// Mean time per call of `f` over `iters` calls.
fn per_op(iters: u32, mut f: impl FnMut(u32)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    start.elapsed() / iters
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:>9.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:>9.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let ca = TlsIdentity::generate(CaRole::Host).expect("ca");
    println!(
        "{:>6} | {:>12} | {:>12} | {:>18} | {:>13} | {:>16}",
        "known", "first", "repeated", "repeated, no cache", "unknown first", "unknown repeated"
    );
    for n in [1usize, 100, 1000] {
        let known: Vec<(i64, CtrlPairing)> = (0..n)
            .map(|i| {
                (
                    i as i64,
                    CtrlPairing {
                        ca: ca.clone(),
                        ctrl_ca: KeyHash([1; 32]),
                        ctrl_identity: Ed25519SecretKey::generate().public(),
                        dh: X25519SecretKey::generate(),
                        prev_dh: Some(X25519SecretKey::generate()),
                    },
                )
            })
            .collect();
        let target = known[n - 1].1.dh.public();
        let sessions = if quick { 2 } else { (4000 / n).clamp(5, 200) } as u32;
        let repeats: u32 = if quick { 10 } else { 2000 };

        // First sight: each datagram a new session of the target controller.
        let firsts: Vec<Vec<u8>> = (0..sessions)
            .map(|_| controller(target).announcement().expect("announcement"))
            .collect();
        let mut m = AnnouncementMatcher::new(known.clone());
        let first = per_op(sessions, |i| {
            let found = m
                .handle(black_box(&firsts[i as usize]), ADDR)
                .expect("found");
            assert_eq!(found.index, n - 1);
        });

        // Repeats of the last session's key.
        let hs = controller(target);
        let datagrams: Vec<Vec<u8>> = (0..repeats)
            .map(|_| hs.announcement().expect("announcement"))
            .collect();
        m.handle(&datagrams[0], ADDR).expect("found");
        let repeated = per_op(repeats, |i| {
            m.handle(black_box(&datagrams[i as usize]), ADDR)
                .expect("found");
        });
        let mut uncached = AnnouncementMatcher::with_cache(known.clone(), 0, 0);
        let no_cache_iters = sessions.min(repeats);
        let no_cache = per_op(no_cache_iters, |i| {
            uncached
                .handle(black_box(&datagrams[i as usize]), ADDR)
                .expect("found");
        });

        // A controller nobody here paired with.
        let stranger = X25519SecretKey::generate().public();
        let unknown_firsts: Vec<Vec<u8>> = (0..sessions)
            .map(|_| controller(stranger).announcement().expect("announcement"))
            .collect();
        let unknown_first = per_op(sessions, |i| {
            assert!(m
                .handle(black_box(&unknown_firsts[i as usize]), ADDR)
                .is_err());
        });
        let hs = controller(stranger);
        let unknown_repeats: Vec<Vec<u8>> = (0..repeats.min(200))
            .map(|_| hs.announcement().expect("announcement"))
            .collect();
        let _ = m.handle(&unknown_repeats[0], ADDR);
        let unknown_repeated = per_op(unknown_repeats.len() as u32, |i| {
            assert!(m
                .handle(black_box(&unknown_repeats[i as usize]), ADDR)
                .is_err());
        });

        println!(
            "{n:>6} | {} | {} | {:>18} | {:>13} | {:>16}",
            fmt(first),
            fmt(repeated),
            fmt(no_cache),
            fmt(unknown_first),
            fmt(unknown_repeated)
        );
    }
}
