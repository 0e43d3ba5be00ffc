//! The controller's half of the handshake (spec/xrcp.md §7, §8). In the reference this is
//! `connectRCHost` / `prepareHostSession`, named after the host it talks to.

use serde_json::Value;

use super::{ControllerKeys, SessionKeys};
use crate::codec::json::to_aeson_string;
use crate::codec::version::SUPPORTED;
use crate::crypto::{
    chain_init, BoxKey, Ed25519SecretKey, HybridSecret, KeyHash, Nonce, X25519PublicKey,
    X25519SecretKey,
};
use crate::error::RcError;
use crate::message::{
    decode_block, encode_block, Announcement, CtrlEncHello, HostEncHello, HostHello, Invitation,
    SignedInvitation, TransportHost,
};
use crate::pairing::{HostPairing, KnownHost};
use crate::tls::{Pin, SessionCredentials};

/// A controller session from the invitation until the host's HELLO.
pub struct ControllerHandshake {
    pairing: HostPairing,
    session_key: Ed25519SecretKey,
    session_dh: X25519SecretKey,
    invitation: SignedInvitation,
    credentials: SessionCredentials,
}

/// The result of a valid host HELLO.
pub struct HelloOutcome {
    /// The controller HELLO block (16384 bytes) to send.
    pub reply: Vec<u8>,
    /// The session's chain keys and signing keys.
    pub keys: ControllerKeys,
    /// The pairing with the host's CA and new DH key recorded; persist it.
    pub pairing: HostPairing,
}

impl ControllerHandshake {
    /// New session keys and a signed invitation for `host:port` (the address the host will
    /// dial, chosen by the caller after binding), created at `now` (seconds since the epoch).
    pub fn new(
        pairing: HostPairing,
        host: impl Into<TransportHost>,
        port: u16,
        app: Value,
        now: i64,
    ) -> Result<ControllerHandshake, RcError> {
        // A Haskell host percent-decodes `app` twice, so `+` or `%` in it would make every
        // real host reject the invitation (spec/xrcp.md §4.3).
        if to_aeson_string(&app).contains(['+', '%']) {
            return Err(RcError::Internal(
                "app info must not contain '+' or '%'".into(),
            ));
        }
        let session_key = Ed25519SecretKey::generate();
        let session_dh = X25519SecretKey::generate();
        let invitation = Invitation {
            ca: KeyHash(pairing.ca.fingerprint()),
            host: host.into(),
            port,
            version: SUPPORTED,
            app,
            ts: now,
            skey: session_key.public(),
            idkey: pairing.identity.public(),
            dh: session_dh.public(),
        }
        .sign(&session_key, &pairing.identity)?;
        let credentials = pairing.ca.session_credentials()?;
        Ok(ControllerHandshake {
            pairing,
            session_key,
            session_dh,
            invitation,
            credentials,
        })
    }

    /// The signed invitation to show (link, QR code) or announce.
    pub fn invitation(&self) -> &SignedInvitation {
        &self.invitation
    }

    /// The TLS chain and key this session presents.
    pub fn credentials(&self) -> &SessionCredentials {
        &self.credentials
    }

    /// Which host CA the TLS server accepts: any for a new pairing, the known one after.
    pub fn tls_pin(&self) -> Pin {
        match &self.pairing.known_host {
            Some(k) => Pin::Fingerprint(k.host_ca.0),
            None => Pin::Any,
        }
    }

    /// An encrypted multicast announcement of this invitation, for a known host only
    /// (`NEW_CONTROLLER` otherwise). Each call uses a fresh nonce.
    pub fn announcement(&self) -> Result<Vec<u8>, RcError> {
        let known = self
            .pairing
            .known_host
            .as_ref()
            .ok_or(RcError::NewController)?;
        Ok(Announcement::seal(
            &self.invitation,
            &self.session_dh,
            &known.host_dh,
            Nonce::random(),
        )?
        .encode())
    }

    /// Processes the host HELLO block. `tls_host_ca` is the fingerprint of the CA the host
    /// presented in TLS and `tls_unique` the session binding. Checks, in the reference's
    /// order: decryption (`DECRYPT`), JSON (`SYNTAX`), the CA against TLS (`IDENTITY`), the
    /// version (`VERSION`). A refusal carries an ERROR block for the host when its HELLO was
    /// readable enough to know the key.
    pub fn handle_host_hello(
        self,
        block: &[u8],
        tls_host_ca: KeyHash,
        tls_unique: &[u8],
    ) -> Result<HelloOutcome, HelloRejected> {
        match self.offer_host_hello(block, tls_host_ca, tls_unique) {
            HelloAttempt::Accepted(outcome) => Ok(outcome),
            HelloAttempt::NotInvited { error, .. } => Err(HelloRejected { error, reply: None }),
            HelloAttempt::Refused(rejected) => Err(rejected),
        }
    }

    /// Like [`handle_host_hello`](Self::handle_host_hello), but a block that does not
    /// decrypt under this invitation's DH key hands the handshake back: its sender has not
    /// shown that it holds the invitation, so the controller may go on waiting for the host
    /// that does (spec/xrcp.md §6.4). Once a block decrypts, the outcome is final either way.
    pub fn offer_host_hello(
        self,
        block: &[u8],
        tls_host_ca: KeyHash,
        tls_unique: &[u8],
    ) -> HelloAttempt {
        let enc = match decode_block(block).and_then(HostEncHello::decode) {
            Ok(enc) => enc,
            Err(error) => {
                return HelloAttempt::NotInvited {
                    handshake: self,
                    error,
                }
            }
        };
        let Ok(hello_key) = self.session_dh.dh(&enc.dh_key) else {
            return HelloAttempt::NotInvited {
                handshake: self,
                error: RcError::Decrypt,
            };
        };
        let hello = match enc.open_proving(&hello_key) {
            Ok(hello) => hello,
            // The box did not authenticate: no proof of the invitation. A box that does was
            // sealed with the invitation's DH key, whatever is wrong inside it.
            Err(refused) if !refused.authenticated => {
                return HelloAttempt::NotInvited {
                    handshake: self,
                    error: refused.error,
                }
            }
            Err(refused) => return HelloAttempt::Refused(refusal(refused.error, &hello_key)),
        };
        match self.accept_hello(hello, enc.dh_key, &hello_key, tls_host_ca, tls_unique) {
            Ok(outcome) => HelloAttempt::Accepted(outcome),
            Err(error) => HelloAttempt::Refused(refusal(error, &hello_key)),
        }
    }

    fn accept_hello(
        self,
        hello: HostHello,
        host_dh: X25519PublicKey,
        hello_key: &BoxKey,
        tls_host_ca: KeyHash,
        tls_unique: &[u8],
    ) -> Result<HelloOutcome, RcError> {
        if hello.ca != tls_host_ca {
            return Err(RcError::Identity);
        }
        if let Some(known) = &self.pairing.known_host {
            if known.host_ca != tls_host_ca {
                return Err(RcError::Internal(
                    "host CA differs from the pinned one".into(),
                ));
            }
        }
        let (kem_ciphertext, kem_secret) = hello.kem.encapsulate();
        if !SUPPORTED.contains(hello.version) {
            return Err(RcError::Version);
        }
        let hybrid = HybridSecret::new(hello_key, &kem_secret);
        let (mut send, recv) = chain_init(&hybrid);
        let (key, nonce) = send.advance();
        let reply =
            encode_block(&CtrlEncHello::seal_hello(kem_ciphertext, &key, &nonce)?.encode()?)?;

        let mut pairing = self.pairing;
        pairing.known_host = Some(KnownHost {
            host_ca: tls_host_ca,
            host_dh,
        });
        Ok(HelloOutcome {
            reply,
            keys: ControllerKeys {
                keys: SessionKeys::new(tls_unique, send, recv),
                version: hello.version,
                session_key: self.session_key,
                identity_key: pairing.identity.clone(),
                host_app: hello.app,
            },
            pairing,
        })
    }
}

/// An ERROR block telling the host why its (readable) HELLO was refused.
fn refusal(error: RcError, hello_key: &BoxKey) -> HelloRejected {
    let reply = CtrlEncHello::seal_error(&error.text_form(), hello_key, Nonce::random())
        .encode()
        .and_then(|c| encode_block(&c))
        .ok();
    HelloRejected { error, reply }
}

/// What [`ControllerHandshake::offer_host_hello`] made of a block.
pub enum HelloAttempt {
    /// The host proved it holds the invitation and was accepted.
    Accepted(HelloOutcome),
    /// The block does not decrypt under this invitation: its sender never saw the
    /// invitation (or sent garbage). The handshake is unchanged and can take another block.
    NotInvited {
        /// The unchanged handshake, for the next block.
        handshake: ControllerHandshake,
        /// Why the block was not taken (for the log).
        error: RcError,
    },
    /// The block decrypted but is refused (syntax, identity, version): final.
    Refused(HelloRejected),
}

/// A host HELLO the controller refused.
#[derive(Debug)]
pub struct HelloRejected {
    /// Why the HELLO was refused.
    pub error: RcError,
    /// An ERROR block to send before closing, when one could be made.
    pub reply: Option<Vec<u8>>,
}
