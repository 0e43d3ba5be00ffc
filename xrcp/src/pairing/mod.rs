//! What each role keeps about the other between sessions (spec/xrcp.md §9), mirroring the
//! reference's `RCHostPairing` (kept by the controller) and `RCCtrlPairing` (kept by the host).
//!
//! Both are updated by a handshake only after the HELLO exchange succeeded; persisting them
//! is the application's job. [`StoredHostPairing`] and [`StoredCtrlPairing`] are the
//! serializable forms (binary fields as base64url); they contain secrets, so store them
//! owner-only and never log them.

#[cfg(feature = "sqlite")]
pub mod sqlite;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::text::{base64url_decode, base64url_encode};
use crate::crypto::{
    Ed25519PublicKey, Ed25519SecretKey, KeyHash, X25519PublicKey, X25519SecretKey,
};
use crate::error::RcError;
use crate::tls::TlsIdentity;

/// The controller's record of one host.
#[derive(Clone, Debug)]
pub struct HostPairing {
    /// The controller's CA for this pairing (its identity as seen by the host).
    pub ca: TlsIdentity,
    /// The controller's long-term identity key (`idkey` in invitations).
    pub identity: Ed25519SecretKey,
    /// Set once a host completed a session.
    pub known_host: Option<KnownHost>,
}

/// What the controller learned about a host in earlier sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownHost {
    /// SHA-256 of the host's CA certificate, fixed at the first session and pinned afterwards.
    pub host_ca: KeyHash,
    /// The host's DH public key from the last HELLO; keys the next announcement.
    pub host_dh: X25519PublicKey,
}

/// The host's record of one controller.
#[derive(Clone, Debug)]
pub struct CtrlPairing {
    /// The host's own CA for this pairing.
    pub ca: TlsIdentity,
    /// SHA-256 of the controller's CA certificate (the invitation's `ca`).
    pub ctrl_ca: KeyHash,
    /// The controller's long-term identity key (the invitation's `idkey`).
    pub ctrl_identity: Ed25519PublicKey,
    /// The DH key sent in the last HELLO.
    pub dh: X25519SecretKey,
    /// The one before it, still tried on announcements in case the controller missed the
    /// last update.
    pub prev_dh: Option<X25519SecretKey>,
}

impl HostPairing {
    /// A fresh pairing for a host not seen yet.
    pub fn new() -> Result<HostPairing, RcError> {
        Ok(HostPairing {
            ca: TlsIdentity::generate(crate::tls::CaRole::Controller)?,
            identity: Ed25519SecretKey::generate(),
            known_host: None,
        })
    }
}

/// Serializable form of [`HostPairing`]. The private keys are zeroized on drop and left out
/// of `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredHostPairing {
    /// The controller's CA private key (PKCS#8 DER, base64url).
    pub ca_key: Zeroizing<String>,
    /// The controller's CA certificate (DER, base64url); its SHA-256 is the invitation's `ca`.
    pub ca_cert: String,
    /// The long-term identity Ed25519 seed (base64url); its public half is the invitation's `idkey`.
    pub id_key: Zeroizing<String>,
    /// The host's CA fingerprint (base64url), once a session with the host has succeeded.
    pub host_fingerprint: Option<String>,
    /// The host's DH public key from the last session (base64url SPKI), which announcements are boxed to.
    pub host_dh_pub: Option<String>,
}

/// Serializable form of [`CtrlPairing`]. The private keys are zeroized on drop and left out
/// of `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredCtrlPairing {
    /// The host's own CA private key for this pairing (PKCS#8 DER, base64url).
    pub ca_key: Zeroizing<String>,
    /// The host's CA certificate for this pairing (DER, base64url).
    pub ca_cert: String,
    /// The controller's CA fingerprint (base64url), pinned at TLS.
    pub ctrl_fingerprint: String,
    /// The controller's identity public key (base64url SPKI), checked against every invitation.
    pub id_pub: String,
    /// The current X25519 private key (base64url); its public half went into the last HELLO.
    pub dh_priv_key: Zeroizing<String>,
    /// The previous X25519 private key, still tried on announcements (spec/xrcp.md §9.2).
    pub prev_dh_priv_key: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for StoredHostPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredHostPairing")
            .field("host_fingerprint", &self.host_fingerprint)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StoredCtrlPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCtrlPairing")
            .field("ctrl_fingerprint", &self.ctrl_fingerprint)
            .finish_non_exhaustive()
    }
}

fn secret_text(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base64url_encode(bytes))
}

fn key32(s: &str) -> Result<[u8; 32], RcError> {
    <[u8; 32]>::try_from(Zeroizing::new(base64url_decode(s)?).as_slice())
        .map_err(|_| RcError::syntax("stored key is not 32 bytes"))
}

fn identity_to_stored(ca: &TlsIdentity) -> (Zeroizing<String>, String) {
    let (key, cert) = ca.to_der_parts();
    (secret_text(&key), base64url_encode(&cert))
}

fn identity_from_stored(key: &str, cert: &str) -> Result<TlsIdentity, RcError> {
    let key = Zeroizing::new(base64url_decode(key)?);
    Ok(TlsIdentity::from_der_parts(&key, &base64url_decode(cert)?)?)
}

impl HostPairing {
    /// The serializable form, for a pairing store.
    pub fn to_stored(&self) -> StoredHostPairing {
        let (ca_key, ca_cert) = identity_to_stored(&self.ca);
        StoredHostPairing {
            ca_key,
            ca_cert,
            id_key: secret_text(self.identity.to_bytes().as_ref()),
            host_fingerprint: self.known_host.map(|k| k.host_ca.to_text()),
            host_dh_pub: self.known_host.map(|k| k.host_dh.to_text()),
        }
    }

    /// Reads the serializable form back; a malformed key or a half-known host is `SYNTAX`.
    pub fn from_stored(s: &StoredHostPairing) -> Result<HostPairing, RcError> {
        let known_host = match (&s.host_fingerprint, &s.host_dh_pub) {
            (Some(fp), Some(dh)) => Some(KnownHost {
                host_ca: KeyHash::from_text(fp)?,
                host_dh: X25519PublicKey::from_text(dh)?,
            }),
            (None, None) => None,
            _ => return Err(RcError::syntax("stored host pairing is half known")),
        };
        Ok(HostPairing {
            ca: identity_from_stored(&s.ca_key, &s.ca_cert)?,
            identity: Ed25519SecretKey::from_bytes(key32(&s.id_key)?),
            known_host,
        })
    }
}

impl CtrlPairing {
    /// The serializable form, for a pairing store.
    pub fn to_stored(&self) -> StoredCtrlPairing {
        let (ca_key, ca_cert) = identity_to_stored(&self.ca);
        StoredCtrlPairing {
            ca_key,
            ca_cert,
            ctrl_fingerprint: self.ctrl_ca.to_text(),
            id_pub: self.ctrl_identity.to_text(),
            dh_priv_key: secret_text(self.dh.to_bytes().as_ref()),
            prev_dh_priv_key: self
                .prev_dh
                .as_ref()
                .map(|k| secret_text(k.to_bytes().as_ref())),
        }
    }

    /// Reads the serializable form back; a malformed key is `SYNTAX`.
    pub fn from_stored(s: &StoredCtrlPairing) -> Result<CtrlPairing, RcError> {
        Ok(CtrlPairing {
            ca: identity_from_stored(&s.ca_key, &s.ca_cert)?,
            ctrl_ca: KeyHash::from_text(&s.ctrl_fingerprint)?,
            ctrl_identity: Ed25519PublicKey::from_text(&s.id_pub)?,
            dh: X25519SecretKey::from_bytes(key32(&s.dh_priv_key)?),
            prev_dh: s
                .prev_dh_priv_key
                .as_deref()
                .map(|k| key32(k).map(X25519SecretKey::from_bytes))
                .transpose()?,
        })
    }
}

/// A pairing store's failure, as the role crates' `PairingStore` traits report it: the cause
/// (a SQLite error, an I/O error, or whatever a store of the application's own reports) is
/// kept as the error's source, and its text is the cause's text. One type for both roles.
#[derive(Debug)]
pub struct PairingStoreError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl PairingStoreError {
    /// Wraps any error of a store.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        PairingStoreError(e.into())
    }

    /// The store's own error, to downcast (e.g. to a role crate's `store::StoreError`).
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for PairingStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for PairingStoreError {
    // The wrapped error's text is this one's: report its causes, not itself again.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ctrl_pairing() -> CtrlPairing {
        CtrlPairing {
            ca: TlsIdentity::generate(crate::tls::CaRole::Host).unwrap(),
            ctrl_ca: KeyHash([1; 32]),
            ctrl_identity: Ed25519SecretKey::generate().public(),
            dh: X25519SecretKey::generate(),
            prev_dh: Some(X25519SecretKey::generate()),
        }
    }

    #[test]
    fn stored_forms_round_trip() {
        let mut hp = HostPairing::new().unwrap();
        let back = HostPairing::from_stored(&hp.to_stored()).unwrap();
        assert_eq!(back.ca.fingerprint(), hp.ca.fingerprint());
        assert_eq!(back.identity.public(), hp.identity.public());
        assert!(back.known_host.is_none());
        hp.known_host = Some(KnownHost {
            host_ca: KeyHash([3; 32]),
            host_dh: X25519SecretKey::generate().public(),
        });
        let json = serde_json::to_string(&hp.to_stored()).unwrap();
        let back = HostPairing::from_stored(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.known_host, hp.known_host);

        let cp = sample_ctrl_pairing();
        let back = CtrlPairing::from_stored(&cp.to_stored()).unwrap();
        assert_eq!(back.dh.public(), cp.dh.public());
        assert_eq!(
            back.prev_dh.map(|k| k.public()),
            cp.prev_dh.as_ref().map(|k| k.public())
        );
        assert_eq!(back.ctrl_identity, cp.ctrl_identity);
        assert_eq!(back.ca.fingerprint(), cp.ca.fingerprint());

        // The JSON form is unchanged by the zeroizing wrappers (plain strings).
        let stored = cp.to_stored();
        let json: serde_json::Value = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            json["dh_priv_key"].as_str(),
            Some(stored.dh_priv_key.as_str())
        );
        let back: StoredCtrlPairing = serde_json::from_value(json).unwrap();
        assert_eq!(back.prev_dh_priv_key, stored.prev_dh_priv_key);
    }

    #[test]
    fn debug_leaves_private_keys_out() {
        let hp = HostPairing::new().unwrap().to_stored();
        let cp = sample_ctrl_pairing().to_stored();
        let shown = format!("{hp:?} {cp:?}");
        for secret in [&hp.ca_key, &hp.id_key, &cp.ca_key, &cp.dh_priv_key] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
            assert!(!shown.contains(&secret[..12]), "{shown}");
        }
        assert!(shown.contains(&cp.ctrl_fingerprint));
    }
}
