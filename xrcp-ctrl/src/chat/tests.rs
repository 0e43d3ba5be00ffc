//! Golden renderings: every fixture under `tests/golden/chat/` (chat API JSON in the shapes
//! the simplex-chat bots API reference documents, see that folder's README) rendered as the
//! view shows it, compared with the `.txt` next to it; in both encodings.

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use xrcp::session::{owsf_to_tagged, RRResult};

use super::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/chat")
}

fn fixture(name: &str) -> RRResult {
    let text = std::fs::read_to_string(golden_dir().join(format!("{name}.json"))).unwrap();
    rr(serde_json::from_str(&text).unwrap())
}

fn rr(v: Value) -> RRResult {
    match v {
        Value::Object(mut o) => match (o.remove("result"), o.remove("error")) {
            (Some(r), _) => RRResult::Result(r),
            (_, Some(e)) => RRResult::Error(e),
            _ => panic!("not an RRResult"),
        },
        _ => panic!("not an RRResult"),
    }
}

/// The Swift single-field form of tagged JSON, as an iOS host sends it: every object with a
/// string `type` becomes `{"_owsf": true, "<type>": <the other fields>}` (written here
/// independently of the converter under test).
fn to_swift(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut rest: Map<String, Value> = o
                .iter()
                .filter(|(k, _)| *k != "type")
                .map(|(k, v)| (k.clone(), to_swift(v)))
                .collect();
            match o.get("type").and_then(Value::as_str) {
                Some(tag) => json!({"_owsf": true, tag: Value::Object(std::mem::take(&mut rest))}),
                None => Value::Object(rest),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(to_swift).collect()),
        other => other.clone(),
    }
}

fn render(r: &RRResult) -> String {
    View::default().render(1, r)
}

#[test]
fn golden_renderings_in_both_encodings() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    assert!(names.len() >= 34, "{names:?}");
    for name in names {
        let r = fixture(&name);
        let got = render(&r);
        let txt = golden_dir().join(format!("{name}.txt"));
        if update {
            std::fs::write(&txt, format!("{got}\n")).unwrap();
        }
        let want =
            std::fs::read_to_string(&txt).unwrap_or_else(|_| panic!("{name}.txt is missing"));
        assert_eq!(got, want.trim_end_matches('\n'), "{name}");
        assert!(!got.contains('{'), "{name}: JSON on screen: {got}");
        // The same response from a Swift host, after the session client's conversion.
        let swift = match &r {
            RRResult::Result(v) => RRResult::Result(owsf_to_tagged(to_swift(v))),
            RRResult::Error(e) => RRResult::Error(owsf_to_tagged(to_swift(e))),
        };
        assert_eq!(render(&swift), got, "{name} (Swift encoding)");
    }
}

#[test]
fn unknown_responses_are_one_line_and_json_on_shows_them() {
    let r = RRResult::Result(json!({"type": "somethingNew", "lots": vec![1; 1000]}));
    let line = render(&r);
    assert_eq!(
        line,
        "[somethingNew] a response that this view does not show (/json on shows it whole)"
    );
    // A known type with an unreadable shape.
    let bad = RRResult::Result(json!({"type": "apiChat", "chat": 5}));
    assert_eq!(
        render(&bad),
        "[apiChat] a response that this view cannot read (/json on shows it whole)"
    );
    let mut v = View::default();
    assert_eq!(
        v.line("/json on"),
        Line::Say("chat results are shown as JSON".into())
    );
    assert!(v.render(1, &r).starts_with(r#"{"lots":[1,1,"#));
}

#[test]
fn huge_chat_lists_are_bounded() {
    let chats: Vec<Value> = (0..5000)
        .map(|i| {
            json!({"chatInfo": {"type": "direct", "contact": {"localDisplayName": format!("c{i}")}},
                   "chatItems": [], "chatStats": {"unreadCount": 0}})
        })
        .collect();
    let out = render(&RRResult::Result(
        json!({"type": "apiChats", "chats": chats}),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), MAX_LINES + 1);
    assert_eq!(lines[0], "@c0");
    assert_eq!(lines[MAX_LINES], "… 4980 more chats");
    // Many messages: the last ones.
    let items: Vec<Value> = (0..100)
        .map(|i| {
            json!({"chatInfo": {"type": "direct", "contact": {"localDisplayName": "a"}},
                   "chatItem": {"chatDir": {"type": "directRcv"},
                                "meta": {"itemTs": "2025-06-02T10:15:00Z", "itemText": ""},
                                "content": {"type": "rcvMsgContent",
                                            "msgContent": {"type": "text", "text": format!("m{i}")}}}})
        })
        .collect();
    let out = render(&RRResult::Result(
        json!({"type": "chatItems", "chatItems": items}),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), MAX_LINES + 1);
    assert_eq!(lines[0], "… 80 earlier messages not shown");
    assert_eq!(lines[MAX_LINES], "10:15 a> m99");
    // One huge message is cut.
    let huge = "x".repeat(100_000);
    let out = render(&RRResult::Result(
        json!({"type": "newChatItems", "chatItems": [
        {"chatInfo": {"type": "direct", "contact": {"localDisplayName": "a"}},
         "chatItem": {"chatDir": {"type": "directRcv"}, "meta": {},
                      "content": {"type": "rcvMsgContent", "msgContent": {"text": huge}}}}]}),
    ));
    assert!(out.len() < 9000 && out.ends_with(" …"), "{}", out.len());
}

#[test]
fn the_phones_text_cannot_drive_the_terminal_or_fake_lines() {
    let out = render(&RRResult::Result(
        json!({"type": "newChatItems", "chatItems": [
        {"chatInfo": {"type": "direct", "contact": {"localDisplayName": "eve\u{1b}[2J"}},
         "chatItem": {"chatDir": {"type": "directRcv"},
                      "meta": {"itemTs": "2025-06-02T10:15:00Z"},
                      "content": {"type": "rcvMsgContent",
                                  "msgContent": {"type": "text", "text": "hi\n10:16 bob> give me your key\u{202e}"}}}}]}),
    ));
    assert_eq!(
        out,
        "10:15 eve\\u{1b}[2J> hi\\n10:16 bob> give me your key\\u{202e}"
    );
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn shortcuts_expand_to_chat_commands() {
    let mut v = View::default();
    assert_eq!(v.line("/chats"), Line::Send("/_get chats 1 pcc=on".into()));
    assert_eq!(v.line("/chats all"), Line::Pass);
    assert_eq!(v.line("hello"), Line::Pass, "no chat open: as typed");
    assert_eq!(v.line("/tail"), Line::Pass);
    assert_eq!(
        v.line("/open @alice"),
        Line::Open(
            "chat @alice is open: plain lines go there (/close to stop)".into(),
            "/tail @alice 10".into()
        )
    );
    assert_eq!(
        v.line("hello there"),
        Line::Send("@alice hello there".into())
    );
    assert_eq!(v.line("#team hi all"), Line::Pass, "another chat: as typed");
    assert_eq!(v.line("/tail"), Line::Send("/tail @alice 20".into()));
    assert_eq!(v.line("/tail 5"), Line::Send("/tail @alice 5".into()));
    assert_eq!(v.line("/tail #team 5"), Line::Pass);
    assert_eq!(
        v.line("/search lunch"),
        Line::Send("/search @alice lunch".into())
    );
    assert_eq!(v.line("/search #team lunch"), Line::Pass);
    assert_eq!(
        v.line("/file ./photo.jpg"),
        Line::SendFile {
            chat: "@alice".into(),
            path: "./photo.jpg".into()
        }
    );
    assert_eq!(
        v.line("/file #team my file.txt"),
        Line::SendFile {
            chat: "#team".into(),
            path: "my file.txt".into()
        }
    );
    assert!(matches!(v.line("/open alice"), Line::Say(_)));
    assert_eq!(v.open_chat(), Some("@alice"));
    assert_eq!(
        v.line("/close"),
        Line::Say("chat @alice closed: plain lines go to the host as typed".into())
    );
    assert_eq!(v.line("hello"), Line::Pass);
    assert!(
        matches!(v.line("/file ./x"), Line::Say(_)),
        "no chat for the file"
    );
    // The user id of the responses is used for the chat list.
    v.render(
        1,
        &RRResult::Result(json!({"type": "apiChats", "user": {"userId": 3}, "chats": []})),
    );
    assert_eq!(v.line("/chats"), Line::Send("/_get chats 3 pcc=on".into()));
}

#[test]
fn shown_files_can_be_fetched_by_id() {
    let mut v = View::default();
    assert!(v.file(5).is_none());
    v.render(1, &fixture("rcv_file_complete"));
    let f = v.file(5).unwrap();
    assert_eq!((f.user_id, f.file_id, f.sent), (1, 5, false));
    assert_eq!(f.file_source.file_path, "photo.jpg");
    // An offer without a path on the phone yet is not fetchable.
    let mut v = View::default();
    v.render(1, &fixture("chat_items"));
    assert!(v.file(5).is_none());
}

#[test]
fn notes_results_are_not_for_the_view() {
    assert!(!View::wants(&RRResult::Result(
        json!({"type": "notes", "notes": []})
    )));
    assert!(!View::wants(&RRResult::Error(
        json!({"type": "commandError", "message": "x"})
    )));
    assert!(View::wants(&fixture("api_chats")));
    assert!(View::wants(&fixture("error_store")));
    // The notes app's errors without a message are shown as one line too.
    let e = RRResult::Error(json!({"type": "noteNotFound", "noteId": 3}));
    assert_eq!(render(&e), "error: no note 3");
}

#[test]
fn times_are_shown_on_the_readers_clock() {
    use jiff::tz::TimeZone;
    let east = TimeZone::posix("XST-2").unwrap();
    let new_york = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
    assert_eq!(
        super::time("2025-06-02T10:15:00Z", &TimeZone::UTC),
        "10:15 "
    );
    assert_eq!(super::time("2025-06-02T10:15:00Z", &east), "12:15 ");
    // Fractions of a second (the phone sends microseconds), a day boundary, summer time.
    assert_eq!(super::time("2025-06-02T23:59:59.123456Z", &east), "01:59 ");
    assert_eq!(super::time("2025-06-02T10:15:00Z", &new_york), "06:15 ");
    assert_eq!(super::time("2025-01-02T10:15:00Z", &new_york), "05:15 ");
    // Not a timestamp: its own HH:MM, or nothing.
    assert_eq!(super::time("2025-06-02 10:15", &east), "10:15 ");
    assert_eq!(super::time("soon", &east), "");
    // The view the program uses reads the zone from TZ; the default is UTC.
    let mut v = View::default();
    assert!(render_with(&mut v, "chat_items").contains("10:15 alice>"));
}

fn render_with(v: &mut View, name: &str) -> String {
    v.render(1, &fixture(name))
}
