//! Session-layer errors, one variant per constructor of the reference's `RemoteProtocolError`
//! (spec/xrcp.md §10.5), with its JSON encoding.
//!
//! The JSON is what a host puts into the `remoteProcotolError` field of a `protocolError`
//! response (spec/xrcp.md §10.5, the field name's typo is part of the wire format). The reference
//! derives it with `sumTypeJSON (dropPrefix "RPE")`: an object tagged by `"type"`; record
//! constructors keep their field names; the two constructors with a bare number carry it in
//! `"data"`; constructors whose name does not start with `RPE` (`PRESessionCode`, ...) only get
//! their first letter lowered (`pRESessionCode`). Nested `RCErrorType` values use the same
//! scheme with prefix `RCE` ([`rc_error_to_json`]).
//!
//! This is the tagged ("kotlin") form. A Swift-built host sends the single-field form, which
//! the controller converts first (see [`super::protocol::owsf_to_tagged`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::error::{ErrorDetail, RcError};

/// A failure of the session protocol (framing, keys, crypto, files, JSON), named after the
/// reference's `RemoteProtocolError` constructor. `Display` is one line for a person (what
/// happened, what to do); the wire form is the JSON ([`RemoteProtocolError::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteProtocolError {
    /// `RPEInvalidSize`: a length prefix is malformed or beyond our bound.
    InvalidSize,
    /// `RPEInvalidJSON`: the command or response JSON does not parse.
    InvalidJson(String),
    /// `RPEInvalidBody`: the body is structurally wrong (empty plaintext, bad signature
    /// framing, undecompressable content, truncation).
    InvalidBody(String),
    /// `PRESessionCode`: the tls-unique prefix inside the plaintext is not this session's.
    SessionCode,
    /// `RPEIncompatibleEncoding`: a Kotlin-encoding host with a Swift-encoding controller.
    IncompatibleEncoding,
    /// `RPEUnexpectedFile`: an attachment where none belongs.
    UnexpectedFile,
    /// `RPENoFile`: an attachment was expected but its marker byte is not `0x01`.
    NoFile,
    /// `RPEFileSize`: the attachment length is not the announced size + 16, or the data ended
    /// early, or a file does not fit in 32 bits.
    FileSize,
    /// `RPEFileDigest`: the received file's SHA-512 is not the announced digest.
    FileDigest,
    /// `RPEManySkippedIds n`: the message id is more than 256 ahead (n = id − last id).
    ManySkippedIds(u32),
    /// `PREEarlierId n`: an id behind the last one with no stored key (n = last id − id).
    EarlierId(u32),
    /// `PREDuplicateId`: the id equals the last one received.
    DuplicateId,
    /// `RPEUnexpectedResponse`: the response constructor does not match the command; the
    /// text describes the response (we give its JSON; the reference gives Haskell `show`).
    UnexpectedResponse(String),
    /// `RPEStoredFileExists`: the destination of a stored file already exists.
    StoredFileExists,
    /// `PRERemoteControl`: an XRCP error, e.g. `CTRL_AUTH` for bad signatures or `DECRYPT`.
    RemoteControl(RcError),
    /// `RPEHTTP2`: the HTTP/2 transport failed (the `h2::Error` is the
    /// [`std::error::Error::source`] when it happened here).
    Http2(ErrorDetail),
    /// `RPEException`: anything else (I/O errors, application failures; the local error is
    /// the [`std::error::Error::source`] when there is one).
    Exception(ErrorDetail),
}

impl RemoteProtocolError {
    /// Shorthand for `PRERemoteControl CTRL_AUTH`.
    pub const CTRL_AUTH: RemoteProtocolError =
        RemoteProtocolError::RemoteControl(RcError::CtrlAuth);
    /// Shorthand for `PRERemoteControl DECRYPT`.
    pub const DECRYPT: RemoteProtocolError = RemoteProtocolError::RemoteControl(RcError::Decrypt);

    /// The JSON tag (`"type"` value) of this error.
    pub fn tag(&self) -> &'static str {
        use RemoteProtocolError as E;
        match self {
            E::InvalidSize => "invalidSize",
            E::InvalidJson(_) => "invalidJSON",
            E::InvalidBody(_) => "invalidBody",
            E::SessionCode => "pRESessionCode",
            E::IncompatibleEncoding => "incompatibleEncoding",
            E::UnexpectedFile => "unexpectedFile",
            E::NoFile => "noFile",
            E::FileSize => "fileSize",
            E::FileDigest => "fileDigest",
            E::ManySkippedIds(_) => "manySkippedIds",
            E::EarlierId(_) => "pREEarlierId",
            E::DuplicateId => "pREDuplicateId",
            E::UnexpectedResponse(_) => "unexpectedResponse",
            E::StoredFileExists => "storedFileExists",
            E::RemoteControl(_) => "pRERemoteControl",
            E::Http2(_) => "hTTP2",
            E::Exception(_) => "exception",
        }
    }

    /// The reference's JSON form (tagged object).
    pub fn to_json(&self) -> Value {
        use RemoteProtocolError as E;
        let tag = self.tag();
        match self {
            E::InvalidJson(s) => json!({"type": tag, "invalidJSON": s}),
            E::InvalidBody(s) => json!({"type": tag, "invalidBody": s}),
            E::ManySkippedIds(n) | E::EarlierId(n) => json!({"type": tag, "data": n}),
            E::UnexpectedResponse(s) => json!({"type": tag, "response": s}),
            E::RemoteControl(e) => json!({"type": tag, "rcError": rc_error_to_json(e)}),
            E::Http2(s) => json!({"type": tag, "http2Error": s.text()}),
            E::Exception(s) => json!({"type": tag, "someException": s.text()}),
            _ => json!({ "type": tag }),
        }
    }

    /// Parses the tagged JSON form; unknown tags and missing fields are errors.
    pub fn from_json(v: &Value) -> Result<Self, ErrorJsonError> {
        use RemoteProtocolError as E;
        let o = v.as_object().ok_or(ErrorJsonError::NotAnObject {
            what: "remote protocol error",
        })?;
        let tag = str_field(o, "type")?;
        let n = || -> Result<u32, ErrorJsonError> {
            o.get("data")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ErrorJsonError::BadField {
                    field: "data".into(),
                })
        };
        Ok(match tag {
            "invalidSize" => E::InvalidSize,
            "invalidJSON" => E::InvalidJson(str_field(o, "invalidJSON")?.to_owned()),
            "invalidBody" => E::InvalidBody(str_field(o, "invalidBody")?.to_owned()),
            "pRESessionCode" => E::SessionCode,
            "incompatibleEncoding" => E::IncompatibleEncoding,
            "unexpectedFile" => E::UnexpectedFile,
            "noFile" => E::NoFile,
            "fileSize" => E::FileSize,
            "fileDigest" => E::FileDigest,
            "manySkippedIds" => E::ManySkippedIds(n()?),
            "pREEarlierId" => E::EarlierId(n()?),
            "pREDuplicateId" => E::DuplicateId,
            "unexpectedResponse" => E::UnexpectedResponse(str_field(o, "response")?.to_owned()),
            "storedFileExists" => E::StoredFileExists,
            "pRERemoteControl" => E::RemoteControl(rc_error_from_json(o.get("rcError").ok_or(
                ErrorJsonError::BadField {
                    field: "rcError".into(),
                },
            )?)?),
            "hTTP2" => E::Http2(str_field(o, "http2Error")?.into()),
            "exception" => E::Exception(str_field(o, "someException")?.into()),
            other => {
                return Err(ErrorJsonError::UnknownTag {
                    what: "remote protocol error",
                    tag: other.to_owned(),
                })
            }
        })
    }
}

/// Why the JSON form of a [`RemoteProtocolError`] or an [`RcError`] could not be read: the
/// peer sent something the wire format does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorJsonError {
    /// The value is not a JSON object.
    #[error("the {what} is not a JSON object")]
    NotAnObject {
        /// Which error type was being read.
        what: &'static str,
    },
    /// A field is missing or has the wrong type.
    #[error("the field '{field}' is missing or not of its type")]
    BadField {
        /// The field's name.
        field: String,
    },
    /// The `type` tag names no constructor we know.
    #[error("unknown {what} type '{tag}'")]
    UnknownTag {
        /// Which error type was being read.
        what: &'static str,
        /// The tag as sent.
        tag: String,
    },
}

fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> Result<&'a str, ErrorJsonError> {
    o.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorJsonError::BadField { field: k.into() })
}

/// One line for a person: what happened and what to do next. The reference's constructor
/// names and Haskell `show` stay out of it: the JSON form ([`RemoteProtocolError::to_json`])
/// is what goes on the wire, [`RemoteProtocolError::tag`] names the kind for programs.
impl fmt::Display for RemoteProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RemoteProtocolError as E;
        const RESTART: &str = "end this session and start a new one";
        match self {
            E::InvalidSize => write!(f, "a message had an impossible length — {RESTART}"),
            E::InvalidJson(s) => write!(f, "a message could not be read as JSON ({s}) — {RESTART}"),
            E::InvalidBody(s) => write!(f, "a message was malformed ({s}) — {RESTART}"),
            E::SessionCode => write!(
                f,
                "a message was not made for this session (its session code does not match) — \
                 {RESTART}"
            ),
            E::IncompatibleEncoding => f.write_str(
                "the host and the controller encode messages differently (apps for different \
                 platforms) — update the older app",
            ),
            E::UnexpectedFile => {
                write!(f, "a file came with a message that takes none — {RESTART}")
            }
            E::NoFile => write!(f, "a file was announced but did not come — try again"),
            E::FileSize => f.write_str(
                "the file's size is not the one announced (the transfer was cut or changed) — \
                 try again",
            ),
            E::FileDigest => f.write_str(
                "the file's checksum is not the one announced (it was damaged on the way) — \
                 try again",
            ),
            E::ManySkippedIds(n) => {
                write!(
                    f,
                    "{n} messages went missing (the session is out of step) — {RESTART}"
                )
            }
            E::EarlierId(_) | E::DuplicateId => write!(
                f,
                "a message came twice or out of order (it may have been replayed) — {RESTART}"
            ),
            E::UnexpectedResponse(s) => match unexpected_response(s) {
                Some((t, true)) => write!(
                    f,
                    "the host answered with an error: {t} — check the command and its \
                     arguments (file ids are in the host's /files)"
                ),
                Some((t, false)) => write!(
                    f,
                    "the host answered with '{t}', which does not fit the command — the host's \
                     app may not support it; update it or try another command"
                ),
                None => write!(
                    f,
                    "the host answered something that does not fit the command ({} bytes) — the \
                     host's app may not support it; update it or try another command",
                    s.len()
                ),
            },
            E::StoredFileExists => f.write_str(
                "a file of that name is already stored there — delete or rename it, then try \
                 again",
            ),
            E::RemoteControl(e) => write!(f, "{e}"),
            E::Http2(s) => write!(
                f,
                "the session's connection failed ({}) — {RESTART}",
                crate::error::plain(s)
            ),
            E::Exception(s) => write!(f, "{}", crate::error::plain(s)),
        }
    }
}

impl std::error::Error for RemoteProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Display shows the inner error's text already: its source is ours.
            RemoteProtocolError::RemoteControl(e) => std::error::Error::source(e),
            RemoteProtocolError::Http2(d) | RemoteProtocolError::Exception(d) => {
                d.source().map(|e| e as &(dyn std::error::Error + 'static))
            }
            _ => None,
        }
    }
}

impl RemoteProtocolError {
    /// For [`RemoteProtocolError::UnexpectedResponse`]: the response's `"type"` when its text
    /// is the response's JSON (as ours is), for people and for structured error output.
    pub fn response_type(&self) -> Option<String> {
        match self {
            RemoteProtocolError::UnexpectedResponse(s) => unexpected_response(s).map(|(t, _)| t),
            _ => None,
        }
    }
}

/// The type of a response that did not fit, and whether it is an error: for a chat response
/// or event, the type of its `result` or `error` (e.g. `fileNotFound`), else the response's.
fn unexpected_response(text: &str) -> Option<(String, bool)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let name = |v: &Value| v.get("type")?.as_str().map(str::to_owned);
    if let Some(inner) = v.get("chatResponse").or_else(|| v.get("chatEvent")) {
        if let Some(e) = inner.get("error") {
            return Some((name(e)?, true));
        }
        if let Some(r) = inner.get("result") {
            return Some((name(r)?, false));
        }
    }
    Some((name(&v)?, false))
}

impl Serialize for RemoteProtocolError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RemoteProtocolError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        RemoteProtocolError::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// `RCErrorType` JSON (spec/xrcp.md §10.5, §11: tagged, `RCE` prefix dropped).
/// Record fields: `internalErr`, `exception`, `ctrlErr`, `syntaxErr`.
pub fn rc_error_to_json(e: &RcError) -> Value {
    let (tag, field) = rc_error_tag(e);
    match (field, rc_error_text(e)) {
        (Some(k), Some(text)) => {
            let mut o = Map::new();
            o.insert("type".into(), Value::from(tag));
            o.insert(k.into(), Value::from(text));
            Value::Object(o)
        }
        _ => json!({ "type": tag }),
    }
}

/// Parses [`rc_error_to_json`]'s form.
pub fn rc_error_from_json(v: &Value) -> Result<RcError, ErrorJsonError> {
    let o = v.as_object().ok_or(ErrorJsonError::NotAnObject {
        what: "remote control error",
    })?;
    let tag = str_field(o, "type")?;
    let text = |k: &str| str_field(o, k).map(str::to_owned);
    Ok(match tag {
        "internal" => RcError::Internal(text("internalErr")?),
        "identity" => RcError::Identity,
        "noLocalAddress" => RcError::NoLocalAddress,
        "newController" => RcError::NewController,
        "notDiscovered" => RcError::NotDiscovered,
        "tLSStartFailed" => RcError::TlsStartFailed,
        "exception" => RcError::Exception(text("exception")?.into()),
        "ctrlAuth" => RcError::CtrlAuth,
        "ctrlNotFound" => RcError::CtrlNotFound,
        "ctrlError" => RcError::CtrlError(text("ctrlErr")?),
        "invitation" => RcError::Invitation,
        "version" => RcError::Version,
        "encrypt" => RcError::Encrypt,
        "decrypt" => RcError::Decrypt,
        "blockSize" => RcError::BlockSize,
        "syntax" => RcError::Syntax(text("syntaxErr")?),
        other => {
            return Err(ErrorJsonError::UnknownTag {
                what: "remote control error",
                tag: other.to_owned(),
            })
        }
    })
}

/// JSON tag and record field name of each `RCErrorType` constructor.
fn rc_error_tag(e: &RcError) -> (&'static str, Option<&'static str>) {
    match e {
        RcError::Internal(_) => ("internal", Some("internalErr")),
        RcError::Identity => ("identity", None),
        RcError::NoLocalAddress => ("noLocalAddress", None),
        RcError::NewController => ("newController", None),
        RcError::NotDiscovered => ("notDiscovered", None),
        RcError::TlsStartFailed => ("tLSStartFailed", None),
        RcError::Exception(_) => ("exception", Some("exception")),
        RcError::CtrlAuth => ("ctrlAuth", None),
        RcError::CtrlNotFound => ("ctrlNotFound", None),
        RcError::CtrlError(_) => ("ctrlError", Some("ctrlErr")),
        RcError::Invitation => ("invitation", None),
        RcError::Version => ("version", None),
        RcError::Encrypt => ("encrypt", None),
        RcError::Decrypt => ("decrypt", None),
        RcError::BlockSize => ("blockSize", None),
        RcError::Syntax(_) => ("syntax", Some("syntaxErr")),
    }
}

fn rc_error_text(e: &RcError) -> Option<&str> {
    e.detail()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_json() {
        use RemoteProtocolError as E;
        let all = [
            E::InvalidSize,
            E::InvalidJson("x".into()),
            E::InvalidBody("empty body".into()),
            E::SessionCode,
            E::IncompatibleEncoding,
            E::UnexpectedFile,
            E::NoFile,
            E::FileSize,
            E::FileDigest,
            E::ManySkippedIds(300),
            E::EarlierId(2),
            E::DuplicateId,
            E::UnexpectedResponse("r".into()),
            E::StoredFileExists,
            E::CTRL_AUTH,
            E::RemoteControl(RcError::Syntax("bad".into())),
            E::RemoteControl(RcError::TlsStartFailed),
            E::Http2(
                "peer closed connection without sending TLS close_notify: https://docs.rs/x".into(),
            ),
            E::Exception("io".into()),
        ];
        for e in all {
            // People get plain words: no constructor names, Debug quotes or JSON.
            let human = e.to_string();
            for leak in ["RPE", "PRE", "RCE", "{", "\"", "docs.rs"] {
                assert!(!human.contains(leak), "{human}");
            }
            let v = e.to_json();
            assert_eq!(v["type"], e.tag());
            assert_eq!(E::from_json(&v).unwrap(), e, "{v}");
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<E>(&text).unwrap(), e);
        }
    }

    #[test]
    fn an_unexpected_response_is_named_by_its_type() {
        let e = RemoteProtocolError::UnexpectedResponse(r#"{"type":"chatCmdError","x":1}"#.into());
        assert_eq!(e.response_type().as_deref(), Some("chatCmdError"));
        let text = e.to_string();
        assert!(
            text.contains("'chatCmdError'") && !text.contains('{'),
            "{text}"
        );
        let odd = RemoteProtocolError::UnexpectedResponse("CRSomething {x = 1}".into());
        assert_eq!(odd.response_type(), None);
        assert!(!odd.to_string().contains('{'), "{odd}");
    }

    #[test]
    fn reference_shapes() {
        use RemoteProtocolError as E;
        assert_eq!(E::SessionCode.to_json(), json!({"type": "pRESessionCode"}));
        assert_eq!(
            E::ManySkippedIds(257).to_json(),
            json!({"type": "manySkippedIds", "data": 257})
        );
        assert_eq!(
            E::EarlierId(1).to_json(),
            json!({"type": "pREEarlierId", "data": 1})
        );
        assert_eq!(
            E::CTRL_AUTH.to_json(),
            json!({"type": "pRERemoteControl", "rcError": {"type": "ctrlAuth"}})
        );
        assert_eq!(
            E::InvalidJson("e".into()).to_json(),
            json!({"type": "invalidJSON", "invalidJSON": "e"})
        );
        assert_eq!(
            rc_error_to_json(&RcError::CtrlError("no".into())),
            json!({"type": "ctrlError", "ctrlErr": "no"})
        );
        assert!(E::from_json(&json!({"type": "nope"})).is_err());
        assert!(E::from_json(&json!({"type": "manySkippedIds"})).is_err());
    }
}
