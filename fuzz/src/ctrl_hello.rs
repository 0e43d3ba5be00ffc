//! `ctrl_hello`: the controller's reply as the host reads it (`CtrlEncHello::decode`,
//! `open_hello`, `open_error`).
//!
//! Input: a mode byte, then
//! - mode 0: block content, or a whole 16384-byte block (then `decode_block` first). A HELLO is
//!   opened with the `messages.json` chain-A key and nonce (KEM decapsulation of arbitrary
//!   ciphertexts is left to the `handshake` target: it costs a millisecond); an ERROR is opened
//!   with K1;
//! - mode 1: the plaintext of a HELLO box (length prefix, JSON, fill), sealed by the harness
//!   under the chain-A key so that unpadding and JSON checks are reachable;
//! - mode 2: the plaintext of an ERROR box, sealed by the harness under K1.
//!
//! Invariants:
//! - `encode(decode(c)) == c`;
//! - `open_hello` succeeds exactly when the plaintext unpads to a JSON object, and returns it;
//! - `open_error` text is the (lossy UTF-8) plaintext, padded or unpadded, so at most three
//!   bytes per plaintext byte;
//! - errors are only `DECRYPT`, `BLOCK_SIZE` and `SYNTAX`.

use serde_json::Value;
use xrcp::codec::unpad;
use xrcp::crypto::kem::CIPHERTEXT_LEN;
use xrcp::crypto::secretbox::seal;
use xrcp::crypto::{KemCiphertext, TAG_LEN};
use xrcp::message::{decode_block, CtrlEncHello, BLOCK_SIZE};
use xrcp::RcError;

use crate::common::{box_key, nonce, CTRL_ERROR_NONCE, CTRL_HELLO_KEY, CTRL_HELLO_NONCE, K1};

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => content(rest),
        1 => hello_plaintext(rest),
        _ => error_plaintext(rest),
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
    let reply = match CtrlEncHello::decode(content) {
        Ok(r) => r,
        Err(e) => {
            assert!(matches!(e, RcError::Syntax(_)), "decode error {e:?}");
            return;
        }
    };
    assert_eq!(
        reply.encode().expect("a decoded reply re-encodes"),
        content,
        "encode(decode(c)) != c"
    );
    match &reply {
        CtrlEncHello::Hello { ciphertext, .. } => {
            assert!(ciphertext.len() >= TAG_LEN);
            let _ = check_open_hello(ciphertext);
        }
        CtrlEncHello::Error {
            nonce: n,
            ciphertext,
        } => {
            check_open_error(ciphertext, n, None);
        }
    }
}

fn check_open_hello(ciphertext: &[u8]) -> Result<Value, RcError> {
    let r = CtrlEncHello::open_hello(
        ciphertext,
        &box_key(CTRL_HELLO_KEY),
        &nonce(CTRL_HELLO_NONCE),
    );
    match &r {
        Ok(v) => assert!(v.is_object(), "controller HELLO JSON is not an object"),
        Err(e) => assert!(allowed(e), "open_hello error {e:?}"),
    }
    r
}

fn check_open_error(ciphertext: &[u8], n: &xrcp::crypto::Nonce, plain: Option<&[u8]>) {
    match CtrlEncHello::open_error(ciphertext, &box_key(K1), n) {
        Ok(text) => {
            assert!(text.len() <= 3 * ciphertext.len());
            if let Some(p) = plain {
                let raw = String::from_utf8_lossy(p).into_owned();
                let unpadded = unpad(p)
                    .ok()
                    .map(|m| String::from_utf8_lossy(m).into_owned());
                assert!(
                    text == raw || Some(&text) == unpadded.as_ref(),
                    "ERROR text is neither the plaintext nor its unpadded form"
                );
            }
        }
        Err(e) => assert!(allowed(&e), "open_error error {e:?}"),
    }
}

fn hello_plaintext(p: &[u8]) {
    let key = box_key(CTRL_HELLO_KEY);
    let n = nonce(CTRL_HELLO_NONCE);
    let reply = CtrlEncHello::Hello {
        kem_ciphertext: KemCiphertext::from_bytes(&[0; CIPHERTEXT_LEN])
            .expect("KEM length")
            .into(),
        ciphertext: seal(&key, &n, p),
    };
    let content = reply.encode().expect("HELLO encodes");
    assert_eq!(
        CtrlEncHello::decode(&content).expect("own HELLO decodes"),
        reply
    );
    let CtrlEncHello::Hello { ciphertext, .. } = reply else {
        unreachable!()
    };
    let got = check_open_hello(&ciphertext);
    let expected = unpad(p)
        .ok()
        .and_then(|j| serde_json::from_slice::<Value>(j).ok())
        .filter(Value::is_object);
    match (got, expected) {
        (Ok(a), Some(b)) => assert_eq!(a, b),
        (Err(_), None) => {}
        (got, expected) => panic!("open_hello {got:?}, expected {expected:?}"),
    }
}

fn error_plaintext(p: &[u8]) {
    let n = nonce(CTRL_ERROR_NONCE);
    let reply = CtrlEncHello::Error {
        nonce: n,
        ciphertext: seal(&box_key(K1), &n, p),
    };
    let content = reply.encode().expect("ERROR encodes");
    assert_eq!(
        CtrlEncHello::decode(&content).expect("own ERROR decodes"),
        reply
    );
    let CtrlEncHello::Error { ciphertext, .. } = reply else {
        unreachable!()
    };
    check_open_error(&ciphertext, &n, Some(p));
}
