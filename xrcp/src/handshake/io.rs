//! Reading and writing whole 16384-byte blocks over a byte stream (spec/xrcp.md §7.1): the
//! only I/O of the handshake. Bytes after the block stay in the stream for the session layer.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::RcError;
use crate::message::BLOCK_SIZE;

/// Reads exactly one block; end of stream before 16384 bytes is `BLOCK_SIZE`.
pub async fn read_block<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, RcError> {
    read_block_or_close(stream).await?.ok_or(RcError::BlockSize)
}

/// Like [`read_block`], but a peer that closes before sending any byte gives `Ok(None)`:
/// that is how a host whose user rejected the session code leaves.
pub async fn read_block_or_close<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<Vec<u8>>, RcError> {
    let mut block = vec![0u8; BLOCK_SIZE];
    let mut filled = 0;
    while filled < BLOCK_SIZE {
        match stream.read(&mut block[filled..]).await {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(RcError::BlockSize),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && filled == 0 => {
                return Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(RcError::BlockSize)
            }
            Err(e) => return Err(RcError::Exception(e.to_string())),
        }
    }
    Ok(Some(block))
}

/// Writes one block (already padded to 16384 bytes) and flushes it.
pub async fn write_block<S: AsyncWrite + Unpin>(
    stream: &mut S,
    block: &[u8],
) -> Result<(), RcError> {
    if block.len() != BLOCK_SIZE {
        return Err(RcError::BlockSize);
    }
    stream
        .write_all(block)
        .await
        .map_err(|e| RcError::Exception(e.to_string()))?;
    stream
        .flush()
        .await
        .map_err(|e| RcError::Exception(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_stream_is_block_size() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0; 100]).await.unwrap();
        drop(a);
        assert_eq!(read_block(&mut b).await.unwrap_err(), RcError::BlockSize);
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
        assert_eq!(
            write_block(&mut a, &[0; 10]).await.unwrap_err(),
            RcError::BlockSize
        );
    }
}
