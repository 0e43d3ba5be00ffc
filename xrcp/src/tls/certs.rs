//! Certificates shaped like the reference's (spec/xrcp.md §6.2).
//!
//! The reference (`genCredentials`, spec/xrcp.md §6.2) makes Ed25519,
//! X.509 v3, serial 1 certificates with **no extensions at all** and a DN holding a single
//! UTF8String CN. A long-term self-signed CA (`CN=ca`) is the identity; every session gets
//! a fresh leaf (`CN=localhost`) signed by it, and the chain `[leaf, ca]` is sent with the
//! leaf key. Peers pin SHA-256 over the CA certificate's DER, so the CA bytes must stay
//! exactly as generated: store them, never regenerate.
//!
//! rcgen writes an extension block only when a feature needs one (SANs, key usages,
//! `IsCa::Ca`, ...); with all of them left empty its output has no extensions, which the
//! tests assert.
//!
//! Our copies of private keys are `Zeroizing`. rcgen and ring hold their own parsed copies
//! while signing and while a rustls config is alive; those are not wiped on drop.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair, SerialNumber,
    PKCS_ED25519,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::sign::SigningKey;
use sha2::{Digest, Sha256};
use x509_parser::time::ASN1Time;
use zeroize::Zeroizing;

use super::verify::{check_chain, Pin};
use super::TlsError;

/// The reference's far validity bound: now + 23,999,976 hours (~2738 years).
const VALID_FOR_HOURS: i64 = 23_999_976;
/// Leaves (and host CAs) are backdated one hour to tolerate small clock differences.
const LEAF_BACKDATE_HOURS: i64 = 1;
const CA_COMMON_NAME: &str = "ca";
const LEAF_COMMON_NAME: &str = "localhost";

/// Which side owns a CA; the two differ only in how far `notBefore` is backdated
/// (spec/xrcp.md §6.2: controller now − 25 h, host now − 1 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaRole {
    /// The desktop / TLS server identity.
    Controller,
    /// The mobile / TLS client identity.
    Host,
}

impl CaRole {
    fn backdate_hours(self) -> i64 {
        match self {
            CaRole::Controller => 25,
            CaRole::Host => 1,
        }
    }
}

/// SHA-256 over a certificate's DER: the reference's `certFingerprint`, used as the
/// identity of a CA certificate.
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(cert_der).into()
}

/// A long-term TLS identity: an Ed25519 CA key and its self-signed certificate.
///
/// Persist it with [`TlsIdentity::to_der_parts`] and restore it with
/// [`TlsIdentity::from_der_parts`]; the fingerprint is a pure function of the stored
/// certificate bytes.
#[derive(Clone)]
pub struct TlsIdentity {
    key_pkcs8: Zeroizing<Vec<u8>>,
    cert_der: CertificateDer<'static>,
    fingerprint: [u8; 32],
    /// False for an identity restored by [`TlsIdentity::from_der_parts_unchecked`]: its
    /// session credentials are then checked against the fingerprint each time they are made.
    checked: bool,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &HexBytes(&self.fingerprint))
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh identity valid from now (backdated per `role`).
    pub fn generate(role: CaRole) -> Result<TlsIdentity, TlsError> {
        Self::generate_at(role, unix_now()?)
    }

    /// A fresh identity as if generated at `now` (seconds since the Unix epoch).
    pub fn generate_at(role: CaRole, now: i64) -> Result<TlsIdentity, TlsError> {
        let key = new_ed25519_key()?;
        let params = reference_params(
            CA_COMMON_NAME,
            now - hours(role.backdate_hours()),
            now + hours(VALID_FOR_HOURS),
        )?;
        let cert = params.self_signed(&key).map_err(credentials)?;
        let cert_der = cert.der().clone();
        Ok(TlsIdentity {
            key_pkcs8: Zeroizing::new(key.serialized_der().to_vec()),
            fingerprint: fingerprint(&cert_der),
            cert_der,
            checked: true,
        })
    }

    /// Restores a stored identity. The key must be a PKCS#8 Ed25519 key (v1 or v2) and the
    /// certificate must be an Ed25519 certificate for that key whose subject our leaves can
    /// name as issuer; this is checked by issuing and verifying a throwaway leaf.
    pub fn from_der_parts(key_pkcs8: &[u8], cert_der: &[u8]) -> Result<TlsIdentity, TlsError> {
        let identity = TlsIdentity::from_der_parts_unchecked(key_pkcs8, cert_der);
        // Making credentials checks an unchecked identity (see `session_credentials_at`).
        identity.session_credentials()?;
        Ok(TlsIdentity {
            checked: true,
            ..identity
        })
    }

    /// Restores a stored identity without checking it: one SHA-256 of the certificate, no
    /// signature work, so a store lists 10,000 pairings in milliseconds. A key that does not
    /// belong to the certificate is found when the identity is first used
    /// ([`TlsIdentity::session_credentials`] fails), not before.
    pub fn from_der_parts_unchecked(key_pkcs8: &[u8], cert_der: &[u8]) -> TlsIdentity {
        TlsIdentity {
            key_pkcs8: Zeroizing::new(key_pkcs8.to_vec()),
            cert_der: CertificateDer::from(cert_der.to_vec()),
            fingerprint: fingerprint(cert_der),
            checked: false,
        }
    }

    /// The parts to persist: (PKCS#8 private key, CA certificate DER).
    pub fn to_der_parts(&self) -> (Zeroizing<Vec<u8>>, Vec<u8>) {
        (self.key_pkcs8.clone(), self.cert_der.to_vec())
    }

    /// SHA-256 of the CA certificate DER: what peers pin and what HELLO's `ca` carries.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The CA certificate DER.
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A fresh per-session leaf signed by this CA: chain `[leaf, ca]` plus the leaf key.
    pub fn session_credentials(&self) -> Result<SessionCredentials, TlsError> {
        self.session_credentials_at(unix_now()?)
    }

    /// Like [`TlsIdentity::session_credentials`] as if issued at `now` (Unix seconds).
    pub fn session_credentials_at(&self, now: i64) -> Result<SessionCredentials, TlsError> {
        let ca_key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(&self.key_pkcs8[..]),
            &PKCS_ED25519,
        )
        .map_err(credentials)?;
        // Leaves name their issuer by our CA's DN; only the DN of these params is used.
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = common_name_only(CA_COMMON_NAME);
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = new_ed25519_key()?;
        let leaf = reference_params(
            LEAF_COMMON_NAME,
            now - hours(LEAF_BACKDATE_HOURS),
            now + hours(VALID_FOR_HOURS),
        )?
        .signed_by(&leaf_key, &issuer)
        .map_err(credentials)?;

        let out = SessionCredentials {
            chain: vec![leaf.der().clone(), self.cert_der.clone()],
            key_pkcs8: Zeroizing::new(leaf_key.serialized_der().to_vec()),
        };
        if !self.checked {
            let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                u64::try_from(now).map_err(|_| credentials("clock before 1970"))?,
            ));
            check_chain(
                &out.chain[0],
                &out.chain[1..],
                &Pin::Fingerprint(self.fingerprint),
                now,
            )
            .map_err(|e| credentials(format!("stored identity is inconsistent: {e}")))?;
        }
        Ok(out)
    }
}

/// What one side presents in one TLS session: a certificate chain (normally
/// `[leaf, ca]`) and the PKCS#8 Ed25519 key of its first certificate.
pub struct SessionCredentials {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SessionCredentials {
    /// Credentials from arbitrary parts, e.g. chains made elsewhere. Nothing is checked
    /// here; the config builders check that the key parses and matches the first
    /// certificate.
    pub fn from_parts(chain: Vec<Vec<u8>>, key_pkcs8: Zeroizing<Vec<u8>>) -> SessionCredentials {
        SessionCredentials {
            chain: chain.into_iter().map(CertificateDer::from).collect(),
            key_pkcs8,
        }
    }

    /// The chain as sent on the wire, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf key as a rustls signer, parsed from a borrow of our zeroized buffer (an owned
    /// rustls `PrivateKeyDer` would be one more copy that is not wiped on drop).
    pub(crate) fn signing_key(&self) -> Result<Arc<dyn SigningKey>, TlsError> {
        rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(&self.key_pkcs8[..]))
            .map_err(|e| credentials(format!("leaf key is not a PKCS#8 Ed25519 key: {e}")))
    }
}

fn new_ed25519_key() -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&PKCS_ED25519).map_err(credentials)
}

fn reference_params(
    common_name: &str,
    not_before: i64,
    not_after: i64,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_only(common_name);
    params.serial_number = Some(SerialNumber::from_slice(&[1]));
    params.is_ca = IsCa::NoCa;
    params.not_before = asn1_time(not_before)?.to_datetime();
    params.not_after = asn1_time(not_after)?.to_datetime();
    Ok(params)
}

/// A DN with a single CN attribute as UTF8String, as the reference writes (spec/xrcp.md §6.2).
fn common_name_only(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        DnValue::Utf8String(common_name.to_owned()),
    );
    dn
}

/// Whole seconds, as the reference zeroes nanoseconds. rcgen wants a `time::OffsetDateTime`;
/// going through x509-parser's `ASN1Time` yields one without a direct `time` dependency.
fn asn1_time(unix_secs: i64) -> Result<ASN1Time, TlsError> {
    ASN1Time::from_timestamp(unix_secs).map_err(|_| credentials("validity date out of range"))
}

fn hours(h: i64) -> i64 {
    h * 3600
}

fn unix_now() -> Result<i64, TlsError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| credentials("system clock is before 1970"))?
        .as_secs();
    i64::try_from(secs).map_err(|_| credentials("system clock out of range"))
}

fn credentials(e: impl fmt::Display) -> TlsError {
    TlsError::Credentials(e.to_string())
}

struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
