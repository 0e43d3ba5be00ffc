//! A host that speaks the chat API, for testing the controller's chat view without a phone
//! (`tests/tests/cli_chat.rs`). It is built on the `xrcp-host` library with an application of
//! its own that answers chat commands with the fixtures of `xrcp-ctrl/tests/golden/chat/`
//! (chat API JSON in the documented shapes, see that folder's README).
//!
//! `xrcp-chat-host [--swift] --files DIR LINK` connects to the controller's link, accepts the
//! session without a code check (a test stands in for the person), and serves until the
//! controller leaves. With `--swift` it says it is an iOS host (`"encoding": "swift"`) and
//! sends every response and event in the Swift single-field encoding.
//!
//! Stdout: `CONNECTED`, `COMMAND <text>` for each command, `PUSHED <name>`, `ENDED ok|error`.
//! Stdin: `event <fixture>` pushes that fixture as a chat event (the controller's `recv`
//! poll delivers it).
//!
//! Commands: `/_get chats <user> pcc=on` (the chat list), `/chats all` (5000 chats),
//! `/tail …` and `/search … <text>` (alice's messages), `@alice <text>` (a sent message),
//! `/file @alice <name>` (a sent file), `/relays` (a response the view does not render),
//! `@zoe …` (no such contact); anything else is an unknown command.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use xrcp::message::SignedInvitation;
use xrcp::session::{PlatformEncoding, RRResult, RemoteFile};
use xrcp_host::remote::{prepare_session, HostAppSettings};
use xrcp_host::session::{FolderFile, FolderStore, HostApp, HostAppError, OutgoingFile};
use xrcp_host::HostOptions;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../xrcp-ctrl/tests/golden/chat/", $name, ".json")))),*]
    };
}

/// The fixtures by name.
const FIXTURES: &[(&str, &str)] = fixtures![
    "accepting_contact_request",
    "api_chat",
    "api_chats",
    "chat_cmd_error",
    "chat_error_event",
    "chat_item_not_changed",
    "chat_item_reaction",
    "chat_item_updated",
    "chat_items",
    "chat_items_deleted",
    "chats",
    "cmd_ok",
    "contact_connected",
    "contact_connecting",
    "contact_deleted_by_contact",
    "contact_snd_ready",
    "error_agent",
    "error_no_user",
    "error_store",
    "group_reaction_removed",
    "new_chat_items_group",
    "new_chat_items_sent",
    "rcv_file_accepted",
    "rcv_file_complete",
    "rcv_file_descr_ready",
    "rcv_file_error",
    "rcv_file_progress",
    "rcv_file_snd_cancelled",
    "rcv_file_start",
    "received_contact_request",
    "snd_file_complete",
    "snd_file_error",
    "snd_file_progress",
    "unknown",
];

/// The bytes of the phone's `photo.jpg` (file 5 of the fixtures).
const PHOTO: &[u8] = b"not really a JPEG: the test photo of xrcp-chat-host\n";

fn fixture(name: &str) -> Value {
    let text = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1;
    serde_json::from_str(text).expect("fixture JSON")
}

/// `{"result": …}` / `{"error": …}` as the session layer's type.
fn rr(v: Value) -> RRResult {
    match v {
        Value::Object(mut o) => match (o.remove("result"), o.remove("error")) {
            (Some(r), _) => RRResult::Result(r),
            (_, Some(e)) => RRResult::Error(e),
            _ => panic!("fixture is not a result or an error"),
        },
        _ => panic!("fixture is not an object"),
    }
}

/// The Swift single-field form of tagged JSON: every object with a string `type` becomes
/// `{"_owsf": true, "<type>": <its other fields>}`.
fn to_swift(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let rest: Map<String, Value> = o
                .iter()
                .filter(|(k, _)| *k != "type")
                .map(|(k, v)| (k.clone(), to_swift(v)))
                .collect();
            match o.get("type").and_then(Value::as_str) {
                Some(tag) => json!({"_owsf": true, tag: Value::Object(rest)}),
                None => Value::Object(rest),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(to_swift).collect()),
        other => other.clone(),
    }
}

struct ChatApp {
    swift: bool,
    files: FolderStore,
}

impl ChatApp {
    fn encode(&self, r: RRResult) -> RRResult {
        if !self.swift {
            return r;
        }
        match r {
            RRResult::Result(v) => RRResult::Result(to_swift(&v)),
            RRResult::Error(e) => RRResult::Error(to_swift(&e)),
        }
    }

    fn answer(&self, command: &str) -> Value {
        let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
        match word {
            "/_get" if rest.starts_with("chats ") => fixture("api_chats"),
            "/chats" if rest == "all" => many_chats(5000),
            "/tail" => fixture("chat_items"),
            "/search" => {
                let text = rest.rsplit(' ').next().unwrap_or("");
                let mut v = fixture("chat_items");
                if let Some(items) = v["result"]["chatItems"].as_array_mut() {
                    items.retain(|i| {
                        i["chatItem"]["meta"]["itemText"]
                            .as_str()
                            .is_some_and(|t| t.contains(text))
                    });
                }
                v
            }
            "@alice" => sent(|item| {
                item["meta"]["itemText"] = json!(rest);
                item["content"]["msgContent"]["text"] = json!(rest);
            }),
            "/file" if rest.starts_with("@alice ") => {
                let name = rest.trim_start_matches("@alice ").to_owned();
                sent(move |item| {
                    item["meta"]["itemText"] = json!("");
                    item["content"]["msgContent"] = json!({"type": "file", "text": ""});
                    item["file"] = json!({"fileId": 7, "fileName": name, "fileSize": 11,
                        "fileSource": {"filePath": name}, "fileStatus": {"type": "sndStored"},
                        "fileProtocol": "xftp"});
                })
            }
            "/relays" => fixture("unknown"),
            "@zoe" => fixture("error_store"),
            _ => json!({"error": {"type": "error", "errorType":
                {"type": "commandError", "message": format!("unknown command: {command}")}}}),
        }
    }
}

/// The sent-message fixture, changed by `f`.
fn sent(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = fixture("new_chat_items_sent");
    f(&mut v["result"]["chatItems"][0]["chatItem"]);
    v
}

/// The CLI's `chats` response with `n` contacts.
fn many_chats(n: usize) -> Value {
    let chats: Vec<Value> = (0..n)
        .map(|i| {
            json!({"chatInfo": {"type": "direct", "contact": {"contactId": i + 10,
                     "localDisplayName": format!("contact{i}"),
                     "profile": {"displayName": format!("contact{i}"), "fullName": ""}}},
                   "chatItems": [], "chatStats": {"unreadCount": 0}})
        })
        .collect();
    json!({"result": {"type": "chats", "chats": chats}})
}

impl HostApp for ChatApp {
    type Stored = FolderFile;
    type Reader = xrcp_host::session::FileReader;

    async fn execute(&self, command: String, _retry_number: i64) -> RRResult {
        println!("COMMAND {command}");
        self.encode(rr(self.answer(&command)))
    }

    async fn store_file(&self, name: String, _size: u32) -> Result<FolderFile, HostAppError> {
        self.files.create(&name).await
    }

    async fn get_file(&self, file: RemoteFile) -> Result<OutgoingFile<Self::Reader>, HostAppError> {
        if (
            file.user_id,
            file.file_id,
            file.file_source.file_path.as_str(),
        ) != (1, 5, "photo.jpg")
        {
            let e = json!({"type": "errorStore", "storeError": {"type": "fileNotFound",
                "fileId": file.file_id}});
            return Err(HostAppError::Chat(e));
        }
        OutgoingFile::open(&self.files.dir().join("photo.jpg")).await
    }
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let swift = args.iter().any(|a| a == "--swift");
    args.retain(|a| a != "--swift");
    let files = match args.iter().position(|a| a == "--files") {
        Some(i) => {
            let dir = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            dir
        }
        None => panic!("usage: xrcp-chat-host [--swift] --files DIR LINK"),
    };
    let link = args
        .pop()
        .expect("usage: xrcp-chat-host [--swift] --files DIR LINK");
    std::fs::create_dir_all(&files).expect("files folder");
    std::fs::write(files.join("photo.jpg"), PHOTO).expect("photo");

    let inv = SignedInvitation::parse_verified(&link).expect("a valid link");
    let settings = HostAppSettings {
        device_name: "phone".into(),
        ..HostAppSettings::default()
    };
    let mut hello = settings.hello_info(&inv.invitation.app).expect("app info");
    if swift {
        hello.encoding = PlatformEncoding::Swift;
    }
    let options = HostOptions {
        app: serde_json::to_value(&hello).expect("hello JSON"),
        ..HostOptions::default()
    };
    let pending = xrcp_host::connect(inv, None, options)
        .await
        .expect("connect");
    let connected = pending.confirm().await.expect("hello");
    let (served, _pairing) = prepare_session(connected, &settings).expect("session");
    println!("CONNECTED");

    let (tx, events) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("event ") {
                let ev = rr(fixture(name.trim()));
                let ev = if swift {
                    match ev {
                        RRResult::Result(v) => RRResult::Result(to_swift(&v)),
                        RRResult::Error(e) => RRResult::Error(to_swift(&e)),
                    }
                } else {
                    ev
                };
                if tx.blocking_send(ev).is_err() {
                    break;
                }
                println!("PUSHED {}", name.trim());
            }
        }
    });
    let app = ChatApp {
        swift,
        files: FolderStore::new(files),
    };
    let ended = served.serve(Arc::new(app), events).await;
    println!("ENDED {}", if ended.is_ok() { "ok" } else { "error" });
}
