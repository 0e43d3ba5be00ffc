//! File attachments (spec/xrcp.md §10.2): streaming encryption and the receiver's checks.

mod session_common;

use session_common::pair;
use xrcp::session::{
    check_file_size, FileDecryptor, FileDigest, FileEncryptor, RemoteProtocolError, SbKeyNonce,
    FILE_HEADER_LEN,
};

fn keys() -> (SbKeyNonce, SbKeyNonce) {
    let (mut ctrl, mut host) = pair(false);
    let snd = ctrl.keys_mut().snd_keys().unwrap();
    let rcv = host.keys_mut().rcv_keys(snd.corr_id).unwrap();
    (snd.keys.file, rcv.file)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Encrypts `plain` in uneven chunks and returns the whole attachment.
fn attachment(key: &SbKeyNonce, plain: &[u8]) -> Vec<u8> {
    let mut enc = FileEncryptor::new(key, plain.len() as u32).unwrap();
    let mut out = enc.header().to_vec();
    let mut buf = plain.to_vec();
    for chunk in buf.chunks_mut(1000 + 7) {
        enc.encrypt(chunk).unwrap();
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&enc.finish().unwrap());
    out
}

/// Feeds `wire` to a decryptor in chunks of `step`; returns the plaintext and the result.
fn receive(
    key: &SbKeyNonce,
    size: u32,
    digest: FileDigest,
    wire: &[u8],
    step: usize,
) -> (Vec<u8>, Result<usize, RemoteProtocolError>) {
    let mut dec = FileDecryptor::new(key, size, digest);
    let mut out = Vec::new();
    let mut used = 0;
    for chunk in wire.chunks(step.max(1)) {
        match dec.push(chunk, &mut out) {
            Ok(n) => used += n,
            Err(e) => return (out, Err(e)),
        }
    }
    (out, dec.finish().map(|_| used))
}

#[test]
fn round_trip_in_any_chunking() {
    let (snd, rcv) = keys();
    for n in [0usize, 1, 15, 16, 17, 16384, 100_000] {
        let plain = data(n);
        let wire = attachment(&snd, &plain);
        assert_eq!(wire.len(), FILE_HEADER_LEN + n + 16);
        assert_eq!(wire[0], 1);
        assert_eq!(&wire[1..5], &((n + 16) as u32).to_be_bytes());
        for step in [1usize, 5, 4096, 1 << 20] {
            let (out, r) = receive(&rcv, n as u32, FileDigest::of(&plain), &wire, step);
            assert_eq!(r.unwrap(), wire.len(), "n {n} step {step}");
            assert_eq!(out, plain);
        }
    }
}

#[test]
fn equals_one_shot_secretbox_tail_tag() {
    let (snd, _) = keys();
    let plain = data(5000);
    let wire = attachment(&snd, &plain);
    let one_shot = xrcp::crypto::secretbox::seal_tail_tag(&snd.key, &snd.nonce, &plain);
    assert_eq!(&wire[FILE_HEADER_LEN..], &one_shot[..]);
}

#[test]
fn trailing_bytes_are_left_to_the_caller() {
    let (snd, rcv) = keys();
    let plain = data(100);
    let mut wire = attachment(&snd, &plain);
    let len = wire.len();
    wire.extend_from_slice(b"extra");
    let (_, r) = receive(&rcv, 100, FileDigest::of(&plain), &wire, 1 << 20);
    assert_eq!(r.unwrap(), len);
}

#[test]
fn receiver_errors() {
    let (snd, rcv) = keys();
    let plain = data(3000);
    let digest = FileDigest::of(&plain);
    let wire = attachment(&snd, &plain);

    let mut no_marker = wire.clone();
    no_marker[0] = 0;
    assert_eq!(
        receive(&rcv, 3000, digest, &no_marker, 64).1,
        Err(RemoteProtocolError::NoFile)
    );
    assert_eq!(
        receive(&rcv, 3000, digest, &[], 64).1,
        Err(RemoteProtocolError::NoFile)
    );

    // Announced length disagrees with the command's size.
    assert_eq!(
        receive(&rcv, 2999, digest, &wire, 64).1,
        Err(RemoteProtocolError::FileSize)
    );
    let mut bad_len = wire.clone();
    bad_len[4] ^= 1;
    assert_eq!(
        receive(&rcv, 3000, digest, &bad_len, 64).1,
        Err(RemoteProtocolError::FileSize)
    );

    // Data or tag cut short.
    assert_eq!(
        receive(&rcv, 3000, digest, &wire[..wire.len() - 1], 64).1,
        Err(RemoteProtocolError::FileSize)
    );
    assert_eq!(
        receive(&rcv, 3000, digest, &wire[..100], 64).1,
        Err(RemoteProtocolError::FileSize)
    );
    assert!(matches!(
        receive(&rcv, 3000, digest, &wire[..3], 64).1,
        Err(RemoteProtocolError::InvalidBody(_))
    ));

    // Bad tag, bad data bit.
    let mut bad_tag = wire.clone();
    let last = bad_tag.len() - 1;
    bad_tag[last] ^= 1;
    assert_eq!(
        receive(&rcv, 3000, digest, &bad_tag, 64).1,
        Err(RemoteProtocolError::DECRYPT)
    );
    let mut bad_data = wire.clone();
    bad_data[FILE_HEADER_LEN + 10] ^= 1;
    assert_eq!(
        receive(&rcv, 3000, digest, &bad_data, 64).1,
        Err(RemoteProtocolError::DECRYPT)
    );

    // Authentic data with the wrong announced digest.
    assert_eq!(
        receive(&rcv, 3000, FileDigest::of(b"other"), &wire, 64).1,
        Err(RemoteProtocolError::FileDigest)
    );

    // Another id's attachment key fails the tag.
    let (mut ctrl, _) = pair(false);
    let _first = ctrl.keys_mut().snd_keys().unwrap();
    let second = ctrl.keys_mut().snd_keys().unwrap().keys.file;
    let wire2 = attachment(&second, &plain);
    assert_eq!(
        receive(&rcv, 3000, digest, &wire2, 64).1,
        Err(RemoteProtocolError::DECRYPT)
    );
}

#[test]
fn sender_checks_sizes() {
    let (snd, _) = keys();
    let mut enc = FileEncryptor::new(&snd, 10).unwrap();
    assert_eq!(
        enc.encrypt(&mut [0; 11]).unwrap_err(),
        RemoteProtocolError::FileSize
    );
    enc.encrypt(&mut [0; 9]).unwrap();
    assert_eq!(enc.finish().unwrap_err(), RemoteProtocolError::FileSize);
    assert!(FileEncryptor::new(&snd, u32::MAX - 16).is_ok());
    assert_eq!(
        FileEncryptor::new(&snd, u32::MAX - 15).err(),
        Some(RemoteProtocolError::FileSize)
    );
    assert_eq!(check_file_size(1 << 32), Err(RemoteProtocolError::FileSize));
    assert_eq!(check_file_size(5), Ok(5));
}

#[test]
fn digest_text_form() {
    let d = FileDigest::of(b"abc");
    // SHA-512("abc"), FIPS 180-2.
    assert!(hex::encode(d.0).starts_with("ddaf35a193617aba"));
    assert_eq!(FileDigest::from_text(&d.to_text()).unwrap(), d);
    assert!(d.to_text().ends_with("=="));
    assert!(FileDigest::from_text("AAAA").is_err());
}

/// The file digest, whichever implementation the build hashes with (OpenSSL's with the
/// feature `openssl-sha512`), equals `sha2`'s SHA-512 for every split of the input into
/// chunks, across the 128-byte block and 112-byte padding boundaries.
#[test]
fn file_digester_matches_sha2_for_any_chunking() {
    use sha2::Digest;
    let plain = data(3 * 128 + 17);
    for len in [
        0,
        1,
        111,
        112,
        113,
        127,
        128,
        129,
        255,
        256,
        257,
        plain.len(),
    ] {
        let want: [u8; 64] = sha2::Sha512::digest(&plain[..len]).into();
        assert_eq!(FileDigest::of(&plain[..len]).0, want, "len {len}");
        for step in [1, 3, 64, 111, 128, 200] {
            let mut d = xrcp::session::FileDigester::new();
            for c in plain[..len].chunks(step) {
                d.update(c);
            }
            assert_eq!(d.finish().0, want, "len {len} step {step}");
        }
    }
}

/// A detached digest (computed by the caller) is checked exactly like the built-in one, and
/// the tag is still checked first.
#[test]
fn detached_digest_is_checked_like_the_built_in_one() {
    let (snd, rcv) = keys();
    let plain = data(50_000);
    let wire = attachment(&snd, &plain);
    let run = |expected: FileDigest, given: FileDigest, wire: &[u8]| {
        let mut dec = FileDecryptor::with_detached_digest(&rcv, plain.len() as u32, expected);
        let mut out = Vec::new();
        dec.push(wire, &mut out).unwrap();
        dec.finish_with_digest(given)
    };
    let right = FileDigest::of(&plain);
    let mut wrong = right;
    wrong.0[0] ^= 1;
    assert_eq!(run(right, right, &wire), Ok(()));
    assert_eq!(
        run(right, wrong, &wire),
        Err(RemoteProtocolError::FileDigest)
    );
    assert_eq!(
        run(wrong, right, &wire),
        Err(RemoteProtocolError::FileDigest)
    );
    let mut tampered = wire.clone();
    tampered[FILE_HEADER_LEN + 7] ^= 1;
    assert_eq!(
        run(right, right, &tampered),
        Err(RemoteProtocolError::DECRYPT)
    );
}
