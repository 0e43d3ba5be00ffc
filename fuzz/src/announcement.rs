//! `announcement`: the multicast datagram decoder and `open` against fixed host keys.
//!
//! Input: a mode byte, then
//! - mode 0: a datagram as received;
//! - mode 1: the *plaintext* of the box (length prefix, link, fill: the fuzzer controls the
//!   padding too), sealed under the `messages.json` announcement key and nonce by the harness,
//!   so that the padding and link parsing behind the MAC are reachable.
//!
//! Invariants:
//! - decode accepts only datagrams of at most `MAX_DATAGRAM` bytes with a full tag, and
//!   `encode(decode(d)) == d`;
//! - `open` tries pairings in order: with strangers' keys first and the vector host key as
//!   a *previous* key, success can only be (pairing 1, previous key) — a stranger's key never
//!   opens it —, and the invitation must verify and carry the datagram's DH key;
//! - the result does not depend on which slot holds the fitting key (current or previous)
//!   except for the reported slot;
//! - errors are only `CTRL_NOT_FOUND`, `SYNTAX` or `INVITATION`.

use xrcp::crypto::secretbox::seal;
use xrcp::crypto::TAG_LEN;
use xrcp::message::announcement::MAX_DATAGRAM;
use xrcp::message::{Announcement, DhKeyUsed};
use xrcp::RcError;

use crate::common::{box_key, fixed, nonce, ANNOUNCEMENT_NONCE, K1};

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        datagram(rest);
    } else {
        let n = nonce(ANNOUNCEMENT_NONCE);
        let ann = Announcement {
            dh_key: fixed().alice.public(),
            nonce: n,
            ciphertext: seal(&box_key(K1), &n, rest),
        };
        datagram(&ann.encode());
    }
}

fn allowed(e: &RcError) -> bool {
    matches!(
        e,
        RcError::CtrlNotFound | RcError::Syntax(_) | RcError::Invitation
    )
}

fn datagram(d: &[u8]) {
    let ann = match Announcement::decode(d) {
        Ok(a) => a,
        Err(e) => {
            assert_eq!(e, RcError::Invitation, "decode errors are INVITATION");
            return;
        }
    };
    assert!(d.len() <= MAX_DATAGRAM);
    assert!(ann.ciphertext.len() >= TAG_LEN);
    assert_eq!(ann.encode(), d, "encode(decode(d)) != d");

    let f = fixed();
    let as_previous = ann.open([(&f.stranger, None), (&f.stranger2, Some(&f.bob))]);
    let as_current = ann.open([(&f.bob, None)]);
    match (&as_previous, &as_current) {
        (Ok((i, used, inv)), Ok((j, used2, inv2))) => {
            assert_eq!((*i, *used), (1, DhKeyUsed::Previous));
            assert_eq!((*j, *used2), (0, DhKeyUsed::Current));
            assert_eq!(inv, inv2);
            inv.verify().expect("an opened announcement must verify");
            assert_eq!(inv.invitation.dh, ann.dh_key);
        }
        (Err(e), Err(e2)) => {
            assert_eq!(e, e2, "the key slot changed the error");
            assert!(allowed(e), "unexpected error {e:?}");
        }
        _ => panic!("the key slot changed the outcome: {as_previous:?} vs {as_current:?}"),
    }
}
