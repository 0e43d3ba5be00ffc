//! The controller's pairing store: one row per paired host, in SQLite under the controller's
//! data directory, after simplex-chat's `remote_hosts` table
//! (spec/xrcp.md §9.1).
//!
//! # When to write
//!
//! A pairing is created and changed only by a session that reached the HELLO exchange: the
//! handshake returns the updated [`HostPairing`] in [`crate::connect::Connected::pairing`] and nowhere
//! else (spec/xrcp.md §9.3). Callers pass exactly that value to
//! [`HostStore::insert`] (first session, the pairing now knows the host) or
//! [`HostStore::update_after_session`] (later sessions: the host's new DH key, which keys the
//! next multicast announcement). A pairing without a known host is refused
//! ([`StoreError::NotPaired`]): a new host is paired by scanning, never from the store.
//!
//! # Durability
//!
//! Each write is one transaction in WAL mode with `synchronous=FULL`, so a committed pairing
//! survives a crash and a crash mid-write leaves the old pairing. The schema is versioned
//! with `PRAGMA user_version` and migrated in one transaction on open.
//!
//! # Secrets
//!
//! Rows hold the pairing CA key and the long-term identity key. The folder is created `0700`
//! and the database `0600` (SQLite gives its `-wal`/`-shm` files the same mode); deleted rows
//! are overwritten (`secure_delete`). [`HostRecord`]'s `Debug` shows no key material, and no
//! error message contains stored values.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, Row, TransactionBehavior};
use serde_json::Value;
use xrcp::codec::text::base64url_encode;
use xrcp::crypto::{Ed25519SecretKey, KeyHash, X25519PublicKey};
use xrcp::pairing::{sqlite, HostPairing, KnownHost};
use xrcp::tls::TlsIdentity;
use zeroize::Zeroizing;

use crate::address::AddressPreference;
use crate::connect::ControllerOptions;

/// The database file inside the data directory.
pub const DB_FILE: &str = "xrcp-ctrl-pairings.db";

/// The schema version this build writes; older databases are migrated on open.
pub const SCHEMA_VERSION: i64 = 1;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const _: () = assert!(SCHEMA_VERSION as usize == MIGRATIONS.len());

const MIGRATIONS: &[&str] = &["CREATE TABLE remote_hosts (
        remote_host_id INTEGER PRIMARY KEY AUTOINCREMENT,
        host_device_name TEXT NOT NULL,
        store_path TEXT NOT NULL,
        ca_key BLOB NOT NULL,
        ca_cert BLOB NOT NULL,
        id_key BLOB NOT NULL,
        host_fingerprint BLOB NOT NULL,
        host_dh_pub BLOB NOT NULL,
        bind_addr TEXT,
        bind_iface TEXT,
        bind_port INTEGER,
        created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
        updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
     );
     CREATE INDEX idx_remote_hosts_host_fingerprint ON remote_hosts (host_fingerprint);"];

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
    /// The pairing has no known host: only a pairing returned by a session that reached
    /// HELLO can be stored.
    #[error("pairing has no known host yet")]
    NotPaired,
}

/// The `addr=`/`iface=`/`port=` a host session was last started with (the reference
/// overwrites them on every session, `NULL` when none was given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// `addr=`: the local address to advertise, if one was requested (spec/xrcp.md §9.3).
    pub address: Option<Ipv4Addr>,
    /// `iface=`: the interface whose address to advertise, if one was requested.
    pub interface: Option<String>,
    /// `port=`: the port to listen on; `None` lets the OS choose.
    pub port: Option<u16>,
}

impl Binding {
    /// The binding a session was started with.
    pub fn of(options: &ControllerOptions) -> Binding {
        Binding {
            address: options.address.address,
            interface: options.address.interface.clone(),
            port: (options.port != 0).then_some(options.port),
        }
    }

    /// Applies the stored binding to the options of the next session.
    pub fn apply(&self, options: &mut ControllerOptions) {
        options.address = AddressPreference {
            address: self.address,
            interface: self.interface.clone(),
        };
        options.port = self.port.unwrap_or(0);
    }
}

/// One paired host.
#[derive(Clone)]
pub struct HostRecord {
    /// The row id, stable for the pairing's lifetime (what `list` shows and commands take).
    pub id: i64,
    /// The host's `deviceName` from its HELLO app info.
    pub device_name: String,
    /// The folder name (16 base64url characters) for this host's files, as the reference's
    /// `randomStorePath`.
    pub store_path: String,
    /// The keys of this pairing (spec/xrcp.md §9.1); always has a known host.
    pub pairing: HostPairing,
    /// The address and port the last session with this host was started with, used again
    /// when the next one names none.
    pub binding: Binding,
}

impl std::fmt::Debug for HostRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRecord")
            .field("id", &self.id)
            .field("device_name", &self.device_name)
            .field("store_path", &self.store_path)
            .field("host_ca", &self.pairing.known_host.map(|k| k.host_ca))
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

/// What listing a pairing needs: no key decoded ([`HostStore::summaries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSummary {
    /// The row id ([`HostRecord::id`]).
    pub id: i64,
    /// The host's `deviceName` ([`HostRecord::device_name`]).
    pub device_name: String,
    /// SHA-256 of the host's CA certificate.
    pub host_ca: KeyHash,
}

/// The `deviceName` of an app info object, or an empty name.
pub fn device_name(app: &Value) -> String {
    app.get("deviceName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The controller's pairings. Synchronous: async callers run it on a blocking thread or keep
/// the calls short (each is one small transaction).
pub struct HostStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for HostStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Opens the database with the shared set-up (`xrcp::pairing::sqlite`: permissions,
/// durability, migrations).
fn open_db(dir: &Path, file: &str) -> Result<(Connection, PathBuf), StoreError> {
    Ok(sqlite::open(dir, file, MIGRATIONS)?)
}

const COLUMNS: &str = "remote_host_id, host_device_name, store_path, ca_key, ca_cert, id_key, \
                       host_fingerprint, host_dh_pub, bind_addr, bind_iface, bind_port";

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
    /// The CA checked when first used ([`TlsIdentity::from_der_parts_unchecked`]).
    OnUse,
}

/// Decodes one row; secrets are held in zeroizing buffers while decoding.
fn record(row: &Row<'_>, check: Check) -> Result<Result<HostRecord, StoreError>, rusqlite::Error> {
    let id: i64 = row.get(0)?;
    let device_name: String = row.get(1)?;
    let store_path: String = row.get(2)?;
    let ca_key = Zeroizing::new(row.get::<_, Vec<u8>>(3)?);
    let ca_cert: Vec<u8> = row.get(4)?;
    let id_key = Zeroizing::new(row.get::<_, Vec<u8>>(5)?);
    let fingerprint: Vec<u8> = row.get(6)?;
    let host_dh: Vec<u8> = row.get(7)?;
    let bind_addr: Option<String> = row.get(8)?;
    let bind_iface: Option<String> = row.get(9)?;
    let bind_port: Option<i64> = row.get(10)?;
    Ok((|| {
        let corrupt = |detail: &str| StoreError::Corrupt {
            id,
            detail: detail.into(),
        };
        let ca = match check {
            Check::Now => TlsIdentity::from_der_parts(&ca_key, &ca_cert)
                .map_err(|_| corrupt("ca_key/ca_cert"))?,
            Check::OnUse => TlsIdentity::from_der_parts_unchecked(&ca_key, &ca_cert),
        };
        let identity = Ed25519SecretKey::from_bytes(*Zeroizing::new(key32(id, "id_key", &id_key)?));
        let address = bind_addr
            .map(|a| a.parse().map_err(|_| corrupt("bind_addr")))
            .transpose()?;
        let port = bind_port
            .map(|p| u16::try_from(p).map_err(|_| corrupt("bind_port")))
            .transpose()?;
        Ok(HostRecord {
            id,
            device_name,
            store_path,
            pairing: HostPairing {
                ca,
                identity,
                known_host: Some(KnownHost {
                    host_ca: KeyHash(key32(id, "host_fingerprint", &fingerprint)?),
                    host_dh: X25519PublicKey::from_raw(key32(id, "host_dh_pub", &host_dh)?),
                }),
            },
            binding: Binding {
                address,
                interface: bind_iface,
                port,
            },
        })
    })())
}

/// A fresh folder name for a host's files: 12 random bytes in base64url (16 characters).
fn random_store_path() -> String {
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    base64url_encode(&b)
}

impl HostStore {
    /// Opens (creating if needed) the store in `dir`: the folder `0700` if it is created here,
    /// the database file `0600`, the schema migrated to the current schema version.
    pub fn open(dir: impl AsRef<Path>) -> Result<HostStore, StoreError> {
        let (conn, path) = open_db(dir.as_ref(), DB_FILE)?;
        Ok(HostStore { conn, path })
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
    ) -> Result<Vec<HostRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM remote_hosts {filter} ORDER BY remote_host_id");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map(args, |r| record(r, check))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().collect()
    }

    /// All pairings, oldest first. Each CA is checked when it is first used (a corrupt one
    /// fails that session, not the listing); the identity keys are decoded (an Ed25519
    /// public key derived per record) — [`HostStore::summaries`] decodes none.
    pub fn list(&self) -> Result<Vec<HostRecord>, StoreError> {
        self.query("", [], Check::OnUse)
    }

    /// Id, device name and host CA fingerprint of every pairing, oldest first: what `list`
    /// shows, without touching a key (O(1) per record).
    pub fn summaries(&self) -> Result<Vec<HostSummary>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT remote_host_id, host_device_name, host_fingerprint \
             FROM remote_hosts ORDER BY remote_host_id",
        )?;
        let rows = st
            .query_map([], |r| {
                let id: i64 = r.get(0)?;
                Ok((id, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, device_name, fp)| {
                Ok(HostSummary {
                    id,
                    device_name,
                    host_ca: KeyHash(key32(id, "host_fingerprint", &fp)?),
                })
            })
            .collect()
    }

    /// The pairing with this id, or `None`. Its CA key is checked against its certificate
    /// now, since the record is about to be used.
    pub fn get(&self, id: i64) -> Result<Option<HostRecord>, StoreError> {
        Ok(self
            .query("WHERE remote_host_id = ?1", [id], Check::Now)?
            .pop())
    }

    /// The pairing of the host whose CA has this fingerprint.
    pub fn find_by_fingerprint(&self, host_ca: &KeyHash) -> Result<Option<HostRecord>, StoreError> {
        Ok(self
            .query(
                "WHERE host_fingerprint = ?1",
                [host_ca.0.as_slice()],
                Check::Now,
            )?
            .pop())
    }

    /// Stores a new host after its first session reached HELLO; pass the pairing that
    /// handshake produced. Returns the new id; the record gets a fresh
    /// `store_path`.
    pub fn insert(
        &mut self,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<i64, StoreError> {
        let known = pairing.known_host.ok_or(StoreError::NotPaired)?;
        let (ca_key, ca_cert) = pairing.ca.to_der_parts();
        let id_key = pairing.identity.to_bytes();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO remote_hosts (host_device_name, store_path, ca_key, ca_cert, id_key,
               host_fingerprint, host_dh_pub, bind_addr, bind_iface, bind_port)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                device_name,
                random_store_path(),
                ca_key.as_slice(),
                ca_cert,
                id_key.as_slice(),
                known.host_ca.0.as_slice(),
                known.host_dh.as_raw().as_slice(),
                binding.address.map(|a| a.to_string()),
                binding.interface,
                binding.port,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Records a later session that reached HELLO, in one transaction: the host's new DH key
    /// (the next announcement's key), its device name and the binding used. Pass the pairing
    /// the handshake produced. The host CA is pinned at the first session and never
    /// rewritten here.
    pub fn update_after_session(
        &mut self,
        id: i64,
        device_name: &str,
        pairing: &HostPairing,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        let known = pairing.known_host.ok_or(StoreError::NotPaired)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE remote_hosts SET host_device_name = ?2, host_dh_pub = ?3, bind_addr = ?4,
               bind_iface = ?5, bind_port = ?6, updated_at = strftime('%s', 'now')
             WHERE remote_host_id = ?1",
            params![
                id,
                device_name,
                known.host_dh.as_raw().as_slice(),
                binding.address.map(|a| a.to_string()),
                binding.interface,
                binding.port,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a host; `false` if there was no such pairing. The caller removes the host's
    /// file folder (`store_path`).
    pub fn delete(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM remote_hosts WHERE remote_host_id = ?1", [id])?
            > 0)
    }

    /// Renames a stored host; [`StoreError::NotFound`] if there is no such pairing.
    pub fn set_device_name(&mut self, id: i64, name: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE remote_hosts SET host_device_name = ?2 WHERE remote_host_id = ?1",
            params![id, name],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use xrcp::crypto::X25519SecretKey;

    fn paired() -> HostPairing {
        let mut p = HostPairing::new().unwrap();
        p.known_host = Some(KnownHost {
            host_ca: KeyHash(*X25519SecretKey::generate().public().as_raw()),
            host_dh: X25519SecretKey::generate().public(),
        });
        p
    }

    fn same(a: &HostPairing, b: &HostPairing) {
        assert_eq!(a.ca.fingerprint(), b.ca.fingerprint());
        assert_eq!(a.ca.to_der_parts().0, b.ca.to_der_parts().0);
        assert_eq!(a.identity.public(), b.identity.public());
        assert_eq!(a.known_host, b.known_host);
    }

    /// `summaries` decodes no key: a record whose identity key is not 32 bytes is listed
    /// with the others and reported only when used (`get`, `list`). Eager decoding fails the
    /// listing.
    #[test]
    fn corrupt_key_is_reported_on_use_not_by_summaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = HostStore::open(dir.path()).unwrap();
        let ids: Vec<i64> = (0..3)
            .map(|i| {
                store
                    .insert(&format!("phone {i}"), &paired(), &Binding::default())
                    .unwrap()
            })
            .collect();
        store
            .conn
            .execute(
                "UPDATE remote_hosts SET id_key = x'00' WHERE remote_host_id = ?1",
                [ids[1]],
            )
            .unwrap();
        let listed: Vec<(i64, String)> = store
            .summaries()
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.device_name))
            .collect();
        assert_eq!(
            listed,
            ids.iter()
                .enumerate()
                .map(|(i, id)| (*id, format!("phone {i}")))
                .collect::<Vec<_>>()
        );
        assert!(store.get(ids[0]).unwrap().is_some());
        for used in [store.get(ids[1]).map(|_| ()), store.list().map(|_| ())] {
            match used {
                Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, ids[1]),
                other => panic!("expected a corrupt record, got {other:?}"),
            }
        }
    }

    #[test]
    fn round_trip_update_find_delete() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ctrl");
        let mut store = HostStore::open(&data).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(
            store.insert("x", &HostPairing::new().unwrap(), &Binding::default()),
            Err(StoreError::NotPaired)
        ));
        let p1 = paired();
        let bind = Binding {
            address: Some(Ipv4Addr::new(10, 1, 2, 3)),
            interface: Some("eth0".into()),
            port: Some(5000),
        };
        let id1 = store.insert("phone", &p1, &bind).unwrap();
        let id2 = store
            .insert("tablet", &paired(), &Binding::default())
            .unwrap();
        let r1 = store.get(id1).unwrap().unwrap();
        assert_eq!(r1.store_path.len(), 16);
        assert_ne!(r1.store_path, store.get(id2).unwrap().unwrap().store_path);

        let mut p1b = p1.clone();
        p1b.known_host = Some(KnownHost {
            host_dh: X25519SecretKey::generate().public(),
            ..p1.known_host.unwrap()
        });
        store
            .update_after_session(id1, "phone 2", &p1b, &Binding::default())
            .unwrap();
        drop(store);

        let mut store = HostStore::open(&data).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id1, id2]);
        same(&all[0].pairing, &p1b);
        assert_eq!(all[0].device_name, "phone 2");
        assert_eq!(all[0].binding, Binding::default());
        assert_eq!(all[0].store_path, r1.store_path);
        let found = store
            .find_by_fingerprint(&p1.known_host.unwrap().host_ca)
            .unwrap()
            .unwrap();
        assert_eq!(found.id, id1);
        assert!(store
            .find_by_fingerprint(&KeyHash([9; 32]))
            .unwrap()
            .is_none());

        store.set_device_name(id2, "pad").unwrap();
        assert_eq!(store.get(id2).unwrap().unwrap().device_name, "pad");
        assert!(matches!(
            store.set_device_name(77, "x"),
            Err(StoreError::NotFound(77))
        ));
        assert!(matches!(
            store.update_after_session(77, "x", &p1b, &bind),
            Err(StoreError::NotFound(77))
        ));
        assert!(store.delete(id1).unwrap());
        assert!(!store.delete(id1).unwrap());
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn binding_round_trips_through_options() {
        let b = Binding {
            address: Some(Ipv4Addr::new(192, 168, 1, 9)),
            interface: Some("wlan0".into()),
            port: Some(4433),
        };
        let mut o = ControllerOptions::default();
        b.apply(&mut o);
        assert_eq!(Binding::of(&o), b);
        Binding::default().apply(&mut o);
        assert_eq!(o.port, 0);
        assert_eq!(Binding::of(&o), Binding::default());
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("x/y");
        let mut store = HostStore::open(&data).unwrap();
        store.insert("d", &paired(), &Binding::default()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("x")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        for side in ["-wal", "-shm"] {
            let f = data.join(format!("{DB_FILE}{side}"));
            if f.exists() {
                assert_eq!(mode(&f), 0o600, "{side}");
            }
        }
    }

    #[test]
    fn migrates_empty_database_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(DB_FILE), b"").unwrap();
        let store = HostStore::open(dir.path()).unwrap();
        let v: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let tables: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'remote_hosts'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
        store.conn.pragma_update(None, "user_version", 42).unwrap();
        drop(store);
        assert!(matches!(
            HostStore::open(dir.path()),
            Err(StoreError::Open(sqlite::OpenError::NewerSchema {
                found: 42,
                ..
            }))
        ));
    }

    #[test]
    fn debug_shows_no_secrets() {
        let p = paired();
        let r = HostRecord {
            id: 3,
            device_name: "phone".into(),
            store_path: "abc".into(),
            pairing: p.clone(),
            binding: Binding::default(),
        };
        let shown = format!("{r:?} {:?}", r.pairing);
        let (key, _) = p.ca.to_der_parts();
        let id = p.identity.to_bytes();
        for secret in [&key[16..48], id.as_slice()] {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let list = format!("{secret:?}");
            assert!(!shown.to_lowercase().contains(&hex), "{shown}");
            assert!(!shown.contains(&list[1..list.len() - 1]), "{shown}");
            assert!(!shown.contains(&base64url_encode(secret)), "{shown}");
        }
    }
}
