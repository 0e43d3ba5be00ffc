//! The encrypted multicast announcement a controller sends to a known host (spec/xrcp.md §5):
//! `0x2C ‖ SPKI(session DH key) ‖ nonce(24) ‖ box(pad(signed invitation, 900))`, 985 bytes.
//!
//! The box key is the raw X25519 of the controller's new session key and the host's DH key
//! from the previous session, so only a paired host can read it. The host tries every stored
//! pairing's current, then previous, DH key.

use std::net::Ipv4Addr;

use super::invitation::SignedInvitation;
use crate::codec::{Encoder, Parser};
use crate::crypto::secretbox::{open_padded, seal_padded};
use crate::crypto::{BoxKey, CryptoError, Nonce, X25519PublicKey, X25519SecretKey, TAG_LEN};
use crate::error::RcError;

/// Size the signed invitation is padded to inside the box.
pub const ANNOUNCEMENT_PAD: usize = 900;
/// Size of the whole datagram.
pub const ANNOUNCEMENT_LEN: usize = 1 + 44 + 24 + TAG_LEN + ANNOUNCEMENT_PAD;
/// Largest datagram a listener reads (the reference's receive buffer).
pub const MAX_DATAGRAM: usize = 2048;

/// A parsed, still encrypted announcement.
#[derive(Clone, Debug, PartialEq)]
pub struct Announcement {
    /// The controller's session DH key; must equal the invitation's `dh`.
    pub dh_key: X25519PublicKey,
    /// The 24-byte nonce of the box (fresh per datagram).
    pub nonce: Nonce,
    /// `box(K, nonce, pad(signed invitation, 900))`, tag first (spec/xrcp.md §5).
    pub ciphertext: Vec<u8>,
}

/// Which key of a pairing opened an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhKeyUsed {
    /// The pairing's current DH key.
    Current,
    /// The pairing's previous DH key (the controller missed the last update, spec/xrcp.md §9.2).
    Previous,
}

impl Announcement {
    /// Seals `invitation` for the host whose last DH public key was `host_dh`.
    /// `session_dh` must be the key whose public half is the invitation's `dh`.
    pub fn seal(
        invitation: &SignedInvitation,
        session_dh: &X25519SecretKey,
        host_dh: &X25519PublicKey,
        nonce: Nonce,
    ) -> Result<Announcement, RcError> {
        if invitation.invitation.dh != session_dh.public() {
            return Err(RcError::Internal(
                "announcement key is not the invitation's dh".into(),
            ));
        }
        let key = session_dh.dh(host_dh).map_err(|_| RcError::Encrypt)?;
        let ciphertext = seal_padded(
            &key,
            &nonce,
            invitation.to_uri().as_bytes(),
            ANNOUNCEMENT_PAD,
        )
        .map_err(|_| RcError::Encrypt)?;
        Ok(Announcement {
            dh_key: session_dh.public(),
            nonce,
            ciphertext,
        })
    }

    /// The 985-byte datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(ANNOUNCEMENT_LEN);
        self.dh_key.encode(&mut e);
        e.raw(&self.nonce.0).raw(&self.ciphertext);
        e.finish()
    }

    /// Parses a datagram; anything malformed is `INVITATION`, as in the reference.
    pub fn decode(datagram: &[u8]) -> Result<Announcement, RcError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(RcError::Invitation);
        }
        let mut p = Parser::new(datagram);
        let dh_key = X25519PublicKey::decode(&mut p).map_err(|_| RcError::Invitation)?;
        let nonce = Nonce(p.array().map_err(|_| RcError::Invitation)?);
        let ciphertext = p.tail().to_vec();
        if ciphertext.len() < TAG_LEN {
            return Err(RcError::Invitation);
        }
        Ok(Announcement {
            dh_key,
            nonce,
            ciphertext,
        })
    }

    /// Opens the box with one box key (the X25519 of the announced key and one of ours):
    /// `Ok(None)` when it is not this key's box, the padded plaintext when it is; a box that
    /// opens to bad padding is `SYNTAX`. With [`Announcement::invitation_in`], the one place
    /// an announcement is opened (the host's listener caches box keys and calls these two).
    pub fn open_with(&self, box_key: &BoxKey) -> Result<Option<Vec<u8>>, RcError> {
        match open_padded(box_key, &self.nonce, &self.ciphertext) {
            Ok(plain) => Ok(Some(plain)),
            Err(CryptoError::InvalidPadding) => Err(RcError::syntax("bad announcement padding")),
            Err(_) => Ok(None),
        }
    }

    /// The checks on an opened box's content (spec/xrcp.md §5): UTF-8 text of a signed
    /// invitation whose signatures verify and whose `dh` is the announced key.
    pub fn invitation_in(&self, plain: &[u8]) -> Result<SignedInvitation, RcError> {
        let text =
            std::str::from_utf8(plain).map_err(|_| RcError::syntax("announcement is not UTF-8"))?;
        let inv = SignedInvitation::parse(text)?;
        inv.verify()?;
        if inv.invitation.dh != self.dh_key {
            return Err(RcError::Invitation);
        }
        Ok(inv)
    }

    /// Tries one DH private key; `Ok(None)` when it is not the right key.
    fn try_key(&self, key: &X25519SecretKey) -> Result<Option<SignedInvitation>, RcError> {
        let Ok(box_key) = key.dh(&self.dh_key) else {
            return Ok(None);
        };
        match self.open_with(&box_key)? {
            Some(plain) => self.invitation_in(&plain).map(Some),
            None => Ok(None),
        }
    }

    /// Opens the announcement with the first pairing whose current or previous DH key fits.
    /// `pairings` yields each pairing's (current, previous) keys; the result names the
    /// pairing's index and which key worked. No key fits → `CTRL_NOT_FOUND`; a decrypted but
    /// invalid invitation → `SYNTAX` or `INVITATION`.
    pub fn open<'a, I>(&self, pairings: I) -> Result<(usize, DhKeyUsed, SignedInvitation), RcError>
    where
        I: IntoIterator<Item = (&'a X25519SecretKey, Option<&'a X25519SecretKey>)>,
    {
        for (i, (current, previous)) in pairings.into_iter().enumerate() {
            if let Some(inv) = self.try_key(current)? {
                return Ok((i, DhKeyUsed::Current, inv));
            }
            if let Some(prev) = previous {
                if let Some(inv) = self.try_key(prev)? {
                    return Ok((i, DhKeyUsed::Previous, inv));
                }
            }
        }
        Err(RcError::CtrlNotFound)
    }
}

/// The listener's last check: the datagram must come from the address the invitation names.
pub fn check_source(invitation: &SignedInvitation, source: Ipv4Addr) -> Result<(), RcError> {
    if invitation.invitation.host.ipv4() == Some(source) {
        Ok(())
    } else {
        Err(RcError::Invitation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Version, VersionRange};
    use crate::crypto::{Ed25519SecretKey, KeyHash};
    use proptest::prelude::*;

    fn invitation(dh: &X25519SecretKey) -> SignedInvitation {
        let s = Ed25519SecretKey::generate();
        let id = Ed25519SecretKey::generate();
        crate::message::invitation::Invitation {
            ca: KeyHash([1; 32]),
            host: Ipv4Addr::new(10, 0, 0, 1).into(),
            port: 1234,
            version: VersionRange::single(Version(1)),
            app: serde_json::json!({"deviceName": "desk"}),
            ts: 1,
            skey: s.public(),
            idkey: id.public(),
            dh: dh.public(),
        }
        .sign(&s, &id)
        .unwrap()
    }

    #[test]
    fn seal_and_open_with_current_or_previous_key() {
        let session = X25519SecretKey::generate();
        let host_old = X25519SecretKey::generate();
        let host_new = X25519SecretKey::generate();
        let other = X25519SecretKey::generate();
        let inv = invitation(&session);
        let ann = Announcement::seal(&inv, &session, &host_old.public(), Nonce::random()).unwrap();
        let bytes = ann.encode();
        assert_eq!(bytes.len(), ANNOUNCEMENT_LEN);
        assert_eq!(ANNOUNCEMENT_LEN, 985);
        let back = Announcement::decode(&bytes).unwrap();
        assert_eq!(back, ann);

        let (i, used, got) = back.open([(&other, None), (&host_old, None)]).unwrap();
        assert_eq!((i, used), (1, DhKeyUsed::Current));
        assert_eq!(got, inv);
        let (_, used, _) = back.open([(&host_new, Some(&host_old))]).unwrap();
        assert_eq!(used, DhKeyUsed::Previous);
        assert_eq!(
            back.open([(&other, None)]).unwrap_err(),
            RcError::CtrlNotFound
        );

        check_source(&got, Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(
            check_source(&got, Ipv4Addr::new(10, 0, 0, 2)).unwrap_err(),
            RcError::Invitation
        );
    }

    #[test]
    fn announced_key_must_be_the_invitation_dh() {
        let session = X25519SecretKey::generate();
        let host = X25519SecretKey::generate();
        let inv = invitation(&session);
        let mut ann = Announcement::seal(&inv, &session, &host.public(), Nonce::random()).unwrap();
        // A forged packet reusing a genuine invitation under another DH key.
        let forger = X25519SecretKey::generate();
        let key = forger.dh(&host.public()).unwrap();
        ann.ciphertext = seal_padded(&key, &ann.nonce, inv.to_uri().as_bytes(), 900).unwrap();
        ann.dh_key = forger.public();
        assert_eq!(ann.open([(&host, None)]).unwrap_err(), RcError::Invitation);
    }

    #[test]
    fn tampered_or_short_packets() {
        let session = X25519SecretKey::generate();
        let host = X25519SecretKey::generate();
        let inv = invitation(&session);
        let mut bytes = Announcement::seal(&inv, &session, &host.public(), Nonce::random())
            .unwrap()
            .encode();
        bytes[500] ^= 1;
        let ann = Announcement::decode(&bytes).unwrap();
        assert_eq!(
            ann.open([(&host, None)]).unwrap_err(),
            RcError::CtrlNotFound
        );
        assert_eq!(
            Announcement::decode(&bytes[..60]).unwrap_err(),
            RcError::Invitation
        );
        assert_eq!(
            Announcement::decode(&[0; 3000]).unwrap_err(),
            RcError::Invitation
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..1200)) {
            if let Ok(a) = Announcement::decode(&buf) {
                let k = X25519SecretKey::from_bytes([5; 32]);
                let _ = a.open([(&k, Some(&k))]);
            }
        }
    }
}
