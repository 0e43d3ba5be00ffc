//! sntrup761 key encapsulation (spec/xrcp.md §3.3): the post-quantum half of the hybrid
//! secret. The reference passes keys and ciphertexts to C without checking their length; we
//! check 1158 / 1039 bytes before any KEM code runs.
//!
//! Backed by the pure-Rust `sntrup761` crate (round-3 supercop variant, the same as
//! reference's C code, spec/xrcp.md §3.3); tests cross-check it against PQClean via `pqcrypto-ntruprime`.

use rand::RngCore;
use zeroize::Zeroizing;

use super::CryptoError;

/// sntrup761 public key size (1158 bytes).
pub const PUBLIC_KEY_LEN: usize = sntrup761::PUBLIC_KEY_SIZE;
/// sntrup761 ciphertext size (1039 bytes).
pub const CIPHERTEXT_LEN: usize = sntrup761::CIPHERTEXT_SIZE;
/// sntrup761 secret key size (1763 bytes).
pub const SECRET_KEY_LEN: usize = sntrup761::SECRET_KEY_SIZE;

/// An sntrup761 public (encapsulation) key, 1158 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(sntrup761::EncapsulationKey);

/// An sntrup761 ciphertext, 1039 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(sntrup761::Ciphertext);

/// The 32-byte shared secret; zeroized on drop.
pub struct KemSharedSecret(Zeroizing<[u8; 32]>);

/// A key pair made for one session; the secret half is zeroized on drop (every clone's too:
/// the fuzz harnesses clone one instead of paying for a key generation per input).
#[derive(Clone)]
pub struct KemKeyPair {
    public: KemPublicKey,
    secret: sntrup761::DecapsulationKey,
}

fn seed() -> Zeroizing<[u8; 32]> {
    let mut s = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(s.as_mut());
    s
}

impl KemPublicKey {
    /// A public key from exactly [`PUBLIC_KEY_LEN`] bytes; checked before any KEM code runs.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        sntrup761::EncapsulationKey::try_from(b)
            .map(KemPublicKey)
            .map_err(|_| CryptoError::InvalidEncoding)
    }

    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Encapsulates a fresh secret to this key.
    pub fn encapsulate(&self) -> (KemCiphertext, KemSharedSecret) {
        let (ct, ss) = self.0.encapsulate_deterministic(*seed());
        (KemCiphertext(ct), KemSharedSecret::from_lib(&ss))
    }
}

impl std::fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KemPublicKey({} bytes)", self.as_bytes().len())
    }
}

impl KemCiphertext {
    /// A ciphertext from exactly [`CIPHERTEXT_LEN`] bytes; checked before any KEM code runs.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        sntrup761::Ciphertext::try_from(b)
            .map(KemCiphertext)
            .map_err(|_| CryptoError::InvalidEncoding)
    }

    /// The raw ciphertext bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KemCiphertext({} bytes)", self.as_bytes().len())
    }
}

impl KemSharedSecret {
    /// A shared secret given directly (test vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        KemSharedSecret(Zeroizing::new(bytes))
    }

    fn from_lib(ss: &sntrup761::SharedSecret) -> Self {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(ss.as_ref());
        KemSharedSecret(out)
    }

    /// The 32 secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl KemKeyPair {
    /// A fresh key pair from a random seed.
    pub fn generate() -> Self {
        let (pk, sk) = sntrup761::generate_key_from_seed(*seed());
        KemKeyPair {
            public: KemPublicKey(pk),
            secret: sk,
        }
    }

    /// A key pair from a stored secret key (1763 bytes); the public key is re-derived.
    pub fn from_secret_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let secret =
            sntrup761::DecapsulationKey::try_from(b).map_err(|_| CryptoError::InvalidEncoding)?;
        let public = KemPublicKey(sntrup761::EncapsulationKey::from(&secret));
        Ok(KemKeyPair { public, secret })
    }

    /// The public half, sent in the host HELLO.
    pub fn public(&self) -> &KemPublicKey {
        &self.public
    }

    /// Implicit rejection: a tampered ciphertext yields an unrelated secret, so the mismatch
    /// surfaces later as a `DECRYPT` of the controller HELLO.
    pub fn decapsulate(&self, ct: &KemCiphertext) -> KemSharedSecret {
        KemSharedSecret::from_lib(&self.secret.decapsulate(&ct.0))
    }
}

impl std::fmt::Debug for KemKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KemKeyPair(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pqcrypto_traits::kem::{
        Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _,
    };

    #[test]
    fn sizes_are_checked() {
        assert!(KemPublicKey::from_bytes(&[0; 1157]).is_err());
        assert!(KemPublicKey::from_bytes(&[0; 1159]).is_err());
        assert!(KemCiphertext::from_bytes(&[0; 1038]).is_err());
        assert!(KemKeyPair::from_secret_bytes(&[0; 10]).is_err());
        assert_eq!(
            KemKeyPair::generate().public().as_bytes().len(),
            PUBLIC_KEY_LEN
        );
    }

    #[test]
    fn round_trip_and_implicit_rejection() {
        let kp = KemKeyPair::generate();
        let (ct, ss) = kp.public().encapsulate();
        assert_eq!(ct.as_bytes().len(), CIPHERTEXT_LEN);
        assert_eq!(kp.decapsulate(&ct).as_bytes(), ss.as_bytes());
        let mut bad = ct.as_bytes().to_vec();
        bad[5] ^= 1;
        let bad = KemCiphertext::from_bytes(&bad).unwrap();
        assert_ne!(kp.decapsulate(&bad).as_bytes(), ss.as_bytes());
    }

    /// PQClean (C, via pqcrypto-ntruprime) and the pure-Rust crate agree in both directions.
    #[test]
    fn cross_decapsulation_with_pqclean() {
        for _ in 0..5 {
            // PQClean key pair, our encapsulation.
            let (pk, sk) = pqcrypto_ntruprime::sntrup761::keypair();
            let ours = KemPublicKey::from_bytes(pk.as_bytes()).unwrap();
            let (ct, ss) = ours.encapsulate();
            let ct_pq =
                pqcrypto_ntruprime::sntrup761::Ciphertext::from_bytes(ct.as_bytes()).unwrap();
            let ss_pq = pqcrypto_ntruprime::sntrup761::decapsulate(&ct_pq, &sk);
            assert_eq!(ss_pq.as_bytes(), ss.as_bytes());

            // Our key pair from PQClean's secret key bytes, PQClean's encapsulation.
            let kp = KemKeyPair::from_secret_bytes(sk.as_bytes()).unwrap();
            assert_eq!(kp.public().as_bytes(), pk.as_bytes());
            let (ss2, ct2) = pqcrypto_ntruprime::sntrup761::encapsulate(&pk);
            let ct2 = KemCiphertext::from_bytes(ct2.as_bytes()).unwrap();
            assert_eq!(kp.decapsulate(&ct2).as_bytes(), ss2.as_bytes());
        }
    }
}
