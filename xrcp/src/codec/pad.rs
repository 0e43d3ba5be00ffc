//! Length-prefixed padding (spec/xrcp.md §2.3): `u16be(len) ‖ msg ‖ '#'…` to a fixed size.
//!
//! The reference's `unPad` ignores the fill bytes; so do we, for compatibility, but we always
//! write `#` so our output is byte-identical.

/// Largest message the reference pads (`maxMsgLen`).
pub const MAX_PADDED_MESSAGE: usize = 65533;

/// Why padding or unpadding failed; callers map this to the protocol error of their context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PadError {
    /// The message does not fit the padded size (or exceeds 65533 bytes).
    #[error("message too large to pad")]
    TooLarge,
    /// The padded input is shorter than its length prefix says.
    #[error("invalid padded message")]
    Invalid,
}

/// `pad(msg, size)`: exactly `size` bytes.
pub fn pad(msg: &[u8], size: usize) -> Result<Vec<u8>, PadError> {
    if msg.len() > MAX_PADDED_MESSAGE || msg.len() + 2 > size {
        return Err(PadError::TooLarge);
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    out.resize(size, b'#');
    Ok(out)
}

/// The message inside a padded buffer; bytes after it are ignored, as in the reference.
pub fn unpad(padded: &[u8]) -> Result<&[u8], PadError> {
    if padded.len() < 2 {
        return Err(PadError::Invalid);
    }
    let len = u16::from_be_bytes([padded[0], padded[1]]) as usize;
    padded.get(2..2 + len).ok_or(PadError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_examples() {
        assert_eq!(pad(b"abc", 5).unwrap(), hex::decode("0003616263").unwrap());
        assert_eq!(pad(b"abc", 4), Err(PadError::TooLarge));
        assert_eq!(
            unpad(&hex::decode("00036162").unwrap()),
            Err(PadError::Invalid)
        );
        assert_eq!(unpad(&[0, 0]).unwrap(), b"");
        assert_eq!(
            pad(b"abc", 10).unwrap(),
            hex::decode("00036162632323232323").unwrap()
        );
        assert_eq!(pad(b"", 4).unwrap(), hex::decode("00002323").unwrap());
        assert_eq!(unpad(&[]), Err(PadError::Invalid));
        assert_eq!(pad(&[0; 65534], 70000), Err(PadError::TooLarge));
    }

    proptest! {
        #[test]
        fn round_trip(msg in proptest::collection::vec(any::<u8>(), 0..3000), extra in 2usize..500) {
            let size = msg.len() + extra;
            let p = pad(&msg, size).unwrap();
            prop_assert_eq!(p.len(), size);
            prop_assert_eq!(unpad(&p).unwrap(), &msg[..]);
        }

        #[test]
        fn unpad_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(m) = unpad(&buf) { prop_assert!(m.len() + 2 <= buf.len()); }
        }
    }
}
