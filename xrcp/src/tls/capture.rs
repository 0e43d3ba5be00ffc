//! Sans-IO recovery of the client's Finished verify_data — XRCP's "tls-unique".
//!
//! Both reference roles bind the session to the **client's** Finished verify_data (spec/xrcp.md
//! §6.3: the server takes `getPeerFinished`, the client `getFinished`). rustls never exposes
//! Finished, but it does hand out `CLIENT_HANDSHAKE_TRAFFIC_SECRET` through its key log, and
//! the client's Finished travels encrypted under exactly that secret. So, given the bytes the
//! client sent during the handshake and that secret, we can decrypt the client's own flight
//! and read Finished out of it (spec/xrcp.md §6.5):
//!
//! 1. key = HKDF-Expand-Label(secret, "key", "", key_len), iv = HKDF-Expand-Label(secret,
//!    "iv", "", 12) (RFC 8446 §7.1, §7.3);
//! 2. walk the records: plaintext handshake records carry the ClientHello(s) (two after a
//!    HelloRetryRequest), whose random must equal the key log's client_random; type-20
//!    records are the middlebox-compatibility ChangeCipherSpec (`01`);
//! 3. each type-23 record is opened with nonce = iv XOR seq, AAD = its 5-byte header
//!    (RFC 8446 §5.2, §5.3), trailing zero padding is stripped and the last byte is the real
//!    content type;
//! 4. handshake messages are reassembled across records (a message may span records, a
//!    record may hold several) and the first Finished body is the answer.
//!
//! Everything here is a pure function of its inputs, so it is checked against RFC 8448 and
//! fuzzed. Any anomaly is a typed error; input lengths are checked before use.

use ring::{aead, hkdf};
use zeroize::Zeroizing;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_CERTIFICATE: u8 = 11;
const HANDSHAKE_CERTIFICATE_VERIFY: u8 = 15;
const HANDSHAKE_FINISHED: u8 = 20;
const HANDSHAKE_COMPRESSED_CERTIFICATE: u8 = 25;

const RECORD_HEADER_LEN: usize = 5;
/// RFC 8446 §5.2: TLSCiphertext.length must not exceed 2^14 + 256.
const MAX_CIPHERTEXT_LEN: usize = (1 << 14) + 256;
const AEAD_TAG_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const RANDOM_LEN: usize = 32;
/// A ClientHello body: legacy_version (2) then random (32).
const CLIENT_HELLO_RANDOM_OFFSET: usize = 2;
/// A client sends at most two ClientHellos (RFC 8446 §4.1.4).
const MAX_CLIENT_HELLOS: usize = 2;

/// The TLS 1.3 suites whose client flight we can decrypt. XRCP negotiates only ChaCha20; the
/// AES suites exist so that the RFC 8448 vectors (AES-128-GCM) and non-XRCP peers can be
/// checked too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishedSuite {
    /// TLS_CHACHA20_POLY1305_SHA256, the only suite XRCP offers.
    Chacha20Poly1305Sha256,
    /// TLS_AES_128_GCM_SHA256.
    Aes128GcmSha256,
    /// TLS_AES_256_GCM_SHA384 (48-byte verify_data).
    Aes256GcmSha384,
}

impl FinishedSuite {
    /// The suite for a negotiated rustls cipher suite, if it is one of ours.
    pub fn from_rustls(suite: rustls::CipherSuite) -> Option<FinishedSuite> {
        match suite {
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => {
                Some(FinishedSuite::Chacha20Poly1305Sha256)
            }
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => Some(FinishedSuite::Aes128GcmSha256),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => Some(FinishedSuite::Aes256GcmSha384),
            _ => None,
        }
    }

    /// Length of the handshake hash, hence of the secret and of verify_data.
    pub fn hash_len(self) -> usize {
        match self {
            FinishedSuite::Chacha20Poly1305Sha256 | FinishedSuite::Aes128GcmSha256 => 32,
            FinishedSuite::Aes256GcmSha384 => 48,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            FinishedSuite::Chacha20Poly1305Sha256 | FinishedSuite::Aes128GcmSha256 => {
                hkdf::HKDF_SHA256
            }
            FinishedSuite::Aes256GcmSha384 => hkdf::HKDF_SHA384,
        }
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            FinishedSuite::Chacha20Poly1305Sha256 => &aead::CHACHA20_POLY1305,
            FinishedSuite::Aes128GcmSha256 => &aead::AES_128_GCM,
            FinishedSuite::Aes256GcmSha384 => &aead::AES_256_GCM,
        }
    }
}

/// Why the client Finished could not be recovered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The key log did not deliver exactly one client handshake traffic secret.
    #[error("no single client handshake traffic secret was logged")]
    NoSecret,
    /// The secret's length is not the suite's hash length.
    #[error("secret length does not match the cipher suite")]
    SecretLength,
    /// The negotiated suite is not a TLS 1.3 suite listed in [`FinishedSuite`].
    #[error("unsupported cipher suite {0}")]
    UnsupportedSuite(String),
    /// The recorded bytes end before the client Finished.
    #[error("recorded flight ends before the client Finished")]
    Truncated,
    /// A record header announces more than RFC 8446 allows.
    #[error("record length {0} exceeds the TLS limit")]
    RecordTooLong(usize),
    /// A record of this type cannot appear here in a client flight.
    #[error("unexpected record type {0}")]
    UnexpectedRecord(u8),
    /// An encrypted record carries this inner content type instead of handshake data.
    #[error("unexpected inner content type {0}")]
    UnexpectedContent(u8),
    /// A handshake message of this type cannot appear here in a client flight.
    #[error("unexpected handshake message type {0}")]
    UnexpectedMessage(u8),
    /// A ClientHello is too short to hold its random.
    #[error("malformed ClientHello")]
    MalformedClientHello,
    /// A ClientHello's random differs from the logged client_random: this is not the flight
    /// the secret belongs to.
    #[error("ClientHello random does not match the key log")]
    RandomMismatch,
    /// More than two ClientHellos.
    #[error("too many ClientHellos")]
    TooManyClientHellos,
    /// A ChangeCipherSpec record other than the single byte `01`.
    #[error("malformed ChangeCipherSpec")]
    BadChangeCipherSpec,
    /// The client sent an alert before its Finished.
    #[error("client sent an alert")]
    Alert,
    /// An encrypted record failed authentication under the derived key.
    #[error("encrypted record does not decrypt")]
    Decrypt,
    /// A decrypted record is all zero padding.
    #[error("decrypted record has no content type")]
    NoContentType,
    /// Finished's length is not the hash length.
    #[error("Finished has length {0}")]
    FinishedLength(usize),
}

/// The recovered client Finished and the shape of the flight it came from.
#[derive(Clone)]
pub struct RecoveredFinished {
    /// The client's Finished verify_data: the XRCP session binding.
    pub verify_data: Zeroizing<Vec<u8>>,
    /// 1, or 2 after a HelloRetryRequest.
    pub client_hellos: usize,
    /// Records walked up to and including the one holding Finished.
    pub records: usize,
}

impl std::fmt::Debug for RecoveredFinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveredFinished")
            .field("client_hellos", &self.client_hellos)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Recovers the client's Finished verify_data from `flight` — the bytes the client sent,
/// from its first ClientHello on — using the connection's `client_random` and
/// `client_handshake_traffic_secret` as delivered to the key log.
pub fn recover_client_finished(
    flight: &[u8],
    client_random: &[u8],
    client_handshake_traffic_secret: &[u8],
    suite: FinishedSuite,
) -> Result<RecoveredFinished, CaptureError> {
    if client_handshake_traffic_secret.len() != suite.hash_len() {
        return Err(CaptureError::SecretLength);
    }
    let opener = RecordOpener::derive(client_handshake_traffic_secret, suite)?;
    let mut walk = FlightWalk {
        client_random,
        hash_len: suite.hash_len(),
        opener,
        seq: 0,
        client_hellos: 0,
        plaintext_handshake: Vec::new(),
        encrypted_handshake: Zeroizing::new(Vec::new()),
    };

    let mut rest = flight;
    let mut records = 0;
    loop {
        let (record, tail) = split_record(rest)?;
        rest = tail;
        records += 1;
        if let Some(verify_data) = walk.record(record)? {
            return Ok(RecoveredFinished {
                verify_data,
                client_hellos: walk.client_hellos,
                records,
            });
        }
    }
}

/// One TLS record as found in the flight.
struct Record<'a> {
    header: &'a [u8; RECORD_HEADER_LEN],
    body: &'a [u8],
}

/// Splits the first record off `bytes`, returning it and the rest.
fn split_record(bytes: &[u8]) -> Result<(Record<'_>, &[u8]), CaptureError> {
    let (header, rest) = bytes
        .split_first_chunk::<RECORD_HEADER_LEN>()
        .ok_or(CaptureError::Truncated)?;
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len > MAX_CIPHERTEXT_LEN {
        return Err(CaptureError::RecordTooLong(len));
    }
    if rest.len() < len {
        return Err(CaptureError::Truncated);
    }
    let (body, rest) = rest.split_at(len);
    Ok((Record { header, body }, rest))
}

/// A complete handshake message at the start of `buf`: (type, body, total length).
fn next_message(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&[typ, a, b, c], rest) = buf.split_first_chunk::<4>()?;
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    let body = rest.get(..len)?;
    Some((typ, body, 4 + len))
}

struct FlightWalk<'a> {
    client_random: &'a [u8],
    hash_len: usize,
    opener: RecordOpener,
    /// Encrypted records opened so far; nonzero once encryption has started.
    seq: u64,
    client_hellos: usize,
    plaintext_handshake: Vec<u8>,
    encrypted_handshake: Zeroizing<Vec<u8>>,
}

impl FlightWalk<'_> {
    /// Consumes one record; `Some(verify_data)` once Finished is complete.
    fn record(&mut self, record: Record<'_>) -> Result<Option<Zeroizing<Vec<u8>>>, CaptureError> {
        let Record { header, body } = record;
        match header[0] {
            CONTENT_HANDSHAKE if self.seq == 0 => {
                self.plaintext_handshake.extend_from_slice(body);
                self.client_hellos_so_far()?;
                Ok(None)
            }
            CONTENT_CHANGE_CIPHER_SPEC if self.client_hellos > 0 => {
                if body == [1] {
                    Ok(None)
                } else {
                    Err(CaptureError::BadChangeCipherSpec)
                }
            }
            CONTENT_APPLICATION_DATA
                if self.client_hellos > 0 && self.plaintext_handshake.is_empty() =>
            {
                let mut sealed = Zeroizing::new(body.to_vec());
                let (content_type, content) = self.opener.open(self.seq, header, &mut sealed)?;
                self.seq += 1;
                match content_type {
                    CONTENT_HANDSHAKE => {
                        self.encrypted_handshake.extend_from_slice(content);
                        self.finished_so_far()
                    }
                    CONTENT_ALERT => Err(CaptureError::Alert),
                    other => Err(CaptureError::UnexpectedContent(other)),
                }
            }
            CONTENT_ALERT => Err(CaptureError::Alert),
            other => Err(CaptureError::UnexpectedRecord(other)),
        }
    }

    /// Consumes the complete plaintext messages; each must be a ClientHello whose random is
    /// the logged one (RFC 8446 §4.1.2: a retried ClientHello keeps its random).
    fn client_hellos_so_far(&mut self) -> Result<(), CaptureError> {
        let mut consumed = 0;
        while let Some((typ, body, len)) = next_message(&self.plaintext_handshake[consumed..]) {
            if typ != HANDSHAKE_CLIENT_HELLO {
                return Err(CaptureError::UnexpectedMessage(typ));
            }
            let random = body
                .get(CLIENT_HELLO_RANDOM_OFFSET..CLIENT_HELLO_RANDOM_OFFSET + RANDOM_LEN)
                .ok_or(CaptureError::MalformedClientHello)?;
            if random != self.client_random {
                return Err(CaptureError::RandomMismatch);
            }
            self.client_hellos += 1;
            if self.client_hellos > MAX_CLIENT_HELLOS {
                return Err(CaptureError::TooManyClientHellos);
            }
            consumed += len;
        }
        self.plaintext_handshake.drain(..consumed);
        Ok(())
    }

    /// Skips complete Certificate / CertificateVerify messages and returns Finished's body
    /// once it is complete.
    fn finished_so_far(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, CaptureError> {
        let mut consumed = 0;
        while let Some((typ, body, len)) = next_message(&self.encrypted_handshake[consumed..]) {
            match typ {
                HANDSHAKE_FINISHED if body.len() == self.hash_len => {
                    return Ok(Some(Zeroizing::new(body.to_vec())));
                }
                HANDSHAKE_FINISHED => return Err(CaptureError::FinishedLength(body.len())),
                HANDSHAKE_CERTIFICATE
                | HANDSHAKE_CERTIFICATE_VERIFY
                | HANDSHAKE_COMPRESSED_CERTIFICATE => consumed += len,
                other => return Err(CaptureError::UnexpectedMessage(other)),
            }
        }
        self.encrypted_handshake.drain(..consumed);
        Ok(None)
    }
}

/// The client handshake traffic key and IV (RFC 8446 §7.3).
struct RecordOpener {
    key: aead::LessSafeKey,
    iv: Zeroizing<[u8; NONCE_LEN]>,
}

impl RecordOpener {
    fn derive(secret: &[u8], suite: FinishedSuite) -> Result<RecordOpener, CaptureError> {
        let algorithm = suite.aead();
        let mut key = Zeroizing::new(vec![0u8; algorithm.key_len()]);
        let mut iv = Zeroizing::new([0u8; NONCE_LEN]);
        expand_label(secret, suite.hkdf(), b"key", &mut key)?;
        expand_label(secret, suite.hkdf(), b"iv", &mut iv[..])?;
        let key = aead::UnboundKey::new(algorithm, &key).map_err(|_| CaptureError::SecretLength)?;
        Ok(RecordOpener {
            key: aead::LessSafeKey::new(key),
            iv,
        })
    }

    /// Opens one TLSCiphertext in place; returns (inner content type, content).
    fn open<'b>(
        &self,
        seq: u64,
        header: &[u8; RECORD_HEADER_LEN],
        sealed: &'b mut [u8],
    ) -> Result<(u8, &'b [u8]), CaptureError> {
        if sealed.len() < AEAD_TAG_LEN {
            return Err(CaptureError::Decrypt);
        }
        let mut nonce = *self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let plaintext = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header),
                sealed,
            )
            .map_err(|_| CaptureError::Decrypt)?;
        let type_at = plaintext
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(CaptureError::NoContentType)?;
        Ok((plaintext[type_at], &plaintext[..type_at]))
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand_label(
    secret: &[u8],
    algorithm: hkdf::Algorithm,
    label: &[u8],
    out: &mut [u8],
) -> Result<(), CaptureError> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).map_err(|_| CaptureError::SecretLength)?;
    let label_len =
        u8::try_from(PREFIX.len() + label.len()).map_err(|_| CaptureError::SecretLength)?;
    let info: [&[u8]; 5] = [&out_len.to_be_bytes(), &[label_len], PREFIX, label, &[0]];
    hkdf::Prk::new_less_safe(algorithm, secret)
        .expand(&info, OutputLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CaptureError::SecretLength)
}

struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3, "{client} derive write traffic keys for handshake data" and
    /// "{client} calculate finished".
    #[test]
    fn rfc8448_client_handshake_key_iv_and_finished_key() {
        let secret = unhex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21");
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        let mut finished_key = [0u8; 32];
        expand_label(&secret, hkdf::HKDF_SHA256, b"key", &mut key).unwrap();
        expand_label(&secret, hkdf::HKDF_SHA256, b"iv", &mut iv).unwrap();
        expand_label(&secret, hkdf::HKDF_SHA256, b"finished", &mut finished_key).unwrap();
        assert_eq!(key.to_vec(), unhex("dbfaa693d1762c5b666af5d950258d01"));
        assert_eq!(iv.to_vec(), unhex("5bd3c71b836e0b76bb73265f"));
        assert_eq!(
            finished_key.to_vec(),
            unhex("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")
        );
    }

    #[test]
    fn message_and_record_framing_bounds() {
        assert_eq!(next_message(&[20, 0, 0]), None);
        assert_eq!(next_message(&[20, 0, 0, 2, 9]), None);
        assert_eq!(
            next_message(&[20, 0, 0, 1, 9, 8]),
            Some((20, &[9u8][..], 5))
        );
        let err = |bytes: &[u8]| split_record(bytes).err();
        assert_eq!(err(&[22, 3, 3, 0]), Some(CaptureError::Truncated));
        assert_eq!(
            err(&[23, 3, 3, 0xff, 0xff]),
            Some(CaptureError::RecordTooLong(0xffff))
        );
        assert_eq!(err(&[22, 3, 3, 0, 2, 1]), Some(CaptureError::Truncated));
        let (record, rest) = split_record(&[20, 3, 3, 0, 1, 1, 9]).unwrap();
        assert_eq!(record.header[0], 20);
        assert_eq!(record.body, [1]);
        assert_eq!(rest, [9]);
    }
}
