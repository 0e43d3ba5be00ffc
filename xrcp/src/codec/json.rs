//! JSON written the way the reference's aeson writes a `Value` (spec/xrcp.md §2.5): compact,
//! object keys sorted, and aeson's string escaping (`\"`, `\\`, `\n`, `\r`, `\t`, other
//! control characters as lowercase `\u00xx`, everything else raw UTF-8).
//!
//! Byte-exactness matters because the invitation's `app` JSON is signed over its text and a
//! Haskell host re-serializes it before checking the signature.

use serde_json::Value;

/// Compact aeson-style JSON text of `v`.
pub fn to_aeson_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, &map[k]);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_and_aeson_escapes() {
        let v = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y\\z\n\u{8}\u{c}\u{1f}/é\u{7f}"}});
        assert_eq!(
            to_aeson_string(&v),
            "{\"a\":{\"c\":\"x\\\"y\\\\z\\n\\u0008\\u000c\\u001f/é\u{7f}\",\"d\":[true,null]},\"b\":1}"
        );
    }

    proptest! {
        #[test]
        fn output_is_json_that_parses_back(s in "\\PC{0,40}", k in "[a-z]{1,8}", n in any::<i64>()) {
            let v = json!({ k.clone(): s, "n": n, "arr": [1, "two", false] });
            let text = to_aeson_string(&v);
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, v);
        }
    }
}
