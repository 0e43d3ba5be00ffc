//! An embedded host with an application of its own: a small key-value store that the
//! controller drives with `set KEY VALUE`, `get KEY` and `keys`, and that keeps the files the
//! controller sends in a folder.
//!
//! ```text
//! kv_host DATA_DIR 'xrcp:/...'   # first contact: type the code shown on the controller
//! kv_host DATA_DIR --find        # later: find the paired controller on the LAN
//! ```
//!
//! Output, one fact per line: `code <session code>`, `connected <id> <controller name>`,
//! `command <text>` per command, `stopped`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::json;
use xrcp::session::RRResult;
use xrcp_host::{Application, BoxFuture, FolderStore, Host, HostAppError, UploadFile};

/// The application: values in memory, uploads in a folder.
struct KeyValue {
    values: Mutex<BTreeMap<String, String>>,
    files: FolderStore,
}

impl KeyValue {
    fn run(&self, command: &str) -> RRResult {
        let mut values = self.values.lock().unwrap();
        let mut words = command.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("set"), Some(key), Some(value)) => {
                values.insert(key.to_owned(), value.to_owned());
                RRResult::Result(json!({"type": "set", "key": key}))
            }
            (Some("get"), Some(key), None) => match values.get(key) {
                Some(value) => {
                    RRResult::Result(json!({"type": "value", "key": key, "value": value}))
                }
                None => RRResult::Error(json!({"type": "noSuchKey", "key": key})),
            },
            (Some("keys"), None, None) => {
                RRResult::Result(json!({"type": "keys", "keys": values.keys().collect::<Vec<_>>()}))
            }
            _ => RRResult::Error(json!({"type": "badCommand"})),
        }
    }
}

impl Application for KeyValue {
    fn execute(&self, command: String, _retry_number: i64) -> BoxFuture<'_, RRResult> {
        println!("command {command}");
        let result = self.run(&command);
        Box::pin(async move { result })
    }

    fn store_file(
        &self,
        file_name: String,
        _file_size: u32,
    ) -> BoxFuture<'_, Result<Box<dyn UploadFile>, HostAppError>> {
        Box::pin(async move {
            // Only the base name is used: the controller cannot write outside the folder.
            let file = self.files.create(&file_name).await?;
            Ok(Box::new(file) as Box<dyn UploadFile>)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(target)) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: kv_host DATA_DIR (LINK | --find)");
        std::process::exit(2);
    };
    std::fs::create_dir_all(dir.join("files"))?;
    let app = KeyValue {
        values: Mutex::new(BTreeMap::new()),
        files: FolderStore::new(dir.join("files")),
    };
    let host = Host::builder()
        .app(app)
        .device_name("kv example")
        .data_dir(&dir)
        .build()?;

    let session = if target == "--find" {
        // A paired controller is pinned by its stored identity: no code to compare.
        let pending = host.find().await?;
        println!("code {}", pending.session_code());
        pending.confirm().await?
    } else {
        let pending = host.connect(&target).await?;
        println!("code {}", pending.session_code());
        // The person compares the code with the controller's and types it.
        let typed = std::io::stdin()
            .lock()
            .lines()
            .next()
            .transpose()?
            .unwrap_or_default();
        pending.verify(&typed).await?
    };
    println!(
        "connected {} {}",
        session.controller_id(),
        session.controller().device_name
    );
    session.serve().await?;
    println!("stopped");
    Ok(())
}
