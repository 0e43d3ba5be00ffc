//! The JSON carried inside session bodies (spec/xrcp.md §10.3; the reference's
//! `RemoteCommand`, `RemoteResponse`, `RRResult`).
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
    Send {
        /// The chat command line.
        command: String,
        /// The sender's retry count for this command (0 on a first attempt).
        retry_number: i64,
    },
    /// `RCRecv`: long-poll for the next chat event, waiting up to `wait` microseconds.
    Recv {
        /// The longest wait, in microseconds.
        wait: i64,
    },
    /// `RCStoreFile`: store the attached file on the host.
    StoreFile {
        /// The file's name (the host picks a free name in its files folder).
        file_name: String,
        /// The attachment's plaintext size in bytes.
        file_size: u32,
        /// SHA-512 of the plaintext, checked after the attachment arrives.
        file_digest: FileDigest,
    },
    /// `RCGetFile`: send back a file of a chat item (answered with [`RemoteResponse::File`]
    /// and an attachment).
    GetFile {
        /// Which file.
        file: RemoteFile,
    },
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
    ChatResponse {
        /// The chat core's answer.
        chat_response: RRResult,
    },
    /// `RRChatEvent`: the next event, or none when the poll timed out (then the JSON is just
    /// `{"type":"chatEvent"}`).
    ChatEvent {
        /// The event; absent when the poll timed out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_event: Option<RRResult>,
    },
    /// `RRFileStored`: where the host stored an uploaded file.
    FileStored {
        /// The stored file's path on the host.
        file_path: String,
    },
    /// `RRFile`: a file follows as attachment.
    File {
        /// The attachment's plaintext size in bytes.
        file_size: u32,
        /// SHA-512 of the plaintext, checked after the attachment arrives.
        file_digest: FileDigest,
    },
    /// `RRProtocolError`: the host rejected the request. The field name's typo
    /// (`remoteProcotolError`) is the reference's.
    ProtocolError {
        /// Why the request was refused.
        remote_procotol_error: RemoteProtocolError,
    },
}

/// `RRResult`: untagged `{"result": …}` or `{"error": …}` (a chat response/event or a
/// `ChatError`, in the chat API's JSON).
#[derive(Clone, Debug, PartialEq)]
pub enum RRResult {
    /// `{"result": …}`: the chat response or event.
    Result(Value),
    /// `{"error": …}`: a chat error.
    Error(Value),
}

impl RRResult {
    /// `Ok` with the `result` JSON, `Err` with the `error` JSON.
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

impl RRResult {
    /// `{"result": …}` or `{"error": …}`, moved out of `v` (see the `Deserialize` impl).
    fn from_value(v: Value) -> Result<Self, RemoteProtocolError> {
        let Value::Object(mut o) = v else {
            return Err(RemoteProtocolError::InvalidJson(
                "RRResult: not an object".into(),
            ));
        };
        if let Some(r) = o.remove("result") {
            Ok(RRResult::Result(r))
        } else if let Some(e) = o.remove("error") {
            Ok(RRResult::Error(e))
        } else {
            Err(RemoteProtocolError::InvalidJson(
                "RRResult: neither result nor error".into(),
            ))
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
    /// The host user's id in its chat database.
    pub user_id: i64,
    /// The file's id in the host's chat database.
    pub file_id: i64,
    /// Whether the file was sent (`true`) or received (`false`) by the host's user.
    pub sent: bool,
    /// Where the file is on the host.
    pub file_source: CryptoFile,
}

/// `CryptoFile`: a path relative to the host's files folder, with the at-rest encryption
/// arguments if the file is encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoFile {
    /// Path relative to the host's files folder.
    pub file_path: String,
    /// The file's at-rest encryption key and nonce, if it is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_args: Option<CryptoFileArgs>,
}

/// `CryptoFileArgs`: key and nonce as padded base64url text, kept as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoFileArgs {
    /// The file's at-rest encryption key (base64url text).
    pub file_key: String,
    /// The file's at-rest encryption nonce (base64url text).
    pub file_nonce: String,
}

impl RemoteCommand {
    /// Parses command JSON; failures are `RPEInvalidJSON` as in the reference.
    ///
    /// Straight into the fields of the four commands: serde's derived decoder for a
    /// `"type"`-tagged enum first copies the whole object into a generic tree, which for a
    /// body full of small values costs many times its size (docs/security/bodies.md). Fields
    /// no command has are skipped without being stored.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, RemoteProtocolError> {
        let invalid = |e: String| RemoteProtocolError::InvalidJson(e);
        let f: CommandFields = serde_json::from_slice(json).map_err(|e| invalid(e.to_string()))?;
        let missing = |name: &str| invalid(format!("missing field `{name}`"));
        Ok(match f.kind.as_str() {
            "send" => RemoteCommand::Send {
                command: f.command.ok_or_else(|| missing("command"))?,
                retry_number: f.retry_number.ok_or_else(|| missing("retryNumber"))?,
            },
            "recv" => RemoteCommand::Recv {
                wait: f.wait.ok_or_else(|| missing("wait"))?,
            },
            "storeFile" => RemoteCommand::StoreFile {
                file_name: f.file_name.ok_or_else(|| missing("fileName"))?,
                file_size: f.file_size.ok_or_else(|| missing("fileSize"))?,
                file_digest: f.file_digest.ok_or_else(|| missing("fileDigest"))?,
            },
            "getFile" => RemoteCommand::GetFile {
                file: f.file.ok_or_else(|| missing("file"))?,
            },
            other => return Err(invalid(format!("unknown command type `{other}`"))),
        })
    }

    /// The command's compact JSON, as it goes into a request body.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing these types cannot fail: all keys are strings, no non-finite floats.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl RemoteResponse {
    /// Parses response JSON; failures are `RPEInvalidJSON` as in the reference.
    ///
    /// The JSON becomes one tree, the one the application gets, built under
    /// [`MAX_JSON_TREE`]: a body of many small values (a few bytes of JSON, tens of bytes in
    /// memory each) is refused once its tree would pass that bound.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, RemoteProtocolError> {
        Self::from_json_value(parse_bounded(json, MAX_JSON_TREE)?)
    }

    /// Parses an already converted JSON value (see [`owsf_to_tagged`]), taking its parts
    /// apart rather than copying them (serde's derived decoder for a tagged enum would copy
    /// the whole value into a second tree first).
    pub fn from_json_value(json: Value) -> Result<Self, RemoteProtocolError> {
        let invalid = |e: String| RemoteProtocolError::InvalidJson(e);
        let Value::Object(mut o) = json else {
            return Err(invalid("response is not an object".into()));
        };
        let kind = match o.remove("type") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(invalid("response `type` is not a string".into())),
            None => return Err(invalid("missing field `type`".into())),
        };
        let mut take = |name: &str| {
            o.remove(name)
                .ok_or_else(|| invalid(format!("missing field `{name}`")))
        };
        fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, RemoteProtocolError> {
            serde_json::from_value(v).map_err(|e| RemoteProtocolError::InvalidJson(e.to_string()))
        }
        Ok(match kind.as_str() {
            "chatResponse" => RemoteResponse::ChatResponse {
                chat_response: RRResult::from_value(take("chatResponse")?)?,
            },
            "chatEvent" => RemoteResponse::ChatEvent {
                chat_event: match take("chatEvent") {
                    Err(_) | Ok(Value::Null) => None,
                    Ok(v) => Some(RRResult::from_value(v)?),
                },
            },
            "fileStored" => RemoteResponse::FileStored {
                file_path: typed(take("filePath")?)?,
            },
            "file" => RemoteResponse::File {
                file_size: typed(take("fileSize")?)?,
                file_digest: typed(take("fileDigest")?)?,
            },
            "protocolError" => RemoteResponse::ProtocolError {
                remote_procotol_error: typed(take("remoteProcotolError")?)?,
            },
            other => return Err(invalid(format!("unknown response type `{other}`"))),
        })
    }

    /// The response's compact JSON, as it goes into a response body.
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

/// The fields of all four commands, for [`RemoteCommand::from_json_bytes`]. Unknown fields
/// are skipped (serde's `IgnoredAny`, which stores nothing), as the derived decoder does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandFields {
    #[serde(rename = "type")]
    kind: String,
    command: Option<String>,
    retry_number: Option<i64>,
    wait: Option<i64>,
    file_name: Option<String>,
    file_size: Option<u32>,
    file_digest: Option<FileDigest>,
    file: Option<RemoteFile>,
}

/// The most memory the JSON tree of one response or event may take, as estimated while it
/// is built (24 MiB; spec/xrcp.md §12). Typical chat JSON takes two to four times its text
/// size as a tree, so every response up to [`super::MAX_JSON_LEN`] of ordinary chat JSON
/// fits; only bodies made mostly of tiny values (`[0,0,0,…]`, ~20× their size) are refused.
pub const MAX_JSON_TREE: usize = 24 << 20;

/// What one JSON value costs in the tree, beyond its text: the `Value` itself plus the
/// growth slack of the array or map holding it.
const NODE_COST: usize = 2 * std::mem::size_of::<Value>();
/// What one object entry costs beyond its key's text and its value: the key `String` and the
/// B-tree's share of a node.
const ENTRY_COST: usize = 64;

/// Parses JSON into a [`Value`], failing (`RPEInvalidJSON`) as soon as the estimated size of
/// the tree passes `budget` bytes, so that the refusal comes before the memory is spent.
pub fn parse_bounded(json: &[u8], budget: usize) -> Result<Value, RemoteProtocolError> {
    parse_bounded_measured(json, budget).map(|(v, _)| v)
}

/// [`parse_bounded`], also giving the tree's estimated size in bytes.
pub fn parse_bounded_measured(
    json: &[u8],
    budget: usize,
) -> Result<(Value, usize), RemoteProtocolError> {
    use serde::de::DeserializeSeed;
    let left = std::cell::Cell::new(budget);
    let mut de = serde_json::Deserializer::from_slice(json);
    let v = Bounded { left: &left }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| RemoteProtocolError::InvalidJson(e.to_string()))?;
    Ok((v, budget - left.get()))
}

/// A [`Value`] builder charging every node to a shared budget.
#[derive(Clone, Copy)]
struct Bounded<'a> {
    left: &'a std::cell::Cell<usize>,
}

impl Bounded<'_> {
    fn charge<E: serde::de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => Err(E::custom(format!(
                "JSON too large in memory (more than {MAX_JSON_TREE} bytes as a tree)"
            ))),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        self.charge(NODE_COST)?;
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Value, E> {
        self.charge(NODE_COST)?;
        Ok(Value::from(n))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Value, E> {
        self.charge(NODE_COST)?;
        Ok(Value::from(n))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        self.charge(NODE_COST)?;
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.charge(NODE_COST + s.len())?;
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
        self.charge(NODE_COST + s.len())?;
        Ok(Value::String(s))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge(NODE_COST)?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(NODE_COST)?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(NODE_COST)?;
        let mut o = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.charge(ENTRY_COST + k.len())?;
            let v = map.next_value_seed(self)?;
            o.insert(k, v);
        }
        Ok(Value::Object(o))
    }
}

/// Marker key of the Swift single-field encoding (`"_owsf": true`).
const OWSF_TAG: &str = "_owsf";

/// Converts JSON in the Swift "object with single field" sum encoding to the tagged encoding,
/// as a Kotlin-encoding controller does with a Swift host's responses (reference
/// `owsf2tagged`; spec/xrcp.md §10.3).
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

    /// Commands are read into their fields; junk fields are skipped, not stored, and the
    /// derived decoder's answers are kept.
    #[test]
    fn commands_parse_without_a_tree() {
        let junk = format!("[{}0]", "0,".repeat(1000));
        let text = format!(r#"{{"junk":{junk},"retryNumber":2,"type":"send","command":"/u"}}"#);
        assert_eq!(
            RemoteCommand::from_json_bytes(text.as_bytes()).unwrap(),
            RemoteCommand::Send {
                command: "/u".into(),
                retry_number: 2
            }
        );
        for bad in [
            r#"{"type":"send","command":"/u"}"#,
            r#"{"type":"nope"}"#,
            r#"{"command":"/u","retryNumber":0}"#,
            r#"{"type":"recv","wait":1,"wait":2}"#,
            r#"[1]"#,
            r#"{"type":"recv","wait":1} x"#,
        ] {
            assert!(
                matches!(
                    RemoteCommand::from_json_bytes(bad.as_bytes()),
                    Err(RemoteProtocolError::InvalidJson(_))
                ),
                "{bad}"
            );
        }
    }

    /// The bounded tree refuses many tiny values before building them all, and accepts what
    /// the derived decoder accepts.
    #[test]
    fn response_trees_are_bounded() {
        let tiny = format!(
            r#"{{"type":"chatEvent","chatEvent":{{"result":[{}0]}}}}"#,
            "0,".repeat(100_000)
        );
        assert!(RemoteResponse::from_json_bytes(tiny.as_bytes()).is_ok());
        assert!(matches!(
            parse_bounded(tiny.as_bytes(), 100_000 * NODE_COST / 2),
            Err(RemoteProtocolError::InvalidJson(_))
        ));
        let (v, cost) = parse_bounded_measured(tiny.as_bytes(), MAX_JSON_TREE).unwrap();
        assert!(cost >= 100_000 * NODE_COST, "{cost}");
        assert_eq!(v, serde_json::from_str::<Value>(&tiny).unwrap());
        for text in [
            r#"{"type":"chatEvent","chatEvent":null}"#,
            r#"{"type":"chatEvent"}"#,
            r#"{"chatResponse":{"error":{"type":"x"}},"type":"chatResponse"}"#,
            r#"{"type":"fileStored","filePath":"a","extra":1}"#,
            r#"{"type":"protocolError","remoteProcotolError":{"type":"pREDuplicateId"}}"#,
        ] {
            let derived: RemoteResponse = serde_json::from_str(text).unwrap();
            assert_eq!(
                RemoteResponse::from_json_bytes(text.as_bytes()).unwrap(),
                derived
            );
        }
        for bad in [
            r#"{"type":"chatResponse"}"#,
            r#"{"type":"chatResponse","chatResponse":{"x":1}}"#,
            r#"{"type":"file","fileSize":-1,"fileDigest":"AA=="}"#,
            r#"{"type":"what"}"#,
            r#"{"type":1}"#,
            r#""chatEvent""#,
        ] {
            assert!(
                RemoteResponse::from_json_bytes(bad.as_bytes()).is_err(),
                "{bad}"
            );
            assert!(
                serde_json::from_str::<RemoteResponse>(bad).is_err(),
                "{bad}"
            );
        }
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
