//! Known answers for the tls-unique recovery, from the published RFC 8448 traces
//! (<https://www.rfc-editor.org/rfc/rfc8448>): the client's records and its client handshake
//! traffic secret must yield the client Finished verify_data.

use xrcp::tls::{recover_client_finished, CaptureError, FinishedSuite};

/// §3 "Simple 1-RTT Handshake": {client} send handshake record (ClientHello, 196-byte
/// message in a 201-byte record).
const S3_CLIENT_HELLO_RECORD: &str = concat!(
    "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7",
    "000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017",
    "001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dba",
    "feb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508",
    "0604010501060102010402050206020202002d00020101001c00024001",
);
/// §3 ClientHello random.
const S3_CLIENT_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
/// §3 "{server} derive secret tls13 c hs traffic".
const S3_CLIENT_HS_TRAFFIC: &str =
    "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
/// §3 "{client} send handshake record": the encrypted client Finished (58 bytes).
const S3_CLIENT_FINISHED_RECORD: &str = concat!(
    "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46",
    "deb384bd1caeacab6867d726c40546",
);
/// §3 client Finished verify_data.
const S3_CLIENT_FINISHED: &str = "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61";

/// §5 "HelloRetryRequest": first ClientHello (X25519 share), record version 0x0301.
const S5_CLIENT_HELLO_1_RECORD: &str = concat!(
    "16030100b4010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f",
    "000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d0017",
    "0018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad",
    "1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202",
    "002d00020101001c00024001",
);
/// §5 second ClientHello (P-256 share, cookie, 175 bytes of padding), record version 0x0303.
const S5_CLIENT_HELLO_2_RECORD_HEAD: &str = concat!(
    "1603030200010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f",
    "000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d0017",
    "00180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f",
    "0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d",
    "0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd0",
    "4bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e2",
    "3fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa",
    "3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af",
);
const S5_PADDING_LEN: usize = 0xaf;
const S5_CLIENT_RANDOM: &str = "b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f";
/// §5 "{server} derive secret tls13 c hs traffic".
const S5_CLIENT_HS_TRAFFIC: &str =
    "158aa7ab8855073582b41d674b4055cabcc534728f659314861b4e08e2011566";
/// §5 encrypted client Finished.
const S5_CLIENT_FINISHED_RECORD: &str = concat!(
    "1703030035d74f1923c662fd34137c6f502f3dd2b93d951d1b3bc97e42afe23c31abea92fe91b474999e85",
    "e3b791ce252fe8c3e9f939a4120cb2",
);
/// §5 client Finished verify_data. The RFC prints only the record; this is its plaintext,
/// authenticated by the record's AES-GCM tag under the key derived from the secret above
/// (computed independently with Python's `cryptography` while preparing this test).
const S5_CLIENT_FINISHED: &str = "23f52fdb0709a55bd7f79b991f25484087bcfd4d4380b12326a52a28b2e368e1";

const CCS_RECORD: [u8; 6] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn s3_flight(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn s3(flight: &[u8]) -> Result<xrcp::tls::RecoveredFinished, CaptureError> {
    recover_client_finished(
        flight,
        &unhex(S3_CLIENT_RANDOM),
        &unhex(S3_CLIENT_HS_TRAFFIC),
        FinishedSuite::Aes128GcmSha256,
    )
}

fn s5_client_hello_2() -> Vec<u8> {
    let mut record = unhex(S5_CLIENT_HELLO_2_RECORD_HEAD);
    record.resize(record.len() + S5_PADDING_LEN, 0);
    record
}

/// Re-frames a plaintext handshake record's body into records of at most `max` bytes.
fn fragment_plaintext(record: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in record[5..].chunks(max) {
        out.extend_from_slice(&record[..3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[test]
fn rfc8448_section3_client_finished() {
    let ch = unhex(S3_CLIENT_HELLO_RECORD);
    assert_eq!(ch.len(), 201);
    assert_eq!(&ch[11..43], unhex(S3_CLIENT_RANDOM).as_slice());
    let fin = unhex(S3_CLIENT_FINISHED_RECORD);
    let got = s3(&s3_flight(&[&ch, &fin])).unwrap();
    assert_eq!(
        got.verify_data.as_slice(),
        unhex(S3_CLIENT_FINISHED).as_slice()
    );
    assert_eq!((got.client_hellos, got.records), (1, 2));
}

#[test]
fn rfc8448_section3_with_ccs_fragmented_hello_and_trailing_data() {
    let ch = unhex(S3_CLIENT_HELLO_RECORD);
    let fin = unhex(S3_CLIENT_FINISHED_RECORD);
    let expected = unhex(S3_CLIENT_FINISHED);

    let with_ccs = s3(&s3_flight(&[&ch, &CCS_RECORD, &fin])).unwrap();
    assert_eq!(with_ccs.verify_data.as_slice(), expected.as_slice());

    let fragmented = fragment_plaintext(&ch, 50);
    let got = s3(&s3_flight(&[&fragmented, &CCS_RECORD, &fin])).unwrap();
    assert_eq!(got.verify_data.as_slice(), expected.as_slice());
    assert_eq!(got.records, 4 + 1 + 1);

    // A first application record read together with the flight is never looked at.
    let trailing = [0x17, 0x03, 0x03, 0x00, 0x03, 1, 2, 3];
    let got = s3(&s3_flight(&[&ch, &fin, &trailing])).unwrap();
    assert_eq!(got.verify_data.as_slice(), expected.as_slice());
}

#[test]
fn rfc8448_section3_failures_are_typed() {
    let ch = unhex(S3_CLIENT_HELLO_RECORD);
    let fin = unhex(S3_CLIENT_FINISHED_RECORD);
    let flight = s3_flight(&[&ch, &fin]);

    for cut in 0..flight.len() {
        assert_eq!(
            s3(&flight[..cut]).err(),
            Some(CaptureError::Truncated),
            "cut at {cut}"
        );
    }

    let mut tampered = flight.clone();
    let last = tampered.len() - 1;
    tampered[last - 20] ^= 1;
    assert_eq!(s3(&tampered).err(), Some(CaptureError::Decrypt));

    let mut other_random = unhex(S3_CLIENT_RANDOM);
    other_random[0] ^= 1;
    let err = recover_client_finished(
        &flight,
        &other_random,
        &unhex(S3_CLIENT_HS_TRAFFIC),
        FinishedSuite::Aes128GcmSha256,
    );
    assert_eq!(err.err(), Some(CaptureError::RandomMismatch));

    let wrong_suite = recover_client_finished(
        &flight,
        &unhex(S3_CLIENT_RANDOM),
        &unhex(S3_CLIENT_HS_TRAFFIC),
        FinishedSuite::Chacha20Poly1305Sha256,
    );
    assert_eq!(wrong_suite.err(), Some(CaptureError::Decrypt));

    let short_secret = recover_client_finished(
        &flight,
        &unhex(S3_CLIENT_RANDOM),
        &unhex(S3_CLIENT_HS_TRAFFIC)[..31],
        FinishedSuite::Aes128GcmSha256,
    );
    assert_eq!(short_secret.err(), Some(CaptureError::SecretLength));

    let three_hellos = s3_flight(&[&ch, &ch, &ch, &fin]);
    assert_eq!(
        s3(&three_hellos).err(),
        Some(CaptureError::TooManyClientHellos)
    );

    let ccs_first = s3_flight(&[&CCS_RECORD, &ch, &fin]);
    assert_eq!(
        s3(&ccs_first).err(),
        Some(CaptureError::UnexpectedRecord(20))
    );

    let bad_ccs = [0x14, 0x03, 0x03, 0x00, 0x01, 0x02];
    assert_eq!(
        s3(&s3_flight(&[&ch, &bad_ccs, &fin])).err(),
        Some(CaptureError::BadChangeCipherSpec)
    );

    let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30];
    assert_eq!(
        s3(&s3_flight(&[&ch, &alert])).err(),
        Some(CaptureError::Alert)
    );

    // A ClientHello cut short by a record boundary and followed by ciphertext.
    let fragmented = fragment_plaintext(&ch, 100);
    let first_fragment = &fragmented[..105];
    assert_eq!(
        s3(&s3_flight(&[first_fragment, &fin])).err(),
        Some(CaptureError::UnexpectedRecord(23))
    );
}

#[test]
fn rfc8448_section5_hello_retry_request() {
    let ch1 = unhex(S5_CLIENT_HELLO_1_RECORD);
    let ch2 = s5_client_hello_2();
    assert_eq!(ch1.len(), 5 + 0xb4);
    assert_eq!(ch2.len(), 5 + 0x200);
    let fin = unhex(S5_CLIENT_FINISHED_RECORD);
    let random = unhex(S5_CLIENT_RANDOM);
    let secret = unhex(S5_CLIENT_HS_TRAFFIC);
    let expected = unhex(S5_CLIENT_FINISHED);

    for flight in [
        [&ch1[..], &ch2, &fin].concat(),
        [&ch1[..], &CCS_RECORD, &ch2, &fin].concat(),
        [
            fragment_plaintext(&ch1, 64),
            fragment_plaintext(&ch2, 100),
            fin.clone(),
        ]
        .concat(),
    ] {
        let got =
            recover_client_finished(&flight, &random, &secret, FinishedSuite::Aes128GcmSha256)
                .unwrap();
        assert_eq!(got.verify_data.as_slice(), expected.as_slice());
        assert_eq!(got.client_hellos, 2);
    }

    // The §3 secret does not open the §5 Finished.
    let flight = [&ch1[..], &ch2, &fin].concat();
    let err = recover_client_finished(
        &flight,
        &random,
        &unhex(S3_CLIENT_HS_TRAFFIC),
        FinishedSuite::Aes128GcmSha256,
    );
    assert_eq!(err.err(), Some(CaptureError::Decrypt));
}
