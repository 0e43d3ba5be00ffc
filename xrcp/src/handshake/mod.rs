//! The XRCP handshake as two sans-IO state machines (spec/xrcp.md §7, §8): the caller moves
//! bytes and runs TLS; these types decide what to send and whether to go on.
//!
//! ```text
//! controller                                   host
//!   ControllerHandshake::new  ── invitation (QR / link / announcement) ──▶  HostHandshake::new
//!   TLS server (pin: host CA) ◀══════════ TLS 1.3, mutual certificates ══════════▶ TLS client
//!            both show the session code; the host's user confirms it
//!   handle_host_hello         ◀──────── host HELLO block ─────────── hello_block
//!                             ──── controller HELLO block ───────▶ handle_ctrl_hello
//!   ControllerKeys                                                   HostKeys
//! ```
//!
//! Each transition consumes the state, so a finished or failed handshake cannot be reused.

pub mod controller;
pub mod host;
#[cfg(feature = "tokio")]
pub mod io;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::codec::Version;
use crate::crypto::{ChainKey, Ed25519PublicKey, Ed25519SecretKey};

pub use controller::{ControllerHandshake, HelloAttempt, HelloOutcome, HelloRejected};
pub use host::{AwaitingKem, HostHandshake};

/// Per-session secrets both roles derive: the TLS binding and the two chain keys, already
/// advanced past the step the controller HELLO consumed.
///
/// The fields are private: the handshake makes this value, the session engine
/// ([`crate::session::SessionSecrets::new`]) consumes it, and every copy of a secret is wiped
/// on drop. Tools that make a session without a handshake (vectors, fuzzing, benchmarks) use
/// [`SessionKeys::new`].
pub struct SessionKeys {
    /// The TLS client Finished (32 bytes): prefixed to every session body.
    tls_unique: Zeroizing<Vec<u8>>,
    /// Chain for messages this side sends.
    send: ChainKey,
    /// Chain for messages this side receives.
    recv: ChainKey,
}

impl SessionKeys {
    /// The keys of one side: the session's tls-unique bytes (copied into wiped memory) and
    /// this side's send and receive chains.
    pub fn new(tls_unique: &[u8], send: ChainKey, recv: ChainKey) -> SessionKeys {
        SessionKeys {
            tls_unique: Zeroizing::new(tls_unique.to_vec()),
            send,
            recv,
        }
    }

    /// The tls-unique bytes (the TLS client Finished) this session is bound to.
    pub fn tls_unique(&self) -> &[u8] {
        &self.tls_unique
    }

    /// The chain of messages this side sends (for tests comparing both sides' chains).
    pub fn send_chain(&self) -> &ChainKey {
        &self.send
    }

    /// The chain of messages this side receives.
    pub fn recv_chain(&self) -> &ChainKey {
        &self.recv
    }

    /// The three secrets, moved out (only the session engine takes them apart).
    pub(crate) fn into_parts(self) -> (Zeroizing<Vec<u8>>, ChainKey, ChainKey) {
        (self.tls_unique, self.send, self.recv)
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// What the controller holds after a successful handshake.
#[derive(Debug)]
pub struct ControllerKeys {
    /// tls-unique and the two chains.
    pub keys: SessionKeys,
    /// The XRCP protocol version agreed in the HELLO exchange.
    pub version: Version,
    /// Signs every command together with `identity_key` (the invitation's `skey`).
    pub session_key: Ed25519SecretKey,
    /// The long-term identity key (`idkey`).
    pub identity_key: Ed25519SecretKey,
    /// The host's app info from its HELLO.
    pub host_app: Value,
}

/// What the host holds after a successful handshake.
#[derive(Debug)]
pub struct HostKeys {
    /// tls-unique and the two chains.
    pub keys: SessionKeys,
    /// The XRCP protocol version agreed in the HELLO exchange.
    pub version: Version,
    /// Verifies command signatures (the invitation's `skey`).
    pub ctrl_session_key: Ed25519PublicKey,
    /// Verifies command signatures (the invitation's `idkey`).
    pub ctrl_identity_key: Ed25519PublicKey,
    /// The controller's app info from the invitation.
    pub ctrl_app: Value,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::codec::VersionRange;
    use crate::crypto::KeyHash;
    use crate::error::RcError;
    use crate::message::{decode_block, encode_block, Invitation};
    use crate::pairing::{CtrlPairing, HostPairing};
    use crate::tls::Pin;

    const TLS_UNIQUE: [u8; 32] = [0xab; 32];

    fn start(pairing: HostPairing) -> ControllerHandshake {
        ControllerHandshake::new(
            pairing,
            Ipv4Addr::LOCALHOST,
            5000,
            serde_json::json!({"deviceName": "desk"}),
            1_700_000_000,
        )
        .unwrap()
    }

    /// One session without TLS: the host's CA fingerprint stands in for what TLS would show.
    fn run(
        hp: HostPairing,
        cp: Option<CtrlPairing>,
    ) -> Result<(ControllerKeys, HostKeys, HostPairing, CtrlPairing), RcError> {
        let ctrl = start(hp);
        let link = ctrl.invitation().to_uri();
        let inv = crate::message::SignedInvitation::parse(&link)?;
        let host = HostHandshake::new(inv, cp)?;
        let host_ca = host.ca_fingerprint();
        let hello = host.hello_block(serde_json::json!({"deviceName": "phone"}))?;
        let out = ctrl
            .handle_host_hello(&hello, host_ca, &TLS_UNIQUE)
            .map_err(|r| r.error)?;
        let (hk, cp) = host.handle_ctrl_hello(&out.reply, &TLS_UNIQUE)?;
        Ok((out.keys, hk, out.pairing, cp))
    }

    fn assert_chains_agree(ck: &mut ControllerKeys, hk: &mut HostKeys) {
        assert_eq!(
            ck.keys.send.advance().0.as_bytes(),
            hk.keys.recv.advance().0.as_bytes()
        );
        assert_eq!(
            hk.keys.send.advance().0.as_bytes(),
            ck.keys.recv.advance().0.as_bytes()
        );
    }

    #[test]
    fn new_pairing_then_four_reconnections() {
        let (mut ck, mut hk, mut hp, mut cp) = run(HostPairing::new().unwrap(), None).unwrap();
        assert_chains_agree(&mut ck, &mut hk);
        assert_eq!(hk.ctrl_app["deviceName"], "desk");
        assert_eq!(ck.host_app["deviceName"], "phone");
        let host_ca = KeyHash(cp.ca.fingerprint());
        assert_eq!(hp.known_host.unwrap().host_ca, host_ca);
        assert_eq!(hp.known_host.unwrap().host_dh, cp.dh.public());
        assert!(cp.prev_dh.is_none());

        for _ in 0..4 {
            let prev_dh = cp.dh.public();
            let (mut ck, mut hk, hp2, cp2) = run(hp, Some(cp)).unwrap();
            assert_chains_agree(&mut ck, &mut hk);
            assert_eq!(
                hp2.known_host.unwrap().host_ca,
                host_ca,
                "host CA is pinned"
            );
            assert_eq!(cp2.prev_dh.as_ref().unwrap().public(), prev_dh);
            assert_eq!(hp2.known_host.unwrap().host_dh, cp2.dh.public());
            hp = hp2;
            cp = cp2;
        }
    }

    /// The reference's `testExistingPairing` offers a pairing that missed an update: the
    /// controller still holds the host's previous DH key. The TLS pin and HELLO still work;
    /// the announcement is sealed to the old key, which the host keeps as `prev_dh`.
    #[test]
    fn stale_controller_pairing_still_connects_and_announces() {
        let (_, _, hp1, cp1) = run(HostPairing::new().unwrap(), None).unwrap();
        let stale = hp1.clone();
        let (_, _, _hp2, cp2) = run(hp1, Some(cp1)).unwrap();
        let ctrl = start(stale.clone());
        let ann = crate::message::Announcement::decode(&ctrl.announcement().unwrap()).unwrap();
        let (_, used, _) = ann.open([(&cp2.dh, cp2.prev_dh.as_ref())]).unwrap();
        assert_eq!(used, crate::message::DhKeyUsed::Previous);
        let (mut ck, mut hk, _, _) = run(stale, Some(cp2)).unwrap();
        assert_chains_agree(&mut ck, &mut hk);
    }

    #[test]
    fn app_info_a_reference_host_could_not_verify_is_refused() {
        let err = ControllerHandshake::new(
            HostPairing::new().unwrap(),
            Ipv4Addr::LOCALHOST,
            1,
            serde_json::json!({"deviceName": "a+b"}),
            0,
        )
        .err()
        .unwrap();
        assert!(matches!(err, RcError::Internal(_)));
    }

    #[test]
    fn new_host_cannot_be_announced_and_pins_any() {
        let ctrl = start(HostPairing::new().unwrap());
        assert_eq!(ctrl.announcement().unwrap_err(), RcError::NewController);
        assert_eq!(ctrl.tls_pin(), Pin::Any);
    }

    #[test]
    fn host_refuses_a_different_controller_identity() {
        let (_, _, hp, cp) = run(HostPairing::new().unwrap(), None).unwrap();
        // Another controller (new CA and identity) presenting a link to this host.
        let err = run(HostPairing::new().unwrap(), Some(cp.clone())).unwrap_err();
        assert_eq!(err, RcError::Identity);
        // The same CA with another identity key.
        let other = HostPairing {
            identity: crate::crypto::Ed25519SecretKey::generate(),
            ..hp
        };
        assert_eq!(run(other, Some(cp)).unwrap_err(), RcError::Identity);
    }

    #[test]
    fn controller_refuses_hello_whose_ca_differs_from_tls() {
        let ctrl = start(HostPairing::new().unwrap());
        let inv = ctrl.invitation().clone();
        let host = HostHandshake::new(inv, None).unwrap();
        let hello = host.hello_block(serde_json::Value::Null).unwrap();
        let rejected = ctrl
            .handle_host_hello(&hello, KeyHash([9; 32]), &TLS_UNIQUE)
            .err()
            .unwrap();
        assert_eq!(rejected.error, RcError::Identity);
        // The host learns why from the ERROR block.
        assert_eq!(
            host.handle_ctrl_hello(&rejected.reply.unwrap(), &TLS_UNIQUE)
                .err()
                .unwrap(),
            RcError::CtrlError("IDENTITY".into())
        );
    }

    /// Only a HELLO whose box does not authenticate leaves the controller waiting for the
    /// real host; one sealed with the invitation's key but holding bad padding proves the
    /// sender has the link and is refused for good, with an ERROR block (found by fuzzing).
    #[test]
    fn only_a_box_that_does_not_authenticate_is_not_invited() {
        use crate::crypto::secretbox::seal;
        use crate::crypto::{Nonce, X25519SecretKey};
        use crate::message::HostEncHello;

        let ctrl = start(HostPairing::new().unwrap());
        let inv_dh = ctrl.invitation().invitation.dh;
        let host_dh = X25519SecretKey::generate();
        let key = host_dh.dh(&inv_dh).unwrap();
        let sealed = |key: &crate::crypto::BoxKey| {
            let enc = HostEncHello {
                dh_key: host_dh.public(),
                nonce: Nonce([7; 24]),
                // 0xffff: a length prefix larger than the padded message.
                ciphertext: seal(key, &Nonce([7; 24]), &[0xff; 64]),
            };
            encode_block(&enc.encode()).unwrap()
        };

        let stranger_key = X25519SecretKey::generate().dh(&inv_dh).unwrap();
        let ctrl =
            match ctrl.offer_host_hello(&sealed(&stranger_key), KeyHash([1; 32]), &TLS_UNIQUE) {
                HelloAttempt::NotInvited { handshake, error } => {
                    assert_eq!(error, RcError::Decrypt);
                    handshake
                }
                _ => panic!("a box under another key proves nothing"),
            };
        match ctrl.offer_host_hello(&sealed(&key), KeyHash([1; 32]), &TLS_UNIQUE) {
            HelloAttempt::Refused(rejected) => {
                assert_eq!(rejected.error, RcError::Decrypt);
                assert!(
                    rejected.reply.is_some(),
                    "the sender can read an ERROR block"
                );
            }
            _ => panic!("an authenticated box with bad padding is refused for good"),
        }
    }

    /// A KEM key pair supplied after the fact is the one the HELLO carries and decapsulates
    /// with (without one there is no `hello_block` to call: `HostHandshake<AwaitingKem>` has
    /// none).
    #[test]
    fn kem_key_pair_can_be_supplied_later() {
        let ctrl = start(HostPairing::new().unwrap());
        let host = HostHandshake::without_kem(ctrl.invitation().clone(), None)
            .unwrap()
            .with_kem(crate::crypto::KemKeyPair::generate());
        let block = host.hello_block(serde_json::Value::Null).unwrap();
        let ca = host.ca_fingerprint();
        let mut accepted = ctrl.handle_host_hello(&block, ca, &TLS_UNIQUE).unwrap();
        // Opening the controller's HELLO needs the KEM secret of the key pair the HELLO sent.
        let (mut hk, _pairing) = host
            .handle_ctrl_hello(&accepted.reply, &TLS_UNIQUE)
            .unwrap();
        assert_chains_agree(&mut accepted.keys, &mut hk);
    }

    #[test]
    fn tampered_and_incompatible_invitations() {
        let ctrl = start(HostPairing::new().unwrap());
        let mut inv = ctrl.invitation().clone();
        inv.invitation.port += 1;
        assert_eq!(
            HostHandshake::new(inv, None).err().unwrap(),
            RcError::Invitation
        );

        // A correctly signed invitation offering only version 2..3.
        let s = crate::crypto::Ed25519SecretKey::generate();
        let id = crate::crypto::Ed25519SecretKey::generate();
        let v23 = Invitation {
            version: VersionRange::new(crate::codec::Version(2), crate::codec::Version(3)).unwrap(),
            skey: s.public(),
            idkey: id.public(),
            ..ctrl.invitation().invitation.clone()
        }
        .sign(&s, &id)
        .unwrap();
        assert_eq!(
            HostHandshake::new(v23, None).err().unwrap(),
            RcError::Version
        );
    }

    #[test]
    fn garbage_controller_replies() {
        let ctrl = start(HostPairing::new().unwrap());
        let host = HostHandshake::new(ctrl.invitation().clone(), None).unwrap();
        assert_eq!(
            host.handle_ctrl_hello(&[0; 100], &TLS_UNIQUE)
                .err()
                .unwrap(),
            RcError::BlockSize
        );
        let host = HostHandshake::new(ctrl.invitation().clone(), None).unwrap();
        let garbage = encode_block(b"HELLO \x04\x0fxyz").unwrap();
        assert!(matches!(
            host.handle_ctrl_hello(&garbage, &TLS_UNIQUE),
            Err(RcError::Syntax(_))
        ));
        // A HELLO under the wrong chain key.
        let host = HostHandshake::new(ctrl.invitation().clone(), None).unwrap();
        let hello = host.hello_block(serde_json::Value::Null).unwrap();
        let out = ctrl
            .handle_host_hello(&hello, host.ca_fingerprint(), &TLS_UNIQUE)
            .unwrap();
        let mut reply = decode_block(&out.reply).unwrap().to_vec();
        let n = reply.len();
        reply[n - 1] ^= 1;
        assert_eq!(
            host.handle_ctrl_hello(&encode_block(&reply).unwrap(), &TLS_UNIQUE)
                .err()
                .unwrap(),
            RcError::Decrypt
        );
    }
}
