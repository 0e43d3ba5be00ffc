//! sntrup761 key encapsulation (spec/xrcp.md §3.3): the post-quantum half of the hybrid
//! secret. The reference passes keys and ciphertexts to C without checking their length; we
//! check 1158 / 1039 / 1763 bytes before any KEM code runs.
//!
//! Backed by PQClean's C code through `pqcrypto-ntruprime` (round-3 supercop variant, the same
//! as the reference's C code, spec/xrcp.md §3.3). The crate builds both PQClean's portable ("clean") and AVX2 code and
//! picks one per call with run-time CPU detection (`is_x86_feature_detected!("avx2")`), so one
//! portable binary takes the AVX2 path where the CPU has it: key generation ~0.2 ms instead of
//! the 10.3 ms the pure-Rust `sntrup761` crate's portable path needs (it chooses its AVX2 code
//! only at compile time). Tests cross-check against that pure-Rust crate, an independent
//! implementation.
//!
//! Wiping. Our own copies (the secret key, the shared secret) live in buffers zeroized on drop.
//! The C code does not wipe its stack, and the crate hands keys and secrets back as `Copy`
//! arrays by value, which safe code cannot wipe in place (`unsafe_code` is forbidden here). We
//! therefore run every KEM call in a frame of its own and, when it has returned, overwrite the
//! 64 KiB of stack below our frame with zeros (`scrub_stack`; PQClean's deepest call chain,
//! key generation through the AVX2 multiplication, takes about 25 KiB by gcc's
//! `-fstack-usage`). That is best effort: it does not reach registers (vector registers may
//! hold polynomial coefficients until the next vector code runs), and it relies on the
//! compiler placing the scrub buffer where the call's frames were, which it does for a
//! non-inlined function called from the same frame.
//!
//! Dispatch: the crate checks only `avx2` before taking its AVX2 code, which its build compiles
//! with `-mbmi2 -mpopcnt` as well: Intel's and AMD's CPUs with AVX2 all have those, but a
//! virtual machine that reports AVX2 while masking BMI2 would fault (we cannot choose the
//! portable code ourselves without calling the C functions directly, i.e. `unsafe`).

use pqcrypto_ntruprime::sntrup761 as pq;
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _};
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;

/// sntrup761 public key size (1158 bytes).
pub const PUBLIC_KEY_LEN: usize = pq::public_key_bytes();
/// sntrup761 ciphertext size (1039 bytes).
pub const CIPHERTEXT_LEN: usize = pq::ciphertext_bytes();
/// sntrup761 secret key size (1763 bytes).
pub const SECRET_KEY_LEN: usize = pq::secret_key_bytes();
const SHARED_SECRET_LEN: usize = 32;

/// Where the public key sits in the secret key: the round-3 secret key is
/// `f (191) ‖ 1/g (191) ‖ public key (1158) ‖ rho (191) ‖ hash (32)`.
const PUBLIC_KEY_OFFSET: usize = 2 * 191;

/// How much stack [`scrub_stack`] zeroizes after a KEM call.
const SCRUB_WORDS: usize = 64 * 1024 / 8;

/// An sntrup761 public (encapsulation) key, 1158 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(Box<[u8; PUBLIC_KEY_LEN]>);

/// An sntrup761 ciphertext, 1039 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8; CIPHERTEXT_LEN]>);

/// The 32-byte shared secret; zeroized on drop.
pub struct KemSharedSecret(Zeroizing<[u8; SHARED_SECRET_LEN]>);

/// The 1763-byte secret key, on the heap (moving the pair moves a pointer) and zeroized on drop.
#[derive(Clone)]
struct SecretKeyBytes(Box<Zeroizing<[u8; SECRET_KEY_LEN]>>);

/// A key pair made for one session; the secret half is zeroized on drop (every clone's too:
/// the fuzz harnesses clone one instead of paying for a key generation per input).
#[derive(Clone)]
pub struct KemKeyPair {
    public: KemPublicKey,
    secret: SecretKeyBytes,
}

/// Overwrites the 64 KiB of stack below the caller's frame, where the KEM call that just
/// returned kept its temporaries (see the module comment). Volatile writes: not elided.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u64; SCRUB_WORDS];
    area.zeroize();
    std::hint::black_box(&area);
}

/// Runs one KEM call in a frame of its own, then scrubs where that frame was.
#[inline(never)]
fn scrubbed<T>(f: impl FnOnce() -> T) -> T {
    let out = run_once(f);
    scrub_stack();
    out
}

#[inline(never)]
fn run_once<T>(f: impl FnOnce() -> T) -> T {
    f()
}

fn array<const N: usize>(b: &[u8]) -> Result<Box<[u8; N]>, CryptoError> {
    let a: [u8; N] = b.try_into().map_err(|_| CryptoError::InvalidEncoding)?;
    Ok(Box::new(a))
}

impl KemPublicKey {
    /// A public key from exactly [`PUBLIC_KEY_LEN`] bytes; checked before any KEM code runs.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        array(b).map(KemPublicKey)
    }

    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Encapsulates a fresh secret to this key (PQClean draws the randomness from the OS).
    pub fn encapsulate(&self) -> (KemCiphertext, KemSharedSecret) {
        let mut ss = Zeroizing::new([0u8; SHARED_SECRET_LEN]);
        let ct = scrubbed(|| {
            // Lengths match by construction.
            let pk = pq::PublicKey::from_bytes(&self.0[..]).expect("public key length");
            let (s, ct) = pq::encapsulate(&pk);
            ss.copy_from_slice(s.as_bytes());
            let mut out = Box::new([0u8; CIPHERTEXT_LEN]);
            out.copy_from_slice(ct.as_bytes());
            out
        });
        (KemCiphertext(ct), KemSharedSecret(ss))
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
        array(b).map(KemCiphertext)
    }

    /// The raw ciphertext bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
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

    /// The 32 secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl KemKeyPair {
    /// A fresh key pair from a random seed.
    pub fn generate() -> Self {
        let mut secret = SecretKeyBytes(Box::new(Zeroizing::new([0u8; SECRET_KEY_LEN])));
        let public = scrubbed(|| {
            let (pk, sk) = pq::keypair();
            secret.0.copy_from_slice(sk.as_bytes());
            let mut out = Box::new([0u8; PUBLIC_KEY_LEN]);
            out.copy_from_slice(pk.as_bytes());
            out
        });
        KemKeyPair {
            public: KemPublicKey(public),
            secret,
        }
    }

    /// A key pair from a stored secret key (1763 bytes); the public key is the copy the
    /// secret key carries.
    pub fn from_secret_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        if b.len() != SECRET_KEY_LEN {
            return Err(CryptoError::InvalidEncoding);
        }
        let mut secret = SecretKeyBytes(Box::new(Zeroizing::new([0u8; SECRET_KEY_LEN])));
        secret.0.copy_from_slice(b);
        let public = array(&b[PUBLIC_KEY_OFFSET..PUBLIC_KEY_OFFSET + PUBLIC_KEY_LEN])?;
        Ok(KemKeyPair {
            public: KemPublicKey(public),
            secret,
        })
    }

    /// The public half, sent in the host HELLO.
    pub fn public(&self) -> &KemPublicKey {
        &self.public
    }

    /// Implicit rejection: a tampered ciphertext yields an unrelated secret, so the mismatch
    /// surfaces later as a `DECRYPT` of the controller HELLO.
    pub fn decapsulate(&self, ct: &KemCiphertext) -> KemSharedSecret {
        let mut ss = Zeroizing::new([0u8; SHARED_SECRET_LEN]);
        scrubbed(|| {
            // Lengths match by construction.
            let sk = pq::SecretKey::from_bytes(&self.secret.0[..]).expect("secret key length");
            let ct = pq::Ciphertext::from_bytes(&ct.0[..]).expect("ciphertext length");
            ss.copy_from_slice(pq::decapsulate(&ct, &sk).as_bytes());
        });
        KemSharedSecret(ss)
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
    use rand::RngCore;

    fn seed() -> [u8; 32] {
        let mut s = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut s);
        s
    }

    #[test]
    fn sizes_are_checked() {
        assert!(KemPublicKey::from_bytes(&[0; 1157]).is_err());
        assert!(KemPublicKey::from_bytes(&[0; 1159]).is_err());
        assert!(KemCiphertext::from_bytes(&[0; 1038]).is_err());
        assert!(KemKeyPair::from_secret_bytes(&[0; 10]).is_err());
        assert!(KemKeyPair::from_secret_bytes(&[0; SECRET_KEY_LEN + 1]).is_err());
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

    /// The pure-Rust `sntrup761` crate (an independent implementation) and ours (PQClean)
    /// agree in both directions, and the public key we take out of a secret key is the one
    /// that crate derives.
    #[test]
    fn cross_decapsulation_with_pure_rust_sntrup761() {
        for _ in 0..5 {
            // Their key pair, our encapsulation.
            let (pk, sk) = sntrup761::generate_key_from_seed(seed());
            let ours = KemPublicKey::from_bytes(pk.as_ref()).unwrap();
            let (ct, ss) = ours.encapsulate();
            let ct_rs = sntrup761::Ciphertext::try_from(ct.as_bytes()).unwrap();
            assert_eq!(sk.decapsulate(&ct_rs).as_ref(), ss.as_bytes());

            // Our key pair from their secret key bytes, their encapsulation.
            let kp = KemKeyPair::from_secret_bytes(sk.as_ref()).unwrap();
            assert_eq!(kp.public().as_bytes(), pk.as_ref());
            let (ct2, ss2) = pk.encapsulate_deterministic(seed());
            let ct2 = KemCiphertext::from_bytes(ct2.as_ref()).unwrap();
            assert_eq!(kp.decapsulate(&ct2).as_bytes(), ss2.as_ref());

            // Our key pair, their view of its public key.
            let mine = KemKeyPair::generate();
            let sk_rs = sntrup761::DecapsulationKey::try_from(&mine.secret.0[..]).unwrap();
            assert_eq!(
                sntrup761::EncapsulationKey::from(&sk_rs).as_ref(),
                mine.public().as_bytes()
            );
        }
    }
}
