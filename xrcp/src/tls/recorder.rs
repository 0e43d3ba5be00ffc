//! Feeds a [`FinishedCapture`] from beneath tokio-rustls (feature `tokio`).
//!
//! tokio-rustls drives rustls' `read_tls`/`write_tls` itself, so the bytes are taken where it
//! reads and writes the transport: this wrapper hands each read and written slice to the
//! capture, which keeps the direction that carries the client's flight
//! (spec/xrcp.md §6.5). Once the capture is finished the wrapper only forwards.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::binding::FinishedCapture;

#[derive(Debug)]
pub(crate) struct Recorder<S> {
    inner: S,
    pub(crate) capture: FinishedCapture,
}

impl<S> Recorder<S> {
    pub(crate) fn new(inner: S, capture: FinishedCapture) -> Recorder<S> {
        Recorder { inner, capture }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
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
            this.capture.incoming(&buf.filled()[before..]);
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
            this.capture.outgoing(&buf[..n.min(buf.len())]);
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
            if this.capture.is_recording() {
                let mut left = n;
                for slice in bufs {
                    if left == 0 {
                        break;
                    }
                    let k = slice.len().min(left);
                    this.capture.outgoing(&slice[..k]);
                    left -= k;
                }
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
