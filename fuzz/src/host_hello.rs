//! `host_hello`: the host's HELLO block as the controller reads it (`HostEncHello::decode`,
//! `open`, `HostHello::from_json`).
//!
//! Input: a mode byte, then
//! - mode 0: block content, or a whole 16384-byte block (then `decode_block` first); opened
//!   with the `messages.json` key K1, and with X25519(Alice, sender key) as the controller
//!   would;
//! - mode 1: HELLO JSON for `HostHello::from_json`;
//! - mode 2: HELLO JSON that the harness seals under K1 and frames as a block, then reads back
//!   through the whole decoder chain.
//!
//! Invariants:
//! - `encode(decode(c)) == c`;
//! - a HELLO that opens re-serializes with `to_json` to JSON that parses back to the same
//!   value, and `to_json` is then stable;
//! - sealing and framing are transparent: the full chain (block → decode → open) gives the
//!   same answer as `from_json` on the plaintext, and JSON too large for the pad is
//!   `BLOCK_SIZE`;
//! - errors are only `DECRYPT`, `BLOCK_SIZE` and `SYNTAX`.

use xrcp::crypto::secretbox::seal_padded;
use xrcp::message::{decode_block, encode_block, HostEncHello, HostHello, BLOCK_SIZE, HELLO_PAD};
use xrcp::RcError;

use crate::common::{box_key, fixed, nonce, HOST_HELLO_NONCE, K1};

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => content(rest),
        1 => json(rest),
        _ => sealed(rest),
    }
}

fn allowed(e: &RcError) -> bool {
    matches!(
        e,
        RcError::Decrypt | RcError::BlockSize | RcError::Syntax(_)
    )
}

fn content(d: &[u8]) {
    let content = if d.len() == BLOCK_SIZE {
        match decode_block(d) {
            Ok(c) => c,
            Err(_) => return,
        }
    } else {
        d
    };
    let enc = match HostEncHello::decode(content) {
        Ok(enc) => enc,
        Err(e) => {
            assert!(matches!(e, RcError::Syntax(_)), "decode error {e:?}");
            return;
        }
    };
    assert_eq!(enc.encode(), content, "encode(decode(c)) != c");
    let f = fixed();
    let with_k1 = enc.open(&box_key(K1));
    match &with_k1 {
        Ok(h) => check_hello(h),
        Err(e) => assert!(allowed(e), "open error {e:?}"),
    }
    // The controller's own key derivation: X25519(session key, the key in the block).
    if let Ok(key) = f.alice.dh(&enc.dh_key) {
        let by_dh = enc.open(&key);
        if enc.dh_key == f.bob.public() {
            assert_eq!(by_dh, with_k1);
        }
        if let Err(e) = &by_dh {
            assert!(allowed(e), "open error {e:?}");
        }
    }
}

fn json(j: &[u8]) {
    match HostHello::from_json(j) {
        Ok(h) => check_hello(&h),
        Err(e) => assert!(matches!(e, RcError::Syntax(_)), "from_json error {e:?}"),
    }
}

fn check_hello(h: &HostHello) {
    let text = h.to_json();
    let back = HostHello::from_json(text.as_bytes())
        .unwrap_or_else(|e| panic!("to_json output does not parse: {e}\n{text}"));
    assert_eq!(&back, h, "HELLO JSON does not round-trip\n{text}");
    assert_eq!(back.to_json(), text, "to_json is not stable");
}

fn sealed(j: &[u8]) {
    let direct = HostHello::from_json(j);
    let key = box_key(K1);
    let n = nonce(HOST_HELLO_NONCE);
    let ciphertext = match seal_padded(&key, &n, j, HELLO_PAD) {
        Ok(c) => c,
        Err(_) => {
            assert!(j.len() + 2 > HELLO_PAD);
            return;
        }
    };
    let enc = HostEncHello {
        dh_key: fixed().bob.public(),
        nonce: n,
        ciphertext,
    };
    let block = encode_block(&enc.encode()).expect("a HELLO_PAD box fits a block");
    let back = HostEncHello::decode(decode_block(&block).expect("own block decodes"))
        .expect("own HELLO decodes");
    assert_eq!(back, enc);
    let opened = back.open(&key);
    match (&direct, &opened) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            check_hello(b);
        }
        (Err(RcError::Syntax(_)), Err(RcError::Syntax(_))) => {}
        _ => panic!("sealing changed the result: {direct:?} vs {opened:?}"),
    }
}
