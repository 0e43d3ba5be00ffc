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
//! Then the 10,000-pairing figures (BENCHMARKS.md, "Pairings at scale"): the pairing store's
//! `list`, `summaries` and `known` (what `xrcp-host list` and `find` start with), the matcher
//! built over them, the eager per-record check those calls no longer make (`get`), the first
//! sight of an unknown key (two X25519 per pairing, paid from the per-second budget) and its
//! repeats before and after the negative cache confirms it.
//!
//! A plain timing harness (`harness = false`), so the workspace needs no benchmark crate:
//! `cargo bench -p xrcp-host --bench discover` (`-- --bench scale` for the second part only).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xrcp::crypto::{Ed25519SecretKey, KeyHash, X25519PublicKey, X25519SecretKey};
use xrcp::handshake::ControllerHandshake;
use xrcp::pairing::{CtrlPairing, HostPairing, KnownHost};
use xrcp::tls::{CaRole, TlsIdentity};
use xrcp_host::discover::{AnnouncementMatcher, CONFIRM_UNKNOWN};
use xrcp_host::store::CtrlStore;

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
    let only_scale = std::env::args().any(|a| a == "scale");
    if !only_scale {
        per_datagram(quick);
    }
    scale(if quick { 200 } else { 10_000 });
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[runs / 2]
}

/// The pairing store and the matcher with `n` pairings.
fn scale(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = CtrlStore::open(dir.path()).expect("store");
        let p = CtrlPairing {
            ca: TlsIdentity::generate(CaRole::Host).expect("ca"),
            ctrl_ca: KeyHash([1; 32]),
            ctrl_identity: Ed25519SecretKey::generate().public(),
            dh: X25519SecretKey::generate(),
            prev_dh: Some(X25519SecretKey::generate()),
        };
        store.insert("desk 0", &p).expect("insert");
    }
    // The other rows in one transaction, copies of the first with random keys and
    // fingerprints (every X25519 private key is 32 arbitrary bytes).
    let db = rusqlite::Connection::open(dir.path().join(xrcp_host::store::DB_FILE)).expect("db");
    db.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1)
         INSERT INTO remote_controllers (ctrl_device_name, ca_key, ca_cert, ctrl_fingerprint,
           id_pub, dh_priv_key, prev_dh_priv_key)
         SELECT 'desk ' || i, c.ca_key, c.ca_cert, randomblob(32), c.id_pub, randomblob(32),
           randomblob(32)
         FROM k, (SELECT * FROM remote_controllers LIMIT 1) c",
        [n as i64 - 1],
    )
    .expect("fill");
    drop(db);

    let store = CtrlStore::open(dir.path()).expect("store");
    let runs = 5;
    let list = median(runs, || assert_eq!(store.list().expect("list").len(), n));
    let summaries = median(runs, || {
        assert_eq!(store.summaries().expect("summaries").len(), n)
    });
    let start = median(runs, || {
        let known = store.known().expect("known");
        black_box(AnnouncementMatcher::new(known));
    });
    // What every record cost when listing checked each CA (`get` still does, for the one
    // record about to be used).
    let sample = 50.min(n) as u32;
    let eager = per_op(sample, |i| {
        black_box(store.get(1 + i as i64).expect("get").expect("row"));
    });

    let known = store.known().expect("known");
    let t0 = Instant::now();
    let mut m = AnnouncementMatcher::new(known);
    let stranger = controller(X25519SecretKey::generate().public());
    let d0 = stranger.announcement().expect("announcement");
    let first = {
        let t = Instant::now();
        assert!(m.handle_at(&d0, ADDR, t0).is_err());
        t.elapsed()
    };
    let d1 = stranger.announcement().expect("announcement");
    let repeat_early = {
        let t = Instant::now();
        assert!(m.handle_at(&d1, ADDR, t0 + Duration::from_secs(1)).is_err());
        t.elapsed()
    };
    let later = t0 + CONFIRM_UNKNOWN;
    let repeats: Vec<Vec<u8>> = (0..100)
        .map(|_| stranger.announcement().expect("announcement"))
        .collect();
    let repeat_confirmed = per_op(repeats.len() as u32, |i| {
        assert!(m
            .handle_at(black_box(&repeats[i as usize]), ADDR, later)
            .is_err());
    });
    let s = m.stats();
    assert_eq!(s.unknown_dropped, repeats.len() as u64, "{s:?}");

    println!();
    println!("{n} pairings (medians of {runs}):");
    println!("  store.list()                    {}", fmt(list));
    println!("  store.summaries()               {}", fmt(summaries));
    println!("  find start-up (known + matcher) {}", fmt(start));
    println!(
        "  checked decoding per record     {}  (x {n} = {} when listing checked every CA)",
        fmt(eager),
        fmt(eager * n as u32)
    );
    println!(
        "  unknown key, first sight        {}  (2 X25519 per pairing)",
        fmt(first)
    );
    println!(
        "  unknown key, repeat within 3 s  {}  (box openings, no X25519)",
        fmt(repeat_early)
    );
    println!(
        "  unknown key, repeat after 3 s   {}  (negative cache)",
        fmt(repeat_confirmed)
    );
}

fn per_datagram(quick: bool) {
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
