//! File attachments after a body (spec/xrcp.md §10.2; the reference's
//! `sendEncryptedFile`, `receiveEncryptedFile`):
//!
//! ```text
//! 0x01 | u32be (fileSize + 16) | XSalsa20(file) | Poly1305 tag (16)
//! ```
//!
//! keyed by the attachment key of the message's id (the second chain step, spec/xrcp.md §8). Both
//! directions are streamed in chunks so memory stays constant whatever the file size. The
//! receiver checks, in this order: marker byte (`RPENoFile`), length (`RPEFileSize`), data
//! length (`RPEFileSize`), tag (`DECRYPT`), SHA-512 of the plaintext (`RPEFileDigest`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::RemoteProtocolError;
use super::keys::SbKeyNonce;
use crate::codec::text::{base64url_decode, base64url_encode};
use crate::crypto::secretbox::{StreamOpener, StreamSealer, TAG_LEN};

/// First byte of an attachment.
pub const FILE_MARKER: u8 = 0x01;
/// Marker byte + 4-byte length.
pub const FILE_HEADER_LEN: usize = 5;
/// The reference's file read/write block (`fileBlockSize`); our chunk size for files.
pub const FILE_CHUNK_SIZE: usize = 16384;

/// SHA-512 of a file; JSON/text form is padded base64url (`fileDigest`, spec/xrcp.md §10.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileDigest(pub [u8; 64]);

impl FileDigest {
    /// SHA-512 of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut d = FileDigester::new();
        d.update(data);
        d.finish()
    }

    /// Padded base64url of the 64 bytes (`fileDigest` in JSON).
    pub fn to_text(&self) -> String {
        base64url_encode(&self.0)
    }

    /// Parses the text form; anything but 64 bytes of base64url is `SYNTAX`.
    pub fn from_text(s: &str) -> Result<Self, crate::error::RcError> {
        let raw = base64url_decode(s)?;
        <[u8; 64]>::try_from(raw.as_slice())
            .map(FileDigest)
            .map_err(|_| crate::error::RcError::syntax("file digest is not 64 bytes"))
    }
}

impl fmt::Debug for FileDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileDigest({})", self.to_text())
    }
}

impl Serialize for FileDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for FileDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FileDigest::from_text(&s).map_err(|e| {
            // The detail alone: the peer reads it in `invalidJSON`, where advice about links
            // would mislead.
            serde::de::Error::custom(e.detail().map_or_else(|| e.text_form(), str::to_owned))
        })
    }
}

/// Incremental SHA-512, for digests of files read in chunks (the controller's `getFileInfo`,
/// the host's outgoing files). With the feature `openssl-sha512` the hashing is OpenSSL's
/// (its assembly picks the CPU's fastest path at run time), otherwise `sha2`'s (which picks
/// AVX2 at run time); both give the same digest, checked against each other in the tests.
#[derive(Clone)]
pub struct FileDigester(Sha512Engine);

#[cfg(feature = "openssl-sha512")]
type Sha512Engine = openssl::sha::Sha512;
#[cfg(not(feature = "openssl-sha512"))]
type Sha512Engine = sha2::Sha512;

impl Default for FileDigester {
    fn default() -> Self {
        Self::new()
    }
}

impl FileDigester {
    /// An empty digest.
    pub fn new() -> Self {
        #[cfg(feature = "openssl-sha512")]
        let engine = openssl::sha::Sha512::new();
        #[cfg(not(feature = "openssl-sha512"))]
        let engine = <sha2::Sha512 as sha2::Digest>::new();
        FileDigester(engine)
    }

    /// Hashes the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        #[cfg(feature = "openssl-sha512")]
        self.0.update(chunk);
        #[cfg(not(feature = "openssl-sha512"))]
        sha2::Digest::update(&mut self.0, chunk);
    }

    /// The SHA-512 of everything hashed.
    pub fn finish(self) -> FileDigest {
        #[cfg(feature = "openssl-sha512")]
        let bytes = self.0.finish();
        #[cfg(not(feature = "openssl-sha512"))]
        let bytes = sha2::Digest::finalize(self.0).into();
        FileDigest(bytes)
    }

    /// Which SHA-512 implementation this build hashes files with (for benchmark reports).
    #[doc(hidden)]
    pub fn implementation() -> &'static str {
        if cfg!(feature = "openssl-sha512") {
            "OpenSSL"
        } else {
            "sha2"
        }
    }
}

/// Checks that a file size can be announced: the wire length `size + 16` must fit in 32
/// bits (the reference refuses files over `maxBound :: Word32` with `RPEFileSize`).
pub fn check_file_size(size: u64) -> Result<u32, RemoteProtocolError> {
    u32::try_from(size)
        .ok()
        .filter(|s| s.checked_add(TAG_LEN as u32).is_some())
        .ok_or(RemoteProtocolError::FileSize)
}

/// Encrypts an attachment chunk by chunk: send [`FileEncryptor::header`], then every chunk
/// after [`FileEncryptor::encrypt`], then the tag from [`FileEncryptor::finish`].
pub struct FileEncryptor {
    sealer: StreamSealer,
    size: u32,
    done: u64,
}

impl FileEncryptor {
    /// An encryptor for a file of `file_size` bytes under the id's attachment key; a size whose wire length overflows 32 bits is [`RemoteProtocolError::FileSize`].
    pub fn new(key: &SbKeyNonce, file_size: u32) -> Result<Self, RemoteProtocolError> {
        check_file_size(u64::from(file_size))?;
        Ok(FileEncryptor {
            sealer: StreamSealer::new(&key.key, &key.nonce),
            size: file_size,
            done: 0,
        })
    }

    /// `0x01 ‖ u32be(size + 16)`.
    pub fn header(&self) -> [u8; FILE_HEADER_LEN] {
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0] = FILE_MARKER;
        h[1..].copy_from_slice(&(self.size + TAG_LEN as u32).to_be_bytes());
        h
    }

    /// Encrypts `chunk` in place. More data than announced is [`RemoteProtocolError::FileSize`].
    pub fn encrypt(&mut self, chunk: &mut [u8]) -> Result<(), RemoteProtocolError> {
        let done = self.done + chunk.len() as u64;
        if done > u64::from(self.size) {
            return Err(RemoteProtocolError::FileSize);
        }
        self.sealer.update(chunk);
        self.done = done;
        Ok(())
    }

    /// Plaintext bytes encrypted so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// The trailing tag; fails with [`RemoteProtocolError::FileSize`] if less data than
    /// announced was encrypted.
    pub fn finish(self) -> Result<[u8; TAG_LEN], RemoteProtocolError> {
        if self.done != u64::from(self.size) {
            return Err(RemoteProtocolError::FileSize);
        }
        Ok(self.sealer.finish())
    }
}

enum RecvState {
    Header {
        buf: [u8; FILE_HEADER_LEN],
        len: usize,
    },
    Data,
    Tag {
        buf: [u8; TAG_LEN],
        len: usize,
    },
    Done {
        tag: [u8; TAG_LEN],
    },
}

/// Decrypts an incoming attachment chunk by chunk.
///
/// Plaintext is handed out before the tag and digest are checked (the file may not fit in
/// memory), so callers must write it somewhere provisional and keep it only after
/// [`FileDecryptor::finish`] succeeds.
pub struct FileDecryptor {
    opener: StreamOpener,
    /// `None` when the caller computes the digest ([`FileDecryptor::with_detached_digest`]).
    digest: Option<FileDigester>,
    size: u32,
    expected: FileDigest,
    received: u64,
    state: RecvState,
}

impl FileDecryptor {
    /// A decryptor for an announced file of `file_size` bytes with digest `file_digest`.
    pub fn new(key: &SbKeyNonce, file_size: u32, file_digest: FileDigest) -> Self {
        let mut dec = FileDecryptor::with_detached_digest(key, file_size, file_digest);
        dec.digest = Some(FileDigester::new());
        dec
    }

    /// Like [`FileDecryptor::new`], but the caller computes the SHA-512 of the plaintext it is
    /// given (on another thread: it costs as much as the decryption) and hands it to
    /// [`FileDecryptor::finish_with_digest`].
    pub fn with_detached_digest(key: &SbKeyNonce, file_size: u32, file_digest: FileDigest) -> Self {
        FileDecryptor {
            opener: StreamOpener::new(&key.key, &key.nonce),
            digest: None,
            size: file_size,
            expected: file_digest,
            received: 0,
            state: RecvState::Header {
                buf: [0; FILE_HEADER_LEN],
                len: 0,
            },
        }
    }

    /// Takes attachment bytes from the front of `input`, appending decrypted (not yet
    /// authenticated) plaintext to `out`. Returns how many bytes of `input` belonged to the
    /// attachment; anything after the tag is left to the caller (the reference ignores it).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, RemoteProtocolError> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            match &mut self.state {
                RecvState::Header { buf, len } => {
                    if *len == 0 && rest[0] != FILE_MARKER {
                        return Err(RemoteProtocolError::NoFile);
                    }
                    let take = (FILE_HEADER_LEN - *len).min(rest.len());
                    buf[*len..*len + take].copy_from_slice(&rest[..take]);
                    *len += take;
                    used += take;
                    if *len == FILE_HEADER_LEN {
                        let announced = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                        if u64::from(announced) != u64::from(self.size) + TAG_LEN as u64 {
                            return Err(RemoteProtocolError::FileSize);
                        }
                        self.state = if self.size == 0 {
                            RecvState::Tag {
                                buf: [0; TAG_LEN],
                                len: 0,
                            }
                        } else {
                            RecvState::Data
                        };
                    }
                }
                RecvState::Data => {
                    let left = u64::from(self.size) - self.received;
                    let take = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    let start = out.len();
                    out.extend_from_slice(&rest[..take]);
                    let plain = &mut out[start..];
                    self.opener.update(plain);
                    if let Some(digest) = &mut self.digest {
                        digest.update(plain);
                    }
                    self.received += take as u64;
                    used += take;
                    if self.received == u64::from(self.size) {
                        self.state = RecvState::Tag {
                            buf: [0; TAG_LEN],
                            len: 0,
                        };
                    }
                }
                RecvState::Tag { buf, len } => {
                    let take = (TAG_LEN - *len).min(rest.len());
                    buf[*len..*len + take].copy_from_slice(&rest[..take]);
                    *len += take;
                    used += take;
                    if *len == TAG_LEN {
                        // Verified in `finish`, once the caller has seen the end of input.
                        let tag = *buf;
                        self.state = RecvState::Done { tag };
                    }
                }
                RecvState::Done { .. } => break,
            }
        }
        Ok(used)
    }

    /// True once the whole attachment (header, data, tag) has arrived.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, RecvState::Done { .. })
    }

    /// Plaintext bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The announced plaintext size.
    pub fn file_size(&self) -> u32 {
        self.size
    }

    /// Call at the end of the stream: checks completeness, the tag and the digest.
    pub fn finish(mut self) -> Result<(), RemoteProtocolError> {
        let digest = self.digest.take().map(FileDigester::finish);
        self.check(digest)
    }

    /// [`FileDecryptor::finish`] for a decryptor made by
    /// [`FileDecryptor::with_detached_digest`]: `digest` is the SHA-512 of all plaintext.
    pub fn finish_with_digest(self, digest: FileDigest) -> Result<(), RemoteProtocolError> {
        self.check(Some(digest))
    }

    fn check(self, digest: Option<FileDigest>) -> Result<(), RemoteProtocolError> {
        match self.state {
            RecvState::Header { len: 0, .. } => Err(RemoteProtocolError::NoFile),
            RecvState::Header { .. } => Err(RemoteProtocolError::InvalidBody(
                "attachment header truncated".into(),
            )),
            RecvState::Data | RecvState::Tag { .. } => Err(RemoteProtocolError::FileSize),
            RecvState::Done { tag } => {
                self.opener
                    .verify(&tag)
                    .map_err(|_| RemoteProtocolError::DECRYPT)?;
                if digest.as_ref() != Some(&self.expected) {
                    return Err(RemoteProtocolError::FileDigest);
                }
                Ok(())
            }
        }
    }
}
