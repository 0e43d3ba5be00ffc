//! The JSON carried inside session bodies (research notes §2.1; reference
//! `Remote/Protocol.hs` `RemoteCommand`, `RemoteResponse`, `RRResult`).
//!
//! Both wrappers are tagged objects with the tag in `"type"` (constructor name without
//! `RC`/`RR`, first letter lowered), fields inline, absent optional fields omitted. They are
//! encoded this way on every platform. What they wrap (chat responses, events, errors) is the
//! chat API's own JSON, kept here as [`serde_json::Value`]: executing chat commands is the
//! application's business, not the session layer's.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::RemoteProtocolError;
use super::file::FileDigest;

/// How long the controller's event long-poll asks the host to wait: 10 s in microseconds
/// (reference `pollEvents`).
pub const RECV_WAIT_MICROS: i64 = 10_000_000;

/// A request from the controller to the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RemoteCommand {
    /// `RCSend`: run one chat command (its text, as typed) on the host. `retryNumber` is
    /// required by current hosts.
    Send { command: String, retry_number: i64 },
    /// `RCRecv`: long-poll for the next chat event, waiting up to `wait` microseconds.
    Recv { wait: i64 },
    /// `RCStoreFile`: store the attached file on the host.
    StoreFile {
        file_name: String,
        file_size: u32,
        file_digest: FileDigest,
    },
    /// `RCGetFile`: send back a file of a chat item (answered with [`RemoteResponse::File`]
    /// and an attachment).
    GetFile { file: RemoteFile },
}

/// A response from the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RemoteResponse {
    /// `RRChatResponse`: the outcome of a [`RemoteCommand::Send`].
    ChatResponse { chat_response: RRResult },
    /// `RRChatEvent`: the next event, or none when the poll timed out (then the JSON is just
    /// `{"type":"chatEvent"}`).
    ChatEvent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_event: Option<RRResult>,
    },
    /// `RRFileStored`: where the host stored an uploaded file.
    FileStored { file_path: String },
    /// `RRFile`: a file follows as attachment.
    File {
        file_size: u32,
        file_digest: FileDigest,
    },
    /// `RRProtocolError`: the host rejected the request. The field name's typo
    /// (`remoteProcotolError`) is the reference's.
    ProtocolError {
        remote_procotol_error: RemoteProtocolError,
    },
}

/// `RRResult`: untagged `{"result": …}` or `{"error": …}` (a chat response/event or a
/// `ChatError`, in the chat API's JSON).
#[derive(Clone, Debug, PartialEq)]
pub enum RRResult {
    Result(Value),
    Error(Value),
}

impl RRResult {
    pub fn into_result(self) -> Result<Value, Value> {
        match self {
            RRResult::Result(v) => Ok(v),
            RRResult::Error(e) => Err(e),
        }
    }
}

impl From<Result<Value, Value>> for RRResult {
    fn from(r: Result<Value, Value>) -> Self {
        match r {
            Ok(v) => RRResult::Result(v),
            Err(e) => RRResult::Error(e),
        }
    }
}

impl Serialize for RRResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = Map::new();
        match self {
            RRResult::Result(v) => o.insert("result".into(), v.clone()),
            RRResult::Error(e) => o.insert("error".into(), e.clone()),
        };
        Value::Object(o).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RRResult {
    /// Like aeson's untagged decoding: the `result` alternative is tried first.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let o = v
            .as_object_mut()
            .ok_or_else(|| serde::de::Error::custom("RRResult: not an object"))?;
        if let Some(r) = o.remove("result") {
            Ok(RRResult::Result(r))
        } else if let Some(e) = o.remove("error") {
            Ok(RRResult::Error(e))
        } else {
            Err(serde::de::Error::custom(
                "RRResult: neither result nor error",
            ))
        }
    }
}

/// `RemoteFile`: a chat item's file on the host, as printed by the host CLI after a file
/// arrives and passed back in `/get remote file` (plain record JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteFile {
    pub user_id: i64,
    pub file_id: i64,
    pub sent: bool,
    pub file_source: CryptoFile,
}

/// `CryptoFile`: a path relative to the host's files folder, with the at-rest encryption
/// arguments if the file is encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoFile {
    pub file_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_args: Option<CryptoFileArgs>,
}

/// `CryptoFileArgs`: key and nonce as padded base64url text, kept as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoFileArgs {
    pub file_key: String,
    pub file_nonce: String,
}

impl RemoteCommand {
    /// Parses command JSON; failures are `RPEInvalidJSON` as in the reference.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, RemoteProtocolError> {
        serde_json::from_slice(json).map_err(|e| RemoteProtocolError::InvalidJson(e.to_string()))
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing these types cannot fail: all keys are strings, no non-finite floats.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl RemoteResponse {
    /// Parses response JSON; failures are `RPEInvalidJSON` as in the reference.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, RemoteProtocolError> {
        serde_json::from_slice(json).map_err(|e| RemoteProtocolError::InvalidJson(e.to_string()))
    }

    /// Parses an already converted JSON value (see [`owsf_to_tagged`]).
    pub fn from_json_value(json: Value) -> Result<Self, RemoteProtocolError> {
        serde_json::from_value(json).map_err(|e| RemoteProtocolError::InvalidJson(e.to_string()))
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The reference's `badResponse`: a protocol error stands for itself; any other
    /// constructor is [`RemoteProtocolError::UnexpectedResponse`] with a description (its
    /// JSON here; the reference uses Haskell `show`).
    pub fn into_unexpected(self) -> RemoteProtocolError {
        match self {
            RemoteResponse::ProtocolError {
                remote_procotol_error,
            } => remote_procotol_error,
            other => RemoteProtocolError::UnexpectedResponse(
                String::from_utf8_lossy(&other.to_json_bytes()).into_owned(),
            ),
        }
    }
}

/// Marker key of the Swift single-field encoding (`"_owsf": true`).
const OWSF_TAG: &str = "_owsf";

/// Converts JSON in the Swift "object with single field" sum encoding to the tagged encoding,
/// as a Kotlin-encoding controller does with a Swift host's responses (reference
/// `owsf2tagged`; notes §2.1).
///
/// A two-key object `{"_owsf": true, "<tag>": v}` becomes `v` with `"type": "<tag>"` added
/// when `v` (converted) is a plain object, and `{"type": "<tag>", "data": v}` otherwise — also
/// when `v` itself came from such a conversion, so an inner tag is never overwritten. Every
/// other object and array is converted element-wise.
pub fn owsf_to_tagged(v: Value) -> Value {
    convert(v).0
}

/// Returns the converted value and whether it was produced from a single-field sum.
fn convert(v: Value) -> (Value, bool) {
    match v {
        Value::Object(o) => {
            let is_owsf = o.len() == 2 && o.get(OWSF_TAG) == Some(&Value::Bool(true));
            if is_owsf {
                let mut entries = o.into_iter().filter(|(k, _)| k != OWSF_TAG);
                if let Some((tag, inner)) = entries.next() {
                    return (tagged(tag, inner), true);
                }
                // Unreachable for a two-key map with one `_owsf` key; keep the input shape.
                return (Value::Object(Map::new()), false);
            }
            (
                Value::Object(o.into_iter().map(|(k, v)| (k, owsf_to_tagged(v))).collect()),
                false,
            )
        }
        Value::Array(a) => (
            Value::Array(a.into_iter().map(owsf_to_tagged).collect()),
            false,
        ),
        other => (other, false),
    }
}

fn tagged(tag: String, inner: Value) -> Value {
    match convert(inner) {
        (Value::Object(mut o), false) => {
            o.insert("type".into(), Value::String(tag));
            Value::Object(o)
        }
        (v, _) => {
            let mut o = Map::new();
            o.insert("type".into(), Value::String(tag));
            o.insert("data".into(), v);
            Value::Object(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the `protocol_json` fuzz target: without correctly rounded float parsing
    /// (serde_json's `float_roundtrip`), a number passed through a response changed in its
    /// last digit on every parse → serialize → parse.
    #[test]
    fn numbers_survive_a_round_trip() {
        for text in [
            "99999999999990000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "9.999999999999e101",
            "0.30000000000000004",
            "2.2250738585072011e-308",
            "1.7976931348623157e308",
            "5e-324",
        ] {
            let json = format!(r#"{{"type":"chatResponse","chatResponse":{{"result":{{"n":{text}}}}}}}"#);
            let first = RemoteResponse::from_json_bytes(json.as_bytes()).unwrap();
            let again = RemoteResponse::from_json_bytes(&first.to_json_bytes()).unwrap();
            assert_eq!(again, first, "{text}");
            assert_eq!(again.to_json_bytes(), first.to_json_bytes(), "{text}");
        }
    }

    #[test]
    fn command_json_shapes() {
        let c = RemoteCommand::Send {
            command: "/u".into(),
            retry_number: 0,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type": "send", "command": "/u", "retryNumber": 0})
        );
        let c = RemoteCommand::Recv {
            wait: RECV_WAIT_MICROS,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type": "recv", "wait": 10000000})
        );
        let d = FileDigest([7; 64]);
        let c = RemoteCommand::StoreFile {
            file_name: "a.pdf".into(),
            file_size: 123,
            file_digest: d,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type": "storeFile", "fileName": "a.pdf", "fileSize": 123, "fileDigest": d.to_text()})
        );
        let f = json!({"userId": 1, "fileId": 3, "sent": false,
            "fileSource": {"filePath": "x.jpg", "cryptoArgs": {"fileKey": "k", "fileNonce": "n"}}});
        let c: RemoteCommand =
            serde_json::from_value(json!({"type": "getFile", "file": f})).unwrap();
        let RemoteCommand::GetFile { file } = &c else {
            panic!("not getFile")
        };
        assert_eq!(file.file_source.crypto_args.as_ref().unwrap().file_key, "k");
        assert_eq!(serde_json::to_value(&c).unwrap()["file"], f);
        // retryNumber is required.
        assert!(RemoteCommand::from_json_bytes(br#"{"type":"send","command":"/u"}"#).is_err());
    }

    #[test]
    fn response_json_shapes() {
        let r = RemoteResponse::ChatEvent { chat_event: None };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"chatEvent"}"#
        );
        assert_eq!(
            RemoteResponse::from_json_bytes(br#"{"type":"chatEvent","chatEvent":null}"#).unwrap(),
            r
        );
        let r = RemoteResponse::ChatResponse {
            chat_response: RRResult::Error(json!({"type": "noActiveUser"})),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"type": "chatResponse", "chatResponse": {"error": {"type": "noActiveUser"}}})
        );
        let r = RemoteResponse::ProtocolError {
            remote_procotol_error: RemoteProtocolError::DuplicateId,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"type": "protocolError", "remoteProcotolError": {"type": "pREDuplicateId"}})
        );
        assert_eq!(
            r.clone().into_unexpected(),
            RemoteProtocolError::DuplicateId
        );
        let stored = RemoteResponse::FileStored {
            file_path: "a_1.pdf".into(),
        };
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            json!({"type": "fileStored", "filePath": "a_1.pdf"})
        );
        assert!(matches!(
            stored.into_unexpected(),
            RemoteProtocolError::UnexpectedResponse(_)
        ));
    }

    #[test]
    fn owsf_conversion() {
        let swift = json!({"type": "chatResponse", "chatResponse": {"result":
            {"_owsf": true, "activeUser": {"user": {"userId": 1}}}}});
        assert_eq!(
            owsf_to_tagged(swift),
            json!({"type": "chatResponse", "chatResponse": {"result":
                {"type": "activeUser", "user": {"userId": 1}}}})
        );
        // Nested sums: the outer tag goes to "data" so the inner one is kept.
        let nested = json!({"_owsf": true, "errorAgent": {"_owsf": true, "agentError": {"x": 1}}});
        assert_eq!(
            owsf_to_tagged(nested),
            json!({"type": "errorAgent", "data": {"type": "agentError", "x": 1}})
        );
        let scalar = json!([{"_owsf": true, "manySkippedIds": 5}]);
        assert_eq!(
            owsf_to_tagged(scalar),
            json!([{"type": "manySkippedIds", "data": 5}])
        );
        let plain = json!({"_owsf": false, "a": 1});
        assert_eq!(owsf_to_tagged(plain.clone()), plain);
    }
}
