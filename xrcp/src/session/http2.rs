//! Moving session bodies and attachments through h2 streams with flow control
//! (spec/xrcp.md §10.1–§10.2). The one async adapter of the session layer: both roles use it,
//! the controller on its HTTP/2 client streams and the host on its server streams.

use std::future::poll_fn;

use super::{
    BodyHead, FileDecryptor, FileDigest, FileDigester, FileEncryptor, RemoteCrypto,
    RemoteProtocolError, SbKeyNonce, FILE_CHUNK_SIZE,
};
use bytes::Bytes;
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much we ask h2 for at a time when sending.
const SEND_CHUNK: usize = 64 << 10;

/// The largest HTTP/2 frame both of our roles accept (SETTINGS_MAX_FRAME_SIZE, RFC 9113
/// §6.5.2; the default is 16 KiB). A peer may then send an attachment in frames as large as
/// our send chunks, a quarter as many frames and wake-ups per byte. Only a limit on what we
/// receive: a peer that keeps to 16 KiB frames is unaffected.
pub const MAX_FRAME_SIZE: u32 = SEND_CHUNK as u32;

pub fn http2_error(e: impl std::fmt::Display) -> RemoteProtocolError {
    RemoteProtocolError::Http2(e.to_string())
}

fn io_error(e: std::io::Error) -> RemoteProtocolError {
    RemoteProtocolError::Exception(e.to_string())
}

/// Sends `data` on `stream`, waiting for flow-control capacity (so that a streamed
/// attachment is never buffered beyond one window).
pub async fn send_all(
    stream: &mut SendStream<Bytes>,
    data: Bytes,
) -> Result<(), RemoteProtocolError> {
    send_data(stream, data).await
}

/// Hands a session body (already in memory, at most [`super::MAX_BODY_CT_LEN`] plus the
/// signatures) to h2 at once, ending the stream if `end`. Waiting for flow-control capacity
/// first, as [`send_all`] does for attachments, costs two extra hand-offs between our task and
/// the connection task per body and buys nothing here: h2 holds the `Bytes` either way and
/// sends them as the peer's window allows.
pub fn send_body(
    stream: &mut SendStream<Bytes>,
    body: Bytes,
    end: bool,
) -> Result<(), RemoteProtocolError> {
    stream.send_data(body, end).map_err(http2_error)
}

async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
) -> Result<(), RemoteProtocolError> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len().min(SEND_CHUNK));
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(0)) => continue,
            Some(Ok(n)) => {
                let chunk = data.split_to(n.min(data.len()));
                stream.send_data(chunk, false).map_err(http2_error)?;
            }
            Some(Err(e)) => return Err(http2_error(e)),
            None => return Err(RemoteProtocolError::Http2("stream closed by peer".into())),
        }
    }
    Ok(())
}

/// Ends the stream (no more data).
pub fn finish(stream: &mut SendStream<Bytes>) -> Result<(), RemoteProtocolError> {
    stream.send_data(Bytes::new(), true).map_err(http2_error)
}

/// An incoming body with one chunk of push-back, releasing flow-control capacity as chunks
/// are taken (so at most one window of data is buffered per stream).
pub struct BodyReader {
    stream: RecvStream,
    pending: Bytes,
}

impl BodyReader {
    pub fn new(stream: RecvStream) -> Self {
        BodyReader {
            stream,
            pending: Bytes::new(),
        }
    }

    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, RemoteProtocolError> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        match self.stream.data().await {
            None => Ok(None),
            Some(Ok(b)) => {
                // Releasing can only fail if the stream is already gone; the next read says so.
                let _ = self.stream.flow_control().release_capacity(b.len());
                Ok(Some(b))
            }
            Some(Err(e)) => Err(http2_error(e)),
        }
    }

    fn unread(&mut self, b: Bytes) {
        self.pending = b;
    }

    /// Reads one body head (corrId, ctLen, ct, and the signatures if `crypto` expects them).
    pub async fn read_head(
        &mut self,
        crypto: &RemoteCrypto,
    ) -> Result<BodyHead, RemoteProtocolError> {
        let mut r = crypto.head_reader();
        while !r.is_complete() {
            let Some(mut chunk) = self.next_chunk().await? else {
                break;
            };
            let used = r.push(&chunk)?;
            if used < chunk.len() {
                self.unread(chunk.split_off(used));
            }
        }
        r.finish()
    }

    /// Receives an attachment into `out`, checking marker, size, tag and digest. `out` holds
    /// unauthenticated data until this returns `Ok`.
    ///
    /// From [`PARALLEL_DIGEST_MIN`] bytes on, the SHA-512 runs on a blocking thread next to
    /// the decryption: the two cost about the same per byte (BENCHMARKS.md §3b), so the
    /// receiving task no longer does both.
    pub async fn receive_file<W: AsyncWrite + Unpin>(
        &mut self,
        key: &SbKeyNonce,
        file_size: u32,
        file_digest: FileDigest,
        out: &mut W,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<(), RemoteProtocolError> {
        let mut hasher = (file_size >= PARALLEL_DIGEST_MIN).then(DigestThread::start);
        let mut dec = match hasher {
            Some(_) => FileDecryptor::with_detached_digest(key, file_size, file_digest),
            None => FileDecryptor::new(key, file_size, file_digest),
        };
        let mut plain = Vec::with_capacity(FILE_CHUNK_SIZE);
        while !dec.is_complete() {
            let Some(chunk) = self.next_chunk().await? else {
                break;
            };
            plain.clear();
            dec.push(&chunk, &mut plain)?;
            match &mut hasher {
                Some(thread) => {
                    let plain = Bytes::copy_from_slice(&plain);
                    out.write_all(&plain).await.map_err(io_error)?;
                    thread.feed(plain).await?;
                }
                None => out.write_all(&plain).await.map_err(io_error)?,
            }
            progress(dec.received(), u64::from(file_size));
        }
        out.flush().await.map_err(io_error)?;
        match hasher {
            Some(thread) => dec.finish_with_digest(thread.finish().await?),
            None => dec.finish(),
        }
    }
}

/// SHA-512 of an attachment's plaintext on a blocking thread, fed through a bounded queue.
struct DigestThread {
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    digest: tokio::task::JoinHandle<FileDigest>,
}

impl DigestThread {
    fn start() -> Self {
        let (chunks, mut queue) = tokio::sync::mpsc::channel::<Bytes>(DIGEST_QUEUE);
        let digest = tokio::task::spawn_blocking(move || {
            let mut digest = FileDigester::new();
            while let Some(chunk) = queue.blocking_recv() {
                digest.update(&chunk);
            }
            digest.finish()
        });
        DigestThread { chunks, digest }
    }

    async fn feed(&mut self, chunk: Bytes) -> Result<(), RemoteProtocolError> {
        self.chunks
            .send(chunk)
            .await
            .map_err(|_| RemoteProtocolError::Exception("digest thread ended".into()))
    }

    async fn finish(self) -> Result<FileDigest, RemoteProtocolError> {
        drop(self.chunks);
        self.digest
            .await
            .map_err(|e| RemoteProtocolError::Exception(format!("digest thread: {e}")))
    }
}

/// Attachments from this size on are hashed on a separate thread ([`BodyReader::receive_file`]).
pub const PARALLEL_DIGEST_MIN: u32 = 1 << 20;

/// Decrypted chunks (one per HTTP/2 frame, ≤ [`MAX_FRAME_SIZE`]) waiting for the hashing
/// thread: at most 1 MiB, whatever the file size. SHA-512 is faster than the decryption, so
/// the queue is normally near empty.
const DIGEST_QUEUE: usize = 16;

/// Sends an attachment of exactly `file_size` bytes read from `reader`. A reader that ends
/// early is [`RemoteProtocolError::FileSize`]; the stream is then left unfinished for the
/// caller to close, and the receiver sees a short attachment (also `RPEFileSize`).
pub async fn send_file<R: AsyncRead + Unpin>(
    stream: &mut SendStream<Bytes>,
    key: &SbKeyNonce,
    file_size: u32,
    reader: &mut R,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(), RemoteProtocolError> {
    let mut enc = FileEncryptor::new(key, file_size)?;
    send_all(stream, Bytes::copy_from_slice(&enc.header())).await?;
    let total = u64::from(file_size);
    let mut buf = vec![0u8; 4 * FILE_CHUNK_SIZE];
    while enc.done() < total {
        let want = usize::try_from(total - enc.done()).map_or(buf.len(), |l| l.min(buf.len()));
        let n = reader.read(&mut buf[..want]).await.map_err(io_error)?;
        if n == 0 {
            return Err(RemoteProtocolError::FileSize);
        }
        enc.encrypt(&mut buf[..n])?;
        send_all(stream, Bytes::copy_from_slice(&buf[..n])).await?;
        progress(enc.done(), total);
    }
    let tag = enc.finish()?;
    send_all(stream, Bytes::copy_from_slice(&tag)).await
}

/// How often an idle session is probed, and how long a PING may go unanswered. The reference
/// sends no PINGs; without them a peer that stops answering (its network gone, the connection
/// stalled rather than closed) would leave the session open for ever, because the stalled
/// peer's kernel keeps acknowledging TCP. Every HTTP/2 peer must answer PINGs (RFC 9113 §6.7).
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(4);
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Resolves, with the reason, when the peer stops answering PINGs. Never resolves when the
/// connection gave no ping handle. Must be polled alongside the connection, which carries the
/// PINGs and their acknowledgements.
pub async fn keepalive(
    ping_pong: Option<h2::PingPong>,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) -> String {
    let Some(mut ping_pong) = ping_pong else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, ping_pong.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return format!("ping failed: {e}"),
            Err(_) => return format!("no PING reply within {timeout:?}"),
        }
    }
}
