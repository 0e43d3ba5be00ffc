//! Properties of the sans-IO client-Finished recovery: it never panics on any input, never
//! returns a wrong value for a damaged flight, and finds Finished however the client's flight
//! is cut into records (coalesced, fragmented, padded, with or without ChangeCipherSpec).

use proptest::prelude::*;
use ring::aead;
use xrcp::tls::{recover_client_finished, CaptureError, FinishedSuite};

/// RFC 8448 §3 ClientHello record, client random, client handshake traffic secret, and the
/// AES-128-GCM key/iv it yields ("{client} derive write traffic keys for handshake data").
const CLIENT_HELLO_RECORD: &str = concat!(
    "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7",
    "000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017",
    "001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dba",
    "feb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508",
    "0604010501060102010402050206020202002d00020101001c00024001",
);
const CLIENT_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const SECRET: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const KEY: &str = "dbfaa693d1762c5b666af5d950258d01";
const IV: &str = "5bd3c71b836e0b76bb73265f";
const FINISHED_RECORD: &str = concat!(
    "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46",
    "deb384bd1caeacab6867d726c40546",
);
const FINISHED: &str = "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61";

const SUITES: [FinishedSuite; 3] = [
    FinishedSuite::Chacha20Poly1305Sha256,
    FinishedSuite::Aes128GcmSha256,
    FinishedSuite::Aes256GcmSha384,
];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn recover(flight: &[u8]) -> Result<Vec<u8>, CaptureError> {
    recover_client_finished(
        flight,
        &unhex(CLIENT_RANDOM),
        &unhex(SECRET),
        FinishedSuite::Aes128GcmSha256,
    )
    .map(|r| r.verify_data.to_vec())
}

/// Seals `content` (inner type 22) as record number `seq` under the RFC 8448 key.
fn seal(seq: u64, content: &[u8], padding: usize) -> Vec<u8> {
    let key =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &unhex(KEY)).unwrap());
    let mut nonce: [u8; 12] = unhex(IV).try_into().unwrap();
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let mut body = content.to_vec();
    body.push(22);
    body.resize(body.len() + padding, 0);
    let len = (body.len() + 16) as u16;
    let header = [23, 3, 3, (len >> 8) as u8, len as u8];
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(header),
        &mut body,
    )
    .unwrap();
    [&header[..], &body].concat()
}

fn message(typ: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    [
        &[typ, (len >> 16) as u8, (len >> 8) as u8, len as u8][..],
        body,
    ]
    .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        flight in proptest::collection::vec(any::<u8>(), 0..2048),
        random in proptest::collection::vec(any::<u8>(), 0..40),
        secret in proptest::collection::vec(any::<u8>(), 0..64),
        suite in 0usize..3,
    ) {
        let _ = recover_client_finished(&flight, &random, &secret, SUITES[suite]);
    }

    #[test]
    fn arbitrary_tail_after_a_valid_hello_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
        records in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..8),
    ) {
        let mut flight = unhex(CLIENT_HELLO_RECORD);
        for (typ, body) in &records {
            flight.extend_from_slice(&[*typ, 3, 3, 0, body.len() as u8]);
            flight.extend_from_slice(body);
        }
        flight.extend_from_slice(&tail);
        prop_assert!(recover(&flight).is_err());
    }

    #[test]
    fn a_damaged_flight_never_yields_a_wrong_value(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut flight = [unhex(CLIENT_HELLO_RECORD), unhex(FINISHED_RECORD)].concat();
        let i = at.index(flight.len());
        flight[i] ^= flip;
        if let Ok(value) = recover(&flight) {
            // Only unauthenticated ClientHello bytes outside random and framing can change
            // without effect.
            prop_assert_eq!(value, unhex(FINISHED));
        }
    }

    #[test]
    fn finished_is_found_however_the_flight_is_cut(
        cert_len in 0usize..3000,
        verify_len in 0usize..200,
        finished in proptest::collection::vec(any::<u8>(), 32),
        cuts in proptest::collection::vec(1usize..400, 1..40),
        paddings in proptest::collection::vec(0usize..24, 40),
        hello_fragment in 16usize..300,
        with_ccs in any::<bool>(),
    ) {
        let messages = [
            message(11, &vec![0xaa; cert_len]),
            message(15, &vec![0xbb; verify_len]),
            message(20, &finished),
        ]
        .concat();

        let hello = unhex(CLIENT_HELLO_RECORD);
        let mut flight = Vec::new();
        for chunk in hello[5..].chunks(hello_fragment) {
            flight.extend_from_slice(&[22, 3, 1, 0, 0]);
            let n = flight.len();
            flight[n - 2..].copy_from_slice(&(chunk.len() as u16).to_be_bytes());
            flight.extend_from_slice(chunk);
        }
        if with_ccs {
            flight.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        }
        let mut rest = &messages[..];
        let mut seq = 0;
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            flight.extend_from_slice(&seal(seq, &rest[..n], paddings[seq as usize % paddings.len()]));
            rest = &rest[n..];
            seq += 1;
        }
        // A first application record after Finished is ignored.
        flight.extend_from_slice(&[23, 3, 3, 0, 20]);
        flight.extend_from_slice(&[0x55; 20]);

        prop_assert_eq!(recover(&flight), Ok(finished));
    }

    #[test]
    fn plaintext_after_encryption_is_refused(cert_len in 0usize..100) {
        let flight = [
            unhex(CLIENT_HELLO_RECORD),
            seal(0, &message(11, &vec![0; cert_len]), 0),
            unhex(CLIENT_HELLO_RECORD),
        ]
        .concat();
        prop_assert_eq!(recover(&flight), Err(CaptureError::UnexpectedRecord(22)));
    }

    #[test]
    fn unexpected_messages_and_content_are_refused(typ in any::<u8>()) {
        prop_assume!(![11u8, 15, 20, 25].contains(&typ));
        let flight = [unhex(CLIENT_HELLO_RECORD), seal(0, &message(typ, &[1, 2, 3]), 3)].concat();
        prop_assert_eq!(recover(&flight), Err(CaptureError::UnexpectedMessage(typ)));
    }
}

#[test]
fn wrong_finished_length_and_all_padding_are_refused() {
    let short = [
        unhex(CLIENT_HELLO_RECORD),
        seal(0, &message(20, &[7; 12]), 0),
    ]
    .concat();
    assert_eq!(recover(&short), Err(CaptureError::FinishedLength(12)));

    // A record whose plaintext is only zeros has no content type.
    let key =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &unhex(KEY)).unwrap());
    let nonce: [u8; 12] = unhex(IV).try_into().unwrap();
    let mut body = vec![0u8; 8];
    let header = [23, 3, 3, 0, 24];
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(header),
        &mut body,
    )
    .unwrap();
    let flight = [unhex(CLIENT_HELLO_RECORD), header.to_vec(), body].concat();
    assert_eq!(recover(&flight), Err(CaptureError::NoContentType));
}
