//! The attachment path's own crypto, one core, no sockets: which XSalsa20 keystream path
//! this CPU runs (paired against the portable path and the `salsa20` crate), what each
//! primitive of a file byte costs, and from those the per-byte floor of XRCP's own work
//! against scp's chacha20-poly1305 (issue 16: "the profile and arithmetic that prove the
//! remaining gap is the protocol's own per-byte work").

use std::time::Duration;

use xrcp::crypto::{BoxKey, KeystreamPath, Nonce, StreamOpener, StreamSealer};

use super::fixtures::Res;
use super::stats::{micro, micro_pair, ratios, Row, Section, Unit};
use super::{Config, Results};

/// 64 KiB: the session layer's send chunk (spec/xrcp.md §10 attachments go in such pieces).
const CHUNK: usize = 64 << 10;

fn rates(bytes: usize, secs: &[f64]) -> Vec<f64> {
    secs.iter().map(|t| bytes as f64 / t / 1e6).collect()
}

pub(crate) fn run(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("3d. Attachment crypto paths and the per-byte floor (one core)");
    let n = cfg.samples(30);
    let t = Duration::from_millis(if cfg.quick { 5 } else { 30 });
    let key = [7u8; 32];
    let nonce = [9u8; 24];
    let mut buf: Vec<u8> = (0..CHUNK)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    // A buffer per side of each pair (the two closures cannot share one mutably).
    let mut buf_b = buf.clone();

    // The keystream: each SIMD path this CPU offers against the portable one, paired.
    let paths = KeystreamPath::available();
    let detected = KeystreamPath::detected();
    let portable = paths[0];
    for path in &paths[1..] {
        let (a, b) = micro_pair(
            n,
            t,
            || portable.apply(&key, &nonce, &mut buf),
            || path.apply(&key, &nonce, &mut buf_b),
        );
        s.row(Row::new(
            format!("A: XSalsa20 keystream, {}, 64 KiB", portable.name()),
            Unit::Rate,
            &rates(CHUNK, &a),
        ));
        let used = if path.name() == detected.name() {
            " (the library's on this CPU)"
        } else {
            ""
        };
        let row = Row::new(
            format!("B: XSalsa20 keystream, {}{used}, 64 KiB", path.name()),
            Unit::Rate,
            &rates(CHUNK, &b),
        )
        .with_ratio("A above (speed-up of B)", &ratios(&a, &b));
        r.put(&format!("crypto.keystream.{}", path.name()), row.summary);
        s.row(row);
    }
    {
        use salsa20::cipher::{KeyIvInit, StreamCipher};
        let (a, b) = micro_pair(
            n,
            t,
            || salsa20::XSalsa20::new(&key.into(), &nonce.into()).apply_keystream(&mut buf),
            || detected.apply(&key, &nonce, &mut buf_b),
        );
        s.row(Row::new(
            "A: XSalsa20 keystream, salsa20 crate 0.10 (one block at a time), 64 KiB",
            Unit::Rate,
            &rates(CHUNK, &a),
        ));
        let row = Row::new(
            format!(
                "B: XSalsa20 keystream, {} (the library's), 64 KiB",
                detected.name()
            ),
            Unit::Rate,
            &rates(CHUNK, &b),
        )
        .with_ratio("A above (speed-up of B)", &ratios(&a, &b));
        s.row(row);
    }

    // One file byte's primitives, as the two ends run them (4 MiB in 64 KiB pieces).
    const LEN: usize = 4 << 20;
    let plain: Vec<u8> = (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    let mut data = plain.clone();
    let bkey = BoxKey::from_bytes(key);
    let bnonce = Nonce(nonce);
    let row = |s: &mut Section, r: &mut Results, k: &str, name: &str, secs: Vec<f64>| {
        let row = Row::new(name, Unit::Rate, &rates(LEN, &secs));
        r.put(k, row.summary);
        s.row(row);
    };
    row(
        &mut s,
        r,
        "crypto.seal",
        "seal: StreamSealer (XSalsa20 + Poly1305), 64 KiB pieces",
        micro(n, t, || {
            let mut sealer = StreamSealer::new(&bkey, &bnonce);
            for c in data.chunks_mut(CHUNK) {
                sealer.update(c);
            }
            sealer.finish()
        }),
    );
    row(
        &mut s,
        r,
        "crypto.open",
        "open: StreamOpener (Poly1305 + XSalsa20), 64 KiB pieces",
        micro(n, t, || {
            let mut opener = StreamOpener::new(&bkey, &bnonce);
            for c in data.chunks_mut(CHUNK) {
                opener.update(c);
            }
            // The tag does not match (the data is not a ciphertext): only the cost counts.
            opener.verify(&[0; 16]).is_err()
        }),
    );
    {
        // The file digest: `sha2` against the library's FileDigester (OpenSSL's with the
        // feature `openssl-sha512`, which the programs have), alternating sample by sample.
        let (a, b) = micro_pair(
            n,
            t,
            || {
                use sha2::Digest;
                let mut h = sha2::Sha512::new();
                for c in plain.chunks(CHUNK) {
                    h.update(c);
                }
                h.finalize()
            },
            || {
                let mut h = xrcp::session::FileDigester::new();
                for c in plain.chunks(CHUNK) {
                    h.update(c);
                }
                h.finish()
            },
        );
        s.row(Row::new(
            "A: SHA-512 (sha2), 64 KiB pieces",
            Unit::Rate,
            &rates(LEN, &a),
        ));
        let row = Row::new(
            format!(
                "B: SHA-512 ({}, the library's file digest), 64 KiB pieces",
                xrcp::session::FileDigester::implementation()
            ),
            Unit::Rate,
            &rates(LEN, &b),
        )
        .with_ratio("A above (speed-up of B)", &ratios(&a, &b));
        r.put("crypto.sha512", row.summary);
        s.row(row);
    }
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32])
            .map_err(|_| "ring key")?,
    );
    row(
        &mut s,
        r,
        "crypto.chacha",
        "ChaCha20-Poly1305 (ring), 16 KiB records: TLS's, and about OpenSSH's",
        micro(n, t, || {
            for c in data.chunks_mut(16 << 10) {
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

    // The arithmetic: nanoseconds of CPU per file byte, from the medians above.
    let ns = |k: &str| 1e3 / r.get(k).median;
    let (seal, open, sha, chacha) = (
        ns("crypto.seal"),
        ns("crypto.open"),
        ns("crypto.sha512"),
        ns("crypto.chacha"),
    );
    // A store: the controller hashes the whole file before the first byte goes out (the
    // `storeFile` command carries the digest, spec/xrcp.md §10), then seals; the host opens
    // and hashes. A get: the host sends the digest it stored, seals; the controller opens
    // and hashes. TLS adds one ChaCha20-Poly1305 per side; scp has only that.
    let store_cpu = sha + seal + open + sha + 2.0 * chacha;
    let get_cpu = seal + open + sha + 2.0 * chacha;
    let scp_cpu = 2.0 * chacha;
    // Two cores: at best the per-byte work spreads over both; the store's pre-pass cannot
    // overlap the transfer, so it runs alone, on one core.
    let store_wall = sha + (seal + open + sha + 2.0 * chacha) / 2.0;
    let get_wall = get_cpu / 2.0;
    let scp_wall = scp_cpu / 2.0;
    r.put_value("crypto.own.store", sha + seal + open + sha);
    r.put_value("crypto.own.get", sha + seal + open);
    r.put_value("crypto.floor.store", 1e3 / store_wall);
    r.put_value("crypto.floor.get", 1e3 / get_wall);
    r.put_value("crypto.floor.scp", 1e3 / scp_wall);
    s.note(format!(
        "Keystream path on this CPU: {}; paths available: {}.",
        detected.name(),
        paths
            .iter()
            .map(KeystreamPath::name)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.note(format!(
        "CPU per file byte (medians): seal {seal:.2} ns, open {open:.2} ns, SHA-512 {sha:.2} ns, \
         ChaCha20-Poly1305 {chacha:.2} ns."
    ));
    s.note(format!(
        "Crypto alone, both ends: store {store_cpu:.2} ns/B (2 × SHA-512 + seal + open + 2 × TLS), \
         get {get_cpu:.2} ns/B (SHA-512 + seal + open + 2 × TLS), scp {scp_cpu:.2} ns/B \
         (2 × ChaCha20-Poly1305): XRCP's own crypto is {:.1}× / {:.1}× scp's."
    , store_cpu / scp_cpu, get_cpu / scp_cpu));
    // What the protocol itself adds per byte on top of a TLS transfer (in ns/B, which is
    // CPU s/GB): compare with the programs' CPU s/GB minus scp's in `programs`.
    s.note(format!(
        "The protocol's own per-byte work (ns/B = CPU s/GB, both ends): store {:.2} \
         (2 × SHA-512 + seal + open), get {:.2} (SHA-512 + seal + open); compare with XRCP's \
         CPU s/GB minus scp's in the programs section.",
        sha + seal + open + sha,
        sha + seal + open
    ));
    s.note(format!(
        "Ceiling on two cores from crypto alone (no copies, kernel, HTTP/2): store {:.0} MB/s \
         (the pre-pass alone on one core, then the rest over two), get {:.0} MB/s; scp's cipher \
         alone would allow {:.0} MB/s.",
        1e3 / store_wall,
        1e3 / get_wall,
        1e3 / scp_wall,
    ));
    Ok(s)
}
