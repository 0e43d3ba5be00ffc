//! The host's half of the handshake (spec/xrcp.md §7, §8). In the reference this is
//! `connectRCCtrl` / `prepareHostHello` / `prepareCtrlSession`.

use serde_json::Value;

use super::{HostKeys, SessionKeys};
use crate::codec::version::SUPPORTED;
use crate::codec::Version;
use crate::crypto::{
    chain_init, BoxKey, HybridSecret, KemKeyPair, KeyHash, Nonce, X25519SecretKey,
};
use crate::error::RcError;
use crate::message::{
    decode_block, encode_block, CtrlEncHello, HostEncHello, HostHello, SignedInvitation,
};
use crate::pairing::CtrlPairing;
use crate::tls::{CaRole, Pin, SessionCredentials, TlsIdentity};

/// A host session from a verified invitation until the controller's HELLO.
///
/// `K` is the session's sntrup761 key pair, or [`AwaitingKem`] while a driver is still making
/// it ([`HostHandshake::without_kem`]): only a handshake that has its key pair can make the
/// HELLO, so a HELLO without one cannot be written (spec/xrcp.md §7).
pub struct HostHandshake<K = KemKeyPair> {
    invitation: SignedInvitation,
    /// The pairing as it will be after this session (new DH key, old one kept as previous).
    pairing: CtrlPairing,
    version: Version,
    hello_key: BoxKey,
    kem: K,
    credentials: SessionCredentials,
}

/// The KEM slot of a [`HostHandshake`] whose key pair is still being made
/// ([`HostHandshake::without_kem`], then [`HostHandshake::with_kem`]).
#[derive(Debug)]
pub struct AwaitingKem;

impl HostHandshake {
    /// Verifies `invitation` (`INVITATION`), checks it against the stored pairing of this
    /// controller if there is one (`IDENTITY`), agrees on a version (`VERSION`) and makes the
    /// session's DH and KEM keys.
    pub fn new(
        invitation: SignedInvitation,
        pairing: Option<CtrlPairing>,
    ) -> Result<HostHandshake, RcError> {
        Ok(HostHandshake::without_kem(invitation, pairing)?.with_kem(KemKeyPair::generate()))
    }
}

impl HostHandshake<AwaitingKem> {
    /// [`HostHandshake::new`] without the sntrup761 key pair, which the caller supplies with
    /// [`HostHandshake::with_kem`] to get a handshake that can make the HELLO. Its generation is
    /// the slowest step of the handshake (≈ 12 ms here, BENCHMARKS.md §1b) and the HELLO is
    /// the first message that needs it, so a driver can make it while TCP, TLS and the user's
    /// comparison of the session code go on.
    pub fn without_kem(
        invitation: SignedInvitation,
        pairing: Option<CtrlPairing>,
    ) -> Result<HostHandshake<AwaitingKem>, RcError> {
        invitation.verify()?;
        let inv = &invitation.invitation;
        let version = SUPPORTED.compatible(&inv.version).ok_or(RcError::Version)?;
        let dh = X25519SecretKey::generate();
        let pairing = match pairing {
            Some(p) => {
                if p.ctrl_ca != inv.ca || p.ctrl_identity != inv.idkey {
                    return Err(RcError::Identity);
                }
                CtrlPairing {
                    prev_dh: Some(p.dh),
                    dh,
                    ..p
                }
            }
            None => CtrlPairing {
                ca: TlsIdentity::generate(CaRole::Host)?,
                ctrl_ca: inv.ca,
                ctrl_identity: inv.idkey,
                dh,
                prev_dh: None,
            },
        };
        let hello_key = pairing.dh.dh(&inv.dh).map_err(|_| RcError::Invitation)?;
        let credentials = pairing.ca.session_credentials()?;
        Ok(HostHandshake {
            invitation,
            pairing,
            version,
            hello_key,
            kem: AwaitingKem,
            credentials,
        })
    }

    /// Supplies the session's KEM key pair (see [`HostHandshake::without_kem`]).
    pub fn with_kem(self, kem: KemKeyPair) -> HostHandshake {
        HostHandshake {
            invitation: self.invitation,
            pairing: self.pairing,
            version: self.version,
            hello_key: self.hello_key,
            kem,
            credentials: self.credentials,
        }
    }
}

impl<K> HostHandshake<K> {
    /// The invitation this handshake answers.
    pub fn invitation(&self) -> &SignedInvitation {
        &self.invitation
    }

    /// The controller CA the TLS client requires.
    pub fn tls_pin(&self) -> Pin {
        Pin::Fingerprint(self.invitation.invitation.ca.0)
    }

    /// SHA-256 of the host's own CA certificate for this pairing (what TLS presents).
    pub fn ca_fingerprint(&self) -> KeyHash {
        KeyHash(self.pairing.ca.fingerprint())
    }

    /// The TLS chain and key this session presents.
    pub fn credentials(&self) -> &SessionCredentials {
        &self.credentials
    }
}

impl HostHandshake {
    /// The host HELLO block, sent only after the user confirmed the session code.
    pub fn hello_block(&self, app: Value) -> Result<Vec<u8>, RcError> {
        let hello = HostHello {
            version: self.version,
            ca: KeyHash(self.pairing.ca.fingerprint()),
            app,
            kem: self.kem.public().clone(),
        };
        let enc = HostEncHello::seal(
            &hello,
            &self.hello_key,
            self.pairing.dh.public(),
            Nonce::random(),
        )?;
        encode_block(&enc.encode())
    }

    /// Processes the controller's reply: an ERROR block is `CTRL_ERROR <text>`; a HELLO yields
    /// the session keys and the updated pairing to persist.
    pub fn handle_ctrl_hello(
        self,
        block: &[u8],
        tls_unique: &[u8],
    ) -> Result<(HostKeys, CtrlPairing), RcError> {
        match CtrlEncHello::decode(decode_block(block)?)? {
            CtrlEncHello::Error { nonce, ciphertext } => Err(RcError::CtrlError(
                CtrlEncHello::open_error(&ciphertext, &self.hello_key, &nonce)?,
            )),
            CtrlEncHello::Hello {
                kem_ciphertext,
                ciphertext,
            } => {
                let kem_secret = self.kem.decapsulate(&kem_ciphertext);
                let hybrid = HybridSecret::new(&self.hello_key, &kem_secret);
                // The host sends on the second chain and receives on the first.
                let (mut recv, send) = chain_init(&hybrid);
                let (key, nonce) = recv.advance();
                CtrlEncHello::open_hello(&ciphertext, &key, &nonce)?;
                let inv = self.invitation.invitation;
                Ok((
                    HostKeys {
                        keys: SessionKeys::new(tls_unique, send, recv),
                        version: self.version,
                        ctrl_session_key: inv.skey,
                        ctrl_identity_key: inv.idkey,
                        ctrl_app: inv.app,
                    },
                    self.pairing,
                ))
            }
        }
    }
}
