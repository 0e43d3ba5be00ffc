//! What the handshake hands to the session, and the per-message keys and counters
//! (spec/xrcp.md §8, §10.2; the reference's `getRemoteSndKeys`, `getRemoteRcvKeys`).
//!
//! Each direction has its own chain key and its own counter. Sending a message takes the next
//! id (`++counter`, so the first id is 1) and then two chain steps: the first keys the body,
//! the second the attachment — taken even when the message has none, so both sides stay in
//! step. Receiving accepts ids out of order inside a 256-id window, deriving and storing the
//! keys of the ids it skips.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::error::RemoteProtocolError;
use crate::crypto::chain::ChainKey;
use crate::crypto::keys::{Ed25519PublicKey, Ed25519SecretKey};
use crate::crypto::secretbox::{BoxKey, Nonce};

/// How far ahead of the last received id a message may be (`maxSkip` in the reference), and
/// also how far behind the last id a stored skipped key is kept (our bound, see
/// [`RemoteKeys::rcv_keys`]).
pub const MAX_SKIP: u32 = 256;

/// One chain step's output: the secretbox key and nonce of one body or attachment
/// (`C.SbKeyNonce`).
#[derive(Clone, Debug)]
pub struct SbKeyNonce {
    /// The box key.
    pub key: BoxKey,
    /// Its nonce (never on the wire).
    pub nonce: Nonce,
}

impl SbKeyNonce {
    fn next(chain: &mut ChainKey) -> Self {
        let (key, nonce) = chain.advance();
        SbKeyNonce { key, nonce }
    }
}

/// The two keys of one message id: the body (`cmdKN`) and the attachment (`fileKN`).
#[derive(Clone, Debug)]
pub struct MessageKeys {
    /// Keys the body (first chain step of the id).
    pub body: SbKeyNonce,
    /// Keys the attachment (second chain step of the id, taken even without one).
    pub file: SbKeyNonce,
}

impl MessageKeys {
    fn next(chain: &mut ChainKey) -> Self {
        let body = SbKeyNonce::next(chain);
        let file = SbKeyNonce::next(chain);
        MessageKeys { body, file }
    }
}

/// The keys of a message about to be sent, with its id.
#[derive(Clone, Debug)]
pub struct SndKeys {
    /// The id, sent in clear as the body's first 4 bytes.
    pub corr_id: u32,
    /// The id's body and attachment keys.
    pub keys: MessageKeys,
}

/// Who signs requests (`RemoteSignatures`): the controller holds both private keys and signs
/// every request body; the host holds the public halves from the invitation (`skey`,
/// `idkey`) and verifies. Responses are never signed (spec/xrcp.md §10.2).
#[derive(Clone, Debug)]
// One value per session: boxing the signing keys would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum RemoteSignatures {
    /// Controller side (`RSSign`).
    Sign {
        /// Session key; its public half is the invitation's `skey`.
        session_key: Ed25519SecretKey,
        /// Long-term identity key; its public half is the invitation's `idkey`.
        identity_key: Ed25519SecretKey,
    },
    /// Host side (`RSVerify`).
    Verify {
        /// The invitation's `skey`.
        session_key: Ed25519PublicKey,
        /// The invitation's `idkey`.
        identity_key: Ed25519PublicKey,
    },
}

/// Everything the XRCP handshake hands over to the session layer: the one place a session's
/// secrets are put together, and (through the engines that consume it) wiped.
///
/// Its send chain is this side's direction of `sbcInit`'s two chains. On the controller the
/// send chain has already been stepped once (its HELLO used the first step); on the host the
/// receive chain likewise (spec/xrcp.md §8). The session does not step them before its first
/// message. The fields are private: [`SessionSecrets::new`] makes the value,
/// [`super::ControllerSession`], [`super::HostSession`] and [`super::RemoteSession`] consume it.
pub struct SessionSecrets {
    /// The TLS session's tls-unique bytes (client Finished verify_data), prefixed to every
    /// body plaintext. At most 255 bytes (1-byte length prefix).
    tls_unique: Zeroizing<Vec<u8>>,
    /// This side's send chain (the controller's already stepped once by its HELLO).
    snd_chain: ChainKey,
    /// This side's receive chain.
    rcv_chain: ChainKey,
    /// The signing (controller) or verifying (host) keys of requests.
    signatures: RemoteSignatures,
}

impl SessionSecrets {
    /// The handshake's result (`handshake::ControllerKeys::keys` / `HostKeys::keys`, or
    /// [`crate::handshake::SessionKeys::new`] for a session made without a handshake) with
    /// this role's signature keys.
    pub fn new(keys: crate::handshake::SessionKeys, signatures: RemoteSignatures) -> Self {
        let (tls_unique, snd_chain, rcv_chain) = keys.into_parts();
        SessionSecrets {
            tls_unique,
            snd_chain,
            rcv_chain,
            signatures,
        }
    }

    /// The signing (controller) or verifying (host) keys of requests.
    pub fn signatures(&self) -> &RemoteSignatures {
        &self.signatures
    }

    /// The session's crypto and key state; the secrets move into them.
    pub(crate) fn into_parts(
        self,
        compression: bool,
    ) -> Result<(super::RemoteCrypto, RemoteKeys), RemoteProtocolError> {
        let crypto = super::RemoteCrypto::new(self.tls_unique, self.signatures, compression)?;
        Ok((crypto, RemoteKeys::new(self.snd_chain, self.rcv_chain)))
    }
}

impl std::fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecrets")
            .field("signatures", &self.signatures)
            .finish_non_exhaustive()
    }
}

/// The mutable half of the reference's `RemoteCrypto`: counters, chains and skipped keys.
///
/// Kept apart from [`super::RemoteCrypto`] so that concurrent streams only lock this for
/// the few hash steps of key derivation, never for encryption itself.
pub struct RemoteKeys {
    snd_counter: u32,
    rcv_counter: u32,
    snd_chain: ChainKey,
    rcv_chain: ChainKey,
    /// Keys of ids jumped over, by id; only ids within [`MAX_SKIP`] of `rcv_counter`.
    skipped: BTreeMap<u32, MessageKeys>,
}

impl RemoteKeys {
    /// Fresh counters (both 0) over the chains the handshake produced.
    pub fn new(snd_chain: ChainKey, rcv_chain: ChainKey) -> Self {
        RemoteKeys {
            snd_counter: 0,
            rcv_counter: 0,
            snd_chain,
            rcv_chain,
            skipped: BTreeMap::new(),
        }
    }

    /// `getRemoteSndKeys`: the next id and its two keys. Fails only when the 32-bit id space
    /// is exhausted (the reference would wrap to ids the peer rejects as earlier).
    pub fn snd_keys(&mut self) -> Result<SndKeys, RemoteProtocolError> {
        let corr_id = self
            .snd_counter
            .checked_add(1)
            .ok_or_else(|| RemoteProtocolError::Exception("message ids exhausted".into()))?;
        self.snd_counter = corr_id;
        Ok(SndKeys {
            corr_id,
            keys: MessageKeys::next(&mut self.snd_chain),
        })
    }

    /// `getRemoteRcvKeys`: the keys for a received id, with `prev` the last id received:
    /// - `id > prev + 256` → [`RemoteProtocolError::ManySkippedIds`]`(id − prev)`;
    /// - `id == prev` → [`RemoteProtocolError::DuplicateId`];
    /// - `id < prev` → the stored keys of that id (used once and forgotten), else
    ///   [`RemoteProtocolError::EarlierId`]`(prev − id)`;
    /// - otherwise the keys of `prev+1 … id−1` are derived and stored, `prev` becomes `id`,
    ///   and the next two steps are this id's keys.
    ///
    /// Unlike the reference, which keeps skipped keys for the whole session, we forget those
    /// more than [`MAX_SKIP`] ids behind the newest id, so at most 256 are ever held (a peer
    /// skipping 255 ids per message would otherwise grow memory without bound). A message
    /// that late is reported as an earlier id.
    pub fn rcv_keys(&mut self, corr_id: u32) -> Result<MessageKeys, RemoteProtocolError> {
        let prev = self.rcv_counter;
        if corr_id < prev {
            return self
                .skipped
                .remove(&corr_id)
                .ok_or(RemoteProtocolError::EarlierId(prev - corr_id));
        }
        if corr_id == prev {
            return Err(RemoteProtocolError::DuplicateId);
        }
        if u64::from(corr_id) > u64::from(prev) + u64::from(MAX_SKIP) {
            return Err(RemoteProtocolError::ManySkippedIds(corr_id - prev));
        }
        for id in prev + 1..corr_id {
            let keys = MessageKeys::next(&mut self.rcv_chain);
            self.skipped.insert(id, keys);
        }
        self.rcv_counter = corr_id;
        let keys = MessageKeys::next(&mut self.rcv_chain);
        let floor = corr_id.saturating_sub(MAX_SKIP);
        self.skipped = self.skipped.split_off(&floor);
        Ok(keys)
    }

    /// The last id sent (0 before the first message).
    pub fn snd_counter(&self) -> u32 {
        self.snd_counter
    }

    /// The highest id received (0 before the first message).
    pub fn rcv_counter(&self) -> u32 {
        self.rcv_counter
    }

    /// How many skipped ids still have stored keys.
    pub fn skipped_count(&self) -> usize {
        self.skipped.len()
    }
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("snd_counter", &self.snd_counter)
            .field("rcv_counter", &self.rcv_counter)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (RemoteKeys, RemoteKeys) {
        let a = || ChainKey::from_bytes([1; 32]);
        let b = || ChainKey::from_bytes([2; 32]);
        (RemoteKeys::new(a(), b()), RemoteKeys::new(b(), a()))
    }

    #[test]
    fn in_order_keys_agree_and_attachment_step_is_always_taken() {
        let (mut s, mut r) = pair();
        for expected in 1..=3u32 {
            let k = s.snd_keys().unwrap();
            assert_eq!(k.corr_id, expected);
            let got = r.rcv_keys(k.corr_id).unwrap();
            assert_eq!(got.body.key.as_bytes(), k.keys.body.key.as_bytes());
            assert_eq!(got.file.nonce, k.keys.file.nonce);
            assert_ne!(got.body.nonce, got.file.nonce);
        }
    }

    #[test]
    fn window_rules() {
        let (mut s, mut r) = pair();
        let ks: Vec<SndKeys> = (0..5).map(|_| s.snd_keys().unwrap()).collect();
        // 3 first: ids 1, 2 stored.
        let k3 = r.rcv_keys(3).unwrap();
        assert_eq!(k3.body.nonce, ks[2].keys.body.nonce);
        assert_eq!(r.skipped_count(), 2);
        assert_eq!(r.rcv_keys(3).unwrap_err(), RemoteProtocolError::DuplicateId);
        assert_eq!(r.rcv_keys(1).unwrap().file.nonce, ks[0].keys.file.nonce);
        assert_eq!(
            r.rcv_keys(1).unwrap_err(),
            RemoteProtocolError::EarlierId(2)
        );
        assert_eq!(r.rcv_keys(2).unwrap().body.nonce, ks[1].keys.body.nonce);
        assert_eq!(
            r.rcv_keys(3 + 257).unwrap_err(),
            RemoteProtocolError::ManySkippedIds(257)
        );
        assert!(r.rcv_keys(3 + 256).is_ok());
        assert_eq!(r.skipped_count(), 255);
        // Another full jump pushes the oldest stored ids out of the window.
        assert!(r.rcv_keys(3 + 512).is_ok());
        assert_eq!(r.skipped_count(), 255);
        assert_eq!(
            r.rcv_keys(4).unwrap_err(),
            RemoteProtocolError::EarlierId(511)
        );
    }

    #[test]
    fn id_zero_is_a_duplicate_at_start() {
        let (_, mut r) = pair();
        assert_eq!(r.rcv_keys(0).unwrap_err(), RemoteProtocolError::DuplicateId);
        assert_eq!(
            r.rcv_keys(u32::MAX).unwrap_err(),
            RemoteProtocolError::ManySkippedIds(u32::MAX)
        );
    }
}
