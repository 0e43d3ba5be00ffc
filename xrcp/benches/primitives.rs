//! Primitive costs (BENCHMARKS.md §5): the KEMs and the box construction next to what the
//! rest of the stack uses.
//!
//! - `kem/*`: sntrup761 through our wrapper (`xrcp::crypto::kem`, the pure-Rust `sntrup761`
//!   crate) against PQClean's through `pqcrypto-ntruprime` (its AVX2 build where the CPU has
//!   AVX2, chosen at run time), and ML-KEM-768 (`ml-kem`) for context.
//! - `box/*`: XSalsa20-Poly1305 as our sessions use it — one-shot `seal_tail_tag` /
//!   `open_tail_tag`, and the streaming `StreamSealer` / `StreamOpener` that file attachments
//!   use — against ring's ChaCha20-Poly1305 (what TLS runs underneath), with throughput.
//! - `box-parts/*`: the pieces of the streaming box alone (XSalsa20 keystream, Poly1305 fed
//!   one block per call as `Stream::authenticate` does vs. in bulk, SHA-512 of the file
//!   digest), to show where a file byte's time goes.
//! - `sig/*`, `dh/*`: Ed25519 and X25519 (invitations, request signatures, HELLO key).
//!
//! Run: `cargo bench -p xrcp --bench primitives` (add `-- <filter>` to narrow it).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use poly1305::universal_hash::{KeyInit, UniversalHash};
use salsa20::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha512};
use xrcp::crypto::secretbox::{open_tail_tag, seal_tail_tag};
use xrcp::crypto::{
    BoxKey, Ed25519SecretKey, KemKeyPair, Nonce, StreamOpener, StreamSealer, X25519SecretKey,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect()
}

fn size_label(len: usize) -> String {
    if len >= MIB {
        format!("{}MiB", len / MIB)
    } else {
        format!("{}KiB", len / KIB)
    }
}

fn kem(c: &mut Criterion) {
    let mut g = c.benchmark_group("kem");
    // Key generation takes milliseconds in the pure-Rust build: fewer, longer samples.
    g.sample_size(20).measurement_time(Duration::from_secs(6));

    // Ours: xrcp::crypto::kem (the PQClean code below, plus its stack scrub after each call).
    g.bench_function("sntrup761-xrcp/keygen", |b| b.iter(KemKeyPair::generate));
    let kp = KemKeyPair::generate();
    g.bench_function("sntrup761-xrcp/encaps", |b| {
        b.iter(|| black_box(kp.public()).encapsulate())
    });
    let (ct, _) = kp.public().encapsulate();
    g.bench_function("sntrup761-xrcp/decaps", |b| {
        b.iter(|| kp.decapsulate(black_box(&ct)))
    });

    // PQClean through pqcrypto-ntruprime.
    {
        use pqcrypto_ntruprime::sntrup761;
        g.bench_function("sntrup761-pqclean/keygen", |b| b.iter(sntrup761::keypair));
        let (pk, sk) = sntrup761::keypair();
        g.bench_function("sntrup761-pqclean/encaps", |b| {
            b.iter(|| sntrup761::encapsulate(black_box(&pk)))
        });
        let (_, ct) = sntrup761::encapsulate(&pk);
        g.bench_function("sntrup761-pqclean/decaps", |b| {
            b.iter(|| sntrup761::decapsulate(black_box(&ct), &sk))
        });
    }

    // ML-KEM-768 for context (RustCrypto `ml-kem`).
    {
        use ml_kem::kem::{Decapsulate, Encapsulate};
        use ml_kem::{KemCore, MlKem768};
        let mut rng = rand::rngs::OsRng;
        g.bench_function("ml-kem-768/keygen", |b| {
            b.iter(|| MlKem768::generate(&mut rng))
        });
        let (dk, ek) = MlKem768::generate(&mut rng);
        g.bench_function("ml-kem-768/encaps", |b| {
            b.iter(|| black_box(&ek).encapsulate(&mut rng).expect("encapsulate"))
        });
        let (ct, _) = ek.encapsulate(&mut rng).expect("encapsulate");
        g.bench_function("ml-kem-768/decaps", |b| {
            b.iter(|| dk.decapsulate(black_box(&ct)).expect("decapsulate"))
        });
    }
    g.finish();
}

fn boxes(c: &mut Criterion) {
    let key = BoxKey::from_bytes([7; 32]);
    let nonce = Nonce([9; 24]);
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32]).expect("key"),
    );

    let mut g = c.benchmark_group("box");
    for len in [KIB, 16 * KIB, 64 * KIB, MIB] {
        let msg = data(len);
        g.throughput(Throughput::Bytes(len as u64));
        let label = size_label(len);
        g.bench_with_input(
            BenchmarkId::new("xsalsa20poly1305-seal_tail_tag", &label),
            &msg,
            |b, msg| b.iter(|| seal_tail_tag(&key, &nonce, black_box(msg))),
        );
        let sealed = seal_tail_tag(&key, &nonce, &msg);
        g.bench_with_input(
            BenchmarkId::new("xsalsa20poly1305-open_tail_tag", &label),
            &sealed,
            |b, sealed| b.iter(|| open_tail_tag(&key, &nonce, black_box(sealed)).expect("open")),
        );
        // In place, like rustls' record layer (no allocation per call).
        let mut buf = msg.clone();
        g.bench_function(
            BenchmarkId::new("chacha20poly1305-ring-seal", &label),
            |b| {
                b.iter(|| {
                    ring_key
                        .seal_in_place_separate_tag(
                            ring::aead::Nonce::assume_unique_for_key([1; 12]),
                            ring::aead::Aad::empty(),
                            black_box(&mut buf[..]),
                        )
                        .expect("seal")
                })
            },
        );
    }
    g.finish();

    // The streaming box over 1 MiB, fed in the chunk sizes the file layer uses (16 KiB h2
    // frames on receive, 64 KiB reads on send) and in one call.
    let mut g = c.benchmark_group("box-stream-1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    let msg = data(MIB);
    for chunk in [16 * KIB, 64 * KIB, MIB] {
        let label = size_label(chunk);
        g.bench_function(BenchmarkId::new("StreamSealer", &label), |b| {
            b.iter_batched_ref(
                || msg.clone(),
                |buf| {
                    let mut s = StreamSealer::new(&key, &nonce);
                    for part in buf.chunks_mut(chunk) {
                        s.update(part);
                    }
                    s.finish()
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("StreamOpener", &label), |b| {
            b.iter_batched_ref(
                || msg.clone(),
                |buf| {
                    let mut s = StreamOpener::new(&key, &nonce);
                    for part in buf.chunks_mut(chunk) {
                        s.update(part);
                    }
                    s.verify(&[0; 16]).is_ok()
                },
                BatchSize::LargeInput,
            )
        });
    }
    // The same buffer copy alone, to subtract from the two above.
    g.bench_function("clone-only", |b| {
        b.iter_batched_ref(
            || msg.clone(),
            |buf| black_box(buf.len()),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Parts of one file byte's cost.
    let mut g = c.benchmark_group("box-parts-64KiB");
    let len = 64 * KIB;
    g.throughput(Throughput::Bytes(len as u64));
    let mut buf = data(len);
    let mut stream = salsa20::XSalsa20::new(&[1; 32].into(), &[2; 24].into());
    g.bench_function("xsalsa20-keystream", |b| {
        b.iter(|| stream.apply_keystream(black_box(&mut buf[..])))
    });
    let blocks = data(len);
    g.bench_function("poly1305-one-block-per-call", |b| {
        b.iter(|| {
            let mut mac = poly1305::Poly1305::new(&[3; 32].into());
            for block in black_box(&blocks[..]).chunks_exact(16) {
                mac.update(&[*poly1305::Block::from_slice(block)]);
            }
            mac.finalize()
        })
    });
    g.bench_function("poly1305-bulk", |b| {
        b.iter(|| {
            let mut mac = poly1305::Poly1305::new(&[3; 32].into());
            mac.update_padded(black_box(&blocks[..]));
            mac.finalize()
        })
    });
    g.bench_function("sha512", |b| {
        b.iter(|| Sha512::digest(black_box(&blocks[..])))
    });
    g.bench_function("sha512-ring", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA512, black_box(&blocks[..])))
    });
    let ring_key2 = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32]).expect("key"),
    );
    g.bench_function("chacha20poly1305-ring-seal", |b| {
        b.iter(|| {
            ring_key2
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key([1; 12]),
                    ring::aead::Aad::empty(),
                    black_box(&mut buf[..]),
                )
                .expect("seal")
        })
    });
    let src = data(len);
    g.bench_function("memcpy", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&src[..])))
    });
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("sig");
    let sk = Ed25519SecretKey::generate();
    let pk = sk.public();
    let msg = [5u8; 64];
    g.bench_function("ed25519-generate", |b| b.iter(Ed25519SecretKey::generate));
    g.bench_function("ed25519-sign-64B", |b| b.iter(|| sk.sign(black_box(&msg))));
    let sig = sk.sign(&msg);
    g.bench_function("ed25519-verify-64B", |b| {
        b.iter(|| assert!(pk.verify(black_box(&msg), &sig)))
    });
    g.finish();

    let mut g = c.benchmark_group("dh");
    g.bench_function("x25519-generate", |b| b.iter(X25519SecretKey::generate));
    let a = X25519SecretKey::generate();
    let bpub = X25519SecretKey::generate().public();
    g.bench_function("x25519-dh", |b| {
        b.iter(|| a.dh(black_box(&bpub)).expect("dh"))
    });
    g.finish();
}

criterion_group!(benches, kem, boxes, signatures);
criterion_main!(benches);
