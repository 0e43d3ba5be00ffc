//! The protocol's error kinds, mirrored one to one from the reference's `RCErrorType`
//! (simplexmq `Simplex/RemoteControl/Types.hs`), with the same text forms.
//!
//! Every decoder and state machine in this crate reports failures of network input as an
//! [`RcError`]; lower layers (e.g. [`crate::crypto::CryptoError`]) have their own enums and are
//! mapped to a kind here at the point where the protocol context decides which kind applies
//! (the same crypto failure is `DECRYPT` in a HELLO but `INVITATION` in an announcement).

use std::fmt;

/// One XRCP error kind. `Display` gives the reference's text form (`strEncode`), e.g.
/// `IDENTITY` or `SYNTAX bad block`; [`RcError::parse`] reads it back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RcError {
    /// An invariant the implementation itself should guarantee was broken.
    Internal(String),
    /// The peer's identity (CA fingerprint or identity key) is not the one expected.
    Identity,
    /// The controller found no usable local IPv4 address for the invitation.
    NoLocalAddress,
    /// Multicast announcement requested for a host that was never paired.
    NewController,
    /// No announcement from a known controller arrived in time.
    NotDiscovered,
    /// The controller's TLS server could not be started.
    TlsStartFailed,
    /// Any other failure, e.g. a TLS handshake error or an I/O error.
    Exception(String),
    /// A command signature did not verify.
    CtrlAuth,
    /// No stored pairing could decrypt an announcement.
    CtrlNotFound,
    /// The controller sent an `ERROR` block with this text.
    CtrlError(String),
    /// An invitation (link or announcement) is malformed, badly signed or inconsistent.
    Invitation,
    /// No protocol version in common.
    Version,
    /// Content could not be encrypted (e.g. too large to pad).
    Encrypt,
    /// Authentication tag mismatch or undecryptable content.
    Decrypt,
    /// A block is not exactly 16384 bytes or its content does not fit its padding.
    BlockSize,
    /// Bytes or JSON that do not parse; the detail says what.
    Syntax(String),
}

impl RcError {
    /// The reference's text forms, parsed back; `None` for anything else.
    pub fn parse(s: &str) -> Option<RcError> {
        let (tag, rest) = match s.split_once(' ') {
            Some((t, r)) => (t, Some(r)),
            None => (s, None),
        };
        let with_msg = |f: fn(String) -> RcError| rest.map(|r| f(r.to_owned()));
        let bare = |e: RcError| if rest.is_none() { Some(e) } else { None };
        match tag {
            "INTERNAL" => with_msg(RcError::Internal),
            "IDENTITY" => bare(RcError::Identity),
            "NO_LOCAL_ADDR" => bare(RcError::NoLocalAddress),
            "NEW_CONTROLLER" => bare(RcError::NewController),
            "NOT_DISCOVERED" => bare(RcError::NotDiscovered),
            "CTRL_TLS_START" => bare(RcError::TlsStartFailed),
            "EXCEPTION" => with_msg(RcError::Exception),
            "CTRL_AUTH" => bare(RcError::CtrlAuth),
            "CTRL_NOT_FOUND" => bare(RcError::CtrlNotFound),
            "CTRL_ERROR" => with_msg(RcError::CtrlError),
            "INVITATION" => bare(RcError::Invitation),
            "VERSION" => bare(RcError::Version),
            "ENCRYPT" => bare(RcError::Encrypt),
            "DECRYPT" => bare(RcError::Decrypt),
            "BLOCK_SIZE" => bare(RcError::BlockSize),
            "SYNTAX" => with_msg(RcError::Syntax),
            _ => None,
        }
    }

    /// The kind alone (`SYNTAX` for `SYNTAX detail`), as used in scripting output.
    pub fn kind(&self) -> &'static str {
        match self {
            RcError::Internal(_) => "INTERNAL",
            RcError::Identity => "IDENTITY",
            RcError::NoLocalAddress => "NO_LOCAL_ADDR",
            RcError::NewController => "NEW_CONTROLLER",
            RcError::NotDiscovered => "NOT_DISCOVERED",
            RcError::TlsStartFailed => "CTRL_TLS_START",
            RcError::Exception(_) => "EXCEPTION",
            RcError::CtrlAuth => "CTRL_AUTH",
            RcError::CtrlNotFound => "CTRL_NOT_FOUND",
            RcError::CtrlError(_) => "CTRL_ERROR",
            RcError::Invitation => "INVITATION",
            RcError::Version => "VERSION",
            RcError::Encrypt => "ENCRYPT",
            RcError::Decrypt => "DECRYPT",
            RcError::BlockSize => "BLOCK_SIZE",
            RcError::Syntax(_) => "SYNTAX",
        }
    }

    /// Shorthand for a [`RcError::Syntax`] with a detail.
    pub fn syntax(detail: impl Into<String>) -> RcError {
        RcError::Syntax(detail.into())
    }
}

impl fmt::Display for RcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RcError::Internal(m)
            | RcError::Exception(m)
            | RcError::CtrlError(m)
            | RcError::Syntax(m) => write!(f, "{} {}", self.kind(), m),
            _ => f.write_str(self.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let all = [
            RcError::Internal("x y".into()),
            RcError::Identity,
            RcError::NoLocalAddress,
            RcError::NewController,
            RcError::NotDiscovered,
            RcError::TlsStartFailed,
            RcError::Exception("boom".into()),
            RcError::CtrlAuth,
            RcError::CtrlNotFound,
            RcError::CtrlError("no".into()),
            RcError::Invitation,
            RcError::Version,
            RcError::Encrypt,
            RcError::Decrypt,
            RcError::BlockSize,
            RcError::Syntax("bad block".into()),
        ];
        assert_eq!(all.len(), 16);
        for e in all {
            assert_eq!(RcError::parse(&e.to_string()), Some(e.clone()), "{e}");
        }
        assert_eq!(RcError::Syntax("bad".into()).to_string(), "SYNTAX bad");
        assert_eq!(RcError::parse("IDENTITY extra"), None);
        assert_eq!(RcError::parse("NOPE"), None);
    }
}
