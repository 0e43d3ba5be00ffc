//! Moving session bodies and attachments through h2 streams with flow control
//! (spec/xrcp.md §10.1–§10.2). The one async adapter of the session layer: both roles use it,
//! the controller on its HTTP/2 client streams and the host on its server streams.

use std::future::poll_fn;

use super::{
    BodyHead, BodyHeadReader, FileDecryptor, FileDigest, FileDigester, FileEncryptor,
    RemoteProtocolError, SbKeyNonce, FILE_CHUNK_SIZE,
};
use bytes::{BufMut, Bytes, BytesMut};
use h2::{RecvStream, SendStream};

use crate::error::ErrorDetail;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much we ask h2 for at a time when sending.
const SEND_CHUNK: usize = 64 << 10;

/// The largest HTTP/2 frame both of our roles accept (SETTINGS_MAX_FRAME_SIZE, RFC 9113
/// §6.5.2; the default is 16 KiB). A peer may then send an attachment in frames as large as
/// our send chunks, a quarter as many frames and wake-ups per byte. Only a limit on what we
/// receive: a peer that keeps to 16 KiB frames is unaffected.
pub const MAX_FRAME_SIZE: u32 = SEND_CHUNK as u32;

/// Wraps an h2 (transport) failure as `RPEHTTP2` with its text, keeping the error as the
/// source.
pub fn http2_error(e: h2::Error) -> RemoteProtocolError {
    RemoteProtocolError::Http2(ErrorDetail::caused_by(e))
}

fn io_error(e: std::io::Error) -> RemoteProtocolError {
    RemoteProtocolError::Exception(ErrorDetail::caused_by(e))
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
    /// A reader over `stream`'s incoming data.
    pub fn new(stream: RecvStream) -> Self {
        BodyReader {
            stream,
            pending: Bytes::new(),
        }
    }

    /// The next chunk of the body (a pushed-back chunk first); `None` at its end.
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

    /// Reads one body head into `r` (the session engine's head reader: corrId, ctLen, ct, and
    /// on a request the signatures).
    ///
    /// The bytes are not authenticated until the caller has checked the signatures (host) or
    /// the tag (controller), so what the head buffer may grow to is charged to `budget`
    /// before each chunk is taken: when the session's budget is spent this waits, and h2's
    /// flow control holds the peer back. The returned [`BudgetHold`] gives the bytes back
    /// when dropped; keep it until the body is verified and decoded. The caller bounds the
    /// whole read with a deadline ([`BODY_HEAD_TIMEOUT`]).
    pub async fn read_head(
        &mut self,
        mut r: BodyHeadReader,
        budget: &BodyBudget,
    ) -> Result<(BodyHead, BudgetHold), RemoteProtocolError> {
        let mut hold = BudgetHold::default();
        while !r.is_complete() {
            // Charged before the chunk is taken from h2 (which then lets the peer send more),
            // so that a stream waiting for budget holds nothing uncounted.
            let next = match self.pending.len() {
                0 => MAX_FRAME_SIZE as usize,
                n => n,
            };
            budget.reserve(&mut hold, r.capacity_for(next)).await?;
            let Some(mut chunk) = self.next_chunk().await? else {
                break;
            };
            budget
                .reserve(&mut hold, r.capacity_for(chunk.len()))
                .await?;
            let used = r.push(&chunk)?;
            if used < chunk.len() {
                self.unread(chunk.split_off(used));
            }
        }
        Ok((r.finish()?, hold))
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
            match &mut hasher {
                Some(thread) => {
                    // Decrypted into a buffer of its own that the digest thread then owns:
                    // no copy for the hand-off.
                    let mut own = Vec::with_capacity(chunk.len());
                    dec.push(&chunk, &mut own)?;
                    let own = Bytes::from(own);
                    out.write_all(&own).await.map_err(io_error)?;
                    thread.feed(own).await?;
                }
                None => {
                    plain.clear();
                    dec.push(&chunk, &mut plain)?;
                    out.write_all(&plain).await.map_err(io_error)?;
                }
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

/// How many bytes of not yet verified body heads the streams of one session may hold
/// together (32 MiB): room for three of the largest bodies at once ([`super::MAX_BODY_CT_LEN`]).
/// A peer that opens many streams and never finishes their signatures gets no further.
pub const UNVERIFIED_BODY_BUDGET: usize = 32 << 20;

/// How long a stream may take to deliver its body head (up to and including the signatures
/// on a request) once it has started: 30 s. A legitimate head of the largest size needs a
/// fraction of that even on a slow link; a stream past it is reset and its budget returned.
pub const BODY_HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bodies decrypted, decompressed and parsed at once in this process. Decoding is quick
/// (milliseconds even for the largest body) but is where a body's memory peaks, so it is
/// done one body at a time (docs/security/bodies.md).
pub const MAX_CONCURRENT_DECODES: usize = 1;

static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DECODES);

/// A turn to decode a body ([`MAX_CONCURRENT_DECODES`]); hold it across decryption,
/// decompression and JSON parsing, and no await in between.
pub async fn decode_turn() -> tokio::sync::SemaphorePermit<'static> {
    // The semaphore is never closed.
    DECODES
        .acquire()
        .await
        .unwrap_or_else(|_| unreachable!("decode semaphore closed"))
}

/// The budget unit: permits count KiB so that 32 MiB fits a semaphore's permit counts.
const BUDGET_UNIT: usize = 1024;

/// A session's budget for unverified body bytes ([`UNVERIFIED_BODY_BUDGET`]), shared by its
/// streams.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: std::sync::Arc<tokio::sync::Semaphore>,
    total: u32,
}

/// Budget held by one stream's head; returned when dropped.
#[derive(Debug, Default)]
pub struct BudgetHold {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl BudgetHold {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, |p| p.num_permits() * BUDGET_UNIT)
    }
}

impl BodyBudget {
    /// A budget of `bytes`, rounded up to whole units.
    pub fn new(bytes: usize) -> Self {
        let units = u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX >> 3);
        BodyBudget {
            units: std::sync::Arc::new(tokio::sync::Semaphore::new(units as usize)),
            total: units,
        }
    }

    /// Bytes not held by any stream now.
    pub fn available(&self) -> usize {
        self.units.available_permits() * BUDGET_UNIT
    }

    /// Grows `hold` to at least `bytes`, waiting for other streams to give budget back.
    async fn reserve(
        &self,
        hold: &mut BudgetHold,
        bytes: usize,
    ) -> Result<(), RemoteProtocolError> {
        let have = hold.permit.as_ref().map_or(0, |p| p.num_permits());
        let need = bytes.div_ceil(BUDGET_UNIT);
        if need <= have {
            return Ok(());
        }
        let more = u32::try_from(need - have)
            .ok()
            .filter(|&n| n <= self.total)
            .ok_or(RemoteProtocolError::InvalidSize)?;
        let permit = std::sync::Arc::clone(&self.units)
            .acquire_many_owned(more)
            .await
            .map_err(|_| RemoteProtocolError::Exception("session ended".into()))?;
        match &mut hold.permit {
            Some(p) => p.merge(permit),
            None => hold.permit = Some(permit),
        }
        Ok(())
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget::new(UNVERIFIED_BODY_BUDGET)
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
        self.digest.await.map_err(|e| {
            RemoteProtocolError::Exception(ErrorDetail::with_source(
                format!("digest thread: {e}"),
                e,
            ))
        })
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
    const PIECE: usize = 4 * FILE_CHUNK_SIZE;
    while enc.done() < total {
        let want = usize::try_from(total - enc.done()).map_or(PIECE, |l| l.min(PIECE));
        // Read into a buffer of its own, encrypted in place and handed to h2 as it is: no
        // copy between the reader and the stream (and no zeroing: `read_buf` fills spare
        // capacity).
        let mut piece = BytesMut::with_capacity(want);
        let n = reader
            .read_buf(&mut (&mut piece).limit(want))
            .await
            .map_err(io_error)?;
        if n == 0 {
            return Err(RemoteProtocolError::FileSize);
        }
        enc.encrypt(&mut piece[..n])?;
        // A short read (the end of the reader's buffer; a pipe) would otherwise keep a whole
        // piece's allocation alive in h2 for a few bytes: those few are copied out instead,
        // so what h2 holds stays within twice the bytes it holds.
        let piece = if n < want / 2 {
            Bytes::copy_from_slice(&piece[..n])
        } else {
            piece.freeze()
        };
        send_all(stream, piece).await?;
        progress(enc.done(), total);
    }
    let tag = enc.finish()?;
    send_all(stream, Bytes::copy_from_slice(&tag)).await
}

/// How often an idle session is probed (see also [`KEEPALIVE_TIMEOUT`]). The reference
/// sends no PINGs; without them a peer that stops answering (its network gone, the connection
/// stalled rather than closed) would leave the session open for ever, because the stalled
/// peer's kernel keeps acknowledging TCP. Every HTTP/2 peer must answer PINGs (RFC 9113 §6.7).
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(4);
/// How long an unanswered PING may be outstanding before the peer is taken as gone.
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
            Err(_) => return format!("no PING reply within {} s", timeout.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RPEHTTP2` carries h2's text on the wire and keeps the `h2::Error` itself for programs
    /// (spec/xrcp.md §10.5).
    #[test]
    fn an_h2_failure_keeps_its_source() {
        let e = http2_error(h2::Error::from(h2::Reason::FLOW_CONTROL_ERROR));
        let RemoteProtocolError::Http2(detail) = &e else {
            panic!("{e:?}")
        };
        assert!(detail.text().contains("flow-control"), "{}", detail.text());
        let source = std::error::Error::source(&e).expect("the h2::Error is kept");
        let h2 = source.downcast_ref::<h2::Error>().expect("an h2::Error");
        assert_eq!(h2.reason(), Some(h2::Reason::FLOW_CONTROL_ERROR));
        // The wire form is the text alone.
        assert_eq!(
            RemoteProtocolError::from_json(&e.to_json()).unwrap(),
            RemoteProtocolError::Http2(detail.text().into())
        );
    }
}
