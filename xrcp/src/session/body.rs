//! Body framing, signatures, encryption and compression (spec/xrcp.md §10.2; the reference's
//! `encryptEncodeHTTP2Body` and `parseDecryptHTTP2Body`).
//!
//! ```text
//! request  (controller → host): u32be corrId | u32be ctLen | ct | 0x40 ssig | 0x40 idsig | [attachment]
//! response (host → controller): u32be corrId | u32be ctLen | ct | [attachment]
//! ct        = XSalsa20-Poly1305(body key of corrId, plaintext), tag last, ctLen includes the tag
//! plaintext = u8 len | tls-unique | JSON            (JSON zstd level 3 when compression is on)
//! ssig      = Ed25519(session key,  SHA-512(corrId | ctLen | ct))
//! idsig     = Ed25519(identity key, SHA-512(corrId | ctLen | ct | ssig))
//! ```
//!
//! The Ed25519 messages are the 64-byte digests; `ssig` inside the second hash is the raw 64
//! signature bytes. A receiver checks in the reference's order: signatures (`CTRL_AUTH`),
//! then the id window (spec/xrcp.md §10.2), decryption (`DECRYPT`), the tls-unique prefix
//! (`PRESessionCode`), decompression (`RPEInvalidBody`), JSON (`RPEInvalidJSON`). Note that a
//! body failing after the id check has still used up its id, as in the reference.

use std::cell::RefCell;
use std::io::Read;

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::RemoteProtocolError;
use super::keys::{RemoteKeys, RemoteSignatures, SbKeyNonce, SessionSecrets};
use super::protocol::{RemoteCommand, RemoteResponse};
use crate::crypto::keys::{PreparedEd25519Key, Signature};
use crate::crypto::secretbox::{open_tail_tag, seal_tail_tag};
use crate::error::{ErrorDetail, RcError};

/// `corrId ‖ ctLen`.
pub const BODY_HEADER_LEN: usize = 8;
/// `0x40 ‖ ssig ‖ 0x40 ‖ idsig`.
pub const SIGNATURES_LEN: usize = 2 * (1 + 64);
/// The largest `ctLen` we accept: [`MAX_JSON_LEN`] sent uncompressed, plus the session-code
/// prefix, the tag and room for a zstd frame of incompressible JSON (which zstd makes at most
/// 1/128 larger). The reference has no bound; we refuse to buffer more than this for one body
/// so a peer cannot make us allocate without limit (files travel as attachments, which are
/// streamed).
pub const MAX_BODY_CT_LEN: u32 = (MAX_JSON_LEN + (MAX_JSON_LEN >> 7) + 4096) as u32;
/// The largest JSON we accept in one body (8 MiB), after decompression: a small compressed
/// body can expand enormously, so the output is bounded while it is produced. The largest
/// legitimate messages are chat API responses such as the chat list (about 2–10 KiB per chat
/// with its profile picture), so 8 MiB holds roughly a thousand chats; commands are chat
/// command lines, a few KiB at most (spec/xrcp.md §12, docs/security/bodies.md).
pub const MAX_JSON_LEN: usize = 8 << 20;
/// zstd level used by the reference (`Z1.compress 3`).
pub const ZSTD_LEVEL: i32 = 3;

/// The immutable half of the reference's `RemoteCrypto`: session code (tls-unique),
/// signature keys and the compression decision. Shared by all streams of a session.
#[derive(Clone, Debug)]
pub struct RemoteCrypto {
    session_code: Zeroizing<Vec<u8>>,
    signatures: RemoteSignatures,
    /// Host side: the controller's session and identity keys, decoded once.
    verifiers: Option<(PreparedEd25519Key, PreparedEd25519Key)>,
    compression: bool,
}

/// A received body up to (not including) its attachment: the signed part and, on the host,
/// the two signatures.
#[derive(Clone, Debug)]
pub struct BodyHead {
    /// `corrId ‖ ctLen ‖ ct`.
    signed: Vec<u8>,
    signatures: Option<(Signature, Signature)>,
}

impl BodyHead {
    /// The message id (the first 4 bytes).
    pub fn corr_id(&self) -> u32 {
        u32::from_be_bytes([
            self.signed[0],
            self.signed[1],
            self.signed[2],
            self.signed[3],
        ])
    }

    /// The ciphertext with its tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.signed[BODY_HEADER_LEN..]
    }
}

/// Collects a body head from a stream of chunks (the HTTP/2 body arrives in pieces),
/// enforcing [`MAX_BODY_CT_LEN`] as soon as `ctLen` is known.
#[derive(Debug)]
pub struct BodyHeadReader {
    signed: Vec<u8>,
    sigs: Vec<u8>,
    with_signatures: bool,
    ct_len: Option<usize>,
}

impl BodyHeadReader {
    /// `with_signatures`: whether two signatures follow the ciphertext (requests do).
    pub fn new(with_signatures: bool) -> Self {
        BodyHeadReader {
            signed: Vec::with_capacity(BODY_HEADER_LEN),
            sigs: Vec::new(),
            with_signatures,
            ct_len: None,
        }
    }

    fn sigs_len(&self) -> usize {
        if self.with_signatures {
            SIGNATURES_LEN
        } else {
            0
        }
    }

    /// Takes head bytes from the front of `input`; returns how many it took. Bytes after the
    /// head (an attachment) are left for the caller.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, RemoteProtocolError> {
        let mut used = 0;
        if self.signed.len() < BODY_HEADER_LEN {
            let take = (BODY_HEADER_LEN - self.signed.len()).min(input.len());
            self.signed.extend_from_slice(&input[..take]);
            used += take;
            if self.signed.len() < BODY_HEADER_LEN {
                return Ok(used);
            }
            let ct_len = u32::from_be_bytes([
                self.signed[4],
                self.signed[5],
                self.signed[6],
                self.signed[7],
            ]);
            if ct_len > MAX_BODY_CT_LEN {
                return Err(RemoteProtocolError::InvalidSize);
            }
            let ct_len = ct_len as usize;
            self.ct_len = Some(ct_len);
            // Grow with the data actually received, not with the announced length.
            self.signed.reserve_exact(ct_len.min(64 << 10));
        }
        let Some(ct_len) = self.ct_len else {
            return Ok(used);
        };
        let total = BODY_HEADER_LEN + ct_len;
        let want = total - self.signed.len();
        let take = want.min(input.len() - used);
        if self.signed.capacity() < self.signed.len() + take {
            // Doubling, but never past the announced length: the buffer stays within
            // [`BodyHeadReader::capacity_for`], which the receive budget is charged with.
            let grow = take.max(self.signed.len()).min(want);
            self.signed.reserve_exact(grow);
        }
        self.signed.extend_from_slice(&input[used..used + take]);
        used += take;
        if self.signed.len() < BODY_HEADER_LEN + ct_len {
            return Ok(used);
        }
        let want = self.sigs_len() - self.sigs.len();
        let take = want.min(input.len() - used);
        let start = self.sigs.len();
        self.sigs.extend_from_slice(&input[used..used + take]);
        used += take;
        // Each signature must be announced as 64 bytes (Ed25519); anything else is a body the
        // reference's `decodeSignature` refuses.
        for len_at in [0, 65] {
            if (start..self.sigs.len()).contains(&len_at) && self.sigs[len_at] != 64 {
                return Err(RemoteProtocolError::InvalidBody(
                    "bad signature length".into(),
                ));
            }
        }
        Ok(used)
    }

    /// The most memory this reader can hold once `more` further bytes are pushed: the head
    /// buffer grows by doubling up to the announced length. Callers that charge received
    /// bodies to a budget reserve this much before pushing.
    pub fn capacity_for(&self, more: usize) -> usize {
        let sigs = SIGNATURES_LEN;
        let Some(ct_len) = self.ct_len else {
            // The header, the first reservation once `ctLen` is known, and growth for the
            // rest of this push.
            return BODY_HEADER_LEN + (64 << 10).max(2 * more) + sigs;
        };
        let total = BODY_HEADER_LEN + ct_len;
        let len = (self.signed.len() + more).min(total);
        self.signed
            .capacity()
            .max((2 * len).min(total))
            .max(BODY_HEADER_LEN + ct_len.min(64 << 10))
            + sigs
    }

    /// Whether the whole head (and, for requests, both signatures) has arrived.
    pub fn is_complete(&self) -> bool {
        self.ct_len
            .is_some_and(|n| self.signed.len() == BODY_HEADER_LEN + n)
            && self.sigs.len() == self.sigs_len()
    }

    /// The head, once complete; a body that ended early is an error.
    pub fn finish(self) -> Result<BodyHead, RemoteProtocolError> {
        if self.ct_len.is_none() {
            return Err(RemoteProtocolError::InvalidSize);
        }
        if !self.is_complete() {
            return Err(RemoteProtocolError::InvalidBody("body truncated".into()));
        }
        let signatures = if self.with_signatures {
            let s = |at: usize| Signature::from_slice(&self.sigs[at + 1..at + 65]);
            let ssig = s(0).map_err(|e| RemoteProtocolError::InvalidBody(e.to_string()))?;
            let idsig = s(65).map_err(|e| RemoteProtocolError::InvalidBody(e.to_string()))?;
            Some((ssig, idsig))
        } else {
            None
        };
        Ok(BodyHead {
            signed: self.signed,
            signatures,
        })
    }

    /// Reads a head from the front of a complete byte slice; returns it with the remaining
    /// bytes (the attachment, if any).
    pub fn read_from(
        with_signatures: bool,
        bytes: &[u8],
    ) -> Result<(BodyHead, &[u8]), RemoteProtocolError> {
        let mut r = BodyHeadReader::new(with_signatures);
        let used = r.push(bytes)?;
        Ok((r.finish()?, &bytes[used..]))
    }
}

impl RemoteCrypto {
    /// `tls_unique` goes before every JSON plaintext with a 1-byte length, so it must be at
    /// most 255 bytes (TLS 1.3 Finished data is 32 or 48).
    pub fn new(
        tls_unique: Zeroizing<Vec<u8>>,
        signatures: RemoteSignatures,
        compression: bool,
    ) -> Result<Self, RemoteProtocolError> {
        if tls_unique.len() > usize::from(u8::MAX) {
            return Err(RemoteProtocolError::Exception(
                "tls-unique longer than 255 bytes".into(),
            ));
        }
        let verifiers = match &signatures {
            RemoteSignatures::Verify {
                session_key,
                identity_key,
            } => Some((session_key.prepare(), identity_key.prepare())),
            RemoteSignatures::Sign { .. } => None,
        };
        Ok(RemoteCrypto {
            session_code: tls_unique,
            signatures,
            verifiers,
            compression,
        })
    }

    /// Whether JSON is zstd-compressed in this session.
    pub fn compression(&self) -> bool {
        self.compression
    }

    /// Whether received bodies carry signatures (this is the host).
    pub fn expects_signatures(&self) -> bool {
        matches!(self.signatures, RemoteSignatures::Verify { .. })
    }

    /// A reader for the next received body head.
    pub fn head_reader(&self) -> BodyHeadReader {
        BodyHeadReader::new(self.expects_signatures())
    }

    /// Encodes one outgoing body (without attachment) for `corr_id` with its body key.
    pub fn encrypt_encode_body(
        &self,
        corr_id: u32,
        body_key: &SbKeyNonce,
        json: &[u8],
    ) -> Result<Vec<u8>, RemoteProtocolError> {
        let compressed;
        let payload = if self.compression {
            compressed = compress(json)?;
            &compressed[..]
        } else {
            json
        };
        let mut plain = Zeroizing::new(Vec::with_capacity(
            1 + self.session_code.len() + payload.len(),
        ));
        plain.push(self.session_code.len() as u8);
        plain.extend_from_slice(&self.session_code);
        plain.extend_from_slice(payload);
        let ct = seal_tail_tag(&body_key.key, &body_key.nonce, &plain);
        let ct_len = u32::try_from(ct.len()).map_err(|_| RemoteProtocolError::InvalidSize)?;
        let mut out = Vec::with_capacity(BODY_HEADER_LEN + ct.len() + SIGNATURES_LEN);
        out.extend_from_slice(&corr_id.to_be_bytes());
        out.extend_from_slice(&ct_len.to_be_bytes());
        out.extend_from_slice(&ct);
        if let RemoteSignatures::Sign {
            session_key,
            identity_key,
        } = &self.signatures
        {
            let mut h = Sha512::new();
            h.update(&out);
            let ssig = session_key.sign(&h.clone().finalize());
            h.update(ssig.0);
            let idsig = identity_key.sign(&h.finalize());
            out.push(64);
            out.extend_from_slice(&ssig.0);
            out.push(64);
            out.extend_from_slice(&idsig.0);
        }
        Ok(out)
    }

    /// The first receive check: both signatures over the head (host side only; a no-op on the
    /// controller). Failure is `PRERemoteControl CTRL_AUTH`. Run this before taking keys for
    /// the id, so an unauthenticated body cannot move the receive window.
    pub fn verify_signatures(&self, head: &BodyHead) -> Result<(), RemoteProtocolError> {
        let Some((session_key, identity_key)) = &self.verifiers else {
            return Ok(());
        };
        let Some((ssig, idsig)) = &head.signatures else {
            return Err(RemoteProtocolError::CTRL_AUTH);
        };
        let mut h = Sha512::new();
        h.update(&head.signed);
        let ok_s = session_key.verify(&h.clone().finalize(), ssig);
        h.update(ssig.0);
        let ok_id = identity_key.verify(&h.finalize(), idsig);
        if ok_s && ok_id {
            Ok(())
        } else {
            Err(RemoteProtocolError::CTRL_AUTH)
        }
    }

    /// The receive path, the one place both roles' engines ([`super::ControllerSession`],
    /// [`super::HostSession`]) and [`RemoteSession`] open a body: signatures (host side,
    /// `CTRL_AUTH`), then the keys of its id from `rcv_keys` (the id window; called only for
    /// an authenticated body, so a forged one cannot move the window), then decryption and the
    /// session-code check (spec/xrcp.md §10.1).
    pub fn open_with(
        &self,
        head: &BodyHead,
        rcv_keys: impl FnOnce(u32) -> Result<super::MessageKeys, RemoteProtocolError>,
    ) -> Result<DecodedBody, RemoteProtocolError> {
        self.verify_signatures(head)?;
        let keys = rcv_keys(head.corr_id())?;
        let json = self.decrypt_body(head, &keys.body)?;
        Ok(DecodedBody {
            corr_id: head.corr_id(),
            json,
            file_key: keys.file,
        })
    }

    /// Decrypts a verified head with the body key of its id and returns the JSON bytes.
    pub fn decrypt_body(
        &self,
        head: &BodyHead,
        body_key: &SbKeyNonce,
    ) -> Result<Vec<u8>, RemoteProtocolError> {
        let plain = Zeroizing::new(
            open_tail_tag(&body_key.key, &body_key.nonce, head.ciphertext())
                .map_err(|_| RemoteProtocolError::RemoteControl(RcError::Decrypt))?,
        );
        let (&code_len, rest) = plain
            .split_first()
            .ok_or_else(|| RemoteProtocolError::InvalidBody("empty body".into()))?;
        let code_len = usize::from(code_len);
        if rest.len() < code_len || !bool::from(rest[..code_len].ct_eq(&self.session_code)) {
            return Err(RemoteProtocolError::SessionCode);
        }
        let payload = &rest[code_len..];
        if self.compression {
            decompress_bounded(payload, MAX_JSON_LEN)
        } else if payload.len() > MAX_JSON_LEN {
            Err(RemoteProtocolError::InvalidBody(format!(
                "more than {MAX_JSON_LEN} bytes of JSON"
            )))
        } else {
            Ok(payload.to_vec())
        }
    }
}

thread_local! {
    /// zstd contexts are reused per thread: creating one costs ≈ 15 µs and ≈ 100–200 KiB of
    /// allocations, more than compressing a chat command (BENCHMARKS.md §2b).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// zstd level 3 with this thread's context; the same frame as `zstd::bulk::compress`.
fn compress(json: &[u8]) -> Result<Vec<u8>, RemoteProtocolError> {
    let failed = |e: std::io::Error| {
        RemoteProtocolError::Exception(ErrorDetail::with_source(format!("zstd: {e}"), e))
    };
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match &mut *slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(failed)?),
        };
        compressor.compress(json).map_err(failed)
    })
}

/// Largest frame content size decoded in one call into a buffer allocated up front.
const ONE_SHOT_MAX: u64 = 1 << 20;

/// zstd decompression that stops at `limit` bytes of output instead of trusting the frame.
///
/// A single frame that records its size (what zstd's one-shot compression and so every
/// reference peer produce) is decoded in one call into a buffer of exactly that size, with
/// this thread's context; anything else (several frames, streamed frames without a size)
/// goes through a streaming decoder that stops reading at `limit`.
fn decompress_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, RemoteProtocolError> {
    let invalid = |e: String| RemoteProtocolError::InvalidBody(format!("zstd: {e}"));
    if data.is_empty() {
        return Err(invalid("empty input".into()));
    }
    let single_frame = zstd::zstd_safe::find_frame_compressed_size(data) == Ok(data.len());
    let sized = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) if single_frame => Some(size),
        _ => None,
    };
    if sized.is_some_and(|size| size > limit as u64) {
        return Err(invalid(format!("more than {limit} bytes")));
    }
    // The one-shot path allocates what the frame header claims before decoding anything, so
    // it is kept to sizes a chat body has; a larger claim goes through the streaming path,
    // which allocates only as output is produced.
    if let Some(size) = sized.filter(|&size| size <= ONE_SHOT_MAX) {
        let mut out = Vec::with_capacity(size as usize);
        DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decompressor = match &mut *slot {
                Some(d) => d,
                None => slot
                    .insert(zstd::bulk::Decompressor::new().map_err(|e| invalid(e.to_string()))?),
            };
            decompressor
                .decompress_to_buffer(data, &mut out)
                .map_err(|e| invalid(e.to_string()))
        })?;
        if out.len() as u64 != size {
            return Err(invalid(format!(
                "frame says {size} bytes, got {}",
                out.len()
            )));
        }
        return Ok(out);
    }
    let decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| invalid(e.to_string()))?;
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(invalid(format!("more than {limit} bytes")));
    }
    Ok(out)
}

/// A body ready to send, with the attachment key of its id.
#[derive(Debug)]
pub struct EncodedBody {
    /// The message id.
    pub corr_id: u32,
    /// The body bytes to send (without attachment).
    pub bytes: Vec<u8>,
    /// Keys this id's attachment, if one follows.
    pub file_key: SbKeyNonce,
}

/// A received, verified and decrypted body, with the attachment key of its id.
#[derive(Debug)]
pub struct DecodedBody {
    /// The message id.
    pub corr_id: u32,
    /// The JSON (decompressed if compression is on).
    pub json: Vec<u8>,
    /// Keys this id's attachment, if one follows.
    pub file_key: SbKeyNonce,
}

/// Both halves of a session's crypto for single-threaded use by tools that craft or inspect
/// bodies (tests, vectors, fuzzing, benchmarks); either role. The roles use their engines
/// ([`super::ControllerSession`], [`super::HostSession`]; [`RemoteSession::into_controller`],
/// [`RemoteSession::into_host`]), which share the receive path with this type.
#[derive(Debug)]
pub struct RemoteSession {
    /// Signatures, session code and compression: shared, immutable.
    pub(super) crypto: RemoteCrypto,
    /// Counters, chains and skipped keys: mutable.
    pub(super) keys: RemoteKeys,
}

impl RemoteSession {
    /// A session from the handshake's secrets and the compression decision
    /// ([`super::use_compression`]).
    pub fn new(secrets: SessionSecrets, compression: bool) -> Result<Self, RemoteProtocolError> {
        let (crypto, keys) = secrets.into_parts(compression)?;
        Ok(RemoteSession { crypto, keys })
    }

    /// Signatures, session code and compression (to seal or open a body by hand).
    pub fn crypto(&self) -> &RemoteCrypto {
        &self.crypto
    }

    /// Counters and the receive window, to read.
    pub fn keys(&self) -> &RemoteKeys {
        &self.keys
    }

    /// Counters, chains and the receive window, to take ids and keys by hand (tools that
    /// craft bodies out of order, or spend an id without sending it).
    pub fn keys_mut(&mut self) -> &mut RemoteKeys {
        &mut self.keys
    }

    /// Takes the next id and encodes `json` under it.
    pub fn encode(&mut self, json: &[u8]) -> Result<EncodedBody, RemoteProtocolError> {
        let snd = self.keys.snd_keys()?;
        let bytes = self
            .crypto
            .encrypt_encode_body(snd.corr_id, &snd.keys.body, json)?;
        Ok(EncodedBody {
            corr_id: snd.corr_id,
            bytes,
            file_key: snd.keys.file,
        })
    }

    /// Decodes a body from the front of `bytes`; returns the rest (attachment bytes).
    pub fn decode<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<(DecodedBody, &'a [u8]), RemoteProtocolError> {
        let (head, rest) = BodyHeadReader::read_from(self.crypto.expects_signatures(), bytes)?;
        let keys = &mut self.keys;
        let body = self.crypto.open_with(&head, |id| keys.rcv_keys(id))?;
        Ok((body, rest))
    }

    /// Encodes a command under the next id (controller side).
    pub fn encode_command(
        &mut self,
        cmd: &RemoteCommand,
    ) -> Result<EncodedBody, RemoteProtocolError> {
        self.encode(&cmd.to_json_bytes())
    }

    /// Encodes a response under the next id (host side).
    pub fn encode_response(
        &mut self,
        resp: &RemoteResponse,
    ) -> Result<EncodedBody, RemoteProtocolError> {
        self.encode(&resp.to_json_bytes())
    }

    /// Host side: decode a request body into its command.
    pub fn decode_command<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<(RemoteCommand, SbKeyNonce, &'a [u8]), RemoteProtocolError> {
        let (body, rest) = self.decode(bytes)?;
        Ok((
            RemoteCommand::from_json_bytes(&body.json)?,
            body.file_key,
            rest,
        ))
    }

    /// Controller side: decode a response body (tagged JSON; see
    /// [`super::owsf_to_tagged`] for Swift hosts).
    pub fn decode_response<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<(RemoteResponse, SbKeyNonce, &'a [u8]), RemoteProtocolError> {
        let (body, rest) = self.decode(bytes)?;
        Ok((
            RemoteResponse::from_json_bytes(&body.json)?,
            body.file_key,
            rest,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn streamed(data: &[u8]) -> Vec<u8> {
        // A streaming encoder does not record the content size in the frame header.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// The head buffer never outgrows what [`BodyHeadReader::capacity_for`] promised before
    /// each push (the receive budget is charged with that).
    #[test]
    fn head_buffer_stays_within_its_charge() {
        let ct_len = 300_000usize;
        let mut body = Vec::new();
        body.extend_from_slice(&7u32.to_be_bytes());
        body.extend_from_slice(&(ct_len as u32).to_be_bytes());
        body.resize(BODY_HEADER_LEN + ct_len, 1);
        for step in [1, 100, 16 << 10, 64 << 10, 70_000] {
            let mut r = BodyHeadReader::new(false);
            for chunk in body.chunks(step) {
                let promised = r.capacity_for(chunk.len());
                assert_eq!(r.push(chunk).unwrap(), chunk.len());
                let held = r.signed.capacity() + r.sigs.capacity();
                assert!(held <= promised, "step {step}: {held} > {promised}");
            }
            assert!(r.is_complete());
        }
    }

    #[test]
    fn reused_context_makes_the_one_shot_frame() {
        let json = br#"{"type":"listContacts","userId":1}"#.repeat(20);
        for _ in 0..3 {
            assert_eq!(
                compress(&json).unwrap(),
                zstd::bulk::compress(&json, ZSTD_LEVEL).unwrap()
            );
        }
    }

    #[test]
    fn every_frame_shape_decodes_within_the_limit() {
        let json = b"{\"a\":\"0123456789\"}".repeat(100);
        let sized = compress(&json).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&sized).ok(),
            Some(Some(json.len() as u64))
        );
        assert_eq!(decompress_bounded(&sized, json.len()).unwrap(), json);
        let unsized_frame = streamed(&json);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&unsized_frame).ok(),
            Some(None)
        );
        assert_eq!(
            decompress_bounded(&unsized_frame, json.len()).unwrap(),
            json
        );
        let two = [sized.clone(), sized.clone()].concat();
        assert_eq!(
            decompress_bounded(&two, 2 * json.len()).unwrap(),
            [json.clone(), json.clone()].concat()
        );
        for frame in [&sized, &unsized_frame] {
            let err = decompress_bounded(frame, json.len() - 1).unwrap_err();
            assert!(
                matches!(err, RemoteProtocolError::InvalidBody(_)),
                "{err:?}"
            );
        }
    }

    /// A sized frame above the one-shot bound (here 2 MiB of JSON-ish text) still decodes,
    /// through the streaming path, and is still held to the limit.
    #[test]
    fn large_sized_frames_decode_through_the_streaming_path() {
        let json = b"{\"k\":\"abcdefghijklmnopqrstuvwxyz\"}".repeat(70_000);
        assert!(json.len() as u64 > ONE_SHOT_MAX);
        let sized = compress(&json).unwrap();
        assert_eq!(decompress_bounded(&sized, MAX_JSON_LEN).unwrap(), json);
        assert!(matches!(
            decompress_bounded(&sized, json.len() - 1),
            Err(RemoteProtocolError::InvalidBody(_))
        ));
    }

    #[test]
    fn damaged_frames_are_invalid_bodies_and_the_context_survives() {
        let json = b"{\"b\":[1,2,3,4,5,6,7,8,9]}".repeat(40);
        let sized = compress(&json).unwrap();
        let mut cut = sized.clone();
        cut.truncate(sized.len() - 3);
        let mut flipped = sized.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        for bad in [&b""[..], &cut, &flipped, b"not zstd at all"] {
            match decompress_bounded(bad, MAX_JSON_LEN) {
                Err(RemoteProtocolError::InvalidBody(_)) => {}
                Ok(out) => assert_ne!(out, json),
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(decompress_bounded(&sized, MAX_JSON_LEN).unwrap(), json);
    }
}
