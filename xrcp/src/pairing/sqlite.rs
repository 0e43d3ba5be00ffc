//! Opening a pairing database (spec/xrcp.md §9.3: a crash never loses a pairing): the one
//! SQLite set-up both role stores share (`xrcp-ctrl::store`, `xrcp-host::store`).
//!
//! - The folder is made `0700` and the file `0600`, also when they already existed with wider
//!   modes (an older build, or a umask of 000); SQLite gives its `-wal`, `-shm` and `-journal`
//!   files the database's mode, and ones left from before are tightened too: rows hold
//!   private keys. [`private_dir`] and [`private_db_file`] do the same for other files kept
//!   in a data directory (the host's notes).
//! - WAL with `synchronous=FULL`: a commit is on disk before it returns, and a crash leaves the
//!   old or the new row, never a mix. `secure_delete` overwrites deleted rows.
//! - The schema version is `PRAGMA user_version`; pending migrations run in one `IMMEDIATE`
//!   transaction, so two processes opening a fresh store do not both migrate, and a database
//!   from a newer build is refused rather than guessed at.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a pairing database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite refused to open or set up the database.
    #[error("pairing database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The folder for the database could not be made or used.
    #[error("pairing folder: {0}")]
    Io(#[from] std::io::Error),
    /// The database was written by a newer build.
    #[error("pairing database schema {found} is newer than supported {supported}")]
    NewerSchema {
        /// The schema version in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
}

/// Opens (creating if needed) `dir/file` and brings its schema to `migrations.len()`:
/// migration `i` takes the schema from version `i` to `i + 1`.
pub fn open(
    dir: &Path,
    file: &str,
    migrations: &[&str],
) -> Result<(Connection, PathBuf), OpenError> {
    private_dir(dir)?;
    let path = dir.join(file);
    private_db_file(&path)?;

    let mut conn = Connection::open(&path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    migrate(&mut conn, migrations)?;
    Ok((conn, path))
}

/// The files SQLite keeps next to a database, by suffix.
const DB_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates `dir` (and missing parents) `0700`, or makes an existing one `0700`: everything
/// in a data directory is the user's alone, whatever the umask or an older build left.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    set_mode(dir, 0o700)
}

/// Creates the database file `path` `0600` if missing (so that SQLite, which copies the
/// database's mode to its `-wal`/`-shm`/`-journal` files, never creates them wider), and
/// makes the file and any such side files already there `0600`.
pub fn private_db_file(path: &Path) -> std::io::Result<()> {
    let mut o = fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    drop(o.open(path)?);
    set_mode(path, 0o600)?;
    for suffix in DB_SIDE_FILES {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match set_mode(Path::new(&side), 0o600) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Sets the permission bits of `path` (not following a symlink at `path`: a link's own
/// mode means nothing, and its target is not ours to change) when they differ.
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() || meta.permissions().mode() & 0o7777 == mode {
            return Ok(());
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The file in a data directory that keeps the program's own settings (the device name set
/// with `/set device name`), as a JSON object. Not in the pairing database: a setting needs
/// no schema version, and an older build can still open the database.
pub const SETTINGS_FILE: &str = "settings.json";

/// The device name saved in `dir`'s [`SETTINGS_FILE`], if one was set. A file that does not
/// parse counts as no setting (it is replaced at the next save).
pub fn load_device_name(dir: &Path) -> std::io::Result<Option<String>> {
    let text = match fs::read(dir.join(SETTINGS_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("{SETTINGS_FILE} is not valid JSON ({e}); ignoring it");
            return Ok(None);
        }
    };
    Ok(v.get("deviceName")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned))
}

/// Saves the device name in `dir`'s [`SETTINGS_FILE`], private (`0600`) like everything in
/// a data directory. Written to a new temporary file, synced, then renamed over the old one:
/// a crash leaves the old settings or the new, never a torn file.
pub fn save_device_name(dir: &Path, name: &str) -> std::io::Result<()> {
    use std::io::Write;
    private_dir(dir)?;
    let data = serde_json::to_vec(&serde_json::json!({ "deviceName": name }))
        .map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{SETTINGS_FILE}.{}.tmp", std::process::id()));
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let written = (|| {
        let mut f = o.open(&tmp)?;
        set_mode(&tmp, 0o600)?;
        f.write_all(&data)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(SETTINGS_FILE))?;
        // The rename itself is durable once the folder is synced.
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), OpenError> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > supported {
        return Err(OpenError::NewerSchema { found, supported });
    }
    for m in migrations.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_name_is_saved_privately_and_read_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        assert_eq!(load_device_name(&dir).unwrap(), None);
        save_device_name(&dir, "desk \"one\"").unwrap();
        save_device_name(&dir, "desk 2").unwrap();
        assert_eq!(load_device_name(&dir).unwrap().as_deref(), Some("desk 2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(SETTINGS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(dir.join(SETTINGS_FILE), b"not json").unwrap();
        assert_eq!(load_device_name(&dir).unwrap(), None);
    }

    const V1: &str = "CREATE TABLE t (a INTEGER NOT NULL)";
    const V2: &str = "ALTER TABLE t ADD COLUMN b TEXT";

    #[test]
    fn creates_private_files_migrates_and_refuses_newer() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        let (conn, path) = open(&dir, "p.db", &[V1]).unwrap();
        conn.execute("INSERT INTO t (a) VALUES (1)", []).unwrap();
        drop(conn);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&path), 0o600);
        }
        // Wider modes left by an older build (or a umask of 000) are tightened on open.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let wal = dir.join("p.db-wal");
            fs::write(&wal, b"").unwrap();
            for (p, m) in [(&dir, 0o755), (&path, 0o644), (&wal, 0o666)] {
                fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
            }
            private_dir(&dir).unwrap();
            private_db_file(&path).unwrap();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&wal), 0o600);
            fs::remove_file(&wal).unwrap();
        }
        // Reopening with one more migration keeps the row and adds the column.
        let (conn, _) = open(&dir, "p.db", &[V1, V2]).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        let (a, b): (i64, Option<String>) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((a, b), (1, None));
        drop(conn);
        // An older build refuses the newer schema.
        assert!(matches!(
            open(&dir, "p.db", &[V1]),
            Err(OpenError::NewerSchema {
                found: 2,
                supported: 1
            })
        ));
    }
}
