//! `protocol_json`: the JSON inside session bodies (`RemoteCommand`, `RemoteResponse`,
//! `RemoteProtocolError`, `RCErrorType`), the Swift-to-tagged conversion and the XRCP error
//! text forms.
//!
//! Input: JSON bytes (also read as error text).
//!
//! Invariants:
//! - every value that parses re-serializes to JSON that parses back to the same value, and
//!   serialization is then stable;
//! - `RemoteProtocolError`'s serde form and `from_json` agree, and its JSON carries its tag;
//! - `owsf_to_tagged` leaves JSON without any `"_owsf"` key unchanged, and its output never
//!   nests deeper than its input;
//! - `RcError::parse(s) == Some(e)` implies `e.text_form() == s`.

use serde_json::Value;
use xrcp::session::{
    owsf_to_tagged, rc_error_from_json, rc_error_to_json, RemoteCommand, RemoteProtocolError,
    RemoteResponse,
};
use xrcp::RcError;

pub fn run(data: &[u8]) {
    if let Ok(cmd) = RemoteCommand::from_json_bytes(data) {
        let j = cmd.to_json_bytes();
        let back = RemoteCommand::from_json_bytes(&j).expect("command JSON parses back");
        assert_eq!(back, cmd);
        assert_eq!(back.to_json_bytes(), j);
    }
    if let Ok(resp) = RemoteResponse::from_json_bytes(data) {
        check_response(&resp);
        let _ = resp.into_unexpected().to_string();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(e) = RcError::parse(text) {
            assert_eq!(e.text_form(), text);
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match RemoteProtocolError::from_json(&v) {
        Ok(e) => {
            let j = e.to_json();
            assert_eq!(j["type"], e.tag());
            assert_eq!(RemoteProtocolError::from_json(&j), Ok(e.clone()));
            assert_eq!(
                serde_json::from_value::<RemoteProtocolError>(v.clone()).ok(),
                Some(e.clone())
            );
            let _ = e.to_string();
        }
        Err(_) => assert!(serde_json::from_value::<RemoteProtocolError>(v.clone()).is_err()),
    }
    if let Ok(e) = rc_error_from_json(&v) {
        assert_eq!(rc_error_from_json(&rc_error_to_json(&e)), Ok(e.clone()));
        assert_eq!(RcError::parse(&e.text_form()), Some(e));
    }
    let tagged = owsf_to_tagged(v.clone());
    if !has_owsf(&v) {
        assert_eq!(tagged, v, "JSON without _owsf was changed");
    }
    assert!(depth(&tagged) <= depth(&v), "conversion deepened the JSON");
    if let Ok(resp) = RemoteResponse::from_json_value(tagged) {
        check_response(&resp);
    }
}

fn check_response(resp: &RemoteResponse) {
    let j = resp.to_json_bytes();
    let back = RemoteResponse::from_json_bytes(&j).expect("response JSON parses back");
    assert_eq!(&back, resp);
    assert_eq!(back.to_json_bytes(), j);
}

fn has_owsf(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key("_owsf") || o.values().any(has_owsf),
        Value::Array(a) => a.iter().any(has_owsf),
        _ => false,
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
