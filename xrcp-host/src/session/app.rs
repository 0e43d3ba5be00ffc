//! What the host session needs from the application that holds the chat data: running chat
//! commands, and reading and writing files (research notes §2.2 error replies, §3 files).
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
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite};
use xrcp::session::{
    check_file_size, FileDigest, FileDigester, RRResult, RemoteFile, RemoteProtocolError,
    RemoteResponse, FILE_CHUNK_SIZE,
};

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
        HostAppError::Protocol(RemoteProtocolError::Exception(e.to_string()))
    }
}

/// A file being uploaded by the controller. Bytes are written before the attachment's tag
/// and digest are checked, so the destination is provisional until [`StoredFile::commit`];
/// on any failure [`StoredFile::discard`] is called instead.
pub trait StoredFile: AsyncWrite + Unpin + Send + 'static {
    /// The upload was verified: make the file permanent and return the path to report in
    /// `fileStored` (the reference reports the base name when a files folder is set).
    fn commit(self) -> impl Future<Output = Result<String, HostAppError>> + Send;
    /// The upload failed: remove what was written.
    fn discard(self) -> impl Future<Output = ()> + Send;
}

/// A file the host sends back for `getFile`: its size and digest go in the response JSON
/// before the data, so they must be known up front.
#[derive(Debug)]
pub struct OutgoingFile<R> {
    pub reader: R,
    pub size: u32,
    pub digest: FileDigest,
}

impl OutgoingFile<File> {
    /// Opens `path`, reading it once for size and SHA-512 (as the reference's `getFileInfo`)
    /// and rewinding it for sending. Files of 4 GiB − 16 bytes or more are `RPEFileSize`.
    pub async fn open(path: &Path) -> Result<Self, HostAppError> {
        let mut file = File::open(path).await?;
        let mut digester = FileDigester::new();
        let mut buf = vec![0u8; 4 * FILE_CHUNK_SIZE];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            size += n as u64;
            check_file_size(size)?;
            digester.update(&buf[..n]);
        }
        file.rewind().await?;
        Ok(OutgoingFile {
            reader: file,
            size: check_file_size(size)?,
            digest: digester.finish(),
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
#[derive(Clone, Debug)]
pub struct FolderStore {
    dir: PathBuf,
}

/// How many `_n` suffixes [`FolderStore`] tries before giving up with
/// `RPEStoredFileExists`.
const MAX_NAME_SUFFIX: u32 = 10_000;

impl FolderStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FolderStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new file for an upload. Only the last path component of `file_name` is
    /// used, so a controller cannot write outside the folder.
    pub async fn create(&self, file_name: &str) -> Result<FolderFile, HostAppError> {
        let base = Path::new(file_name)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && !n.contains('\0'))
            .ok_or_else(|| {
                HostAppError::Protocol(RemoteProtocolError::Exception(format!(
                    "bad file name {file_name:?}"
                )))
            })?;
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
            let path = self.dir.join(&name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await
            {
                Ok(file) => {
                    return Ok(FolderFile {
                        file,
                        path,
                        name,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(HostAppError::Protocol(
            RemoteProtocolError::StoredFileExists,
        ))
    }
}

/// A file created by [`FolderStore::create`]. Until [`StoredFile::commit`] it is removed
/// when dropped, so an upload cut off mid-way (its task aborted with the session) leaves
/// nothing behind.
#[derive(Debug)]
pub struct FolderFile {
    file: File,
    path: PathBuf,
    name: String,
    committed: bool,
}

impl Drop for FolderFile {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), "removing unfinished upload: {e}");
                }
            }
        }
    }
}

impl FolderFile {
    pub fn path(&self) -> &Path {
        &self.path
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
        self.file.sync_all().await?;
        self.committed = true;
        Ok(std::mem::take(&mut self.name))
    }

    async fn discard(self) {
        // Dropping an uncommitted file removes it.
        drop(self);
    }
}
