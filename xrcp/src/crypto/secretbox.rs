//! The reference's one box construction (spec/xrcp.md §3.1).
//!
//! Given a 32-byte key `k` (either a raw X25519 output or a symmetric chain-derived key), the
//! reference runs XSalsa20-Poly1305 under `HSalsa20(k, 0¹⁶)`. For DH keys this is exactly
//! libsodium's `crypto_box`; for symmetric keys it is *not* plain `crypto_secretbox(k)` — the
//! extra HSalsa20 step is what makes us byte-compatible.
//!
//! Two output layouts exist: tag first (`seal`, used by HELLO and announcements, with the
//! message padded) and tag last (`seal_tail_tag`, used by session bodies and files, unpadded).

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use poly1305::universal_hash::UniversalHash;
use poly1305::Poly1305;

use super::xsalsa::XSalsa20Stream;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;
use crate::codec::pad::{pad, unpad};

/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// A 32-byte key as fed to the box construction (before the HSalsa20 step).
#[derive(Clone)]
// Boxed so that moving a key (through futures, into message-key structs) moves a pointer
// and leaves no unwiped copy of the bytes behind (see `chain::Secret32`).
pub struct BoxKey(Box<Zeroizing<[u8; 32]>>);

impl BoxKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BoxKey(Box::new(Zeroizing::new(bytes)))
    }

    /// A key copied from 32 bytes straight into its box, with no copy on the stack.
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        let mut k = Box::new(Zeroizing::new([0u8; 32]));
        k.copy_from_slice(bytes);
        BoxKey(k)
    }

    /// The raw key bytes; only for key derivation and for persisting them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `HSalsa20(k, 0¹⁶)`: the key XSalsa20-Poly1305 actually runs under.
    fn subkey(&self) -> Zeroizing<[u8; 32]> {
        let out = salsa20::hsalsa::<salsa20::cipher::consts::U10>(
            self.0.as_slice().into(),
            &Default::default(),
        );
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&out);
        k
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new(self.subkey().as_ref().into())
    }
}

impl std::fmt::Debug for BoxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxKey(..)")
    }
}

/// A 24-byte nonce, written raw on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; 24]);

impl Nonce {
    /// A fresh random nonce from the OS generator.
    pub fn random() -> Self {
        let mut n = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut n);
        Nonce(n)
    }
}

/// `tag ‖ ciphertext` of `msg`, unpadded.
pub fn seal(key: &BoxKey, nonce: &Nonce, msg: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(TAG_LEN + msg.len());
    buf.extend_from_slice(&[0u8; TAG_LEN]);
    buf.extend_from_slice(msg);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(&nonce.0.into(), b"", &mut buf[TAG_LEN..])
        .expect("XSalsa20Poly1305 accepts any message length that fits in memory");
    buf[..TAG_LEN].copy_from_slice(&tag);
    buf
}

/// Opens `tag ‖ ciphertext`.
pub fn open(key: &BoxKey, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if boxed.len() < TAG_LEN {
        return Err(CryptoError::Decrypt);
    }
    let (tag, ct) = boxed.split_at(TAG_LEN);
    let mut out = ct.to_vec();
    key.cipher()
        .decrypt_in_place_detached(&nonce.0.into(), b"", &mut out, tag.into())
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(out)
}

/// The reference's `cbEncrypt`/`sbEncrypt`: `msg` padded to `padded_len`, then sealed tag
/// first; the output is `padded_len + 16` bytes.
pub fn seal_padded(
    key: &BoxKey,
    nonce: &Nonce,
    msg: &[u8],
    padded_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let padded = Zeroizing::new(pad(msg, padded_len).map_err(|_| CryptoError::LargeMessage)?);
    Ok(seal(key, nonce, &padded))
}

/// The reference's `cbDecrypt`/`sbDecrypt`: open, then unpad.
pub fn open_padded(key: &BoxKey, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let padded = Zeroizing::new(open(key, nonce, boxed)?);
    unpad(&padded)
        .map(<[u8]>::to_vec)
        .map_err(|_| CryptoError::InvalidPadding)
}

/// `ciphertext ‖ tag`, unpadded: the session-data layout.
pub fn seal_tail_tag(key: &BoxKey, nonce: &Nonce, msg: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(msg.len() + TAG_LEN);
    buf.extend_from_slice(msg);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(&nonce.0.into(), b"", &mut buf)
        .expect("XSalsa20Poly1305 accepts any message length that fits in memory");
    buf.extend_from_slice(&tag);
    buf
}

/// Opens `ciphertext ‖ tag`.
pub fn open_tail_tag(key: &BoxKey, nonce: &Nonce, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let ct_len = sealed
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::Decrypt)?;
    let (ct, tag) = sealed.split_at(ct_len);
    let mut out = ct.to_vec();
    key.cipher()
        .decrypt_in_place_detached(&nonce.0.into(), b"", &mut out, tag.into())
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(out)
}

/// The keystream and authenticator of one box, for data that does not fit in memory
/// (file attachments, spec/xrcp.md §10). Produces the same bytes as [`seal_tail_tag`].
struct Stream {
    /// Eight blocks at a time (`xsalsa`): the keystream was the largest cost of a transfer.
    cipher: XSalsa20Stream,
    mac: Poly1305,
    /// Ciphertext bytes not yet fed to Poly1305 (less than one 16-byte block).
    partial: [u8; 16],
    partial_len: usize,
}

impl Stream {
    fn new(key: &BoxKey, nonce: &Nonce) -> Self {
        let mut cipher = XSalsa20Stream::new(&key.subkey(), &nonce.0);
        let mut mac_key = Zeroizing::new([0u8; 32]);
        cipher.apply_keystream(mac_key.as_mut());
        let mac = Poly1305::new(mac_key.as_ref().into());
        Stream {
            cipher,
            mac,
            partial: [0; 16],
            partial_len: 0,
        }
    }

    fn authenticate(&mut self, mut ct: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(ct.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&ct[..take]);
            self.partial_len += take;
            ct = &ct[take..];
            if self.partial_len < 16 {
                return;
            }
            self.mac.update(&[self.partial.into()]);
            self.partial_len = 0;
        }
        let full = ct.len() / 16 * 16;
        // Whole blocks in one call (no padding happens for a multiple of 16): poly1305's AVX2
        // backend then takes four blocks at a time, twice the speed of one block per call.
        self.mac.update_padded(&ct[..full]);
        let rest = &ct[full..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn tag(self) -> [u8; 16] {
        let tag = self.mac.compute_unpadded(&self.partial[..self.partial_len]);
        tag.into()
    }
}

/// Encrypts a stream chunk by chunk; [`StreamSealer::finish`] gives the trailing tag.
pub struct StreamSealer(Stream);

impl StreamSealer {
    /// Starts the keystream of `key` (via HSalsa20(key, 0^16)) and `nonce`.
    pub fn new(key: &BoxKey, nonce: &Nonce) -> Self {
        StreamSealer(Stream::new(key, nonce))
    }

    /// Encrypts `chunk` in place.
    pub fn update(&mut self, chunk: &mut [u8]) {
        self.0.cipher.apply_keystream(chunk);
        self.0.authenticate(chunk);
    }

    /// The Poly1305 tag over everything encrypted.
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.0.tag()
    }
}

/// Decrypts a stream chunk by chunk. Plaintext is released before the tag is checked, so
/// callers must treat it as untrusted until [`StreamOpener::verify`] succeeds (the file layer
/// writes to a temporary file and discards it on failure).
pub struct StreamOpener(Stream);

impl StreamOpener {
    /// Starts the keystream of `key` (via HSalsa20(key, 0^16)) and `nonce`.
    pub fn new(key: &BoxKey, nonce: &Nonce) -> Self {
        StreamOpener(Stream::new(key, nonce))
    }

    /// Decrypts `chunk` in place.
    pub fn update(&mut self, chunk: &mut [u8]) {
        self.0.authenticate(chunk);
        self.0.cipher.apply_keystream(chunk);
    }

    /// Checks the trailing tag in constant time; a mismatch is [`CryptoError::Decrypt`].
    pub fn verify(self, tag: &[u8]) -> Result<(), CryptoError> {
        let mut ours = self.0.tag();
        let ok = tag.len() == TAG_LEN && bool::from(ours.ct_eq(tag));
        ours.zeroize();
        if ok {
            Ok(())
        } else {
            Err(CryptoError::Decrypt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn key(s: &str) -> BoxKey {
        BoxKey::from_bytes(h(s).try_into().unwrap())
    }

    fn seq_nonce() -> Nonce {
        Nonce(core::array::from_fn(|i| i as u8))
    }

    /// NaCl's `core1` test: HSalsa20 of the RFC 7748 shared secret is crypto_box's beforenm.
    #[test]
    fn hsalsa_step_matches_nacl_firstkey() {
        let k = key("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(
            hex::encode(k.subkey().as_ref()),
            "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"
        );
    }

    /// libsodium `crypto_box_easy` with the RFC 7748 key pairs (checked with PyNaCl).
    #[test]
    fn dh_box_equals_libsodium_crypto_box() {
        let k = key("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let out = seal(&k, &seq_nonce(), b"hello");
        assert_eq!(
            hex::encode(&out),
            "ba2e1e56b96566ce1dd470d02620a4b16d2b3cc974"
        );
        assert_eq!(open(&k, &seq_nonce(), &out).unwrap(), b"hello");
    }

    #[test]
    fn symmetric_box_is_not_plain_secretbox() {
        let k = key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let out = seal(&k, &seq_nonce(), b"hello");
        assert_eq!(
            hex::encode(&out),
            "36b6b5a5ae4454bef6c196db32f2f49703ebb0dcaf"
        );
        assert!(!hex::encode(&out).starts_with("6698275b"));
    }

    #[test]
    fn padded_and_tail_tag_layouts() {
        let k = BoxKey::from_bytes(core::array::from_fn(|i| i as u8 + 1));
        let n = Nonce(core::array::from_fn(|i| i as u8 + 1));
        let boxed = seal_padded(&k, &n, b"hello NaCl secretbox", 256).unwrap();
        assert_eq!(boxed.len(), 272);
        assert_eq!(
            hex::encode(&boxed[..16]),
            "bc861d7776bd7b5ef059d8b5b415d38a"
        );
        assert_eq!(
            open_padded(&k, &n, &boxed).unwrap(),
            b"hello NaCl secretbox"
        );
        assert_eq!(
            seal_padded(&k, &n, &[0; 255], 256),
            Err(CryptoError::LargeMessage)
        );

        let tail = seal_tail_tag(&k, &n, b"abc");
        let head = seal(&k, &n, b"abc");
        assert_eq!(&tail[..3], &head[16..]);
        assert_eq!(&tail[3..], &head[..16]);
        assert_eq!(open_tail_tag(&k, &n, &tail).unwrap(), b"abc");
    }

    #[test]
    fn tampering_and_short_input_fail_to_decrypt() {
        let k = BoxKey::from_bytes([7; 32]);
        let n = Nonce([9; 24]);
        let mut tail = seal_tail_tag(&k, &n, b"message");
        tail[0] ^= 1;
        assert_eq!(open_tail_tag(&k, &n, &tail), Err(CryptoError::Decrypt));
        assert_eq!(open_tail_tag(&k, &n, &[0; 15]), Err(CryptoError::Decrypt));
        assert_eq!(open(&k, &n, &[0; 15]), Err(CryptoError::Decrypt));
        let mut boxed = seal(&k, &n, b"message");
        boxed[20] ^= 0x80;
        assert_eq!(open(&k, &n, &boxed), Err(CryptoError::Decrypt));
    }

    proptest! {
        #[test]
        fn stream_equals_one_shot(msg in proptest::collection::vec(any::<u8>(), 0..3000),
                                  cuts in proptest::collection::vec(0usize..3000, 0..6)) {
            let k = BoxKey::from_bytes([3; 32]);
            let n = Nonce([4; 24]);
            let expected = seal_tail_tag(&k, &n, &msg);
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(msg.len())).collect();
            bounds.push(0);
            bounds.push(msg.len());
            bounds.sort_unstable();
            let mut data = msg.clone();
            let mut sealer = StreamSealer::new(&k, &n);
            for w in bounds.windows(2) { sealer.update(&mut data[w[0]..w[1]]); }
            let tag = sealer.finish();
            prop_assert_eq!(&data[..], &expected[..msg.len()]);
            prop_assert_eq!(&tag[..], &expected[msg.len()..]);

            let mut opener = StreamOpener::new(&k, &n);
            for w in bounds.windows(2) { opener.update(&mut data[w[0]..w[1]]); }
            prop_assert!(opener.verify(&tag).is_ok());
            prop_assert_eq!(data, msg);
        }

        #[test]
        fn round_trips(msg in proptest::collection::vec(any::<u8>(), 0..2000), key in any::<[u8; 32]>()) {
            let k = BoxKey::from_bytes(key);
            let n = Nonce([1; 24]);
            prop_assert_eq!(open(&k, &n, &seal(&k, &n, &msg)).unwrap(), msg.clone());
            prop_assert_eq!(open_tail_tag(&k, &n, &seal_tail_tag(&k, &n, &msg)).unwrap(), msg.clone());
            let p = seal_padded(&k, &n, &msg, msg.len() + 10).unwrap();
            prop_assert_eq!(open_padded(&k, &n, &p).unwrap(), msg);
        }

        #[test]
        fn open_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = BoxKey::from_bytes([0; 32]);
            prop_assert!(open(&k, &Nonce([0; 24]), &buf).is_err());
            prop_assert!(open_tail_tag(&k, &Nonce([0; 24]), &buf).is_err());
        }
    }
}
