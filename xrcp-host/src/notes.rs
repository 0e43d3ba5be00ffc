//! The built-in host application: the phone's *private notes* (the SimpleX 5.5 feature this
//! protocol shipped with). Notes and files live on the host, in SQLite under the host's data
//! directory; the controller lists, adds, deletes and downloads them remotely, and every
//! change is also emitted as an event for the controller's long-poll.
//!
//! Commands (the text the controller sends; results are JSON objects tagged by `type`):
//!
//! | command | result |
//! | --- | --- |
//! | `/notes` | `{"type":"notes","notes":[{"noteId","text","createdAt"}…]}` |
//! | `/note <text>` | `{"type":"noteCreated","note":{…}}` |
//! | `/delete note <id>` | `{"type":"noteDeleted","noteId":n}` |
//! | `/files` | `{"type":"files","files":[{"fileId","fileName","fileSize","fileDigest","createdAt"}…]}` |
//! | `/delete file <id>` | `{"type":"fileDeleted","fileId":n}` |
//! | `/help` | `{"type":"help","commands":[…]}` |
//!
//! Errors are `{"error": {"type":"commandError","message":…}}` (unknown or malformed command)
//! or `{"type":"noteNotFound"|"fileNotFound",…}`: chat-level errors, never protocol failures.
//! Files stored by the controller appear in `/files`; `getFile` takes
//! `{"userId":1,"fileId":n,"sent":false,"fileSource":{"filePath":"<fileName>"}}`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use xrcp::pairing::sqlite;

use crate::facade::EventSender;
use xrcp::session::{FileDigest, RRResult, RemoteFile};

use crate::session::{
    FileReader, FolderFile, FolderStore, HostApp, HostAppError, OutgoingFile, StoredFile,
};

/// Longest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// Events buffered for a controller that is not polling; later ones are dropped (the
/// program serves this app with [`crate::HostBuilder::event_buffer`] set to it).
pub const EVENT_BUFFER: usize = 256;
/// The single local user id the notes app reports (the chat API's `userId`).
pub const USER_ID: i64 = 1;

const HELP: &[&str] = &[
    "/notes",
    "/note <text>",
    "/delete note <id>",
    "/files",
    "/delete file <id>",
    "/help",
];

/// Why the notes database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("notes database: {0}")]
    /// The notes database failed.
    Db(#[from] rusqlite::Error),
    #[error("notes folder: {0}")]
    /// The files folder failed.
    Io(#[from] std::io::Error),
    #[error("notes database: {0}")]
    /// A stored record does not parse (the database was edited by hand).
    Corrupt(String),
}

/// The notes database (synchronous; the app runs it on blocking threads).
pub struct NotesDb {
    conn: Connection,
}

const SCHEMA_VERSION: i64 = 1;

impl NotesDb {
    /// Opens (or creates) the notes database at `path`.
    pub fn open(path: &Path) -> Result<NotesDb, NotesError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS notes (
                   note_id INTEGER PRIMARY KEY AUTOINCREMENT,
                   text TEXT NOT NULL,
                   created_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS files (
                   file_id INTEGER PRIMARY KEY AUTOINCREMENT,
                   file_name TEXT NOT NULL UNIQUE,
                   file_size INTEGER NOT NULL,
                   file_digest TEXT NOT NULL,
                   created_at INTEGER NOT NULL);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )?;
        }
        Ok(NotesDb { conn })
    }

    /// Adds a note written at `now` (Unix seconds); gives the note as JSON.
    pub fn add_note(&self, text: &str, now: i64) -> Result<Value, NotesError> {
        self.conn.execute(
            "INSERT INTO notes (text, created_at) VALUES (?1, ?2)",
            params![text, now],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok(json!({"noteId": id, "text": text, "createdAt": now}))
    }

    /// All notes as JSON, oldest first.
    pub fn notes(&self) -> Result<Vec<Value>, NotesError> {
        let mut st = self
            .conn
            .prepare("SELECT note_id, text, created_at FROM notes ORDER BY note_id")?;
        let rows = st.query_map([], |r| {
            Ok(
                json!({"noteId": r.get::<_, i64>(0)?, "text": r.get::<_, String>(1)?,
                      "createdAt": r.get::<_, i64>(2)?}),
            )
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether a note was deleted.
    pub fn delete_note(&self, id: i64) -> Result<bool, NotesError> {
        Ok(self
            .conn
            .execute("DELETE FROM notes WHERE note_id = ?1", params![id])?
            > 0)
    }

    /// Records a file stored in the files folder; gives its record as JSON, and the id of the
    /// record it replaced. The upload has just taken `name` because it was free on disk, so a
    /// record still holding the name is stale (its file was removed by hand) and is replaced.
    pub fn add_file(
        &self,
        name: &str,
        size: u32,
        digest: &FileDigest,
        now: i64,
    ) -> Result<(Value, Option<i64>), NotesError> {
        let digest = digest.to_text();
        let tx = self.conn.unchecked_transaction()?;
        let stale: Option<i64> = tx
            .query_row(
                "SELECT file_id FROM files WHERE file_name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO files (file_name, file_size, file_digest, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![name, size, digest, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok((
            json!({"fileId": id, "fileName": name, "fileSize": size, "fileDigest": digest, "createdAt": now}),
            stale,
        ))
    }

    /// All file records as JSON.
    pub fn files(&self) -> Result<Vec<Value>, NotesError> {
        let mut st = self.conn.prepare(
            "SELECT file_id, file_name, file_size, file_digest, created_at FROM files ORDER BY file_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(
                json!({"fileId": r.get::<_, i64>(0)?, "fileName": r.get::<_, String>(1)?,
                      "fileSize": r.get::<_, i64>(2)?, "fileDigest": r.get::<_, String>(3)?,
                      "createdAt": r.get::<_, i64>(4)?}),
            )
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored name of a file, if it exists.
    pub fn file_name(&self, id: i64) -> Result<Option<String>, NotesError> {
        Ok(self
            .conn
            .query_row(
                "SELECT file_name FROM files WHERE file_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Name, size and digest of a stored file, if it exists. A record whose size or digest
    /// does not parse is an error (the database was edited by hand).
    pub fn file_record(&self, id: i64) -> Result<Option<(String, u32, FileDigest)>, NotesError> {
        let row = self
            .conn
            .query_row(
                "SELECT file_name, file_size, file_digest FROM files WHERE file_id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((name, size, digest)) = row else {
            return Ok(None);
        };
        let size = u32::try_from(size)
            .map_err(|_| NotesError::Corrupt(format!("file {id}: size {size} out of range")))?;
        let digest = FileDigest::from_text(&digest).map_err(|e| {
            let why = e.detail().map_or_else(|| e.text_form(), str::to_owned);
            NotesError::Corrupt(format!("file {id}: digest: {why}"))
        })?;
        Ok(Some((name, size, digest)))
    }

    /// Forgets file record `id`; gives its stored name, if there was one.
    pub fn delete_file(&self, id: i64) -> Result<Option<String>, NotesError> {
        let name = self.file_name(id)?;
        if name.is_some() {
            self.conn
                .execute("DELETE FROM files WHERE file_id = ?1", params![id])?;
        }
        Ok(name)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What one command asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Notes,
    Note(String),
    DeleteNote(i64),
    Files,
    DeleteFile(i64),
    Help,
}

fn parse_command(text: &str) -> Result<Command, String> {
    let text = text.trim_end();
    let id = |s: &str| s.trim().parse::<i64>().map_err(|_| format!("bad id: {s}"));
    match text {
        "/notes" => Ok(Command::Notes),
        "/files" => Ok(Command::Files),
        "/help" | "/h" => Ok(Command::Help),
        _ => {
            if let Some(t) = text.strip_prefix("/note ") {
                let t = t.trim();
                if t.is_empty() {
                    Err("empty note".into())
                } else if t.len() > MAX_NOTE_LEN {
                    Err(format!("note longer than {MAX_NOTE_LEN} bytes"))
                } else {
                    Ok(Command::Note(t.to_owned()))
                }
            } else if let Some(n) = text.strip_prefix("/delete note ") {
                Ok(Command::DeleteNote(id(n)?))
            } else if let Some(n) = text.strip_prefix("/delete file ") {
                Ok(Command::DeleteFile(id(n)?))
            } else {
                Err(format!("unknown command: {text}"))
            }
        }
    }
}

fn command_error(message: impl Into<String>) -> RRResult {
    RRResult::Error(json!({"type": "commandError", "message": message.into()}))
}

/// The notes application, shared by the sessions of one host process.
#[derive(Clone)]
pub struct NotesApp {
    db: Arc<Mutex<NotesDb>>,
    files: FolderStore,
    /// The current session's event queue (one controller at a time).
    events: Arc<Mutex<Option<EventSender>>>,
}

impl NotesApp {
    /// Opens (or creates) `notes.db` and the `files/` folder under `data_dir`.
    ///
    /// Everything is made private to the user, also when it existed with wider modes: the
    /// folders `0700`, the database (and SQLite's side files) and the stored files `0600`.
    /// Temporary files of uploads cut off by a crash are removed.
    pub fn open(data_dir: &Path) -> Result<NotesApp, NotesError> {
        let files_dir: PathBuf = data_dir.join("files");
        sqlite::private_dir(data_dir)?;
        sqlite::private_dir(&files_dir)?;
        let files = FolderStore::new(files_dir);
        let stale = files.remove_stale_uploads()?;
        if stale > 0 {
            tracing::info!("removed {stale} unfinished upload(s) left by an earlier run");
        }
        for entry in std::fs::read_dir(files.dir())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                // A file someone else put here (and owns) is left as it is; ours are
                // tightened. The folder itself is 0700 either way.
                if let Err(e) = sqlite::set_mode(&entry.path(), 0o600) {
                    tracing::warn!(
                        file = %xrcp::display::escape(&entry.path().display().to_string()),
                        error = %e,
                        "cannot make a stored file private"
                    );
                }
            }
        }
        let db_path = data_dir.join("notes.db");
        sqlite::private_db_file(&db_path)?;
        let db = NotesDb::open(&db_path)?;
        Ok(NotesApp {
            db: Arc::new(Mutex::new(db)),
            files,
            events: Arc::new(Mutex::new(None)),
        })
    }

    /// A fresh event queue for a new session; events of a previous one are dropped.
    pub fn subscribe(&self) -> mpsc::Receiver<RRResult> {
        let (tx, rx) = EventSender::channel(EVENT_BUFFER);
        self.attach(tx);
        rx
    }

    /// Sends this app's events to a new session ([`crate::Session::events`]); events of a
    /// previous one are dropped.
    pub fn attach(&self, events: EventSender) {
        *self.events.lock().unwrap_or_else(PoisonError::into_inner) = Some(events);
    }

    fn emit(&self, event: Value) {
        if let Some(tx) = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if !tx.try_send(RRResult::Result(event)) {
                tracing::warn!("event queue full or closed; event dropped");
            }
        }
    }

    /// Runs `f` with the database on a blocking thread.
    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NotesDb) -> Result<T, NotesError> + Send + 'static,
    ) -> Result<T, NotesError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db.lock().unwrap_or_else(PoisonError::into_inner)))
            .await
            .unwrap_or_else(|e| Err(NotesError::Io(std::io::Error::other(e.to_string()))))
    }

    /// Runs one command; the same entry point serves the local console.
    pub async fn run(&self, text: &str) -> RRResult {
        let cmd = match parse_command(text) {
            Ok(c) => c,
            Err(e) => return command_error(e),
        };
        let result = match cmd {
            Command::Help => Ok(json!({"type": "help", "commands": HELP})),
            Command::Notes => self
                .with_db(|db| db.notes())
                .await
                .map(|notes| json!({"type": "notes", "notes": notes})),
            Command::Files => self
                .with_db(|db| db.files())
                .await
                .map(|files| json!({"type": "files", "files": files})),
            Command::Note(text) => {
                let res = self.with_db(move |db| db.add_note(&text, now())).await;
                res.map(|note| {
                    let v = json!({"type": "noteCreated", "note": note});
                    self.emit(v.clone());
                    v
                })
            }
            Command::DeleteNote(id) => match self.with_db(move |db| db.delete_note(id)).await {
                Ok(true) => {
                    let v = json!({"type": "noteDeleted", "noteId": id});
                    self.emit(v.clone());
                    Ok(v)
                }
                Ok(false) => return RRResult::Error(json!({"type": "noteNotFound", "noteId": id})),
                Err(e) => Err(e),
            },
            Command::DeleteFile(id) => match self.with_db(move |db| db.delete_file(id)).await {
                Ok(Some(name)) => {
                    if let Err(e) = tokio::fs::remove_file(self.files.dir().join(&name)).await {
                        tracing::warn!("removing {name}: {e}");
                    }
                    let v = json!({"type": "fileDeleted", "fileId": id});
                    self.emit(v.clone());
                    Ok(v)
                }
                Ok(None) => return RRResult::Error(json!({"type": "fileNotFound", "fileId": id})),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(v) => RRResult::Result(v),
            Err(e) => RRResult::Error(json!({"type": "internalError", "message": e.to_string()})),
        }
    }
}

/// An upload in progress; recorded in the database once verified.
pub struct NoteUpload {
    file: FolderFile,
    app: NotesApp,
    size: u32,
}

impl tokio::io::AsyncWrite for NoteUpload {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl NoteUpload {
    /// Names the file and records it with `digest` (read back from the file when `None`), or
    /// removes it if it cannot be recorded.
    async fn record(self, digest: Option<FileDigest>) -> Result<String, HostAppError> {
        let name = self.file.commit().await?;
        let path = self.app.files.dir().join(&name);
        let digest = match digest {
            Some(d) => Ok(d),
            None => OutgoingFile::open(&path).await.map(|f| f.digest),
        };
        let (size, n) = (self.size, name.clone());
        let recorded = match digest {
            Ok(digest) => self
                .app
                .with_db(move |db| db.add_file(&n, size, &digest, now()))
                .await
                .map_err(|e| {
                    HostAppError::Chat(json!({"type": "internalError", "message": e.to_string()}))
                }),
            Err(e) => Err(e),
        };
        let rec = match recorded {
            Ok((rec, stale)) => {
                // The replaced record's file was gone already; say that it is gone from the
                // list too, as `/delete file` would.
                if let Some(id) = stale {
                    self.app.emit(json!({"type": "fileDeleted", "fileId": id}));
                }
                rec
            }
            Err(e) => {
                // Not in the list: do not leave it on disk taking the name.
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(path = %path.display(), "removing unrecorded upload: {e}");
                }
                return Err(e);
            }
        };
        self.app.emit(json!({"type": "fileStored", "file": rec}));
        Ok(name)
    }
}

impl StoredFile for NoteUpload {
    /// Without a verified digest (not the session's path, which calls `commit_verified`):
    /// the digest for the record is read back from the file.
    async fn commit(self) -> Result<String, HostAppError> {
        self.record(None).await
    }

    /// The session layer checked the upload against this digest while it streamed; the file
    /// is not read again (one SHA-512 pass per transfer, BENCHMARKS.md "Files and commands").
    async fn commit_verified(self, digest: FileDigest) -> Result<String, HostAppError> {
        self.record(Some(digest)).await
    }

    async fn discard(self) {
        self.file.discard().await
    }
}

impl HostApp for NotesApp {
    type Stored = NoteUpload;
    type Reader = FileReader;

    async fn execute(&self, command: String, _retry_number: i64) -> RRResult {
        self.run(&command).await
    }

    async fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> Result<NoteUpload, HostAppError> {
        let file = self.files.create(&file_name).await?;
        Ok(NoteUpload {
            file,
            app: self.clone(),
            size: file_size,
        })
    }

    async fn get_file(&self, file: RemoteFile) -> Result<OutgoingFile<FileReader>, HostAppError> {
        let not_found =
            || HostAppError::Chat(json!({"type": "fileNotFound", "fileId": file.file_id}));
        if file.user_id != USER_ID {
            return Err(HostAppError::Chat(json!({"type": "differentActiveUser"})));
        }
        let id = file.file_id;
        let (name, size, digest) = self
            .with_db(move |db| db.file_record(id))
            .await
            .map_err(|e| {
                HostAppError::Chat(json!({"type": "internalError", "message": e.to_string()}))
            })?
            .ok_or_else(not_found)?;
        if file.file_source.file_path != name {
            return Err(not_found());
        }
        // The digest recorded when the upload was verified: the file is read once, to send it.
        OutgoingFile::open_known(&self.files.dir().join(&name), size, digest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_parsing() {
        assert_eq!(parse_command("/notes"), Ok(Command::Notes));
        assert_eq!(
            parse_command("/note  hi there "),
            Ok(Command::Note("hi there".into()))
        );
        assert_eq!(parse_command("/delete note 3"), Ok(Command::DeleteNote(3)));
        assert!(parse_command("/delete note x").is_err());
        assert!(parse_command("/note ").is_err());
        assert!(parse_command("/nope").is_err());
        assert!(parse_command(&format!("/note {}", "a".repeat(MAX_NOTE_LEN + 1))).is_err());
    }

    /// A stored file removed from the files folder by hand frees its name on disk; the next
    /// upload that takes the name replaces the stale record instead of failing on it.
    #[test]
    fn a_record_whose_file_was_removed_gives_way_to_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = NotesDb::open(&dir.path().join("notes.db")).unwrap();
        let (first, none) = db.add_file("a.bin", 1, &FileDigest::of(b"a"), 1).unwrap();
        assert_eq!(none, None);
        let (second, stale) = db.add_file("a.bin", 2, &FileDigest::of(b"bb"), 2).unwrap();
        assert_eq!(stale, first["fileId"].as_i64());
        let files = db.files().unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0]["fileId"], second["fileId"]);
        assert_ne!(first["fileId"], second["fileId"]);
        assert_eq!(files[0]["fileSize"], 2);
    }

    #[tokio::test]
    async fn notes_are_kept_and_events_emitted() {
        let dir = tempfile::tempdir().unwrap();
        let app = NotesApp::open(dir.path()).unwrap();
        let mut events = app.subscribe();
        let RRResult::Result(created) = app.run("/note buy milk").await else {
            panic!("note not created")
        };
        assert_eq!(created["note"]["text"], "buy milk");
        let id = created["note"]["noteId"].as_i64().unwrap();
        assert_eq!(events.recv().await, Some(RRResult::Result(created.clone())));

        // Reopened from disk, the note is still there.
        drop(app);
        let app = NotesApp::open(dir.path()).unwrap();
        let RRResult::Result(list) = app.run("/notes").await else {
            panic!()
        };
        assert_eq!(list["notes"][0]["text"], "buy milk");
        assert!(matches!(
            app.run(&format!("/delete note {id}")).await,
            RRResult::Result(_)
        ));
        assert!(matches!(
            app.run(&format!("/delete note {id}")).await,
            RRResult::Error(_)
        ));
        let RRResult::Error(e) = app.run("/frobnicate").await else {
            panic!()
        };
        assert_eq!(e["type"], "commandError");
    }

    /// Issue 16: the session layer verified the upload's SHA-512 while it streamed; committing
    /// records that digest and does not read the file back. The digest handed over here is not
    /// the file's, so a commit that re-hashed the file from disk would record another one.
    #[tokio::test]
    async fn a_verified_upload_is_recorded_without_reading_it_back() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let app = NotesApp::open(dir.path()).unwrap();
        let mut up = app.store_file("a.bin".into(), 3).await.unwrap();
        up.write_all(b"abc").await.unwrap();
        let told = FileDigest([7; 64]);
        assert_ne!(told, FileDigest::of(b"abc"));
        assert_eq!(up.commit_verified(told).await.unwrap(), "a.bin");
        let RRResult::Result(list) = app.run("/files").await else {
            panic!()
        };
        assert_eq!(list["files"][0]["fileDigest"], told.to_text(), "{list}");
        assert_eq!(
            std::fs::read(dir.path().join("files").join("a.bin")).unwrap(),
            b"abc"
        );

        // The download announces the recorded digest and the recorded size, and reads nothing
        // before it is sent.
        let file = RemoteFile {
            user_id: USER_ID,
            file_id: list["files"][0]["fileId"].as_i64().unwrap(),
            sent: false,
            file_source: xrcp::session::CryptoFile {
                file_path: "a.bin".into(),
                crypto_args: None,
            },
        };
        let out = app.get_file(file).await.unwrap();
        assert_eq!((out.size, out.digest), (3, told));

        // A plain commit (no verified digest) hashes the file itself.
        let mut up = app.store_file("b.bin".into(), 3).await.unwrap();
        up.write_all(b"xyz").await.unwrap();
        assert_eq!(up.commit().await.unwrap(), "b.bin");
        let RRResult::Result(list) = app.run("/files").await else {
            panic!()
        };
        assert_eq!(
            list["files"][1]["fileDigest"],
            FileDigest::of(b"xyz").to_text()
        );
    }
}
