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

/// A 32-byte secret in a heap box of its own, wiped on drop.
///
/// Why a box: a `[u8; 32]` held by value is copied by every move (into a struct, through a
/// future's state, out of a function), and each copy left behind is never wiped — a core dump
/// of a controller once held a session's chain keys a dozen times after it ended. Boxed, the
/// bytes stay at one address from creation to drop; moving the owner moves a pointer.
/// The bytes are written straight into the box (HKDF output included), never built on the
/// stack first.
struct Secret32(Box<Zeroizing<[u8; 32]>>);

impl Secret32 {
    fn zeroed() -> Self {
        Secret32(Box::new(Zeroizing::new([0u8; 32])))
    }
}

/// Overwrites the stack just below the caller's frame.
///
/// HKDF-SHA512 keeps its input in the hash state (`hkdf`/`hmac`/`sha2` do not wipe their
/// state on drop), in the frames of the calls that [`hkdf_sha512`] makes; those frames lie
/// below its caller's. Overwriting that stretch right after the derivation removes the chain
/// key and its successors from the dead stack. 32 KiB covers the unoptimised debug frames of
/// these crates with room to spare.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; 32 * 1024];
    // `black_box` makes the zeroing observable, so it cannot be optimised away.
    std::hint::black_box(&mut area);
}

/// SHA3-256 of the X25519 output and the KEM shared secret; seeds the chains.
pub struct HybridSecret(Secret32);

impl HybridSecret {
    /// `SHA3-256(dh ‖ kem)` (spec/xrcp.md §3.3).
    pub fn new(dh: &BoxKey, kem: &KemSharedSecret) -> Self {
        let mut out = Secret32::zeroed();
        sha3_into(dh.as_bytes(), kem.as_bytes(), &mut out.0);
        scrub_stack();
        HybridSecret(out)
    }

    /// A hybrid secret given directly (test vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut out = Secret32::zeroed();
        **out.0 = bytes;
        HybridSecret(out)
    }

    /// The 32 secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0 .0
    }
}

#[inline(never)]
fn sha3_into(a: &[u8], b: &[u8], out: &mut [u8; 32]) {
    let mut h = Sha3_256::new();
    h.update(a);
    h.update(b);
    h.finalize_into(out.into());
}

impl std::fmt::Debug for HybridSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HybridSecret(..)")
    }
}

/// HKDF-SHA512 into `out`, then the stack it used overwritten (see [`scrub_stack`]).
fn hkdf_sha512(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    hkdf_sha512_inner(ikm, info, out);
    scrub_stack();
}

#[inline(never)]
fn hkdf_sha512_inner(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    Hkdf::<Sha512>::new(Some(b""), ikm)
        .expand(info, out)
        .expect("88 bytes is far below HKDF-SHA512's limit");
}

/// One direction's chain key; every [`ChainKey::advance`] ratchets it forward.
///
/// The key lives in one heap box for its whole life and is wiped on drop; advancing
/// overwrites it in place.
pub struct ChainKey(Secret32);

/// `sbcInit("", hybrid)`: chain A (the controller's send / host's receive direction) and
/// chain B (the controller's receive / host's send direction).
pub fn chain_init(secret: &HybridSecret) -> (ChainKey, ChainKey) {
    let mut okm = Box::new(Zeroizing::new([0u8; 64]));
    hkdf_sha512(secret.as_bytes(), b"SimpleXSbChainInit", okm.as_mut_slice());
    let (mut a, mut b) = (Secret32::zeroed(), Secret32::zeroed());
    a.0.copy_from_slice(&okm[..32]);
    b.0.copy_from_slice(&okm[32..]);
    (ChainKey(a), ChainKey(b))
}

impl ChainKey {
    /// A chain key from given bytes (test vectors, fuzzing); the caller's array is its own
    /// to wipe.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut out = Secret32::zeroed();
        **out.0 = bytes;
        ChainKey(out)
    }

    /// The 32 chain key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0 .0
    }

    /// `sbcHkdf`: replaces this chain key and returns the message key and nonce.
    pub fn advance(&mut self) -> (BoxKey, Nonce) {
        let mut okm = Box::new(Zeroizing::new([0u8; 88]));
        hkdf_sha512(self.0 .0.as_slice(), b"SimpleXSbChain", okm.as_mut_slice());
        self.0 .0.copy_from_slice(&okm[..32]);
        let key = BoxKey::from_slice(&okm[32..64]);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&okm[64..88]);
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

    /// Values from the Python model in spec/vectors/gen.py (HKDF via hashlib/hmac; spec/xrcp.md §14.4).
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
