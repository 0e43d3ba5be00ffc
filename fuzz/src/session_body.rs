//! `session_body`: request and response bodies (`BodyHeadReader`, `RemoteSession::decode`,
//! `decode_command`, `decode_response`) and their attachments (`FileDecryptor`).
//!
//! Sessions use the `messages.json` keys, so the vector bodies decode. Input: a flags byte
//! (bit 0: response to the controller instead of request to the host; bit 1: compression;
//! bits 2–3: mode; bit 4: attachment; bits 5–7: chunking seed), then
//! - mode 0: a received body, possibly followed by attachment bytes;
//! - mode 1: `u16 len ‖ JSON ‖ file`: the harness encodes the JSON with the peer's session
//!   (and the file as attachment when bit 4 is set), then decodes it, then decodes it again
//!   with one bit flipped;
//! - mode 2: a body *plaintext* (tls-unique length and bytes, then the possibly compressed
//!   JSON) that the harness seals and signs correctly, to reach everything behind the MAC;
//! - mode 3: `u32 size ‖ seed ‖ bytes`: a raw attachment under a fixed key.
//!
//! Invariants:
//! - the incremental head reader fed in awkward chunks agrees exactly with the one-shot read
//!   (same id, ciphertext, bytes consumed, or the same error);
//! - a decoded body consumed exactly its head, is within the first window (`1..=MAX_SKIP`),
//!   moved the counter to its id and stored the ids it skipped; JSON is at most
//!   `MAX_JSON_LEN`; a body refused before the id check leaves the window untouched;
//! - a genuine body always decodes to the JSON, id and attachment key that were sent; the
//!   same body with one bit flipped never decodes;
//! - the typed decoders agree with `from_json_bytes` on the decoded JSON;
//! - a crafted plaintext decodes iff it carries this session's tls-unique (and, compressed,
//!   valid zstd), and then to the bytes after it;
//! - the attachment reader never takes more than it is given or produces more than the
//!   announced size, completes only after header + size + tag, and a genuine attachment fed in
//!   any chunking decrypts to the file.

use ring::digest::{digest, Context, SHA512};
use xrcp::crypto::secretbox::seal_tail_tag;
use xrcp::session::{
    BodyHead, BodyHeadReader, FileDecryptor, FileDigest, FileEncryptor, RemoteCommand,
    RemoteProtocolError, RemoteResponse, RemoteSession, SbKeyNonce, MAX_JSON_LEN, MAX_SKIP,
};
use xrcp::RcError;

use crate::common::{
    box_key, chunks, ctrl_session, fixed, hexv, host_session, nonce, Cursor, ANNOUNCEMENT_NONCE,
    K1, TLS_UNIQUE,
};

pub fn run(data: &[u8]) {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let to_ctrl = flags & 1 != 0;
    let compression = flags & 2 != 0;
    let attachment = flags & 16 != 0;
    let seed = flags >> 5;
    match (flags >> 2) & 3 {
        0 => raw(to_ctrl, compression, attachment, seed, c.rest()),
        1 => crafted_json(to_ctrl, compression, attachment, seed, &mut c),
        2 => crafted_plaintext(to_ctrl, compression, c.rest()),
        _ => raw_attachment(&mut c),
    }
}

/// The side that receives: the controller for responses, the host for requests.
fn receiver(to_ctrl: bool, compression: bool) -> RemoteSession {
    let code = hexv(TLS_UNIQUE);
    if to_ctrl {
        ctrl_session(&code, compression)
    } else {
        host_session(&code, compression)
    }
}

fn sender(to_ctrl: bool, compression: bool) -> RemoteSession {
    let code = hexv(TLS_UNIQUE);
    if to_ctrl {
        host_session(&code, compression)
    } else {
        ctrl_session(&code, compression)
    }
}

/// The head read in chunks, to compare with the one-shot `read_from`.
fn read_chunked(
    with_signatures: bool,
    body: &[u8],
    seed: u8,
) -> Result<(BodyHead, usize), RemoteProtocolError> {
    let mut r = BodyHeadReader::new(with_signatures);
    let mut used = 0;
    for ch in chunks(body, seed, 61) {
        if r.is_complete() {
            break;
        }
        let n = r.push(ch)?;
        assert!(n <= ch.len(), "push took more than it was given");
        used += n;
        if n < ch.len() {
            assert!(r.is_complete(), "push stopped early on an incomplete head");
            break;
        }
    }
    Ok((r.finish()?, used))
}

fn same_key(a: &SbKeyNonce, b: &SbKeyNonce) -> bool {
    a.key.as_bytes() == b.key.as_bytes() && a.nonce == b.nonce
}

fn raw(to_ctrl: bool, compression: bool, attachment: bool, seed: u8, body: &[u8]) {
    let with_signatures = !to_ctrl;
    let one = BodyHeadReader::read_from(with_signatures, body);
    let chunked = read_chunked(with_signatures, body, seed);
    match (&one, &chunked) {
        (Ok((a, rest)), Ok((b, used))) => {
            assert_eq!(a.corr_id(), b.corr_id());
            assert_eq!(a.ciphertext(), b.ciphertext());
            assert_eq!(body.len() - rest.len(), *used);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "chunking changed the error"),
        _ => panic!(
            "chunking changed the outcome: {:?} vs {:?}",
            one.as_ref().map(|(h, _)| h.corr_id()),
            chunked.as_ref().map(|(h, _)| h.corr_id())
        ),
    }

    let mut s = receiver(to_ctrl, compression);
    let decoded = s.decode(body);
    match &decoded {
        Ok((b, rest)) => {
            let (head, head_rest) = one.as_ref().expect("decoded a body whose head is invalid");
            assert_eq!(b.corr_id, head.corr_id());
            assert_eq!(rest.len(), head_rest.len());
            assert!(b.json.len() <= MAX_JSON_LEN);
            assert!((1..=MAX_SKIP).contains(&b.corr_id));
            assert_eq!(s.keys().rcv_counter(), b.corr_id);
            assert_eq!(s.keys().skipped_count() as u64, u64::from(b.corr_id - 1));
        }
        Err(e) => {
            if let Err(head_err) = &one {
                assert_eq!(e, head_err);
            }
            if matches!(
                e,
                RemoteProtocolError::InvalidSize
                    | RemoteProtocolError::RemoteControl(RcError::CtrlAuth)
                    | RemoteProtocolError::DuplicateId
                    | RemoteProtocolError::ManySkippedIds(_)
            ) {
                assert_eq!(s.keys().rcv_counter(), 0, "a refused body moved the window");
            }
            assert!(
                matches!(
                    e,
                    RemoteProtocolError::InvalidSize
                        | RemoteProtocolError::InvalidBody(_)
                        | RemoteProtocolError::SessionCode
                        | RemoteProtocolError::DuplicateId
                        | RemoteProtocolError::ManySkippedIds(_)
                        | RemoteProtocolError::RemoteControl(RcError::CtrlAuth | RcError::Decrypt)
                ),
                "unexpected error {e:?}"
            );
        }
    }

    typed_agrees(
        to_ctrl,
        compression,
        body,
        decoded.as_ref().ok().map(|(b, _)| &b.json[..]),
    );

    if attachment {
        if let Ok((b, rest)) = &decoded {
            let (size, digest) = file_info(to_ctrl, &b.json).unwrap_or((
                u32::try_from(rest.len().saturating_sub(21)).unwrap_or(u32::MAX),
                FileDigest([0; 64]),
            ));
            check_attachment(&b.file_key, size, digest, rest, seed, None);
        }
    }
}

/// The typed decoder on a fresh session gives what `from_json_bytes` gives on the JSON.
fn typed_agrees(to_ctrl: bool, compression: bool, body: &[u8], json: Option<&[u8]>) {
    let mut s = receiver(to_ctrl, compression);
    if to_ctrl {
        let typed = s.decode_response(body).map(|(r, _, _)| r);
        match json {
            Some(j) => match RemoteResponse::from_json_bytes(j) {
                Ok(r) => assert_eq!(typed, Ok(r)),
                Err(e) => assert_eq!(typed, Err(e)),
            },
            None => assert!(typed.is_err()),
        }
    } else {
        let typed = s.decode_command(body).map(|(c, _, _)| c);
        match json {
            Some(j) => match RemoteCommand::from_json_bytes(j) {
                Ok(c) => assert_eq!(typed, Ok(c)),
                Err(e) => assert_eq!(typed, Err(e)),
            },
            None => assert!(typed.is_err()),
        }
    }
}

/// The announced size and digest when the JSON is a command or response with a file.
fn file_info(to_ctrl: bool, json: &[u8]) -> Option<(u32, FileDigest)> {
    if to_ctrl {
        match RemoteResponse::from_json_bytes(json).ok()? {
            RemoteResponse::File {
                file_size,
                file_digest,
            } => Some((file_size, file_digest)),
            _ => None,
        }
    } else {
        match RemoteCommand::from_json_bytes(json).ok()? {
            RemoteCommand::StoreFile {
                file_size,
                file_digest,
                ..
            } => Some((file_size, file_digest)),
            _ => None,
        }
    }
}

fn check_attachment(
    key: &SbKeyNonce,
    size: u32,
    digest: FileDigest,
    bytes: &[u8],
    seed: u8,
    genuine: Option<&[u8]>,
) {
    let mut d = FileDecryptor::new(key, size, digest);
    assert_eq!(d.file_size(), size);
    let mut out = Vec::new();
    let mut used = 0usize;
    let mut err = None;
    for ch in chunks(bytes, seed, 4099) {
        match d.push(ch, &mut out) {
            Ok(n) => {
                assert!(n <= ch.len(), "push took more than it was given");
                used += n;
                assert_eq!(out.len() as u64, d.received());
                assert!(
                    d.received() <= u64::from(size),
                    "more plaintext than announced"
                );
                if n < ch.len() {
                    assert!(
                        d.is_complete(),
                        "push stopped early on an incomplete attachment"
                    );
                    break;
                }
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    if d.is_complete() {
        assert_eq!(d.received(), u64::from(size));
        assert_eq!(used as u64, 5 + u64::from(size) + 16);
    }
    let result = match err {
        Some(e) => Err(e),
        None => d.finish(),
    };
    match genuine {
        Some(file) => {
            assert_eq!(result, Ok(()), "a genuine attachment was refused");
            assert_eq!(out, file);
            assert_eq!(used, bytes.len());
        }
        None => {
            if let Err(e) = &result {
                assert!(
                    matches!(
                        e,
                        RemoteProtocolError::NoFile
                            | RemoteProtocolError::FileSize
                            | RemoteProtocolError::FileDigest
                            | RemoteProtocolError::InvalidBody(_)
                            | RemoteProtocolError::RemoteControl(RcError::Decrypt)
                    ),
                    "unexpected attachment error {e:?}"
                );
            }
        }
    }
}

fn crafted_json(to_ctrl: bool, compression: bool, attachment: bool, seed: u8, c: &mut Cursor<'_>) {
    let json_len = usize::from(c.u16());
    let json = c.take(json_len);
    let file = c.rest();

    let mut snd = sender(to_ctrl, compression);
    let enc = snd.encode(json).expect("encoding a body cannot fail here");
    assert_eq!(enc.corr_id, 1);
    let mut bytes = enc.bytes.clone();
    if attachment {
        let size = u32::try_from(file.len()).expect("fuzz inputs are small");
        let mut e = FileEncryptor::new(&enc.file_key, size).expect("small files are fine");
        bytes.extend_from_slice(&e.header());
        for ch in chunks(file, seed, 1000) {
            let mut ch = ch.to_vec();
            e.encrypt(&mut ch).expect("within the announced size");
            bytes.extend_from_slice(&ch);
        }
        bytes.extend_from_slice(&e.finish().expect("all data encrypted"));
    }

    let mut rcv = receiver(to_ctrl, compression);
    let (b, rest) = rcv.decode(&bytes).expect("a genuine body must decode");
    assert_eq!(b.corr_id, 1);
    assert_eq!(b.json, json);
    assert!(same_key(&b.file_key, &enc.file_key));
    assert_eq!(rest, &bytes[enc.bytes.len()..]);
    if attachment {
        check_attachment(
            &b.file_key,
            file.len() as u32,
            FileDigest::of(file),
            rest,
            seed,
            Some(file),
        );
    }
    typed_agrees(to_ctrl, compression, &bytes, Some(json));

    // The same body with one bit flipped anywhere in the head never decodes.
    let mut tampered = enc.bytes.clone();
    let pos = (json_len.wrapping_mul(31) + file.len()) % tampered.len();
    tampered[pos] ^= 1 << (seed & 7);
    let mut rcv = receiver(to_ctrl, compression);
    if let Ok((b, _)) = rcv.decode(&tampered) {
        panic!(
            "a body with bit {} of byte {pos} flipped decoded (id {})",
            seed & 7,
            b.corr_id
        );
    }
}

fn crafted_plaintext(to_ctrl: bool, compression: bool, plain: &[u8]) {
    let mut snd = sender(to_ctrl, compression);
    let k = snd.keys_mut().snd_keys().expect("first id");
    let ct = seal_tail_tag(&k.keys.body.key, &k.keys.body.nonce, plain);
    let mut bytes = Vec::with_capacity(8 + ct.len() + 130);
    bytes.extend_from_slice(&k.corr_id.to_be_bytes());
    bytes.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&ct);
    if !to_ctrl {
        let f = fixed();
        let ssig = f.session_key.sign(digest(&SHA512, &bytes).as_ref());
        let mut h = Context::new(&SHA512);
        h.update(&bytes);
        h.update(&ssig.0);
        let idsig = f.identity_key.sign(h.finish().as_ref());
        bytes.push(64);
        bytes.extend_from_slice(&ssig.0);
        bytes.push(64);
        bytes.extend_from_slice(&idsig.0);
    }

    let code = hexv(TLS_UNIQUE);
    let prefix_ok = plain.len() > code.len()
        && usize::from(plain[0]) == code.len()
        && plain[1..=code.len()] == code[..];
    let mut rcv = receiver(to_ctrl, compression);
    match rcv.decode(&bytes) {
        Ok((b, rest)) => {
            assert!(
                prefix_ok,
                "accepted a body without this session's tls-unique"
            );
            assert!(rest.is_empty());
            assert_eq!(b.corr_id, 1);
            if compression {
                assert!(b.json.len() <= MAX_JSON_LEN);
            } else {
                assert_eq!(b.json, &plain[1 + code.len()..]);
            }
        }
        Err(RemoteProtocolError::SessionCode) => {
            assert!(!prefix_ok && !plain.is_empty());
        }
        Err(RemoteProtocolError::InvalidBody(_)) => {
            assert!(plain.is_empty() || prefix_ok && compression);
        }
        Err(e) => panic!("unexpected error for a genuine id and MAC: {e:?}"),
    }
}

fn raw_attachment(c: &mut Cursor<'_>) {
    let size = c.u32();
    let seed = c.u8();
    let bytes = c.rest();
    let key = SbKeyNonce {
        key: box_key(K1),
        nonce: nonce(ANNOUNCEMENT_NONCE),
    };
    check_attachment(&key, size, FileDigest::of(b""), bytes, seed, None);
}
