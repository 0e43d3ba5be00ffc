//! `tls_capture`: `xrcp::tls::recover_client_finished` on recorded client flights.
//!
//! Input: a mode byte, then
//! - even mode: a parameter byte (`% 4`: RFC 8448 §3, RFC 8448 §5 — both AES-128-GCM with
//!   their published client_random and secret —, ChaCha20 and AES-256 with fixed secrets),
//!   then the flight bytes;
//! - odd mode: a structured flight (`arbitrary`): one or two ClientHellos with the right
//!   random, fragmented into plaintext records of any size, an optional ChangeCipherSpec,
//!   then Certificate / CertificateVerify / CompressedCertificate messages and the Finished,
//!   fragmented across encrypted records with any amount of zero padding, encrypted by the
//!   harness for any of the three suites, then trailing bytes.
//!
//! Invariants:
//! - raw flights: a recovered verify_data has the suite's hash length, came from one or two
//!   ClientHellos and at least two records; recovery reads nothing past the record holding
//!   Finished (the flight cut right after it gives the same answer, cut one byte earlier gives
//!   `Truncated`); a secret of the wrong length is always `SecretLength`;
//! - structured flights: recovery always succeeds, with exactly the Finished body, number of
//!   ClientHellos and number of records that were built.

use arbitrary::{Arbitrary, Unstructured};
use ring::{aead, hkdf};
use xrcp::tls::{recover_client_finished, CaptureError, FinishedSuite, RecoveredFinished};

use crate::common::hexv;

/// RFC 8448 §3 ClientHello random and client handshake traffic secret.
const S3_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const S3_SECRET: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
/// RFC 8448 §5 (HelloRetryRequest) ClientHello random and client handshake traffic secret.
const S5_RANDOM: &str = "b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f";
const S5_SECRET: &str = "158aa7ab8855073582b41d674b4055cabcc534728f659314861b4e08e2011566";

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Some((&params, flight)) = rest.split_first() else {
            return;
        };
        raw(params, flight);
    } else if let Ok(f) = Unstructured::new(rest).arbitrary::<Flight>() {
        structured(&f);
    }
}

fn params(p: u8) -> (Vec<u8>, Vec<u8>, FinishedSuite) {
    match p % 4 {
        0 => (
            hexv(S3_RANDOM),
            hexv(S3_SECRET),
            FinishedSuite::Aes128GcmSha256,
        ),
        1 => (
            hexv(S5_RANDOM),
            hexv(S5_SECRET),
            FinishedSuite::Aes128GcmSha256,
        ),
        2 => (
            hexv(S3_RANDOM),
            vec![0x11; 32],
            FinishedSuite::Chacha20Poly1305Sha256,
        ),
        _ => (
            hexv(S3_RANDOM),
            vec![0x22; 48],
            FinishedSuite::Aes256GcmSha384,
        ),
    }
}

fn raw(p: u8, flight: &[u8]) {
    let (random, secret, suite) = params(p);
    let got = recover_client_finished(flight, &random, &secret, suite);
    assert_eq!(
        recover_client_finished(flight, &random, &secret[1..], suite).err(),
        Some(CaptureError::SecretLength)
    );
    let Ok(r) = got else {
        return;
    };
    assert_eq!(r.verify_data.len(), suite.hash_len());
    assert!((1..=2).contains(&r.client_hellos));
    assert!(r.records >= 2);
    // Where the record holding Finished ends.
    let mut end = 0;
    for _ in 0..r.records {
        let len = usize::from(u16::from_be_bytes([flight[end + 3], flight[end + 4]]));
        end += 5 + len;
    }
    assert!(end <= flight.len());
    let cut = recover_client_finished(&flight[..end], &random, &secret, suite)
        .expect("the flight up to Finished must suffice");
    same(&cut, &r);
    assert_eq!(
        recover_client_finished(&flight[..end - 1], &random, &secret, suite).err(),
        Some(CaptureError::Truncated)
    );
}

fn same(a: &RecoveredFinished, b: &RecoveredFinished) {
    assert_eq!(a.verify_data.as_slice(), b.verify_data.as_slice());
    assert_eq!((a.client_hellos, a.records), (b.client_hellos, b.records));
}

#[derive(Arbitrary, Debug)]
pub struct Flight {
    suite: u8,
    second_hello: bool,
    /// ClientHello body after legacy_version and random.
    hello_tail: Vec<u8>,
    /// Largest plaintext fragment; 0 means 16384.
    plain_fragment: u8,
    ccs: bool,
    /// (kind, body): kind % 3 selects Certificate, CertificateVerify, CompressedCertificate.
    messages: Vec<(u8, Vec<u8>)>,
    finished: Vec<u8>,
    /// Largest encrypted fragment; 0 means 16384.
    encrypted_fragment: u8,
    /// Zero padding after the inner content type, per record (`% 32`).
    padding: u8,
    trailing: Vec<u8>,
}

fn push_message(out: &mut Vec<u8>, typ: u8, body: &[u8]) {
    let len = u32::try_from(body.len()).expect("small");
    out.push(typ);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(body);
}

fn fragments(data: &[u8], max: u8) -> impl Iterator<Item = &[u8]> {
    data.chunks(if max == 0 { 16384 } else { usize::from(max) })
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) (RFC 8446 §7.1).
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let full_label = [b"tls13 ", label].concat();
    let out_len = (len as u16).to_be_bytes();
    let label_len = [full_label.len() as u8];
    let info: [&[u8]; 4] = [&out_len, &label_len, &full_label, &[0]];
    let mut out = vec![0; len];
    hkdf::Prk::new_less_safe(alg, secret)
        .expand(&info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .expect("short HKDF output");
    out
}

fn structured(f: &Flight) {
    let (suite, secret, alg, aead_alg) = match f.suite % 3 {
        0 => (
            FinishedSuite::Chacha20Poly1305Sha256,
            vec![0x11; 32],
            hkdf::HKDF_SHA256,
            &aead::CHACHA20_POLY1305,
        ),
        1 => (
            FinishedSuite::Aes128GcmSha256,
            hexv(S3_SECRET),
            hkdf::HKDF_SHA256,
            &aead::AES_128_GCM,
        ),
        _ => (
            FinishedSuite::Aes256GcmSha384,
            vec![0x22; 48],
            hkdf::HKDF_SHA384,
            &aead::AES_256_GCM,
        ),
    };
    let random = hexv(S3_RANDOM);
    let hellos = 1 + usize::from(f.second_hello);

    let mut plain = Vec::new();
    for _ in 0..hellos {
        let body = [&[3, 3][..], &random, &f.hello_tail].concat();
        push_message(&mut plain, 1, &body);
    }
    let mut flight = Vec::new();
    let mut records = 0;
    for frag in fragments(&plain, f.plain_fragment) {
        flight.extend_from_slice(&[22, 3, 1]);
        flight.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        flight.extend_from_slice(frag);
        records += 1;
    }
    if f.ccs {
        flight.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        records += 1;
    }

    let mut handshake = Vec::new();
    for (kind, body) in &f.messages {
        push_message(&mut handshake, [11, 15, 25][usize::from(kind % 3)], body);
    }
    let mut finished = f.finished.clone();
    finished.resize(suite.hash_len(), 0xf1);
    push_message(&mut handshake, 20, &finished);

    let key = expand_label(alg, &secret, b"key", aead_alg.key_len());
    let iv = expand_label(alg, &secret, b"iv", 12);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(aead_alg, &key).expect("key length"));
    for (seq, frag) in fragments(&handshake, f.encrypted_fragment).enumerate() {
        let mut inner = frag.to_vec();
        inner.push(22);
        inner.resize(inner.len() + usize::from(f.padding % 32), 0);
        let header = [23, 3, 3, 0, 0];
        let len = (inner.len() + 16) as u16;
        let header = [header[0], header[1], header[2], (len >> 8) as u8, len as u8];
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&iv);
        for (n, s) in nonce[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
            *n ^= s;
        }
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            &mut inner,
        )
        .expect("seal");
        flight.extend_from_slice(&header);
        flight.extend_from_slice(&inner);
        records += 1;
    }
    flight.extend_from_slice(&f.trailing);

    let r = recover_client_finished(&flight, &random, &secret, suite)
        .unwrap_or_else(|e| panic!("a well-formed flight was refused: {e:?}"));
    assert_eq!(r.verify_data.as_slice(), finished.as_slice());
    assert_eq!(r.client_hellos, hellos);
    assert_eq!(r.records, records);
    raw_checks_agree(&flight, &random, &secret, suite, &r);
}

/// The raw-mode checks hold for structured flights too.
fn raw_checks_agree(
    flight: &[u8],
    random: &[u8],
    secret: &[u8],
    suite: FinishedSuite,
    r: &RecoveredFinished,
) {
    let mut end = 0;
    for _ in 0..r.records {
        end += 5 + usize::from(u16::from_be_bytes([flight[end + 3], flight[end + 4]]));
    }
    same(
        &recover_client_finished(&flight[..end], random, secret, suite).expect("prefix"),
        r,
    );
}
