//! The hybrid secret and the chain keys derived from it (spec/xrcp.md §3.3, §3.4, §8).
//!
//! `hybrid = SHA3-256(x25519 ‖ sntrup761)`; `sbcInit` splits HKDF-SHA512(hybrid,
//! "SimpleXSbChainInit") into two chains; each message takes one `sbcHkdf` step, which yields
//! the next chain key *first*, then the message key and the 24-byte nonce.

use hkdf::Hkdf;
use sha2::Sha512;
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

use super::kem::KemSharedSecret;
use super::secretbox::{BoxKey, Nonce};

/// SHA3-256 of the X25519 output and the KEM shared secret; seeds the chains.
pub struct HybridSecret(Zeroizing<[u8; 32]>);

impl HybridSecret {
    pub fn new(dh: &BoxKey, kem: &KemSharedSecret) -> Self {
        let mut h = Sha3_256::new();
        h.update(dh.as_bytes());
        h.update(kem.as_bytes());
        HybridSecret(Zeroizing::new(h.finalize().into()))
    }

    /// A hybrid secret given directly (test vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        HybridSecret(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for HybridSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HybridSecret(..)")
    }
}

fn hkdf_sha512(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    Hkdf::<Sha512>::new(Some(b""), ikm)
        .expand(info, out)
        .expect("88 bytes is far below HKDF-SHA512's limit");
}

/// One direction's chain key; every [`ChainKey::advance`] ratchets it forward.
pub struct ChainKey(Zeroizing<[u8; 32]>);

/// `sbcInit("", hybrid)`: chain A (the controller's send / host's receive direction) and
/// chain B (the controller's receive / host's send direction).
pub fn chain_init(secret: &HybridSecret) -> (ChainKey, ChainKey) {
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha512(secret.as_bytes(), b"SimpleXSbChainInit", okm.as_mut());
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (ChainKey(a), ChainKey(b))
}

impl ChainKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainKey(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `sbcHkdf`: replaces this chain key and returns the message key and nonce.
    pub fn advance(&mut self) -> (BoxKey, Nonce) {
        let mut okm = Zeroizing::new([0u8; 88]);
        hkdf_sha512(self.0.as_ref(), b"SimpleXSbChain", okm.as_mut());
        self.0.copy_from_slice(&okm[..32]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm[32..64]);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&okm[64..88]);
        let key = BoxKey::from_bytes(key);
        (key, Nonce(nonce))
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Values from the Python model in the research notes (HKDF via hashlib/hmac).
    #[test]
    fn key_schedule_model_values() {
        let dh = BoxKey::from_bytes(arr(
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
        ));
        let kem = KemSharedSecret::from_bytes([0x42; 32]);
        let hybrid = HybridSecret::new(&dh, &kem);
        assert_eq!(
            hex::encode(hybrid.as_bytes()),
            "1a3822b2055e8b06798c7b077473ecd4fc849f85ba33b97e522fc8527b8750bd"
        );
        let (mut a, b) = chain_init(&hybrid);
        assert_eq!(
            hex::encode(a.as_bytes()),
            "ad29a1017e90c4ff8f2c64e3c2735d42f6cb1547d3d2a64267987d0c9661d6bf"
        );
        assert_eq!(
            hex::encode(b.as_bytes()),
            "3049eb692ea57647a401c0f060cb81d4bce8f56d5a0a9b86d517665a99993f26"
        );
        let (key, nonce) = a.advance();
        assert_eq!(
            hex::encode(key.as_bytes()),
            "906399fe1632da38dde771c004651ee94e53ded3d24cb33ddd539a6c057509f0"
        );
        assert_eq!(
            hex::encode(nonce.0),
            "3ba1385636b1f6888799a22be5caca2a2925bd81584cb917"
        );
        assert_eq!(
            hex::encode(a.as_bytes()),
            "7b92f86a9f695c809cb0e7453eb668c2e85b6b0670f695253ce8f161c32c4ed1"
        );
    }

    /// NIST FIPS 202 example: SHA3-256("abc").
    #[test]
    fn sha3_256_nist() {
        assert_eq!(
            hex::encode(Sha3_256::digest(b"abc")),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        assert_eq!(
            hex::encode(Sha3_256::digest(b"")),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }
}
