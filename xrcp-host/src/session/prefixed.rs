//! A stream that first yields bytes already read from it.
//!
//! The handshake reads the controller's HELLO block from the TLS stream; a buffered reader may
//! take bytes past the 16384-byte block, and the controller starts HTTP/2 immediately after
//! its HELLO (spec/xrcp.md §10.1: bytes read past the HELLO block must not be
//! discarded). Those bytes are the beginning of the HTTP/2 connection preface and must reach the
//! HTTP/2 server before anything else read from the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, with `prefix` served first on the read side. Writes go straight to `inner`.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: impl Into<Bytes>, inner: S) -> Self {
        Prefixed {
            prefix: prefix.into(),
            inner,
        }
    }

    /// Prefix bytes not yet read.
    pub fn pending(&self) -> usize {
        self.prefix.len()
    }

    pub fn into_inner(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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
    async fn prefix_comes_first_then_stream() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut p = Prefixed::new(&b"hello "[..], a);
        b.write_all(b"world").await.unwrap();
        let mut buf = [0u8; 3];
        p.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hel");
        assert_eq!(p.pending(), 3);
        let mut rest = [0u8; 8];
        p.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"lo world");
        p.write_all(b"back").await.unwrap();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"back");
    }
}
