//! The object-safe application trait of the [`crate::Host`] facade.
//!
//! [`HostApp`] (the session layer's trait) uses `-> impl Future` methods and associated
//! types, so that the session server is monomorphised over one application and pays no
//! boxing per request; such a trait cannot be a `dyn` object. [`Application`] is the same
//! contract with boxed futures and boxed files, so that a host can be built from any
//! application chosen at run time (`Arc<dyn Application>`). Every [`HostApp`] is an
//! [`Application`] through a blanket impl, and [`DynApp`] turns an `Arc<dyn Application>`
//! back into a [`HostApp`] for the server.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use xrcp::session::{FileDigest, RRResult, RemoteFile, RemoteProtocolError};

use crate::session::{HostApp, HostAppError, OutgoingFile, StoredFile};

/// A boxed future that can move between threads (what [`Application`]'s methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A download's data, for [`Application::get_file`].
pub type BoxReader = Box<dyn AsyncRead + Unpin + Send + 'static>;

/// The application behind a [`crate::Host`]: it runs the controller's commands and keeps
/// and hands out files (spec/xrcp.md §10). Object-safe; implement it with
/// `Box::pin(async move { ... })` bodies.
pub trait Application: Send + Sync + 'static {
    /// Runs one command, given as the controller's user typed it; the answer (a result or an
    /// application error, both JSON) goes back as `chatResponse`.
    fn execute(&self, command: String, retry_number: i64) -> BoxFuture<'_, RRResult>;

    /// Opens the destination of an upload of `file_size` bytes named `file_name` (chosen by
    /// the controller: untrusted). The default refuses uploads.
    fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> BoxFuture<'_, Result<Box<dyn UploadFile>, HostAppError>> {
        let _ = (file_name, file_size);
        Box::pin(async { Err(refused("this host takes no files")) })
    }

    /// Opens a file the controller asked for. The default refuses downloads.
    fn get_file(
        &self,
        file: RemoteFile,
    ) -> BoxFuture<'_, Result<OutgoingFile<BoxReader>, HostAppError>> {
        let _ = file;
        Box::pin(async { Err(refused("this host gives out no files")) })
    }
}

fn refused(why: &str) -> HostAppError {
    HostAppError::Protocol(RemoteProtocolError::Exception(why.into()))
}

/// An upload in progress, object-safe (the session layer's `StoredFile` with boxed futures). Bytes arrive
/// before the attachment is verified: only [`UploadFile::commit`] makes them permanent.
pub trait UploadFile: AsyncWrite + Unpin + Send + 'static {
    /// The upload was verified: keep the file; gives the path reported to the controller.
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<String, HostAppError>>;
    /// [`UploadFile::commit`], told the SHA-512 of what was written, which the session
    /// checked against the request's `fileDigest` while the bytes streamed (spec/xrcp.md
    /// §10): an application that records digests need not read the file back. The session
    /// calls this one; by default it is `commit`.
    fn commit_verified(
        self: Box<Self>,
        digest: FileDigest,
    ) -> BoxFuture<'static, Result<String, HostAppError>> {
        let _ = digest;
        self.commit()
    }
    /// The upload failed: remove what was written.
    fn discard(self: Box<Self>) -> BoxFuture<'static, ()>;
}

impl<T: StoredFile> UploadFile for T {
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<String, HostAppError>> {
        Box::pin(StoredFile::commit(*self))
    }

    fn commit_verified(
        self: Box<Self>,
        digest: FileDigest,
    ) -> BoxFuture<'static, Result<String, HostAppError>> {
        Box::pin(StoredFile::commit_verified(*self, digest))
    }

    fn discard(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(StoredFile::discard(*self))
    }
}

impl<A: HostApp> Application for A {
    fn execute(&self, command: String, retry_number: i64) -> BoxFuture<'_, RRResult> {
        Box::pin(HostApp::execute(self, command, retry_number))
    }

    fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> BoxFuture<'_, Result<Box<dyn UploadFile>, HostAppError>> {
        Box::pin(async move {
            let stored = HostApp::store_file(self, file_name, file_size).await?;
            Ok(Box::new(stored) as Box<dyn UploadFile>)
        })
    }

    fn get_file(
        &self,
        file: RemoteFile,
    ) -> BoxFuture<'_, Result<OutgoingFile<BoxReader>, HostAppError>> {
        Box::pin(async move {
            let f = HostApp::get_file(self, file).await?;
            Ok(OutgoingFile {
                reader: Box::new(f.reader) as BoxReader,
                size: f.size,
                digest: f.digest,
            })
        })
    }
}

/// An upload of a `dyn` [`Application`], as the session server takes it.
pub(crate) struct DynUpload(Box<dyn UploadFile>);

impl AsyncWrite for DynUpload {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_shutdown(cx)
    }
}

impl StoredFile for DynUpload {
    fn commit(self) -> impl Future<Output = Result<String, HostAppError>> + Send {
        UploadFile::commit(self.0)
    }

    fn commit_verified(
        self,
        digest: FileDigest,
    ) -> impl Future<Output = Result<String, HostAppError>> + Send {
        UploadFile::commit_verified(self.0, digest)
    }

    fn discard(self) -> impl Future<Output = ()> + Send {
        UploadFile::discard(self.0)
    }
}

/// An `Arc<dyn Application>` as a [`HostApp`], to serve with the session layer
/// (`session::serve_session`, `remote::ServedSession::serve`).
#[derive(Clone)]
pub(crate) struct DynApp(pub(crate) Arc<dyn Application>);

impl std::fmt::Debug for DynApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynApp")
    }
}

impl HostApp for DynApp {
    type Stored = DynUpload;
    type Reader = BoxReader;

    fn execute(&self, command: String, retry_number: i64) -> impl Future<Output = RRResult> + Send {
        self.0.execute(command, retry_number)
    }

    async fn store_file(
        &self,
        file_name: String,
        file_size: u32,
    ) -> Result<DynUpload, HostAppError> {
        Ok(DynUpload(self.0.store_file(file_name, file_size).await?))
    }

    fn get_file(
        &self,
        file: RemoteFile,
    ) -> impl Future<Output = Result<OutgoingFile<BoxReader>, HostAppError>> + Send {
        self.0.get_file(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upload that says which commit the session layer called.
    struct Recording;

    impl AsyncWrite for Recording {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl StoredFile for Recording {
        async fn commit(self) -> Result<String, HostAppError> {
            Ok("read back".into())
        }

        async fn commit_verified(self, digest: FileDigest) -> Result<String, HostAppError> {
            Ok(format!("verified {:02x}", digest.0[0]))
        }

        async fn discard(self) {}
    }

    /// The session layer hands the digest it checked to `commit_verified`; through the
    /// facade's boxing (`dyn UploadFile` in a `DynUpload`) it must still reach the
    /// application's own `commit_verified` (the notes app records it instead of reading the
    /// file back), not fall back to `commit`.
    #[tokio::test]
    async fn the_checked_digest_reaches_the_application() {
        let upload = DynUpload(Box::new(Recording));
        let reported = StoredFile::commit_verified(upload, FileDigest([0xab; 64]))
            .await
            .unwrap();
        assert_eq!(reported, "verified ab");
        let upload = DynUpload(Box::new(Recording));
        assert_eq!(StoredFile::commit(upload).await.unwrap(), "read back");
    }
}
