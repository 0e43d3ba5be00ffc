//! The reference's text ("str") encoding (spec/xrcp.md §2.2): padded base64url out, tolerant
//! base64url in, and the percent-encoding rules of URI query strings.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::RcError;

/// Padded base64url, as the reference writes every binary value in text.
const OUT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(true),
);

/// What the reference accepts: padded or unpadded, canonical trailing bits only.
const IN: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false),
);

/// Padded base64url of `bytes`.
pub fn base64url_encode(bytes: &[u8]) -> String {
    OUT.encode(bytes)
}

/// Decodes padded or unpadded base64url. Empty input is refused, as the reference's parser
/// requires at least one character.
pub fn base64url_decode(s: &str) -> Result<Vec<u8>, RcError> {
    if s.is_empty() {
        return Err(RcError::syntax("empty base64url"));
    }
    // Padding is optional, but when present it must complete the last quantum ("QQ=" is
    // refused, as by the reference's decoder).
    if s.ends_with('=') && s.len() % 4 != 0 {
        return Err(RcError::syntax("incomplete base64url padding"));
    }
    IN.decode(s)
        .map_err(|e| RcError::syntax(format!("base64url: {e}")))
}

/// Characters the reference's query encoder (`urlEncode True`) leaves as they are.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte except `A-Z a-z 0-9 - _ . ~`, with uppercase hex.
pub fn url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a query component as the reference does: `%XX` (either case) becomes the byte,
/// `+` becomes a space, an invalid escape is kept as it is.
pub fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < s.len() => match (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_lengths_and_padding() {
        assert_eq!(base64url_encode(&[0; 32]).len(), 44);
        assert!(base64url_encode(&[0; 32]).ends_with('='));
        assert_eq!(base64url_encode(&[0; 64]).len(), 88);
        assert!(base64url_encode(&[0; 64]).ends_with("=="));
        assert_eq!(base64url_encode(&[0; 1158]).len(), 1544);
        assert_eq!(base64url_encode(&[0; 1039]).len(), 1388);
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8=");
    }

    #[test]
    fn base64_decoding_is_tolerant_but_canonical() {
        assert_eq!(base64url_decode("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        // non-zero trailing bits, a length of 1 mod 4, the standard alphabet and empty input
        assert!(base64url_decode("-_9").is_err());
        assert!(base64url_decode("AAAAA").is_err());
        assert!(base64url_decode("+/8=").is_err());
        assert!(base64url_decode("").is_err());
        assert!(base64url_decode("QQ=").is_err());
        assert_eq!(base64url_decode("QQ==").unwrap(), b"A");
        assert_eq!(base64url_decode("QQ").unwrap(), b"A");
    }

    #[test]
    fn url_encoding_matches_reference_example() {
        assert_eq!(
            url_encode(br#"{"a":"b c+d/e~f"}"#),
            "%7B%22a%22%3A%22b%20c%2Bd%2Fe~f%22%7D"
        );
        assert_eq!(url_decode(b"a+b%20c%zz%4"), b"a b c%zz%4".to_vec());
        assert_eq!(url_decode(b"%3d%3D"), b"==".to_vec());
    }

    proptest! {
        #[test]
        fn base64_round_trip(b in proptest::collection::vec(any::<u8>(), 1..200)) {
            let s = base64url_encode(&b);
            prop_assert_eq!(base64url_decode(&s).unwrap(), b.clone());
            prop_assert_eq!(base64url_decode(s.trim_end_matches('=')).unwrap(), b);
        }

        #[test]
        fn url_round_trip(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(url_decode(url_encode(&b).as_bytes()), b);
        }

        #[test]
        fn decoders_never_panic(s in "\\PC{0,80}") {
            let _ = base64url_decode(&s);
            prop_assert!(url_decode(s.as_bytes()).len() <= s.len());
        }
    }
}
