//! Records the client→server bytes of a handshake beneath tokio-rustls.
//!
//! The client's Finished is only ever on the wire, encrypted; to recover it we keep a copy of
//! the client's flight: the client records what it writes, the server what it reads
//! (spec/xrcp.md §6.5). Recording stops for good at [`Recorder::take_recording`]
//! (right after the handshake); from then on the wrapper only forwards.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Enough for any client flight with a two-certificate Ed25519 chain (about 1 KiB observed)
/// plus a first application record that may arrive in the same read; beyond it we keep the
/// prefix, and a flight whose Finished lies past it fails to parse.
pub(crate) const RECORDING_CAP: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Record bytes written (TLS client).
    Outgoing,
    /// Record bytes read (TLS server).
    Incoming,
}

#[derive(Debug)]
pub(crate) struct Recorder<S> {
    inner: S,
    direction: Direction,
    recording: Option<Vec<u8>>,
}

impl<S> Recorder<S> {
    pub(crate) fn new(inner: S, direction: Direction) -> Recorder<S> {
        Recorder {
            inner,
            direction,
            recording: Some(Vec::new()),
        }
    }

    /// Stops recording and returns what was recorded (empty if already taken).
    pub(crate) fn take_recording(&mut self) -> Vec<u8> {
        self.recording.take().unwrap_or_default()
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    fn record(&mut self, direction: Direction, bytes: &[u8]) {
        if self.direction != direction {
            return;
        }
        if let Some(buf) = &mut self.recording {
            let room = RECORDING_CAP.saturating_sub(buf.len());
            buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    fn record_slices(&mut self, bufs: &[IoSlice<'_>], mut written: usize) {
        for slice in bufs {
            if written == 0 {
                break;
            }
            let n = slice.len().min(written);
            self.record(Direction::Outgoing, &slice[..n]);
            written -= n;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if this.recording.is_some() {
                this.record(Direction::Incoming, &buf.filled()[before..]);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.record(Direction::Outgoing, &buf[..n.min(buf.len())]);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            if this.recording.is_some() && this.direction == Direction::Outgoing {
                this.record_slices(bufs, n);
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn records_one_direction_until_taken() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut rec = Recorder::new(a, Direction::Outgoing);
        rec.write_all(b"hello").await.unwrap();
        let slices = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        let n = rec.write_vectored(&slices).await.unwrap();
        b.write_all(b"ignored").await.unwrap();
        let mut got = [0u8; 7];
        rec.read_exact(&mut got).await.unwrap();
        assert_eq!(rec.take_recording(), &b"helloabcd"[..5 + n]);

        rec.write_all(b"after").await.unwrap();
        assert!(rec.take_recording().is_empty());
    }

    #[tokio::test]
    async fn incoming_is_capped() {
        let (a, mut b) = tokio::io::duplex(RECORDING_CAP * 2);
        let mut rec = Recorder::new(a, Direction::Incoming);
        let data = vec![7u8; RECORDING_CAP + 100];
        b.write_all(&data).await.unwrap();
        drop(b);
        let mut sink = Vec::new();
        rec.read_to_end(&mut sink).await.unwrap();
        assert_eq!(sink.len(), data.len());
        assert_eq!(rec.take_recording().len(), RECORDING_CAP);
    }
}
