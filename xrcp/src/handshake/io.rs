//! Reading and writing whole 16384-byte blocks over a byte stream (spec/xrcp.md §7.1): the
//! only I/O of the handshake. Bytes after the block stay in the stream for the session layer.
//!
//! Failures are a [`BlockIoError`], which keeps the stream's `io::Error`; it becomes a wire
//! kind ([`RcError`]) only where one is reported (`From<BlockIoError> for RcError`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::RcError;
use crate::message::BLOCK_SIZE;

/// Why a handshake block could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockIoError {
    /// The stream ended inside a block, or a block to write is not 16384 bytes (reported as
    /// `BLOCK_SIZE`, spec/xrcp.md §7.1).
    #[error("{}", RcError::BlockSize)]
    BlockSize,
    /// The stream itself failed (reported as `EXCEPTION` with the error's text).
    #[error("the connection failed: {}", crate::error::plain(&.0.to_string()))]
    Io(#[source] std::io::Error),
}

/// The wire kind of a block failure: what the reference reports for the same failure.
impl From<BlockIoError> for RcError {
    fn from(err: BlockIoError) -> Self {
        match err {
            BlockIoError::BlockSize => RcError::BlockSize,
            BlockIoError::Io(e) => RcError::Exception(e.into()),
        }
    }
}

/// Reads exactly one block; end of stream before 16384 bytes is [`BlockIoError::BlockSize`].
pub async fn read_block<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, BlockIoError> {
    read_block_or_close(stream)
        .await?
        .ok_or(BlockIoError::BlockSize)
}

/// Like [`read_block`], but a peer that closes before sending any byte gives `Ok(None)`:
/// that is how a host whose user rejected the session code leaves.
pub async fn read_block_or_close<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<Vec<u8>>, BlockIoError> {
    let mut block = vec![0u8; BLOCK_SIZE];
    let mut filled = 0;
    while filled < BLOCK_SIZE {
        match stream.read(&mut block[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(BlockIoError::BlockSize),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && filled == 0 => {
                return Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(BlockIoError::BlockSize)
            }
            Err(e) => return Err(BlockIoError::Io(e)),
        }
    }
    Ok(Some(block))
}

/// Writes one block (already padded to 16384 bytes) and flushes it.
pub async fn write_block<S: AsyncWrite + Unpin>(
    stream: &mut S,
    block: &[u8],
) -> Result<(), BlockIoError> {
    if block.len() != BLOCK_SIZE {
        return Err(BlockIoError::BlockSize);
    }
    stream.write_all(block).await.map_err(BlockIoError::Io)?;
    stream.flush().await.map_err(BlockIoError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_stream_is_block_size() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0; 100]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_block(&mut b).await.unwrap_err(),
            BlockIoError::BlockSize
        ));
        let (a, mut b) = tokio::io::duplex(1 << 16);
        drop(a);
        assert_eq!(read_block_or_close(&mut b).await.unwrap(), None);

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_block(&mut a, &[7; BLOCK_SIZE]).await.unwrap();
        a.write_all(b"next").await.unwrap();
        assert_eq!(read_block(&mut b).await.unwrap(), vec![7; BLOCK_SIZE]);
        let mut rest = [0u8; 4];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"next");
        assert!(matches!(
            write_block(&mut a, &[0; 10]).await.unwrap_err(),
            BlockIoError::BlockSize
        ));
    }

    /// A failing stream keeps its `io::Error` (kind and source) until it is reported, and is
    /// then the reference's `EXCEPTION` with the error's text.
    #[tokio::test]
    async fn stream_failures_keep_their_io_error() {
        struct Broken;
        impl AsyncRead for Broken {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset by peer",
                )))
            }
        }
        let err = read_block(&mut Broken).await.unwrap_err();
        match &err {
            BlockIoError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            other => panic!("{other}"),
        }
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.to_string(), "the connection failed: reset by peer");
        let wire = RcError::from(err);
        assert_eq!(wire, RcError::Exception("reset by peer".into()));
        // The wire kind keeps the local failure behind it: a program can still ask for the
        // io::ErrorKind (spec/xrcp.md §11: the text is what the peer and the JSON see).
        let source = std::error::Error::source(&wire).expect("the io::Error is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        assert_eq!(RcError::from(BlockIoError::BlockSize), RcError::BlockSize);
    }
}
