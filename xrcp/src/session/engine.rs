//! The session engine of each role: one value that seals what this side sends and opens what
//! it receives, owning the session's secrets and the id window (spec/xrcp.md §10).
//!
//! - [`ControllerSession`] seals commands (signed) and opens responses;
//! - [`HostSession`] opens commands (signatures checked) and seals responses.
//!
//! Both are `Sync` and take `&self`: the HTTP/2 drivers share one engine between concurrent
//! streams. The chain keys and counters sit behind a lock held only for the few hash steps of
//! key derivation, never for encryption or across an await. The receive path — signatures,
//! then the id window, then decryption and the session-code check — is
//! [`RemoteCrypto::open_with`], the one place both engines and [`super::RemoteSession`] use.
//!
//! The engine does no I/O: a driver collects a body head with [`ControllerSession::head_reader`]
//! / [`HostSession::head_reader`] and hands the complete head over. Secrets (tls-unique, chain
//! keys, the controller's signing keys) are owned privately and wiped when the engine drops.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::body::{BodyHead, BodyHeadReader, DecodedBody, EncodedBody, RemoteCrypto};
use super::error::RemoteProtocolError;
use super::keys::{RemoteKeys, RemoteSignatures, SbKeyNonce, SessionSecrets};
use super::protocol::{RemoteCommand, RemoteResponse};
use crate::crypto::keys::{Ed25519PublicKey, Ed25519SecretKey};
use crate::handshake::SessionKeys;

/// What both engines share: the immutable crypto and the locked counters.
#[derive(Debug)]
struct Engine {
    crypto: RemoteCrypto,
    /// Only held for key derivation; never across an await.
    keys: Mutex<RemoteKeys>,
}

impl Engine {
    fn new(secrets: SessionSecrets, compression: bool) -> Result<Engine, RemoteProtocolError> {
        let (crypto, keys) = secrets.into_parts(compression)?;
        Ok(Engine {
            crypto,
            keys: Mutex::new(keys),
        })
    }

    fn keys(&self) -> MutexGuard<'_, RemoteKeys> {
        // Key derivation cannot panic half-way in a way that leaves the counters unusable.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next send id and seals `json` under it.
    fn seal(&self, json: &[u8]) -> Result<EncodedBody, RemoteProtocolError> {
        let snd = self.keys().snd_keys()?;
        let bytes = self
            .crypto
            .encrypt_encode_body(snd.corr_id, &snd.keys.body, json)?;
        Ok(EncodedBody {
            corr_id: snd.corr_id,
            bytes,
            file_key: snd.keys.file,
        })
    }

    fn open(&self, head: &BodyHead) -> Result<DecodedBody, RemoteProtocolError> {
        self.crypto.open_with(head, |id| self.keys().rcv_keys(id))
    }
}

/// The controller's session engine: seals commands, opens responses.
#[derive(Debug)]
pub struct ControllerSession(Engine);

impl ControllerSession {
    /// The session after a successful handshake (`handshake::ControllerKeys`): its keys, the
    /// two signing keys of the invitation, and the compression decision
    /// ([`super::use_compression`]).
    pub fn new(
        keys: SessionKeys,
        session_key: Ed25519SecretKey,
        identity_key: Ed25519SecretKey,
        compression: bool,
    ) -> Result<ControllerSession, RemoteProtocolError> {
        let signatures = RemoteSignatures::Sign {
            session_key,
            identity_key,
        };
        Engine::new(SessionSecrets::new(keys, signatures), compression).map(ControllerSession)
    }

    /// Whether JSON is zstd-compressed in this session.
    pub fn compression(&self) -> bool {
        self.0.crypto.compression()
    }

    /// Seals a command: next id, encryption, both signatures. The body's attachment key is
    /// in the result.
    pub fn seal_command(&self, cmd: &RemoteCommand) -> Result<EncodedBody, RemoteProtocolError> {
        self.0.seal(&cmd.to_json_bytes())
    }

    /// A reader for the head of the next response body (responses carry no signatures).
    pub fn head_reader(&self) -> BodyHeadReader {
        self.0.crypto.head_reader()
    }

    /// Opens a response head: id window, decryption, session code. Gives the JSON bytes (the
    /// caller parses them with its own bounds and the host's encoding) and the attachment key.
    pub fn open_response(&self, head: &BodyHead) -> Result<DecodedBody, RemoteProtocolError> {
        self.0.open(head)
    }
}

/// The host's session engine: opens commands, seals responses.
#[derive(Debug)]
pub struct HostSession(Engine);

impl HostSession {
    /// The session after a successful handshake (`handshake::HostKeys`): its keys, the
    /// controller's two public keys from the invitation, and the compression decision.
    pub fn new(
        keys: SessionKeys,
        ctrl_session_key: Ed25519PublicKey,
        ctrl_identity_key: Ed25519PublicKey,
        compression: bool,
    ) -> Result<HostSession, RemoteProtocolError> {
        let signatures = RemoteSignatures::Verify {
            session_key: ctrl_session_key,
            identity_key: ctrl_identity_key,
        };
        Engine::new(SessionSecrets::new(keys, signatures), compression).map(HostSession)
    }

    /// Whether JSON is zstd-compressed in this session.
    pub fn compression(&self) -> bool {
        self.0.crypto.compression()
    }

    /// A reader for the head of the next request body (with its two signatures).
    pub fn head_reader(&self) -> BodyHeadReader {
        self.0.crypto.head_reader()
    }

    /// Opens a request head: signatures (`CTRL_AUTH`), id window, decryption, session code,
    /// JSON. Gives the command and the key of its attachment.
    pub fn open_command(
        &self,
        head: &BodyHead,
    ) -> Result<(RemoteCommand, SbKeyNonce), RemoteProtocolError> {
        let body = self.0.open(head)?;
        Ok((RemoteCommand::from_json_bytes(&body.json)?, body.file_key))
    }

    /// Seals a response: next id and encryption (responses are not signed).
    pub fn seal_response(&self, rr: &RemoteResponse) -> Result<EncodedBody, RemoteProtocolError> {
        self.0.seal(&rr.to_json_bytes())
    }
}

/// A [`super::RemoteSession`] of one role handed to the other role's engine
/// ([`super::RemoteSession::into_controller`], [`super::RemoteSession::into_host`]): which
/// side a session is for is fixed by its signature keys (spec/xrcp.md §10.2), so this is a
/// mistake in the calling program, never something a peer can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WrongRole {
    /// The secrets verify requests (the host's) but the controller's engine was asked for.
    #[error("these session secrets are the host's (they verify requests), not the controller's")]
    HostSecretsForController,
    /// The secrets sign requests (the controller's) but the host's engine was asked for.
    #[error("these session secrets are the controller's (they sign requests), not the host's")]
    ControllerSecretsForHost,
}

impl super::RemoteSession {
    /// This session as the controller's engine; an error if its secrets are the host's.
    pub fn into_controller(self) -> Result<ControllerSession, WrongRole> {
        if self.crypto.expects_signatures() {
            return Err(WrongRole::HostSecretsForController);
        }
        Ok(ControllerSession(Engine {
            crypto: self.crypto,
            keys: Mutex::new(self.keys),
        }))
    }

    /// This session as the host's engine; an error if its secrets are the controller's.
    pub fn into_host(self) -> Result<HostSession, WrongRole> {
        if !self.crypto.expects_signatures() {
            return Err(WrongRole::ControllerSecretsForHost);
        }
        Ok(HostSession(Engine {
            crypto: self.crypto,
            keys: Mutex::new(self.keys),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::chain::ChainKey;
    use crate::session::RRResult;

    fn keys(send: u8, recv: u8) -> SessionKeys {
        SessionKeys::new(
            &[9; 32],
            ChainKey::from_bytes([send; 32]),
            ChainKey::from_bytes([recv; 32]),
        )
    }

    /// Each role's secrets only make that role's engine.
    #[test]
    fn a_session_of_one_role_does_not_make_the_other_engine() {
        let sign = || RemoteSignatures::Sign {
            session_key: Ed25519SecretKey::from_bytes([3; 32]),
            identity_key: Ed25519SecretKey::from_bytes([4; 32]),
        };
        let verify = || RemoteSignatures::Verify {
            session_key: Ed25519SecretKey::from_bytes([3; 32]).public(),
            identity_key: Ed25519SecretKey::from_bytes([4; 32]).public(),
        };
        let session = |sigs| {
            super::super::RemoteSession::new(SessionSecrets::new(keys(1, 2), sigs), false).unwrap()
        };
        assert_eq!(
            session(verify()).into_controller().unwrap_err(),
            WrongRole::HostSecretsForController
        );
        assert_eq!(
            session(sign()).into_host().unwrap_err(),
            WrongRole::ControllerSecretsForHost
        );
        assert!(session(sign()).into_controller().is_ok());
        assert!(session(verify()).into_host().is_ok());
        let text = WrongRole::HostSecretsForController.to_string();
        assert!(text.contains("host's") && !text.contains("Host"), "{text}");
    }

    fn pair(compression: bool) -> (ControllerSession, HostSession) {
        let session_key = Ed25519SecretKey::generate();
        let identity_key = Ed25519SecretKey::generate();
        let host = HostSession::new(
            keys(2, 1),
            session_key.public(),
            identity_key.public(),
            compression,
        )
        .unwrap();
        let ctrl =
            ControllerSession::new(keys(1, 2), session_key, identity_key, compression).unwrap();
        (ctrl, host)
    }

    fn head(with_signatures: bool, bytes: &[u8]) -> BodyHead {
        BodyHeadReader::read_from(with_signatures, bytes).unwrap().0
    }

    #[test]
    fn commands_and_responses_round_trip_out_of_order() {
        for compression in [false, true] {
            let (ctrl, host) = pair(compression);
            let cmds: Vec<EncodedBody> = (0..3)
                .map(|i| ctrl.seal_command(&RemoteCommand::Recv { wait: i }).unwrap())
                .collect();
            for enc in cmds.iter().rev() {
                let (cmd, file_key) = host.open_command(&head(true, &enc.bytes)).unwrap();
                assert_eq!(
                    cmd,
                    RemoteCommand::Recv {
                        wait: i64::from(enc.corr_id) - 1
                    }
                );
                assert_eq!(file_key.key.as_bytes(), enc.file_key.key.as_bytes());
            }
            let rr = RemoteResponse::ChatEvent {
                chat_event: None::<RRResult>,
            };
            let enc = host.seal_response(&rr).unwrap();
            let got = ctrl.open_response(&head(false, &enc.bytes)).unwrap();
            assert_eq!(RemoteResponse::from_json_bytes(&got.json).unwrap(), rr);
        }
    }

    /// The order of the receive checks: a body with a bad signature is refused before it can
    /// use up its id, so the genuine body with that id still opens afterwards.
    #[test]
    fn an_unauthenticated_body_does_not_move_the_window() {
        let (ctrl, host) = pair(false);
        let enc = ctrl.seal_command(&RemoteCommand::Recv { wait: 1 }).unwrap();
        let mut forged = enc.bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(
            host.open_command(&head(true, &forged)).unwrap_err(),
            RemoteProtocolError::CTRL_AUTH
        );
        assert!(host.open_command(&head(true, &enc.bytes)).is_ok());
        assert_eq!(
            host.open_command(&head(true, &enc.bytes)).unwrap_err(),
            RemoteProtocolError::DuplicateId
        );
    }

    #[test]
    fn the_engines_are_shared_between_threads() {
        fn sync<T: Send + Sync>() {}
        sync::<ControllerSession>();
        sync::<HostSession>();
    }
}
