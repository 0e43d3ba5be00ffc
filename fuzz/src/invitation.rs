//! `invitation`: the `xrcp:/` link parser and its signatures.
//!
//! Input: the link text (bytes that are not UTF-8 are replaced, so every input is a link).
//!
//! Invariants:
//! - `parse_verified` is exactly `parse` followed by `verify`;
//! - links longer than `MAX_INVITATION_LEN` are refused;
//! - a parsed link re-serializes canonically: parsing `to_uri()` gives the same value back
//!   (and the same verification result), and `to_uri` is idempotent. The reference decodes
//!   `app` twice, so this is only required when the app JSON has no `+` or `%` (a known,
//!   documented limitation), and when the canonical text is short enough to be parsed again.

use xrcp::codec::json::to_aeson_string;
use xrcp::message::invitation::MAX_INVITATION_LEN;
use xrcp::message::SignedInvitation;

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_link(&text);
}

/// Checks one link; returns the parsed invitation when it parses.
pub fn check_link(text: &str) -> Option<SignedInvitation> {
    let parsed = SignedInvitation::parse(text);
    let verified = SignedInvitation::parse_verified(text);
    match &parsed {
        Ok(inv) => match inv.verify() {
            Ok(()) => assert_eq!(verified.as_ref().ok(), Some(inv)),
            Err(e) => assert_eq!(verified.as_ref().err(), Some(&e)),
        },
        Err(e) => assert_eq!(verified.as_ref().err(), Some(e)),
    }
    if text.len() > MAX_INVITATION_LEN {
        assert!(parsed.is_err(), "an over-long link was accepted");
    }
    let inv = parsed.ok()?;
    let signature_ok = inv.verify().is_ok();

    let uri = inv.to_uri();
    assert!(
        uri.starts_with(&inv.invitation.to_uri()),
        "the signed link must extend the unsigned one"
    );
    let app = to_aeson_string(&inv.invitation.app);
    if !app.contains(['+', '%']) && uri.len() <= MAX_INVITATION_LEN {
        let back = SignedInvitation::parse(&uri)
            .unwrap_or_else(|e| panic!("canonical link does not parse: {e}\n{uri}"));
        assert_eq!(back, inv, "canonical link parses to another value\n{uri}");
        assert_eq!(back.verify().is_ok(), signature_ok);
        assert_eq!(back.to_uri(), uri, "to_uri is not idempotent");
    }
    Some(inv)
}
