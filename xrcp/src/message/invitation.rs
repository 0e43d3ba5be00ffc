//! The out-of-band invitation: the `xrcp:/` link the controller shows as text and QR code
//! (spec/xrcp.md §4).
//!
//! Canonical form (what we emit, and what signatures cover):
//! `xrcp:/<ca>@<host>:<port>#/?v=…&app=…&ts=…&skey=…&idkey=…&dh=…`, then
//! `&ssig=…&idsig=…` unescaped. Parsing is as tolerant as the reference's (any parameter
//! order, extra parameters, `;` separators, either padding), and verification signs over the
//! canonical *re-serialization*, never over the received text.

use serde_json::Value;

use crate::codec::json::to_aeson_string;
use crate::codec::text::{url_decode, url_encode};
use crate::codec::VersionRange;
use crate::crypto::{Ed25519PublicKey, Ed25519SecretKey, KeyHash, Signature, X25519PublicKey};
use crate::error::RcError;
use crate::message::TransportHost;

/// Longest link we parse; real ones are about 630 bytes and an announcement carries at most
/// 898. Bounds the work a hostile QR code can cause.
pub const MAX_INVITATION_LEN: usize = 4096;

/// An unsigned invitation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invitation {
    /// SHA-256 of the controller's CA certificate DER: the identity the host pins.
    pub ca: KeyHash,
    /// Where the host dials: the reference's controllers advertise one of their IPv4
    /// addresses; ours may advertise a relay's name or address (§4.3).
    pub host: TransportHost,
    /// The controller's TCP port.
    pub port: u16,
    /// The XRCP protocol versions the controller speaks (`v`).
    pub version: VersionRange,
    /// The controller's app info (device name, app version range, compression).
    pub app: Value,
    /// Creation time, seconds since the epoch. The reference never checks it.
    pub ts: i64,
    /// Per-session Ed25519 key that signs this invitation and every command.
    pub skey: Ed25519PublicKey,
    /// Long-term Ed25519 identity key of the controller.
    pub idkey: Ed25519PublicKey,
    /// Per-session X25519 key for the HELLO exchange (and the announcement).
    pub dh: X25519PublicKey,
}

/// An invitation with its two signatures.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedInvitation {
    /// The signed fields.
    pub invitation: Invitation,
    /// Session-key signature over the canonical URI.
    pub ssig: Signature,
    /// Identity-key signature over the canonical URI followed by `&ssig=<ssig>`.
    pub idsig: Signature,
}

impl Invitation {
    /// The canonical unsigned URI.
    pub fn to_uri(&self) -> String {
        let query: [(&str, String); 6] = [
            ("v", self.version.to_string()),
            ("app", to_aeson_string(&self.app)),
            ("ts", self.ts.to_string()),
            ("skey", self.skey.to_text()),
            ("idkey", self.idkey.to_text()),
            ("dh", self.dh.to_text()),
        ];
        let mut uri = format!("xrcp:/{}@{}:{}#/?", self.ca.to_text(), self.host, self.port);
        for (i, (k, v)) in query.iter().enumerate() {
            if i > 0 {
                uri.push('&');
            }
            uri.push_str(k);
            uri.push('=');
            uri.push_str(&url_encode(v.as_bytes()));
        }
        uri
    }

    /// Signs with the session key (whose public half must be `skey`) and the identity key
    /// (`idkey`).
    pub fn sign(
        self,
        session_key: &Ed25519SecretKey,
        identity_key: &Ed25519SecretKey,
    ) -> Result<SignedInvitation, RcError> {
        if session_key.public() != self.skey || identity_key.public() != self.idkey {
            return Err(RcError::Internal(
                "signing keys do not match the invitation".into(),
            ));
        }
        let uri = self.to_uri();
        let ssig = session_key.sign(uri.as_bytes());
        let idsig = identity_key.sign(id_signed_text(&uri, &ssig).as_bytes());
        Ok(SignedInvitation {
            invitation: self,
            ssig,
            idsig,
        })
    }
}

fn id_signed_text(uri: &str, ssig: &Signature) -> String {
    format!("{uri}&ssig={}", ssig.to_text())
}

impl SignedInvitation {
    /// The link as shown to the user.
    pub fn to_uri(&self) -> String {
        format!(
            "{}&idsig={}",
            id_signed_text(&self.invitation.to_uri(), &self.ssig),
            self.idsig.to_text()
        )
    }

    /// Checks both signatures over the canonical re-serialization; failure is `INVITATION`.
    pub fn verify(&self) -> Result<(), RcError> {
        let uri = self.invitation.to_uri();
        let ok = self.invitation.skey.verify(uri.as_bytes(), &self.ssig)
            && self
                .invitation
                .idkey
                .verify(id_signed_text(&uri, &self.ssig).as_bytes(), &self.idsig);
        if ok {
            Ok(())
        } else {
            Err(RcError::Invitation)
        }
    }

    /// Parses a link (without verifying it). Malformed input is `SYNTAX`.
    pub fn parse(link: &str) -> Result<SignedInvitation, RcError> {
        if link.len() > MAX_INVITATION_LEN {
            return Err(RcError::syntax("invitation too long"));
        }
        let invitation = parse_invitation(link)?;
        // Signatures are read from the query text that begins at the first `&ssig=`.
        let at = link
            .find("&ssig=")
            .ok_or_else(|| RcError::syntax("missing signatures"))?;
        let sigs = Query::parse(&link[at + 1..]);
        let ssig = Signature::from_text(&text(sigs.required("ssig")?)?)?;
        let idsig = Signature::from_text(&text(sigs.required("idsig")?)?)?;
        Ok(SignedInvitation {
            invitation,
            ssig,
            idsig,
        })
    }

    /// Parses and verifies.
    pub fn parse_verified(link: &str) -> Result<SignedInvitation, RcError> {
        let inv = SignedInvitation::parse(link)?;
        inv.verify()?;
        Ok(inv)
    }
}

fn text(bytes: &[u8]) -> Result<String, RcError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| RcError::syntax("invalid UTF-8"))
}

fn parse_invitation(link: &str) -> Result<Invitation, RcError> {
    let rest = link
        .strip_prefix("xrcp:/")
        .ok_or_else(|| RcError::syntax("not an xrcp:/ link"))?;

    // CA fingerprint: base64url characters then any `=` padding.
    let ca_len = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .unwrap_or(rest.len());
    let pad_len = rest[ca_len..].bytes().take_while(|&b| b == b'=').count();
    let ca = KeyHash::from_text(&rest[..ca_len + pad_len])?;
    let rest = rest[ca_len + pad_len..]
        .strip_prefix('@')
        .ok_or_else(|| RcError::syntax("expected @"))?;

    let (host_text, rest) = rest
        .split_once(':')
        .ok_or_else(|| RcError::syntax("expected host:port"))?;
    let host = TransportHost::parse(&text(&url_decode(host_text.as_bytes()))?)?;

    let (port_text, query) = rest
        .split_once("#/?")
        .ok_or_else(|| RcError::syntax("expected #/?"))?;
    if port_text.is_empty() || !port_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RcError::syntax("bad port"));
    }
    let port: u16 = port_text
        .parse()
        .map_err(|_| RcError::syntax("port out of range"))?;
    // The query ends at the first space and the whole input must be consumed.
    if query.contains(' ') {
        return Err(RcError::syntax("unexpected text after the link"));
    }

    let q = Query::parse(query);
    let version = VersionRange::parse(&text(q.required("v")?)?)?;
    let app_text = url_decode(q.required("app")?);
    let app: Value =
        serde_json::from_slice(&app_text).map_err(|e| RcError::syntax(format!("app: {e}")))?;
    let ts_text = text(&url_decode(q.required("ts")?))?;
    let ts = parse_ts(&ts_text)?;
    let skey = Ed25519PublicKey::from_text(&text(q.required("skey")?)?)?;
    let idkey = Ed25519PublicKey::from_text(&text(q.required("idkey")?)?)?;
    let dh = X25519PublicKey::from_text(&text(q.required("dh")?)?)?;
    Ok(Invitation {
        ca,
        host,
        port,
        version,
        app,
        ts,
        skey,
        idkey,
        dh,
    })
}

/// Decimal seconds with an optional sign, as the reference reads them.
fn parse_ts(s: &str) -> Result<i64, RcError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RcError::syntax("bad ts"));
    }
    s.parse().map_err(|_| RcError::syntax("bad ts"))
}

/// A decoded query string: items split on `&` and `;`, each at its first `=`, both sides
/// percent-decoded; the first occurrence of a key wins.
struct Query(Vec<(Vec<u8>, Vec<u8>)>);

impl Query {
    fn parse(s: &str) -> Query {
        Query(
            s.as_bytes()
                .split(|&b| b == b'&' || b == b';')
                .filter(|item| !item.is_empty())
                .map(|item| match item.iter().position(|&b| b == b'=') {
                    Some(i) => (url_decode(&item[..i]), url_decode(&item[i + 1..])),
                    None => (url_decode(item), Vec::new()),
                })
                .collect(),
        )
    }

    fn required(&self, key: &str) -> Result<&[u8], RcError> {
        self.0
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| RcError::syntax(format!("missing {key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Version;
    use proptest::prelude::*;
    use serde_json::json;
    use std::net::Ipv4Addr;

    fn arr(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn model_keys() -> (Ed25519SecretKey, Ed25519SecretKey) {
        (
            Ed25519SecretKey::from_bytes(arr(
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            )),
            Ed25519SecretKey::from_bytes(arr(
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            )),
        )
    }

    fn model() -> SignedInvitation {
        let (s, id) = model_keys();
        Invitation {
            ca: KeyHash(core::array::from_fn(|i| i as u8)),
            host: Ipv4Addr::new(192, 168, 1, 10).into(),
            port: 45678,
            version: VersionRange::single(Version(1)),
            app: json!({"appVersionRange": {"minVersion": "6.4.6.0", "maxVersion": "6.4.6.0"},
                        "deviceName": "My Desktop"}),
            ts: 1700000000,
            skey: s.public(),
            idkey: id.public(),
            dh: X25519PublicKey::from_raw(arr(
                "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
            )),
        }
        .sign(&s, &id)
        .unwrap()
    }

    const MODEL_URI: &str = "xrcp:/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=@192.168.1.10:45678#/?v=1&app=%7B%22appVersionRange%22%3A%7B%22maxVersion%22%3A%226.4.6.0%22%2C%22minVersion%22%3A%226.4.6.0%22%7D%2C%22deviceName%22%3A%22My%20Desktop%22%7D&ts=1700000000&skey=MCowBQYDK2VwAyEA11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo%3D&idkey=MCowBQYDK2VwAyEAPUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw%3D&dh=MCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo%3D&ssig=xttFBt_Cm5iyX8lNz-na95P6bfgW8JSNy702vb3q1qLD4eDha1ib2nmzaF73LK0-gZ61rqDgwtbWV1RonNTRCg==&idsig=AJTY8r9dN-JIGkBQ4WFIZD_zVClYbVElaJfzOZuqugD4_uiM94KVMsBa87ZF44PywAPtSKWtdlV0Qh7PF4-XDg==";

    #[test]
    fn model_invitation_is_byte_exact() {
        let inv = model();
        assert_eq!(inv.to_uri(), MODEL_URI);
        assert_eq!(MODEL_URI.len(), 629);
        let parsed = SignedInvitation::parse_verified(MODEL_URI).unwrap();
        assert_eq!(parsed, inv);
    }

    #[test]
    fn tolerated_variants_still_verify() {
        // Reordered parameters, an unknown one, `;` as a separator, unpadded base64.
        let (head, query) = MODEL_URI.split_once("#/?").unwrap();
        let (unsigned, sigs) = query.split_once("&ssig=").unwrap();
        let mut items: Vec<&str> = unsigned.split('&').collect();
        items.reverse();
        let reordered = format!("{head}#/?{};extra=1&ssig={sigs}", items.join("&"));
        SignedInvitation::parse_verified(&reordered).unwrap();
        let unpadded = MODEL_URI.replace("URo%3D", "URo");
        SignedInvitation::parse_verified(&unpadded).unwrap();
    }

    #[test]
    fn tampering_is_detected() {
        let flip = |from: &str, to: &str| MODEL_URI.replacen(from, to, 1);
        let cases = [
            flip("ssig=xttF", "ssig=xttG"),
            flip("idsig=AJTY", "idsig=AJTZ"),
            flip("ts=1700000000", "ts=1700000001"),
            flip("AAECAwQF", "AAECAwQG"),
            flip("45678", "45679"),
            flip("192.168.1.10", "192.168.1.11"),
            flip("My%20Desktop", "My%20Laptop"),
            flip("hSDwCYkw", "hSDwCYkx"),
        ];
        for c in cases {
            assert_eq!(
                SignedInvitation::parse_verified(&c).unwrap_err(),
                RcError::Invitation,
                "{c}"
            );
        }
    }

    #[test]
    fn malformed_links_are_syntax_errors() {
        let cases = [
            MODEL_URI.replace("xrcp:/", "xrcp://"),
            MODEL_URI.replace("&app=", "&ap="),
            MODEL_URI.replace("&ssig=", "&sig="),
            format!("{MODEL_URI} trailing"),
            MODEL_URI.replace("v=1", "v=2-1"),
            MODEL_URI.replace(":45678", ":456789"),
            MODEL_URI.replace("ssig=xttF", "ssig=xt"),
            "x".repeat(MAX_INVITATION_LEN + 1),
        ];
        for c in cases {
            assert!(
                matches!(SignedInvitation::parse(&c), Err(RcError::Syntax(_))),
                "{c}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(name in "\\PC{0,30}", port in any::<u16>(), ts in 0i64..4_000_000_000, ip in any::<u32>()) {
            let (s, id) = model_keys();
            let inv = Invitation {
                ca: KeyHash([7; 32]),
                host: Ipv4Addr::from(ip).into(),
                port,
                version: VersionRange::single(Version(1)),
                app: json!({"deviceName": name}),
                ts,
                skey: s.public(),
                idkey: id.public(),
                dh: X25519PublicKey::from_raw([9; 32]),
            }.sign(&s, &id).unwrap();
            let uri = inv.to_uri();
            // The reference decodes `app` twice, so `+` and `%` in the JSON cannot survive;
            // every other name must round-trip exactly.
            if !name.contains('+') && !name.contains('%') {
                prop_assert_eq!(SignedInvitation::parse_verified(&uri).unwrap(), inv);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,700}") {
            let _ = SignedInvitation::parse(&s);
            let _ = SignedInvitation::parse(&format!("xrcp:/{s}"));
        }

        #[test]
        fn mutated_model_never_panics(i in 0usize..629, c in any::<char>()) {
            let mut s: Vec<char> = MODEL_URI.chars().collect();
            s[i] = c;
            let s: String = s.into_iter().collect();
            if let Ok(inv) = SignedInvitation::parse(&s) {
                let _ = inv.verify();
            }
        }
    }
}
