//! What the host session needs from the application that holds the chat data: running chat
//! commands, and reading and writing files (spec/xrcp.md §10.5 error replies, §10.2 files).
//!
//! The trait uses native `async fn`-style methods (`-> impl Future + Send`) rather than the
//! `async-trait` crate: no extra dependency, no boxing per call, and the `Send` bound the
//! server needs to spawn one task per HTTP/2 stream is part of the signature, so an
//! implementation that is not `Send` fails to compile at the `impl`, not deep inside the
//! server. The price — the trait is not object-safe — does not matter: a host serves exactly
//! one application type, chosen at compile time.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;
use tokio::fs::File;
use tokio::io::{AsyncWrite, BufReader, BufWriter};
use xrcp::session::{
    check_file_size, FileDigest, FileDigester, RRResult, RemoteFile, RemoteProtocolError,
    RemoteResponse,
};

/// Block size of file reads and writes on the host: one blocking-thread hand-off per MiB
/// instead of one per 64 KiB chunk (tokio's `File` runs every operation on a blocking thread).
pub const FILE_IO_BLOCK: usize = 1 << 20;

/// A refusal by the application, and how the host reports it (reference
/// `handleRemoteCommand`): chat errors go back as `chatResponse {error}`, protocol errors as
/// `protocolError`.
#[derive(Clone, Debug, PartialEq)]
pub enum HostAppError {
    /// A `ChatError` in the chat API's JSON, e.g. `{"type":"noActiveUser"}`.
    Chat(Value),
    /// A session-level failure, e.g. [`RemoteProtocolError::FileSize`].
    Protocol(RemoteProtocolError),
}

impl HostAppError {
    /// The response the host sends for this error.
    pub fn into_response(self) -> RemoteResponse {
        match self {
            HostAppError::Chat(e) => RemoteResponse::ChatResponse {
                chat_response: RRResult::Error(e),
            },
            HostAppError::Protocol(e) => RemoteResponse::ProtocolError {
                remote_procotol_error: e,
            },
        }
    }
}

impl From<RemoteProtocolError> for HostAppError {
    fn from(e: RemoteProtocolError) -> Self {
        HostAppError::Protocol(e)
    }
}

impl From<io::Error> for HostAppError {
    fn from(e: io::Error) -> Self {
        HostAppError::Protocol(RemoteProtocolError::Exception(e.into()))
    }
}

/// A file being uploaded by the controller. Bytes are written before the attachment's tag
/// and digest are checked, so the destination is provisional until [`StoredFile::commit`];
/// on any failure [`StoredFile::discard`] is called instead.
pub trait StoredFile: AsyncWrite + Unpin + Send + 'static {
    /// The upload was verified: make the file permanent and return the path to report in
    /// `fileStored` (the reference reports the base name when a files folder is set).
    fn commit(self) -> impl Future<Output = Result<String, HostAppError>> + Send;
    /// [`StoredFile::commit`], told the SHA-512 of what was written: the session layer checked
    /// it against the request's `fileDigest` while the bytes streamed (spec/xrcp.md §10), so an
    /// application that records digests takes it from here instead of reading the file back.
    /// The host session calls this one; by default it is `commit`.
    fn commit_verified(
        self,
        digest: FileDigest,
    ) -> impl Future<Output = Result<String, HostAppError>> + Send
    where
        Self: Sized,
    {
        let _ = digest;
        self.commit()
    }
    /// The upload failed: remove what was written.
    fn discard(self) -> impl Future<Output = ()> + Send;
}

/// A file the host sends back for `getFile`: its size and digest go in the response JSON
/// before the data, so they must be known up front.
#[derive(Debug)]
pub struct OutgoingFile<R> {
    /// The file's bytes, sent as the response's attachment (spec/xrcp.md §10.2).
    pub reader: R,
    /// Its length in bytes: the response's `fileSize` (spec/xrcp.md §10.3). Exactly this many
    /// bytes are sent; a reader that ends sooner cuts the attachment (`RPEFileSize`).
    pub size: u32,
    /// Its SHA-512: the response's `fileDigest`, which the controller checks after the data
    /// (spec/xrcp.md §10.2).
    pub digest: FileDigest,
}

/// What [`OutgoingFile::open`] reads from: the file, in 1 MiB reads.
pub type FileReader = BufReader<File>;

impl OutgoingFile<FileReader> {
    /// Opens `path`, reading it once for size and SHA-512 (as the reference's `getFileInfo`)
    /// on a blocking thread in 1 MiB reads, and rewinding it for sending. Files
    /// of 4 GiB − 16 bytes or more are `RPEFileSize`. An application that recorded the
    /// digest when the file was stored uses [`OutgoingFile::open_known`] and skips this pass.
    pub async fn open(path: &Path) -> Result<Self, HostAppError> {
        let path = path.to_owned();
        let (file, size, digest) = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(&path)?;
            let mut digester = FileDigester::new();
            let mut buf = vec![0u8; FILE_IO_BLOCK];
            let mut size = 0u64;
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(HostAppError::from(e)),
                };
                size += n as u64;
                check_file_size(size)?;
                digester.update(&buf[..n]);
            }
            file.rewind()?;
            Ok((file, check_file_size(size)?, digester.finish()))
        })
        .await
        .map_err(|e| io::Error::other(e.to_string()))??;
        Ok(OutgoingFile {
            reader: BufReader::with_capacity(FILE_IO_BLOCK, File::from_std(file)),
            size,
            digest,
        })
    }

    /// Opens `path` for sending with the size and digest recorded when it was stored, without
    /// reading it first. A file whose length is no longer `size` is refused here
    /// (`RPEFileSize`); one changed in place goes out with the recorded digest and the
    /// controller refuses it (`RPEFileDigest`), so a damaged file is never passed off as good.
    pub async fn open_known(
        path: &Path,
        size: u32,
        digest: FileDigest,
    ) -> Result<Self, HostAppError> {
        let file = File::open(path).await?;
        if file.metadata().await?.len() != u64::from(size) {
            return Err(HostAppError::Protocol(RemoteProtocolError::FileSize));
        }
        Ok(OutgoingFile {
            reader: BufReader::with_capacity(FILE_IO_BLOCK, file),
            size,
            digest,
        })
    }
}

/// The application behind a host session.
pub trait HostApp: Send + Sync + 'static {
    /// Where uploads are written.
    type Stored: StoredFile;
    /// What downloads are read from.
    type Reader: tokio::io::AsyncRead + Unpin + Send + 'static;

    /// `RCSend`: run a chat command (its text as the user typed it) and give the chat API's
    /// response JSON or `ChatError` JSON. Errors inside the command are results too; the
    /// session layer never fails because of them.
    fn execute(&self, command: String, retry_number: i64) -> impl Future<Output = RRResult> + Send;

    /// `RCStoreFile`: open the destination for an upload of `file_size` bytes named
    /// `file_name` (a name chosen by the controller: untrusted).
    fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> impl Future<Output = Result<Self::Stored, HostAppError>> + Send;

    /// `RCGetFile`: open a chat item's file for download. The reference checks the user id
    /// and that the file record matches the request; chat errors from those checks are
    /// [`HostAppError::Chat`].
    fn get_file(
        &self,
        file: RemoteFile,
    ) -> impl Future<Output = Result<OutgoingFile<Self::Reader>, HostAppError>> + Send;
}

/// Uploads written into one folder under a unique name (`a.pdf`, `a_1.pdf`, …, like the
/// reference's `uniqueCombine`), reporting the base name.
///
/// An upload is written to a temporary file (`.upload-<pid>-<n>.part`) that is
/// locked while it is being written, and only given its final name when it is committed. A
/// host killed mid-upload therefore leaves no file under a name the listing does not know
/// (which would also push the next upload of that name to `name_1`); the temporary file it
/// leaves is removed by [`FolderStore::remove_stale_uploads`] at the next start.
#[derive(Clone, Debug)]
pub struct FolderStore {
    dir: PathBuf,
}

/// How many `_n` suffixes [`FolderStore`] tries before giving up with
/// `RPEStoredFileExists`.
const MAX_NAME_SUFFIX: u32 = 10_000;

/// Names of uploads in progress: `.upload-<pid>-<n>.part`. The leading dot keeps them out
/// of the way; no final name can take this form because final names come from
/// [`FolderStore::create`], which refuses names of this form.
const TEMP_PREFIX: &str = ".upload-";
const TEMP_SUFFIX: &str = ".part";

impl FolderStore {
    /// Uploads go into `dir`, which must exist (it is not created here).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FolderStore { dir: dir.into() }
    }

    /// The folder uploads are written into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the temporary files of uploads that no process is writing any more (left by a
    /// host that was killed or lost power mid-upload); returns how many were removed. An
    /// upload in progress in another process holds a lock on its file and is left alone.
    pub fn remove_stale_uploads(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_temp_name(name) {
                continue;
            }
            if !entry.file_type()?.is_file() || temp_in_use(&entry.path()) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Creates a new file for an upload. Only the last path component of `file_name` is
    /// used, so a controller cannot write outside the folder. The file gets its final name
    /// only on `commit`.
    pub async fn create(&self, file_name: &str) -> Result<FolderFile, HostAppError> {
        let base = Path::new(file_name)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && !n.contains('\0') && !is_temp_name(n))
            .ok_or_else(|| {
                HostAppError::Protocol(RemoteProtocolError::Exception(
                    format!("bad file name '{}'", file_name.escape_debug()).into(),
                ))
            })?;
        // Done in place, not on a blocking thread (one open and one flock): with no await
        // between creating the file and owning it, an aborted task cannot leave it behind.
        let (file, temp) = create_temp(&self.dir)?;
        Ok(FolderFile {
            file: BufWriter::with_capacity(FILE_IO_BLOCK, File::from_std(file)),
            temp,
            dir: self.dir.clone(),
            base: base.to_owned(),
            committed: false,
        })
    }
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Creates `dir/.upload-<pid>-<n>.part` (new, `0600`), locked against
/// [`FolderStore::remove_stale_uploads`] of other processes for as long as it is open.
fn create_temp(dir: &Path) -> io::Result<(std::fs::File, PathBuf)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(
            "{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}",
            std::process::id()
        ));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(&path) {
            Ok(file) => {
                #[cfg(unix)]
                rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .map_err(io::Error::from)?;
                return Ok((file, path));
            }
            // Left by an earlier process with the same pid: try the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether some process holds the upload lock on `path` (a temporary file being written).
fn temp_in_use(path: &Path) -> bool {
    #[cfg(unix)]
    {
        let Ok(file) = std::fs::File::open(path) else {
            return true;
        };
        // The lock is dropped with `file` when it was free.
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Gives the finished temporary file `temp` the first free name among `base`, `stem_1.ext`,
/// … in `dir`, without ever replacing an existing file: a hard link fails if the name is
/// taken (atomically, unlike a check before a rename). Returns the name.
fn link_unique(dir: &Path, temp: &Path, base: &str) -> Result<String, HostAppError> {
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    for n in 0..=MAX_NAME_SUFFIX {
        let name = if n == 0 {
            base.to_owned()
        } else {
            format!("{stem}_{n}{ext}")
        };
        match std::fs::hard_link(temp, dir.join(&name)) {
            Ok(()) => {
                // The new name must survive a crash before the upload is recorded as stored.
                // Best effort: the name is taken either way, and an error here must not leave
                // it behind unrecorded.
                #[cfg(unix)]
                if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
                    tracing::warn!(dir = %dir.display(), "syncing the files folder: {e}");
                }
                if let Err(e) = std::fs::remove_file(temp) {
                    // Harmless: the next start removes it (nobody holds its lock then).
                    tracing::warn!(path = %temp.display(), "removing upload temporary: {e}");
                }
                return Ok(name);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(HostAppError::Protocol(
        RemoteProtocolError::StoredFileExists,
    ))
}

/// A file created by [`FolderStore::create`]. Until it is committed ([`crate::UploadFile::commit`]) it is a
/// temporary file, removed when dropped, so an upload cut off mid-way (its task aborted
/// with the session) leaves nothing behind.
#[derive(Debug)]
pub struct FolderFile {
    /// Writes reach the file in [`FILE_IO_BLOCK`] blocks.
    file: BufWriter<File>,
    temp: PathBuf,
    dir: PathBuf,
    base: String,
    committed: bool,
}

impl Drop for FolderFile {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_file(&self.temp) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.temp.display(), "removing unfinished upload: {e}");
                }
            }
        }
    }
}

impl FolderFile {
    /// Where the data is being written (a temporary name until committed).
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

impl AsyncWrite for FolderFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl StoredFile for FolderFile {
    async fn commit(mut self) -> Result<String, HostAppError> {
        tokio::io::AsyncWriteExt::flush(&mut self.file).await?;
        self.file.get_mut().sync_all().await?;
        // In place, not on a blocking thread (a few link calls): with no await between
        // taking the name and marking the file committed, an aborted task cannot both give
        // the file its name and remove it as unfinished.
        let name = link_unique(&self.dir, &self.temp, &self.base)?;
        self.committed = true;
        Ok(name)
    }

    async fn discard(self) {
        // Dropping an uncommitted file removes it.
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn uploads_are_named_on_commit_and_leftovers_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        let mut a = store.create("a.txt").await.unwrap();
        a.write_all(b"one").await.unwrap();
        // Until committed, only a temporary name exists.
        assert!(!dir.path().join("a.txt").exists());
        assert!(is_temp_name(
            a.path().file_name().unwrap().to_str().unwrap()
        ));
        // A second upload of the same name, committed first, takes the name.
        let mut b = store.create("a.txt").await.unwrap();
        b.write_all(b"two").await.unwrap();
        assert_eq!(b.commit().await.unwrap(), "a.txt");
        assert_eq!(a.commit().await.unwrap(), "a_1.txt");
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"two");
        assert_eq!(std::fs::read(dir.path().join("a_1.txt")).unwrap(), b"one");
        assert_eq!(names(dir.path()), ["a.txt", "a_1.txt"]);

        // The clean-up removes a crash's leftover but not an upload in progress (locked).
        let c = store.create("c.txt").await.unwrap();
        let leftover = dir.path().join(".upload-1-1.part");
        std::fs::write(&leftover, b"x").unwrap();
        assert_eq!(store.remove_stale_uploads().unwrap(), 1);
        assert!(!leftover.exists());
        assert!(c.path().exists());
        c.discard().await;
        assert_eq!(names(dir.path()), ["a.txt", "a_1.txt"]);

        // A name of the temporary form would be taken for a leftover: refused.
        assert!(store.create(".upload-1-2.part").await.is_err());
        assert!(store.create(".upload-notes").await.is_ok());
    }
}
