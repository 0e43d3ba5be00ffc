//! The host's pairing store: one row per paired controller, in SQLite under the host's data
//! directory, after simplex-chat's `remote_controllers` table
//! (spec/xrcp.md §9.2).
//!
//! # When to write
//!
//! A pairing changes only through a session that reached the HELLO exchange: the handshake
//! returns the updated [`CtrlPairing`] in [`crate::Connected::pairing`] and nowhere else
//! (spec/xrcp.md §9.3). Callers pass exactly that value to
//! [`CtrlStore::upsert`], [`CtrlStore::insert`] or [`CtrlStore::update_after_session`]; a
//! session that failed before the HELLOs must not touch the store, or the host would forget
//! the DH key the controller will announce to next.
//!
//! # Durability
//!
//! Each write is one transaction in WAL mode with `synchronous=FULL`: a commit is on disk
//! before the call returns, and a crash (even SIGKILL mid-write) leaves either the old or the
//! new pairing, never a mix. `tests/tests/pairing_store.rs` kills a writer at random points to
//! check this. The schema is versioned with `PRAGMA user_version` and migrated in one
//! transaction on open.
//!
//! # Secrets
//!
//! Rows hold private keys (the pairing CA key, the current and previous DH keys). The folder
//! is created `0700` and the database `0600` (SQLite gives its `-wal`/`-shm` files the
//! database's mode); deleted rows are overwritten (`secure_delete`). [`CtrlRecord`]'s `Debug`
//! shows only the id, name and fingerprint, and no error message contains key material.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::Value;
use xrcp::crypto::{Ed25519PublicKey, KeyHash, X25519SecretKey};
use xrcp::pairing::{sqlite, CtrlPairing};
use xrcp::tls::TlsIdentity;
use zeroize::Zeroizing;

/// The database file inside the data directory.
pub const DB_FILE: &str = "xrcp-host-pairings.db";

/// The schema version this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 1;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const _: () = assert!(SCHEMA_VERSION as usize == MIGRATIONS.len());

const MIGRATIONS: &[&str] = &["CREATE TABLE remote_controllers (
        remote_ctrl_id INTEGER PRIMARY KEY AUTOINCREMENT,
        ctrl_device_name TEXT NOT NULL,
        ca_key BLOB NOT NULL,
        ca_cert BLOB NOT NULL,
        ctrl_fingerprint BLOB NOT NULL,
        id_pub BLOB NOT NULL,
        dh_priv_key BLOB NOT NULL,
        prev_dh_priv_key BLOB,
        created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
        updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
     );
     CREATE UNIQUE INDEX idx_remote_controllers_ctrl_fingerprint
        ON remote_controllers (ctrl_fingerprint);"];

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An SQLite call failed.
    #[error("pairing database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Reading or writing a file in the data directory failed (e.g. the saved device name).
    #[error("pairing folder: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be opened: folder, file, or a schema written by a newer build
    /// (we refuse to guess its layout).
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
    /// A stored value does not decode (the detail names the column, never its value).
    #[error("stored pairing {id} is corrupt: {detail}")]
    Corrupt {
        /// The row's id.
        id: i64,
        /// Which column (or pair of columns) failed to decode.
        detail: String,
    },
    /// No pairing has this id.
    #[error("no stored pairing {0}")]
    NotFound(i64),
    /// A pairing with this controller CA already exists.
    #[error("controller already paired as {0}")]
    Duplicate(i64),
}

/// One paired controller.
#[derive(Clone)]
pub struct CtrlRecord {
    /// The row id, stable for the pairing's lifetime (what `list` shows and commands take).
    pub id: i64,
    /// The controller's `deviceName` from its invitation's app info.
    pub device_name: String,
    /// The keys of this pairing (spec/xrcp.md §9.2).
    pub pairing: CtrlPairing,
}

impl std::fmt::Debug for CtrlRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtrlRecord")
            .field("id", &self.id)
            .field("device_name", &self.device_name)
            .field("ctrl_ca", &self.pairing.ctrl_ca)
            .finish_non_exhaustive()
    }
}

/// What listing a pairing needs: no key decoded ([`CtrlStore::summaries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtrlSummary {
    /// The row id ([`CtrlRecord::id`]).
    pub id: i64,
    /// The controller's `deviceName` ([`CtrlRecord::device_name`]).
    pub device_name: String,
    /// SHA-256 of the controller's CA certificate.
    pub ctrl_ca: KeyHash,
}

/// The `deviceName` of an app info object, or an empty name.
pub fn device_name(app: &Value) -> String {
    app.get("deviceName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The host's pairings. Synchronous: async callers run it on a blocking thread or keep the
/// calls short (each is one small transaction).
pub struct CtrlStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for CtrlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtrlStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Opens the database with the shared set-up (`xrcp::pairing::sqlite`: permissions,
/// durability, migrations).
fn open_db(dir: &Path, file: &str) -> Result<(Connection, PathBuf), StoreError> {
    Ok(sqlite::open(dir, file, MIGRATIONS)?)
}

const COLUMNS: &str = "remote_ctrl_id, ctrl_device_name, ca_key, ca_cert, ctrl_fingerprint, \
                       id_pub, dh_priv_key, prev_dh_priv_key";

fn key32(id: i64, column: &str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
        id,
        detail: format!("{column} is not 32 bytes"),
    })
}

/// How much of a row's CA [`record`] checks.
#[derive(Clone, Copy)]
enum Check {
    /// The CA key must belong to the CA certificate (a signature made and verified): for the
    /// one record about to be used.
    Now,
    /// O(1) decoding: lengths only, the CA checked when first used
    /// ([`TlsIdentity::from_der_parts_unchecked`]), so listing 10,000 pairings costs
    /// milliseconds and one corrupt CA does not hide the others.
    OnUse,
}

/// Decodes one row; secrets are held in zeroizing buffers while decoding.
fn record(row: &Row<'_>, check: Check) -> Result<Result<CtrlRecord, StoreError>, rusqlite::Error> {
    let id: i64 = row.get(0)?;
    let device_name: String = row.get(1)?;
    let ca_key = Zeroizing::new(row.get::<_, Vec<u8>>(2)?);
    let ca_cert: Vec<u8> = row.get(3)?;
    let fingerprint: Vec<u8> = row.get(4)?;
    let id_pub: Vec<u8> = row.get(5)?;
    let dh = Zeroizing::new(row.get::<_, Vec<u8>>(6)?);
    let prev = row.get::<_, Option<Vec<u8>>>(7)?.map(Zeroizing::new);
    Ok((|| {
        let ca = match check {
            Check::Now => {
                TlsIdentity::from_der_parts(&ca_key, &ca_cert).map_err(|_| StoreError::Corrupt {
                    id,
                    detail: "ca_key/ca_cert".into(),
                })?
            }
            Check::OnUse => TlsIdentity::from_der_parts_unchecked(&ca_key, &ca_cert),
        };
        let dh = X25519SecretKey::from_bytes(*Zeroizing::new(key32(id, "dh_priv_key", &dh)?));
        let prev_dh = match prev {
            Some(p) => Some(X25519SecretKey::from_bytes(*Zeroizing::new(key32(
                id,
                "prev_dh_priv_key",
                &p,
            )?))),
            None => None,
        };
        Ok(CtrlRecord {
            id,
            device_name,
            pairing: CtrlPairing {
                ca,
                ctrl_ca: KeyHash(key32(id, "ctrl_fingerprint", &fingerprint)?),
                ctrl_identity: Ed25519PublicKey::from_raw(key32(id, "id_pub", &id_pub)?),
                dh,
                prev_dh,
            },
        })
    })())
}

/// The column values of a pairing, secrets in zeroizing buffers.
struct Columns {
    ca_key: Zeroizing<Vec<u8>>,
    ca_cert: Vec<u8>,
    fingerprint: [u8; 32],
    id_pub: [u8; 32],
    dh: Zeroizing<[u8; 32]>,
    prev_dh: Option<Zeroizing<[u8; 32]>>,
}

fn columns(p: &CtrlPairing) -> Columns {
    let (ca_key, ca_cert) = p.ca.to_der_parts();
    Columns {
        ca_key,
        ca_cert,
        fingerprint: p.ctrl_ca.0,
        id_pub: *p.ctrl_identity.as_raw(),
        dh: p.dh.to_bytes(),
        prev_dh: p.prev_dh.as_ref().map(X25519SecretKey::to_bytes),
    }
}

impl CtrlStore {
    /// Opens (creating if needed) the store in `dir`: the folder `0700` if it is created here,
    /// the database file `0600`, the schema migrated to the current schema.
    pub fn open(dir: impl AsRef<Path>) -> Result<CtrlStore, StoreError> {
        let (conn, path) = open_db(dir.as_ref(), DB_FILE)?;
        Ok(CtrlStore { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device name the user set (`/set device name`), kept across restarts in the data
    /// directory's `settings.json` (`xrcp::pairing::sqlite::SETTINGS_FILE`).
    pub fn saved_device_name(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlite::load_device_name(self.dir())?)
    }

    /// Saves the device name for the next starts.
    pub fn save_device_name(&self, name: &str) -> Result<(), StoreError> {
        Ok(sqlite::save_device_name(self.dir(), name)?)
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn query<P: rusqlite::Params>(
        &self,
        filter: &str,
        args: P,
        check: Check,
    ) -> Result<Vec<CtrlRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM remote_controllers {filter} ORDER BY remote_ctrl_id");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map(args, |r| record(r, check))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().collect()
    }

    /// All pairings, oldest first. O(1) decoding per record: each CA is checked when it is
    /// first used (a corrupt one fails that session, not the listing).
    pub fn list(&self) -> Result<Vec<CtrlRecord>, StoreError> {
        self.query("", [], Check::OnUse)
    }

    /// Id, device name and controller CA fingerprint of every pairing, oldest first: what
    /// `list` shows, without touching a key.
    pub fn summaries(&self) -> Result<Vec<CtrlSummary>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT remote_ctrl_id, ctrl_device_name, ctrl_fingerprint \
             FROM remote_controllers ORDER BY remote_ctrl_id",
        )?;
        let rows = st
            .query_map([], |r| {
                let id: i64 = r.get(0)?;
                Ok((id, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, device_name, fp)| {
                Ok(CtrlSummary {
                    id,
                    device_name,
                    ctrl_ca: KeyHash(key32(id, "ctrl_fingerprint", &fp)?),
                })
            })
            .collect()
    }

    /// `(id, pairing)` of every controller, the pairings multicast discovery looks for ([`crate::Host::find`]).
    pub fn known(&self) -> Result<Vec<(i64, CtrlPairing)>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .map(|r| (r.id, r.pairing))
            .collect())
    }

    /// The pairing with this id, or `None`. Its CA key is checked against its certificate
    /// now, since the record is about to be used.
    pub fn get(&self, id: i64) -> Result<Option<CtrlRecord>, StoreError> {
        Ok(self
            .query("WHERE remote_ctrl_id = ?1", [id], Check::Now)?
            .pop())
    }

    /// The pairing of the controller whose CA has this fingerprint (the invitation's `ca`).
    pub fn find_by_fingerprint(&self, ctrl_ca: &KeyHash) -> Result<Option<CtrlRecord>, StoreError> {
        Ok(self
            .query(
                "WHERE ctrl_fingerprint = ?1",
                [ctrl_ca.0.as_slice()],
                Check::Now,
            )?
            .pop())
    }

    /// Stores the pairing of a controller after its first session reached HELLO (the one
    /// the handshake gave). Returns the new id.
    pub fn insert(&mut self, device_name: &str, pairing: &CtrlPairing) -> Result<i64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = insert_in(&tx, device_name, pairing)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a stored pairing after a later session reached HELLO (new DH key, the old one
    /// kept as previous) and its device name, in one transaction.
    pub fn update_after_session(
        &mut self,
        id: i64,
        device_name: &str,
        pairing: &CtrlPairing,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        update_in(&tx, id, device_name, pairing)?;
        tx.commit()?;
        Ok(())
    }

    /// What the reference does after every successful session: update the pairing of this
    /// controller (found by CA fingerprint) or insert it, in one transaction. Returns the id.
    pub fn upsert(&mut self, device_name: &str, pairing: &CtrlPairing) -> Result<i64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT remote_ctrl_id FROM remote_controllers WHERE ctrl_fingerprint = ?1",
                [pairing.ctrl_ca.0.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => {
                update_in(&tx, id, device_name, pairing)?;
                id
            }
            None => insert_in(&tx, device_name, pairing)?,
        };
        tx.commit()?;
        Ok(id)
    }

    /// Forgets a controller; `false` if there was no such pairing.
    pub fn delete(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM remote_controllers WHERE remote_ctrl_id = ?1",
            [id],
        )? > 0)
    }

    /// Renames a stored controller; [`StoreError::NotFound`] if there is no such pairing.
    pub fn set_device_name(&mut self, id: i64, name: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE remote_controllers SET ctrl_device_name = ?2 WHERE remote_ctrl_id = ?1",
            params![id, name],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }
}

fn insert_in(
    tx: &rusqlite::Transaction<'_>,
    device_name: &str,
    pairing: &CtrlPairing,
) -> Result<i64, StoreError> {
    let c = columns(pairing);
    let existing: Option<i64> = tx
        .query_row(
            "SELECT remote_ctrl_id FROM remote_controllers WHERE ctrl_fingerprint = ?1",
            [c.fingerprint.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Err(StoreError::Duplicate(id));
    }
    tx.execute(
        "INSERT INTO remote_controllers (ctrl_device_name, ca_key, ca_cert, ctrl_fingerprint,
           id_pub, dh_priv_key, prev_dh_priv_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            device_name,
            c.ca_key.as_slice(),
            c.ca_cert,
            c.fingerprint.as_slice(),
            c.id_pub.as_slice(),
            c.dh.as_slice(),
            c.prev_dh.as_ref().map(|k| k.as_slice()),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn update_in(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    device_name: &str,
    pairing: &CtrlPairing,
) -> Result<(), StoreError> {
    let c = columns(pairing);
    let n = tx.execute(
        "UPDATE remote_controllers SET ctrl_device_name = ?2, ca_key = ?3, ca_cert = ?4,
           ctrl_fingerprint = ?5, id_pub = ?6, dh_priv_key = ?7, prev_dh_priv_key = ?8,
           updated_at = strftime('%s', 'now')
         WHERE remote_ctrl_id = ?1",
        params![
            id,
            device_name,
            c.ca_key.as_slice(),
            c.ca_cert,
            c.fingerprint.as_slice(),
            c.id_pub.as_slice(),
            c.dh.as_slice(),
            c.prev_dh.as_ref().map(|k| k.as_slice()),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use xrcp::crypto::Ed25519SecretKey;
    use xrcp::tls::CaRole;

    fn pairing() -> CtrlPairing {
        CtrlPairing {
            ca: TlsIdentity::generate(CaRole::Host).unwrap(),
            ctrl_ca: KeyHash(rand_bytes()),
            ctrl_identity: Ed25519SecretKey::generate().public(),
            dh: X25519SecretKey::generate(),
            prev_dh: None,
        }
    }

    fn rand_bytes() -> [u8; 32] {
        X25519SecretKey::generate().public().as_raw().to_owned()
    }

    fn same(a: &CtrlPairing, b: &CtrlPairing) {
        assert_eq!(a.ca.fingerprint(), b.ca.fingerprint());
        assert_eq!(a.ca.to_der_parts().0, b.ca.to_der_parts().0);
        assert_eq!(a.ctrl_ca, b.ctrl_ca);
        assert_eq!(a.ctrl_identity, b.ctrl_identity);
        assert_eq!(a.dh.public(), b.dh.public());
        assert_eq!(
            a.prev_dh.as_ref().map(X25519SecretKey::public),
            b.prev_dh.as_ref().map(X25519SecretKey::public)
        );
    }

    #[test]
    fn round_trip_update_find_delete() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut store = CtrlStore::open(&data).unwrap();
        assert!(store.list().unwrap().is_empty());
        let p1 = pairing();
        let p2 = pairing();
        let id1 = store.insert("desk one", &p1).unwrap();
        let id2 = store.insert("desk two", &p2).unwrap();
        assert_ne!(id1, id2);
        assert!(matches!(store.insert("again", &p1), Err(StoreError::Duplicate(id)) if id == id1));

        // A later session: new DH key, the old one becomes previous.
        let p1b = CtrlPairing {
            dh: X25519SecretKey::generate(),
            prev_dh: Some(p1.dh.clone()),
            ..p1.clone()
        };
        store.update_after_session(id1, "desk one", &p1b).unwrap();
        drop(store);

        let mut store = CtrlStore::open(&data).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, id1);
        same(&all[0].pairing, &p1b);
        same(&all[1].pairing, &p2);
        let found = store.find_by_fingerprint(&p2.ctrl_ca).unwrap().unwrap();
        assert_eq!((found.id, found.device_name.as_str()), (id2, "desk two"));
        assert!(store
            .find_by_fingerprint(&KeyHash([0; 32]))
            .unwrap()
            .is_none());

        assert_eq!(store.upsert("renamed", &p2).unwrap(), id2);
        let p3 = pairing();
        let id3 = store.upsert("desk three", &p3).unwrap();
        same(&store.get(id3).unwrap().unwrap().pairing, &p3);
        store.set_device_name(id1, "desk 1").unwrap();
        assert_eq!(store.get(id1).unwrap().unwrap().device_name, "desk 1");
        assert!(matches!(
            store.set_device_name(99, "x"),
            Err(StoreError::NotFound(99))
        ));
        assert!(matches!(
            store.update_after_session(99, "x", &p3),
            Err(StoreError::NotFound(99))
        ));

        assert!(store.delete(id1).unwrap());
        assert!(!store.delete(id1).unwrap());
        assert!(store.get(id1).unwrap().is_none());
        assert_eq!(store.known().unwrap().len(), 2);
    }

    /// Listing decodes no key: a record whose CA key does not belong to its certificate is
    /// listed with the others (and its DH keys usable for discovery); the mismatch is
    /// reported when the record is used — `get` before a session, or making the session's
    /// credentials. Eager decoding fails the whole listing.
    #[test]
    fn corrupt_ca_is_reported_on_use_not_on_listing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CtrlStore::open(dir.path()).unwrap();
        let ids: Vec<i64> = (0..3)
            .map(|i| store.insert(&format!("desk {i}"), &pairing()).unwrap())
            .collect();
        // Record 1 gets another identity's key: well-formed, but not its certificate's.
        let (other_key, _) = TlsIdentity::generate(CaRole::Host).unwrap().to_der_parts();
        store
            .conn
            .execute(
                "UPDATE remote_controllers SET ca_key = ?2 WHERE remote_ctrl_id = ?1",
                params![ids[1], other_key.as_slice()],
            )
            .unwrap();

        let all = store.list().unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
        assert_eq!(store.known().unwrap().len(), 3);
        let names: Vec<String> = store
            .summaries()
            .unwrap()
            .into_iter()
            .map(|s| s.device_name)
            .collect();
        assert_eq!(names, ["desk 0", "desk 1", "desk 2"]);

        // Used: the good ones work, the corrupt one is reported.
        assert!(all[0].pairing.ca.session_credentials().is_ok());
        assert!(all[1].pairing.ca.session_credentials().is_err());
        assert!(store.get(ids[2]).unwrap().is_some());
        match store.get(ids[1]) {
            Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, ids[1]),
            other => panic!("expected a corrupt record, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let mut store = CtrlStore::open(&data).unwrap();
        store.insert("d", &pairing()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        let wal = data.join(format!("{DB_FILE}-wal"));
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
        // An existing, too open database file is tightened.
        drop(store);
        fs::set_permissions(data.join(DB_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let store = CtrlStore::open(&data).unwrap();
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn migrates_empty_database_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        // An empty file is a valid SQLite database at user_version 0.
        fs::write(dir.path().join(DB_FILE), b"").unwrap();
        let store = CtrlStore::open(dir.path()).unwrap();
        let v: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        assert!(matches!(
            CtrlStore::open(dir.path()),
            Err(StoreError::Open(sqlite::OpenError::NewerSchema { found, .. }))
                if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn corrupt_rows_are_reported_without_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CtrlStore::open(dir.path()).unwrap();
        let id = store.insert("d", &pairing()).unwrap();
        store
            .conn
            .execute(
                "UPDATE remote_controllers SET dh_priv_key = x'0102' WHERE remote_ctrl_id = ?1",
                [id],
            )
            .unwrap();
        let err = store.get(id).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("stored pairing {id} is corrupt: dh_priv_key is not 32 bytes")
        );
    }

    #[test]
    fn debug_shows_no_secrets() {
        let p = pairing();
        let r = CtrlRecord {
            id: 7,
            device_name: "desk".into(),
            pairing: p.clone(),
        };
        let shown = format!("{r:?} {:?}", r.pairing);
        let (key, _) = p.ca.to_der_parts();
        let dh = p.dh.to_bytes();
        for secret in [&key[16..48], dh.as_slice()] {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let list = format!("{secret:?}");
            assert!(!shown.to_lowercase().contains(&hex), "{shown}");
            assert!(!shown.contains(&list[1..list.len() - 1]), "{shown}");
        }
        assert!(shown.contains("desk") && shown.contains('7'));
    }

    #[test]
    fn device_name_from_app_info() {
        assert_eq!(
            device_name(&serde_json::json!({"deviceName": "Mac"})),
            "Mac"
        );
        assert_eq!(device_name(&Value::Null), "");
    }
}
