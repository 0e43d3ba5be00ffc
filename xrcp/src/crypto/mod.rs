//! Cryptography as the reference composes it (spec/xrcp.md §3): X25519 and Ed25519 keys with
//! their X.509 SPKI encodings, the single box construction behind every encrypted field, the
//! SHA3-256 hybrid of X25519 and sntrup761, and the HKDF-SHA512 chain keys.
//!
//! Every primitive comes from a maintained crate; this module only fixes how they are
//! combined. Secret values are wrapped in types that zeroize on drop and have no `Debug`
//! output of their contents.

pub mod chain;
pub mod kem;
pub mod keys;
pub mod secretbox;
mod xsalsa;

pub use chain::{chain_init, ChainKey, HybridSecret};
pub use kem::{KemCiphertext, KemKeyPair, KemPublicKey, KemSharedSecret};
pub use keys::{
    Ed25519PublicKey, Ed25519SecretKey, KeyHash, PreparedEd25519Key, Signature, X25519PublicKey,
    X25519SecretKey,
};
pub use secretbox::{BoxKey, Nonce, StreamOpener, StreamSealer, TAG_LEN};
#[doc(hidden)]
pub use xsalsa::KeystreamPath;

/// Failures of the crypto layer. Callers turn these into the [`crate::RcError`] kind that
/// their protocol context calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication tag mismatch, or input shorter than a tag.
    #[error("decryption failed")]
    Decrypt,
    /// The message does not fit the requested padded size.
    #[error("message too large to pad")]
    LargeMessage,
    /// Decrypted content is not a valid padded message.
    #[error("invalid padded message")]
    InvalidPadding,
    /// A key, ciphertext or signature of the wrong length or encoding.
    #[error("invalid key or ciphertext encoding")]
    InvalidEncoding,
    /// A public key that yields a non-contributory (all-zero) X25519 output.
    #[error("low-order public key")]
    WeakKey,
}
