//! The pinning certificate verifier, one type for both roles (spec/xrcp.md §6.2).
//!
//! XRCP has no PKI: a peer is whoever holds the CA whose SHA-256 the other side pinned
//! (from the invitation, or from the stored pairing). The reference's certificates have no
//! extensions at all, so WebPKI-style path validation is not applicable; we check exactly
//! what the reference host checks of a controller, and apply the same to hosts (the
//! reference controller only checks the fingerprint; checking more stays compatible with
//! real hosts, whose chains satisfy all of it):
//! - the chain is exactly `[leaf, ca]`;
//! - SHA-256(DER(ca)) equals the pin — else `unknown_ca`, which the peer reports as
//!   `IDENTITY` (§10);
//! - the leaf is X.509 v3 with an Ed25519 key, its issuer DN equals the CA's subject DN
//!   byte for byte, and the CA's Ed25519 key verifies its signature;
//! - both certificates are within their validity at the handshake time;
//! - a leaf keyUsage extension, if present, allows digitalSignature (hs-tls
//!   `verifyLeafKeyUsage`).
//!
//! Possession of the leaf key is proven by the TLS 1.3 CertificateVerify, checked by rustls's
//! own `verify_tls13_signature` restricted to Ed25519.

use std::sync::Arc;

use ring::signature::{UnparsedPublicKey, ED25519};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, PeerMisbehaved,
    SignatureScheme,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::time::ASN1Time;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Version};

use super::certs::fingerprint;

/// Which CA a peer must present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Any CA (a controller meeting a new host for the first time). The chain must still be
    /// well formed; the caller reads the presented fingerprint from the session and stores it.
    Any,
    /// Exactly the CA certificate with this SHA-256 fingerprint.
    Fingerprint([u8; 32]),
}

/// Why a presented chain was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The chain is not exactly `[leaf, ca]`.
    #[error("expected a chain of 2 certificates, got {0}")]
    ChainLength(usize),
    /// The CA is not the pinned one.
    #[error("CA fingerprint does not match the pin")]
    PinMismatch,
    /// A certificate is not a single well-formed DER X.509 certificate.
    #[error("{0} certificate is malformed")]
    Malformed(&'static str),
    /// The leaf is not an X.509 v3 certificate.
    #[error("leaf certificate is not X.509 v3")]
    LeafNotV3,
    /// A key or signature algorithm is not Ed25519.
    #[error("{0} certificate is not Ed25519")]
    NotEd25519(&'static str),
    /// The leaf's issuer DN is not the CA's subject DN.
    #[error("leaf issuer does not match the CA subject")]
    IssuerMismatch,
    /// The CA key does not verify the leaf's signature.
    #[error("leaf signature does not verify with the CA key")]
    BadLeafSignature,
    /// A certificate's notBefore is in the future.
    #[error("{0} certificate is not valid yet")]
    NotYetValid(&'static str),
    /// A certificate's notAfter is in the past.
    #[error("{0} certificate has expired")]
    Expired(&'static str),
    /// The leaf has a keyUsage extension without digitalSignature.
    #[error("leaf keyUsage does not allow digitalSignature")]
    LeafKeyUsage,
}

impl From<ChainError> for rustls::Error {
    /// The alert each failure produces; pin and issuer mismatches give `unknown_ca` like
    /// the reference, so the peer reports `IDENTITY`.
    fn from(e: ChainError) -> Self {
        let cert_error = match e {
            ChainError::PinMismatch | ChainError::IssuerMismatch => CertificateError::UnknownIssuer,
            ChainError::Malformed(_) => CertificateError::BadEncoding,
            ChainError::BadLeafSignature => CertificateError::BadSignature,
            ChainError::NotYetValid(_) => CertificateError::NotValidYet,
            ChainError::Expired(_) => CertificateError::Expired,
            ChainError::LeafKeyUsage => CertificateError::InvalidPurpose,
            ChainError::ChainLength(_) | ChainError::LeafNotV3 | ChainError::NotEd25519(_) => {
                CertificateError::Other(OtherError(Arc::new(e)))
            }
        };
        rustls::Error::InvalidCertificate(cert_error)
    }
}

/// Checks a presented chain (`end_entity` plus the rest, in wire order) against `pin` at
/// time `now`; returns the CA fingerprint.
pub fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    pin: &Pin,
    now: UnixTime,
) -> Result<[u8; 32], ChainError> {
    let [ca_der] = intermediates else {
        return Err(ChainError::ChainLength(intermediates.len() + 1));
    };
    let ca_fingerprint = fingerprint(ca_der);
    if let Pin::Fingerprint(pinned) = pin {
        if *pinned != ca_fingerprint {
            return Err(ChainError::PinMismatch);
        }
    }

    let leaf = parse(end_entity, "leaf")?;
    let ca = parse(ca_der, "CA")?;

    if leaf.version() != X509Version::V3 {
        return Err(ChainError::LeafNotV3);
    }
    let ca_key = ed25519_key(ca.public_key()).ok_or(ChainError::NotEd25519("CA"))?;
    if ed25519_key(leaf.public_key()).is_none()
        || leaf.signature_algorithm.algorithm != OID_SIG_ED25519
        || leaf.tbs_certificate.signature.algorithm != OID_SIG_ED25519
    {
        return Err(ChainError::NotEd25519("leaf"));
    }
    if leaf.issuer().as_raw() != ca.subject().as_raw() {
        return Err(ChainError::IssuerMismatch);
    }
    UnparsedPublicKey::new(&ED25519, ca_key)
        .verify(
            leaf.tbs_certificate.as_ref(),
            leaf.signature_value.data.as_ref(),
        )
        .map_err(|_| ChainError::BadLeafSignature)?;

    let at = i64::try_from(now.as_secs())
        .ok()
        .and_then(|secs| ASN1Time::from_timestamp(secs).ok())
        .ok_or(ChainError::Expired("leaf"))?;
    for (cert, which) in [(&leaf, "leaf"), (&ca, "CA")] {
        if at < cert.validity().not_before {
            return Err(ChainError::NotYetValid(which));
        }
        if at > cert.validity().not_after {
            return Err(ChainError::Expired(which));
        }
    }

    match leaf.key_usage() {
        Ok(Some(usage)) if !usage.value.digital_signature() => Err(ChainError::LeafKeyUsage),
        Ok(_) => Ok(ca_fingerprint),
        Err(_) => Err(ChainError::Malformed("leaf")),
    }
}

fn parse<'a>(der: &'a [u8], which: &'static str) -> Result<X509Certificate<'a>, ChainError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((&[], cert)) => Ok(cert),
        _ => Err(ChainError::Malformed(which)),
    }
}

fn ed25519_key<'a>(spki: &'a SubjectPublicKeyInfo<'_>) -> Option<&'a [u8]> {
    let key = spki.subject_public_key.data.as_ref();
    (spki.algorithm.algorithm == OID_SIG_ED25519
        && spki.algorithm.parameters.is_none()
        && key.len() == 32)
        .then_some(key)
}

/// The verifier installed in both rustls configs; see the module docs for what it checks.
#[derive(Debug)]
pub struct PinnedChainVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedChainVerifier {
    /// A verifier accepting chains whose CA matches `pin`.
    pub fn new(pin: Pin) -> PinnedChainVerifier {
        PinnedChainVerifier {
            pin,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        check_chain(end_entity, intermediates, &self.pin, now)?;
        Ok(())
    }

    fn verify_certificate_verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// This crate is built without TLS 1.2, so these are unreachable; refuse anyway.
fn refuse_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::General(
        "TLS 1.2 signatures are not accepted".into(),
    ))
}

impl ServerCertVerifier for PinnedChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_certificate_verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PinnedChainVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No `certificate_authorities` in CertificateRequest: the reference sends none and
    /// clients present their single chain regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_certificate_verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
