//! The protocol's error kinds, mirrored one to one from the reference's `RCErrorType`
//! (spec/xrcp.md §11), with the same text forms.
//!
//! Every decoder and state machine in this crate reports failures of network input as an
//! [`RcError`]; lower layers (e.g. [`crate::crypto::CryptoError`]) have their own enums and are
//! mapped to a kind here at the point where the protocol context decides which kind applies
//! (the same crypto failure is `DECRYPT` in a HELLO but `INVITATION` in an announcement).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The text of an error kind that carries one ([`RcError::Exception`],
/// [`crate::session::RemoteProtocolError::Http2`] and
/// [`crate::session::RemoteProtocolError::Exception`]): what the wire and the JSON events
/// carry. When the failure happened here rather than at the peer, the local error it came from
/// (an `io::Error`, an `h2::Error`, a TLS error, ...) is kept beside the text and is the
/// error's [`std::error::Error::source`], so a program can tell a refused connection from a
/// reset without parsing text. Two details are equal when their texts are: the source is not
/// part of the wire form.
#[derive(Clone)]
pub struct ErrorDetail {
    text: String,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl ErrorDetail {
    /// A detail with `text` and nothing behind it (e.g. read from the wire).
    pub fn new(text: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            text: text.into(),
            source: None,
        }
    }

    /// A detail for the local failure `source`, whose text it takes.
    pub fn caused_by(source: impl StdError + Send + Sync + 'static) -> ErrorDetail {
        ErrorDetail {
            text: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// A detail with its own `text` for the local failure `source` (e.g. the step that failed,
    /// then the cause).
    pub fn with_source(
        text: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> ErrorDetail {
        ErrorDetail {
            text: text.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The text, as the wire carries it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The local error behind the text, if the failure happened here.
    pub fn source(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl std::ops::Deref for ErrorDetail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for ErrorDetail {
    fn eq(&self, other: &ErrorDetail) -> bool {
        self.text == other.text
    }
}

impl Eq for ErrorDetail {}

impl fmt::Debug for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ErrorDetail");
        d.field("text", &self.text);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<String> for ErrorDetail {
    fn from(text: String) -> ErrorDetail {
        ErrorDetail::new(text)
    }
}

impl From<&str> for ErrorDetail {
    fn from(text: &str) -> ErrorDetail {
        ErrorDetail::new(text)
    }
}

impl From<std::io::Error> for ErrorDetail {
    fn from(e: std::io::Error) -> ErrorDetail {
        ErrorDetail::caused_by(e)
    }
}

/// One XRCP error kind. [`RcError::text_form`] gives the reference's text form
/// (`strEncode`), e.g. `IDENTITY` or `SYNTAX bad block`, which goes on the wire in a
/// controller's `ERROR` block; [`RcError::parse`] reads it back. `Display` is for people: one
/// line saying what happened and what to do next (the kind's code is [`RcError::kind`]).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Any other failure, e.g. a TLS handshake error or an I/O error (kept as the
    /// [`std::error::Error::source`] when it happened here).
    Exception(ErrorDetail),
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
    /// The reference's text forms ([`RcError::text_form`]), parsed back; `None` for anything
    /// else.
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
            "EXCEPTION" => rest.map(|r| RcError::Exception(r.into())),
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

    /// The text a kind carries (`bad block` of `SYNTAX bad block`), without the advice
    /// `Display` adds; `None` for the kinds without one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RcError::Internal(s) | RcError::CtrlError(s) | RcError::Syntax(s) => Some(s),
            RcError::Exception(s) => Some(s.text()),
            _ => None,
        }
    }

    /// Shorthand for a [`RcError::Syntax`] with a detail.
    pub fn syntax(detail: impl Into<String>) -> RcError {
        RcError::Syntax(detail.into())
    }
}

impl RcError {
    /// The reference's text form (`strEncode`): the kind, then the detail if it has one. This
    /// is what a controller's `ERROR` block carries (spec/xrcp.md §7).
    pub fn text_form(&self) -> String {
        match self {
            RcError::Internal(m) | RcError::CtrlError(m) | RcError::Syntax(m) => {
                format!("{} {}", self.kind(), m)
            }
            RcError::Exception(m) => format!("{} {}", self.kind(), m.text()),
            _ => self.kind().to_owned(),
        }
    }
}

/// One line for a person: what happened, then (after " — ") what to do. Details that come
/// from the peer (`CTRL_ERROR`, `EXCEPTION` texts) are included as they are: whoever prints
/// this on a terminal escapes it (`crate::display`).
impl fmt::Display for RcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RcError::Internal(m) => write!(
                f,
                "internal error ({m}) — this is a bug; please report it with what you did"
            ),
            RcError::Identity => f.write_str(
                "the other side is not the device this link or pairing is for (the link was \
                 used with another host or controller) — make a new link on the controller",
            ),
            RcError::NoLocalAddress => f.write_str(
                "this machine has no network address to put in the link — connect to a \
                 network, or name an address with addr= / --addr",
            ),
            RcError::NewController => f.write_str(
                "this host was never linked, so the controller cannot announce itself to it — \
                 link it first with a new link",
            ),
            RcError::NotDiscovered => f.write_str(
                "no paired controller announced itself in time — start the session on the \
                 controller with multicast on, then search again, or connect with a link",
            ),
            RcError::TlsStartFailed => f.write_str(
                "the controller could not start listening — pick another port with port= / \
                 --port, or another address",
            ),
            RcError::Exception(m) => write!(
                f,
                "{} — check that the other side is running and reachable, then try again",
                plain(m)
            ),
            RcError::CtrlAuth => f.write_str(
                "a command's signature did not verify — end this session and link again",
            ),
            RcError::CtrlNotFound => f.write_str(
                "an announcement came from a controller that is not paired with this host — \
                 connect with a link instead",
            ),
            RcError::CtrlError(m) => match RcError::parse(m) {
                Some(RcError::CtrlError(_)) | None => {
                    write!(f, "the controller refused the connection ({m})")
                }
                Some(e) => write!(f, "the controller refused the connection: {e}"),
            },
            RcError::Invitation => f.write_str(
                "this link is damaged or was changed (its signatures do not verify) — copy \
                 all of it again (quote it on a command line), or make a new link on the \
                 controller",
            ),
            RcError::Version => f.write_str(
                "the two programs have no protocol version in common — update the older one",
            ),
            RcError::Encrypt => f.write_str(
                "a message could not be encrypted (it is too large) — try something smaller",
            ),
            RcError::Decrypt => f.write_str(
                "a message could not be decrypted: it was not made for this session — make a \
                 new link on the controller and connect again",
            ),
            RcError::BlockSize => f.write_str(
                "the other side sent a malformed handshake message, or gave up and closed \
                 the connection — make a new link on the controller and connect again",
            ),
            RcError::Syntax(m) => write!(
                f,
                "this cannot be read ({m}) — if it is a link, copy all of it (quote it on a \
                 command line)"
            ),
        }
    }
}

impl StdError for RcError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RcError::Exception(d) => d.source().map(|e| e as &(dyn StdError + 'static)),
            _ => None,
        }
    }
}

/// An error text from a lower layer in plain words: rustls's hint for a connection closed
/// without `close_notify` points to its manual, which means nothing to a user.
pub fn plain(detail: &str) -> String {
    const NO_CLOSE_NOTIFY: &str = "peer closed connection without sending TLS close_notify";
    if let Some(i) = detail.find(NO_CLOSE_NOTIFY) {
        return format!(
            "{}the connection was cut (the other side did not end the session)",
            &detail[..i]
        );
    }
    // Drop a trailing link to documentation, whatever the library.
    match detail.find(": https://") {
        Some(i) => detail[..i].to_owned(),
        None => detail.to_owned(),
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
            assert_eq!(RcError::parse(&e.text_form()), Some(e.clone()), "{e}");
            // The human form never shows the code or Rust's Debug text.
            let human = e.to_string();
            assert!(!human.starts_with(e.kind()), "{human}");
            assert!(!human.contains('"') && !human.contains('{'), "{human}");
            assert!(
                human.contains(" — ") || matches!(e, RcError::CtrlError(_)),
                "{human}"
            );
        }
        assert_eq!(RcError::Syntax("bad".into()).text_form(), "SYNTAX bad");
        assert_eq!(RcError::parse("IDENTITY extra"), None);
        assert_eq!(RcError::parse("NOPE"), None);
    }

    #[test]
    fn controller_refusals_are_explained() {
        let e = RcError::CtrlError("IDENTITY".into()).to_string();
        assert!(
            e.starts_with("the controller refused the connection: the other side"),
            "{e}"
        );
        let e = RcError::Exception(
            "connect 1.2.3.4:5: peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof"
                .into(),
        )
        .to_string();
        assert!(!e.contains("docs.rs") && !e.contains("close_notify"), "{e}");
        assert!(
            e.starts_with("connect 1.2.3.4:5: the connection was cut"),
            "{e}"
        );
    }
}
