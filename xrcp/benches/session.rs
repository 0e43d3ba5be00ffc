//! The session layer's CPU per message and per file byte (BENCHMARKS.md §2, §3), sans-IO:
//!
//! - `body/*`: one command (controller → host: zstd, seal, two Ed25519 signatures; host:
//!   two verifications, open, unzstd, JSON) and one response (host → controller, unsigned),
//!   with and without compression — the CPU inside one `send_command` round trip;
//! - `zstd/*`: the compression step alone as the library runs it (a new context per call)
//!   and with a reused context, for the suggested change in BENCHMARKS.md;
//! - `keys/*`: the chain steps behind every message id;
//! - `file/*`: attachment encryption and decryption (+ SHA-512 digest) over 1 MiB, fed in the
//!   chunk sizes the transfer code uses (64 KiB reads when sending, 16 KiB h2 DATA frames
//!   when receiving).
//!
//! Run: `cargo bench -p xrcp --bench session`.

use std::hint::black_box;
use std::io::Read;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use xrcp::crypto::{chain_init, ChainKey, Ed25519SecretKey, HybridSecret};
use xrcp::handshake::SessionKeys;
use xrcp::session::{
    FileDecryptor, FileDigest, FileEncryptor, RRResult, RemoteCommand, RemoteKeys, RemoteResponse,
    RemoteSession, RemoteSignatures, SbKeyNonce, SessionSecrets,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A controller session and the host session facing it.
fn pair(compression: bool) -> (RemoteSession, RemoteSession) {
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
    )
    .expect("ctrl session");
    let host = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(&[0x33; 32], b, a),
            RemoteSignatures::Verify {
                session_key: session_key.public(),
                identity_key: identity_key.public(),
            },
        ),
        compression,
    )
    .expect("host session");
    (ctrl, host)
}

fn command() -> RemoteCommand {
    RemoteCommand::Send {
        command: "/_get chats 1 pcc=on".into(),
        retry_number: 0,
    }
}

fn response() -> RemoteResponse {
    RemoteResponse::ChatResponse {
        chat_response: RRResult::Result(json!({"type": "cmdOk", "user_": null})),
    }
}

fn bodies(c: &mut Criterion) {
    let mut g = c.benchmark_group("body");
    for compression in [true, false] {
        let label = if compression { "zstd" } else { "plain" };
        let (mut ctrl, mut host) = pair(compression);
        let cmd = command();
        let resp = response();
        g.bench_function(BenchmarkId::new("command-encode", label), |b| {
            b.iter(|| ctrl.encode_command(black_box(&cmd)).expect("encode"))
        });
        let (mut ctrl, mut host2) = pair(compression);
        g.bench_function(BenchmarkId::new("command-decode", label), |b| {
            b.iter_batched(
                || ctrl.encode_command(&cmd).expect("encode").bytes,
                |bytes| host2.decode_command(&bytes).map(|_| ()).expect("decode"),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("response-encode", label), |b| {
            b.iter(|| host.encode_response(black_box(&resp)).expect("encode"))
        });
        let (mut ctrl2, mut host3) = pair(compression);
        g.bench_function(BenchmarkId::new("response-decode", label), |b| {
            b.iter_batched(
                || host3.encode_response(&resp).expect("encode").bytes,
                |bytes| ctrl2.decode_response(&bytes).map(|_| ()).expect("decode"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("zstd");
    let json = command().to_json_bytes();
    g.bench_function("compress-new-context", |b| {
        b.iter(|| zstd::bulk::compress(black_box(&json), 3).expect("zstd"))
    });
    let mut cctx = zstd::bulk::Compressor::new(3).expect("zstd");
    g.bench_function("compress-reused-context", |b| {
        b.iter(|| cctx.compress(black_box(&json)).expect("zstd"))
    });
    let frame = zstd::bulk::compress(&json, 3).expect("zstd");
    // As `decompress_bounded` does: a streaming decoder per body.
    g.bench_function("decompress-stream-new-context", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::with_buffer(black_box(&frame[..]))
                .expect("zstd")
                .take(64 << 20)
                .read_to_end(&mut out)
                .expect("zstd");
            out
        })
    });
    let mut dctx = zstd::bulk::Decompressor::new().expect("zstd");
    g.bench_function("decompress-reused-context", |b| {
        b.iter(|| dctx.decompress(black_box(&frame), 64 << 20).expect("zstd"))
    });
    g.finish();

    let mut g = c.benchmark_group("keys");
    let (a, b2) = chain_init(&HybridSecret::from_bytes([2; 32]));
    let mut keys = RemoteKeys::new(a, b2);
    g.bench_function("snd-keys", |b| b.iter(|| keys.snd_keys().expect("keys")));
    let (a, b2) = chain_init(&HybridSecret::from_bytes([2; 32]));
    let mut keys = RemoteKeys::new(a, b2);
    let mut id = 0u32;
    g.bench_function("rcv-keys-in-order", |b| {
        b.iter(|| {
            id += 1;
            keys.rcv_keys(id).expect("keys")
        })
    });
    g.finish();
}

fn file_key() -> SbKeyNonce {
    let (mut a, _) = chain_init(&HybridSecret::from_bytes([5; 32]));
    let (key, nonce) = a.advance();
    SbKeyNonce { key, nonce }
}

fn files(c: &mut Criterion) {
    let mut g = c.benchmark_group("file-1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    let plain: Vec<u8> = (0..MIB)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    let key = file_key();
    let size = MIB as u32;
    g.bench_function("encrypt-64KiB-chunks", |b| {
        b.iter_batched_ref(
            || plain.clone(),
            |buf| {
                let mut enc = FileEncryptor::new(&key, size).expect("size");
                for chunk in buf.chunks_mut(64 * KIB) {
                    enc.encrypt(chunk).expect("encrypt");
                }
                enc.finish().expect("tag")
            },
            BatchSize::LargeInput,
        )
    });
    // The wire form of the attachment, to decrypt.
    let mut enc = FileEncryptor::new(&key, size).expect("size");
    let mut wire = enc.header().to_vec();
    let mut ct = plain.clone();
    enc.encrypt(&mut ct).expect("encrypt");
    wire.extend_from_slice(&ct);
    wire.extend_from_slice(&enc.finish().expect("tag"));
    let digest = FileDigest::of(&plain);
    for chunk in [16 * KIB, 64 * KIB] {
        g.bench_function(
            BenchmarkId::new("decrypt+digest", format!("{}KiB-chunks", chunk / KIB)),
            |b| {
                let mut out = Vec::with_capacity(chunk);
                b.iter(|| {
                    let mut dec = FileDecryptor::new(&key, size, digest);
                    for part in wire.chunks(chunk) {
                        out.clear();
                        dec.push(part, &mut out).expect("push");
                        black_box(&out);
                    }
                    dec.finish().expect("verified")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bodies, files);
criterion_main!(benches);
