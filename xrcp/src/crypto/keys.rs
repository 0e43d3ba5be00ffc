//! X25519 and Ed25519 keys, Ed25519 signatures and key hashes, with the reference's binary
//! and text encodings (spec/xrcp.md §2.1, §2.2, §3.2).
//!
//! Public keys travel as X.509 SubjectPublicKeyInfo DER (44 bytes for both algorithms), in
//! binary with a 1-byte length prefix and in text as padded base64url of the DER.

use ed25519_dalek::{Signer, Verifier};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::secretbox::BoxKey;
use super::CryptoError;
use crate::codec::text::{base64url_decode, base64url_encode};
use crate::codec::{Encoder, Parser};
use crate::error::RcError;

/// DER prefix of an X25519 SPKI (OID 1.3.101.110), followed by the 32-byte key.
const X25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 SPKI (OID 1.3.101.112), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Length of either SPKI.
pub const SPKI_LEN: usize = 44;

fn spki(prefix: &[u8; 12], raw: &[u8; 32]) -> [u8; SPKI_LEN] {
    let mut out = [0u8; SPKI_LEN];
    out[..12].copy_from_slice(prefix);
    out[12..].copy_from_slice(raw);
    out
}

fn from_spki(prefix: &[u8; 12], der: &[u8]) -> Result<[u8; 32], CryptoError> {
    if der.len() != SPKI_LEN || der[..12] != prefix[..] {
        return Err(CryptoError::InvalidEncoding);
    }
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&der[12..]);
    Ok(raw)
}

/// The encodings shared by both public key types.
macro_rules! spki_public_key {
    ($name:ident, $prefix:expr, $what:literal) => {
        impl $name {
            /// The key from its 32 raw bytes.
            pub fn from_raw(raw: [u8; 32]) -> Self {
                $name(raw)
            }

            /// The 32 raw key bytes.
            pub fn as_raw(&self) -> &[u8; 32] {
                &self.0
            }

            /// The X.509 SubjectPublicKeyInfo DER.
            pub fn to_spki(&self) -> [u8; SPKI_LEN] {
                spki(&$prefix, &self.0)
            }

            /// Parses the 44-byte SPKI DER; any other length or prefix is an error.
            pub fn from_spki(der: &[u8]) -> Result<Self, CryptoError> {
                from_spki(&$prefix, der).map($name)
            }

            /// Binary form: 1-byte length (`0x2C`) + SPKI DER.
            pub fn encode(&self, e: &mut Encoder) {
                e.u8(SPKI_LEN as u8).raw(&self.to_spki());
            }

            /// Reads the binary form (1-byte length + SPKI DER); anything else is `SYNTAX`.
            pub fn decode(p: &mut Parser<'_>) -> Result<Self, RcError> {
                Self::from_spki(p.short_bytes()?)
                    .map_err(|_| RcError::syntax(concat!("bad ", $what, " key")))
            }

            /// Text form: padded base64url of the SPKI DER.
            pub fn to_text(&self) -> String {
                base64url_encode(&self.to_spki())
            }

            /// Parses the text form (base64url of the SPKI DER); anything else is `SYNTAX`.
            pub fn from_text(s: &str) -> Result<Self, RcError> {
                Self::from_spki(&base64url_decode(s)?)
                    .map_err(|_| RcError::syntax(concat!("bad ", $what, " key")))
            }
        }
    };
}

/// An X25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; 32]);
spki_public_key!(X25519PublicKey, X25519_SPKI_PREFIX, "X25519");

/// An Ed25519 public key (not yet checked to be a valid curve point; see `verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ed25519PublicKey([u8; 32]);
spki_public_key!(Ed25519PublicKey, ED25519_SPKI_PREFIX, "Ed25519");

impl Ed25519PublicKey {
    /// Plain RFC 8032 Ed25519 over `msg`. An invalid point never verifies.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        self.prepare().verify(msg, sig)
    }

    /// The key with its curve point decoded once, for a key that checks many signatures (the
    /// controller's two session keys check every command: decoding costs ≈ 10 µs each time).
    pub fn prepare(&self) -> PreparedEd25519Key {
        PreparedEd25519Key(ed25519_dalek::VerifyingKey::from_bytes(&self.0).ok())
    }
}

/// An [`Ed25519PublicKey`] ready to verify; `verify` is always false for a key that is not
/// a valid point.
#[derive(Clone, Debug)]
pub struct PreparedEd25519Key(Option<ed25519_dalek::VerifyingKey>);

impl PreparedEd25519Key {
    /// Same result as [`Ed25519PublicKey::verify`].
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        self.0.as_ref().is_some_and(|vk| {
            vk.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
                .is_ok()
        })
    }
}

/// An X25519 private key; zeroized on drop.
#[derive(Clone)]
pub struct X25519SecretKey(x25519_dalek::StaticSecret);

impl X25519SecretKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Self {
        X25519SecretKey(x25519_dalek::StaticSecret::random_from_rng(OsRng))
    }

    /// The key from its 32-byte scalar (clamped when used).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        X25519SecretKey(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The 32-byte scalar, in a copy that is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> X25519PublicKey {
        X25519PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// The raw X25519 output, used directly as a box key and as the DH half of the hybrid
    /// secret (spec/xrcp.md §3.2). Unlike the reference we refuse low-order peer keys, which
    /// no honest peer produces.
    pub fn dh(&self, peer: &X25519PublicKey) -> Result<BoxKey, CryptoError> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(CryptoError::WeakKey);
        }
        Ok(BoxKey::from_slice(shared.as_bytes()))
    }
}

impl std::fmt::Debug for X25519SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X25519SecretKey(public {})", self.public().to_text())
    }
}

/// An Ed25519 signing key; zeroized on drop.
#[derive(Clone)]
pub struct Ed25519SecretKey(ed25519_dalek::SigningKey);

impl Ed25519SecretKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Self {
        Ed25519SecretKey(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    /// The key from its 32-byte seed.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Ed25519SecretKey(ed25519_dalek::SigningKey::from_bytes(&bytes))
    }

    /// The 32-byte seed, in a copy that is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Pure Ed25519 over `msg` (deterministic: the same key and message give the same signature).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl std::fmt::Debug for Ed25519SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519SecretKey(public {})", self.public().to_text())
    }
}

/// An Ed25519 signature: binary `0x40 ‖ 64 bytes`, text padded base64url.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Binary form: `0x40 ‖ 64 bytes`.
    pub fn encode(&self, e: &mut Encoder) {
        e.u8(64).raw(&self.0);
    }

    /// Reads the binary form; a length other than 64 is `SYNTAX`.
    pub fn decode(p: &mut Parser<'_>) -> Result<Self, RcError> {
        Self::from_slice(p.short_bytes()?)
    }

    /// The signature from exactly 64 bytes; any other length is `SYNTAX`.
    pub fn from_slice(b: &[u8]) -> Result<Self, RcError> {
        <[u8; 64]>::try_from(b)
            .map(Signature)
            .map_err(|_| RcError::syntax("bad signature length"))
    }

    /// Text form: padded base64url of the 64 bytes.
    pub fn to_text(&self) -> String {
        base64url_encode(&self.0)
    }

    /// Parses the text form (padded or unpadded base64url of 64 bytes).
    pub fn from_text(s: &str) -> Result<Self, RcError> {
        Self::from_slice(&base64url_decode(s)?)
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.to_text())
    }
}

/// A SHA-256 fingerprint, e.g. of a CA certificate's DER (the pinned identity). The reference
/// accepts any length on parse; every real fingerprint is 32 bytes and we require that.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// SHA-256 of `der`.
    pub fn of(der: &[u8]) -> Self {
        KeyHash(Sha256::digest(der).into())
    }

    /// Binary form: `0x20 ‖ 32 bytes`.
    pub fn encode(&self, e: &mut Encoder) {
        e.u8(32).raw(&self.0);
    }

    /// Reads the binary form; a length other than 32 is `SYNTAX`.
    pub fn decode(p: &mut Parser<'_>) -> Result<Self, RcError> {
        Self::from_slice(p.short_bytes()?)
    }

    /// The hash from exactly 32 bytes; any other length is `SYNTAX`.
    pub fn from_slice(b: &[u8]) -> Result<Self, RcError> {
        <[u8; 32]>::try_from(b)
            .map(KeyHash)
            .map_err(|_| RcError::syntax("bad key hash length"))
    }

    /// Text form: padded base64url of the 32 bytes.
    pub fn to_text(&self) -> String {
        base64url_encode(&self.0)
    }

    /// Parses the text form (padded or unpadded base64url of 32 bytes).
    pub fn from_text(s: &str) -> Result<Self, RcError> {
        Self::from_slice(&base64url_decode(s)?)
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({})", self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arr(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 7748 §6.1.
    #[test]
    fn x25519_rfc7748() {
        let alice = X25519SecretKey::from_bytes(arr(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = X25519SecretKey::from_bytes(arr(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            alice.public().as_raw(),
            &arr("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            bob.public().as_raw(),
            &arr("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let shared = arr("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(alice.dh(&bob.public()).unwrap().as_bytes(), &shared);
        assert_eq!(bob.dh(&alice.public()).unwrap().as_bytes(), &shared);
        assert_eq!(
            alice.public().to_text(),
            "MCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo="
        );
        assert_eq!(
            alice.dh(&X25519PublicKey::from_raw([0; 32])).unwrap_err(),
            CryptoError::WeakKey
        );
    }

    /// RFC 8032 §7.1, tests 1 and 2.
    #[test]
    fn ed25519_rfc8032() {
        let k1 = Ed25519SecretKey::from_bytes(arr(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        assert_eq!(
            k1.public().as_raw(),
            &arr("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let s1 = k1.sign(b"");
        assert_eq!(hex::encode(s1.0), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
        assert!(k1.public().verify(b"", &s1));
        assert!(!k1.public().verify(b"x", &s1));

        let k2 = Ed25519SecretKey::from_bytes(arr(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        ));
        let s2 = k2.sign(&[0x72]);
        assert_eq!(hex::encode(s2.0), "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
        assert_eq!(
            k2.public().to_text(),
            "MCowBQYDK2VwAyEAPUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw="
        );
    }

    #[test]
    fn wrong_algorithm_or_length_is_refused() {
        let x = X25519SecretKey::generate().public();
        assert!(Ed25519PublicKey::from_text(&x.to_text()).is_err());
        assert!(X25519PublicKey::from_spki(&x.to_spki()[..43]).is_err());
        assert!(Signature::from_slice(&[0; 63]).is_err());
        assert!(KeyHash::from_slice(&[0; 31]).is_err());
    }

    proptest! {
        #[test]
        fn encodings_round_trip(raw in any::<[u8; 32]>(), sig in proptest::collection::vec(any::<u8>(), 64)) {
            let k = X25519PublicKey::from_raw(raw);
            let mut e = Encoder::new();
            k.encode(&mut e);
            let s = Signature::from_slice(&sig).unwrap();
            s.encode(&mut e);
            KeyHash(raw).encode(&mut e);
            let buf = e.finish();
            prop_assert_eq!(buf[0], 0x2c);
            let mut p = Parser::new(&buf);
            prop_assert_eq!(X25519PublicKey::decode(&mut p).unwrap(), k);
            prop_assert_eq!(Signature::decode(&mut p).unwrap(), s);
            prop_assert_eq!(KeyHash::decode(&mut p).unwrap(), KeyHash(raw));
            prop_assert!(p.end().is_ok());
            prop_assert_eq!(X25519PublicKey::from_text(&k.to_text()).unwrap(), k);
            let ed = Ed25519PublicKey::from_raw(raw);
            prop_assert_eq!(Ed25519PublicKey::from_text(&ed.to_text()).unwrap(), ed);
        }

        #[test]
        fn decoders_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = X25519PublicKey::decode(&mut Parser::new(&buf));
            let _ = Ed25519PublicKey::decode(&mut Parser::new(&buf));
            let _ = Signature::decode(&mut Parser::new(&buf));
            let _ = KeyHash::decode(&mut Parser::new(&buf));
        }
    }
}
