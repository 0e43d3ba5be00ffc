//! `tls_chain`: `xrcp::tls::check_chain`, the pinning verifier that both roles run on the
//! certificate chain the peer presents in TLS (X.509 DER from the network).
//!
//! Input: a mode byte, then
//! - even mode: `count ‖ pin ‖ u64 time ‖ (u16 len ‖ DER)*`: `count % 4` arbitrary
//!   certificates, leaf first;
//! - odd mode: `pin ‖ i32 time step ‖ which ‖ op ‖ u16 offset ‖ bytes`: a genuine `[leaf, CA]`
//!   chain (made by `TlsIdentity` at 1 700 000 000 and embedded below, so runs are
//!   reproducible) with one edit — overwrite, truncate or insert `bytes` at `offset` of the
//!   leaf or the CA — checked at `1 700 000 000 + 64 × step` seconds.
//!
//! `pin % 3`: `Any`, the CA's own fingerprint, another fingerprint.
//!
//! Invariants:
//! - a chain of other than two certificates is `ChainLength(n)`; with two, a pin other than
//!   the CA's fingerprint is `PinMismatch`, whatever the certificates;
//! - success returns the CA's fingerprint;
//! - the genuine chain is accepted exactly when the pin allows its CA and the time lies in
//!   both validity periods;
//! - an edited chain is accepted only if the leaf's signed part and signature, the CA's
//!   subject and the CA's key are all unchanged, and the time lies in both (possibly edited)
//!   validity periods;
//! - every error converts to a rustls error.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use xrcp::tls::{check_chain, fingerprint, ChainError, Pin};

use crate::common::{hexv, Cursor};

const GENUINE_AT: i64 = 1_700_000_000;
/// `TlsIdentity::generate_at(CaRole::Controller, 1_700_000_000)` and its
/// `session_credentials_at(1_700_000_000)` chain: leaf, then CA.
const LEAF: &str = include_str!("tls_chain_leaf.hex");
const CA: &str = include_str!("tls_chain_ca.hex");

pub fn run(data: &[u8]) {
    let mut c = Cursor::new(data);
    if c.u8() % 2 == 0 {
        raw(&mut c);
    } else {
        edited(&mut c);
    }
}

fn pin_for(selector: u8, ca: Option<&[u8]>) -> Pin {
    match (selector % 3, ca) {
        (0, _) => Pin::Any,
        (1, Some(ca)) => Pin::Fingerprint(fingerprint(ca)),
        _ => Pin::Fingerprint([0x99; 32]),
    }
}

fn time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

fn check(chain: &[Vec<u8>], pin: &Pin, now: UnixTime) -> Result<[u8; 32], ChainError> {
    let ders: Vec<CertificateDer<'_>> =
        chain.iter().map(|d| CertificateDer::from(&d[..])).collect();
    let (leaf, rest) = ders.split_first().expect("at least one certificate");
    let r = check_chain(leaf, rest, pin, now);
    match &r {
        Ok(fp) => {
            assert_eq!(chain.len(), 2);
            assert_eq!(*fp, fingerprint(&chain[1]));
            if let Pin::Fingerprint(p) = pin {
                assert_eq!(p, fp);
            }
        }
        Err(e) => {
            if chain.len() != 2 {
                assert_eq!(e, &ChainError::ChainLength(chain.len()));
            } else if matches!(pin, Pin::Fingerprint(p) if *p != fingerprint(&chain[1])) {
                assert_eq!(e, &ChainError::PinMismatch);
            }
            let _ = rustls::Error::from(e.clone());
        }
    }
    r
}

fn raw(c: &mut Cursor<'_>) {
    let count = usize::from(c.u8() % 4).max(1);
    let pin_selector = c.u8();
    let now = c.u32() as i64 * 64;
    let mut chain = Vec::new();
    for _ in 0..count {
        let len = usize::from(c.u16());
        chain.push(c.take(len).to_vec());
    }
    let pin = pin_for(pin_selector, chain.get(1).map(Vec::as_slice));
    let _ = check(&chain, &pin, time(now));
}

/// Unix seconds of both ends of a certificate's validity, if it parses.
fn validity(cert: &X509Certificate<'_>) -> (i64, i64) {
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((rest, cert)) if rest.is_empty() => Some(cert),
        _ => None,
    }
}

fn edited(c: &mut Cursor<'_>) {
    let pin_selector = c.u8();
    let step = c.u32() as i32;
    let which = c.u8() % 2;
    let op = c.u8() % 3;
    let offset = usize::from(c.u16());
    let bytes = c.rest();

    let genuine = [hexv(LEAF.trim()), hexv(CA.trim())];
    let mut chain = genuine.to_vec();
    let target = &mut chain[usize::from(which)];
    let at = offset % (target.len() + 1);
    match op {
        0 => {
            let end = (at + bytes.len()).min(target.len());
            target[at..end].copy_from_slice(&bytes[..end - at]);
        }
        1 => target.truncate(at),
        _ => {
            target.splice(at..at, bytes.iter().copied());
        }
    }
    let now = GENUINE_AT + i64::from(step) * 64;
    let pin = pin_for(pin_selector, Some(&chain[1]));
    let result = check(&chain, &pin, time(now));

    let (g_leaf, g_ca) = (
        parse(&genuine[0]).expect("leaf"),
        parse(&genuine[1]).expect("CA"),
    );
    let within = |cert: &X509Certificate<'_>| {
        let (nb, na) = validity(cert);
        nb <= now && now <= na
    };
    let pin_ok = !matches!(pin, Pin::Fingerprint(p) if p != fingerprint(&chain[1]));
    if chain == genuine {
        let expect_ok = pin_ok && now >= 0 && within(&g_leaf) && within(&g_ca);
        assert_eq!(
            result.is_ok(),
            expect_ok,
            "genuine chain at {now}: {result:?}"
        );
    }
    if result.is_ok() {
        let leaf = parse(&chain[0]).expect("accepted leaf parses");
        let ca = parse(&chain[1]).expect("accepted CA parses");
        assert_eq!(
            leaf.tbs_certificate.as_ref(),
            g_leaf.tbs_certificate.as_ref()
        );
        assert_eq!(leaf.signature_value.data, g_leaf.signature_value.data);
        assert_eq!(ca.subject().as_raw(), g_ca.subject().as_raw());
        assert_eq!(
            ca.public_key().subject_public_key.data,
            g_ca.public_key().subject_public_key.data
        );
        assert!(
            within(&leaf) && within(&ca),
            "accepted outside the validity periods"
        );
    }
}
