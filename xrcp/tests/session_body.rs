//! Session body framing, signatures, key window and compression (spec/xrcp.md §10.2, §10.4).

mod session_common;

use serde_json::json;
use session_common::{pair, pair_with, HYBRID, TLS_UNIQUE};
use sha2::{Digest, Sha512};
use xrcp::crypto::keys::Signature;
use xrcp::session::{
    BodyHeadReader, RRResult, RemoteCommand, RemoteProtocolError, RemoteResponse, MAX_BODY_CT_LEN,
};
use xrcp::RcError;

fn send_cmd(text: &str) -> RemoteCommand {
    RemoteCommand::Send {
        command: text.into(),
        retry_number: 0,
    }
}

#[test]
fn request_layout_and_round_trip() {
    let (mut ctrl, mut host) = pair(false);
    let cmd = send_cmd("/u");
    let enc = ctrl.encode_command(&cmd).unwrap();
    assert_eq!(enc.corr_id, 1);
    let b = &enc.bytes;
    assert_eq!(&b[..4], &1u32.to_be_bytes());
    let ct_len = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
    let json_len = cmd.to_json_bytes().len();
    // plaintext = 1 + 32 + JSON; ciphertext adds the 16-byte tag.
    assert_eq!(ct_len, 1 + TLS_UNIQUE.len() + json_len + 16);
    assert_eq!(b.len(), 8 + ct_len + 130);
    assert_eq!(b[8 + ct_len], 0x40);
    assert_eq!(b[8 + ct_len + 65], 0x40);

    // The signatures are over the SHA-512 digests, the second one including the first
    // signature's raw bytes.
    let signed = &b[..8 + ct_len];
    let ssig = Signature::from_slice(&b[8 + ct_len + 1..8 + ct_len + 65]).unwrap();
    let idsig = Signature::from_slice(&b[8 + ct_len + 66..]).unwrap();
    let h1 = Sha512::digest(signed);
    let mut h2 = Sha512::new();
    h2.update(signed);
    h2.update(ssig.0);
    let h2 = h2.finalize();
    let sess = session_common::key(session_common::SESSION_KEY).public();
    let id = session_common::key(session_common::IDENTITY_KEY).public();
    assert!(sess.verify(&h1, &ssig));
    assert!(id.verify(&h2, &idsig));
    assert!(!sess.verify(signed, &ssig));

    let (got, file_key, rest) = host.decode_command(b).unwrap();
    assert_eq!(got, cmd);
    assert!(rest.is_empty());
    assert_eq!(file_key.nonce, enc.file_key.nonce);
}

#[test]
fn response_has_no_signatures_and_round_trips() {
    let (mut ctrl, mut host) = pair(false);
    let resp = RemoteResponse::ChatResponse {
        chat_response: RRResult::Result(json!({"type": "activeUser", "user": {"userId": 1}})),
    };
    let enc = host.encode_response(&resp).unwrap();
    let ct_len = u32::from_be_bytes(enc.bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(enc.bytes.len(), 8 + ct_len);
    let (got, _, rest) = ctrl.decode_response(&enc.bytes).unwrap();
    assert_eq!(got, resp);
    assert!(rest.is_empty());
    // Trailing bytes after the head are left for the attachment reader.
    let enc2 = host.encode_response(&resp).unwrap();
    let mut with_tail = enc2.bytes.clone();
    with_tail.extend_from_slice(b"\x01tail");
    let (_, _, rest) = ctrl.decode_response(&with_tail).unwrap();
    assert_eq!(rest, b"\x01tail");
}

#[test]
fn counters_are_independent_per_direction() {
    let (mut ctrl, mut host) = pair(false);
    for i in 1..=3u32 {
        let req = ctrl.encode_command(&send_cmd("/x")).unwrap();
        assert_eq!(req.corr_id, i);
        host.decode_command(&req.bytes).unwrap();
    }
    let resp = host
        .encode_response(&RemoteResponse::ChatEvent { chat_event: None })
        .unwrap();
    assert_eq!(resp.corr_id, 1, "the response id is the host's own counter");
    ctrl.decode_response(&resp.bytes).unwrap();
}

#[test]
fn replay_is_duplicate_id() {
    let (mut ctrl, mut host) = pair(false);
    let req = ctrl.encode_command(&send_cmd("/u")).unwrap();
    host.decode_command(&req.bytes).unwrap();
    assert_eq!(
        host.decode_command(&req.bytes).unwrap_err(),
        RemoteProtocolError::DuplicateId
    );
}

#[test]
fn id_257_ahead_is_many_skipped() {
    let (mut ctrl, mut host) = pair(false);
    let mut last = None;
    for _ in 0..257 {
        last = Some(ctrl.encode_command(&send_cmd("/u")).unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.corr_id, 257);
    assert_eq!(
        host.decode_command(&last.bytes).unwrap_err(),
        RemoteProtocolError::ManySkippedIds(257)
    );
    // The window did not move: id 256 (exactly 256 ahead) is still fine.
    let (mut ctrl, mut host) = pair(false);
    let msgs: Vec<_> = (0..256)
        .map(|_| ctrl.encode_command(&send_cmd("/u")).unwrap())
        .collect();
    host.decode_command(&msgs[255].bytes).unwrap();
    assert_eq!(host.keys().skipped_count(), 255);
}

#[test]
fn out_of_order_within_window_works_once_then_earlier_id() {
    let (mut ctrl, mut host) = pair(false);
    let m: Vec<_> = (0..4)
        .map(|i| ctrl.encode_command(&send_cmd(&format!("/c{i}"))).unwrap())
        .collect();
    assert_eq!(host.decode_command(&m[2].bytes).unwrap().0, send_cmd("/c2"));
    assert_eq!(host.decode_command(&m[0].bytes).unwrap().0, send_cmd("/c0"));
    assert_eq!(
        host.decode_command(&m[0].bytes).unwrap_err(),
        RemoteProtocolError::EarlierId(2)
    );
    assert_eq!(host.decode_command(&m[1].bytes).unwrap().0, send_cmd("/c1"));
    assert_eq!(host.decode_command(&m[3].bytes).unwrap().0, send_cmd("/c3"));
    assert_eq!(
        host.decode_command(&m[1].bytes).unwrap_err(),
        RemoteProtocolError::EarlierId(2)
    );
}

#[test]
fn bad_signatures_are_ctrl_auth_and_do_not_move_the_window() {
    let (mut ctrl, mut host) = pair(false);
    let req = ctrl.encode_command(&send_cmd("/u")).unwrap();
    let ct_end = req.bytes.len() - 130;
    for (what, at) in [("ssig", ct_end + 1), ("idsig", ct_end + 66 + 10)] {
        let mut bad = req.bytes.clone();
        bad[at] ^= 0x01;
        assert_eq!(
            host.decode_command(&bad).unwrap_err(),
            RemoteProtocolError::RemoteControl(RcError::CtrlAuth),
            "{what}"
        );
    }
    // Tampering with the signed part is also caught by the signatures, before decryption.
    let mut bad = req.bytes.clone();
    bad[12] ^= 0x80;
    assert_eq!(
        host.decode_command(&bad).unwrap_err(),
        RemoteProtocolError::CTRL_AUTH
    );
    // Each signature must be made by its own key.
    let mut swapped = req.bytes.clone();
    let (ssig, idsig) = swapped[ct_end..].split_at_mut(65);
    ssig[1..].swap_with_slice(&mut idsig[1..]);
    assert_eq!(
        host.decode_command(&swapped).unwrap_err(),
        RemoteProtocolError::CTRL_AUTH
    );
    // A wrong signature length byte is a malformed body.
    let mut bad_len = req.bytes.clone();
    bad_len[ct_end] = 0x3f;
    assert!(matches!(
        host.decode_command(&bad_len).unwrap_err(),
        RemoteProtocolError::InvalidBody(_)
    ));
    // None of that used up id 1.
    assert_eq!(host.keys().rcv_counter(), 0);
    assert_eq!(host.decode_command(&req.bytes).unwrap().0, send_cmd("/u"));
}

#[test]
fn wrong_tls_unique_is_session_code_error() {
    let (mut ctrl, mut host) = pair_with(HYBRID, &[1; 32], &[2; 32], false, false);
    let req = ctrl.encode_command(&send_cmd("/u")).unwrap();
    assert_eq!(
        host.decode_command(&req.bytes).unwrap_err(),
        RemoteProtocolError::SessionCode
    );
    // Prefix of a different length.
    let (mut ctrl, mut host) = pair_with(HYBRID, &[1; 12], &[1; 32], false, false);
    let req = ctrl.encode_command(&send_cmd("/u")).unwrap();
    assert_eq!(
        host.decode_command(&req.bytes).unwrap_err(),
        RemoteProtocolError::SessionCode
    );
    // The id was consumed (decryption succeeded), so a resend is a duplicate, as in the
    // reference.
    assert_eq!(
        host.decode_command(&req.bytes).unwrap_err(),
        RemoteProtocolError::DuplicateId
    );
}

#[test]
fn flipped_ciphertext_bit_is_decrypt() {
    let (mut ctrl, mut host) = pair(false);
    let resp = host
        .encode_response(&RemoteResponse::FileStored {
            file_path: "a".into(),
        })
        .unwrap();
    let mut bad = resp.bytes.clone();
    bad[20] ^= 0x04;
    assert_eq!(
        ctrl.decode_response(&bad).unwrap_err(),
        RemoteProtocolError::DECRYPT
    );
    // Tag bit too.
    let resp2 = host
        .encode_response(&RemoteResponse::FileStored {
            file_path: "b".into(),
        })
        .unwrap();
    let mut bad = resp2.bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(
        ctrl.decode_response(&bad).unwrap_err(),
        RemoteProtocolError::DECRYPT
    );
    // ctLen shorter than a tag.
    let mut short = 3u32.to_be_bytes().to_vec();
    short.extend_from_slice(&4u32.to_be_bytes());
    short.extend_from_slice(&[0; 4]);
    assert_eq!(
        ctrl.decode_response(&short).unwrap_err(),
        RemoteProtocolError::DECRYPT
    );
}

#[test]
fn zstd_all_four_combinations() {
    let big = "x".repeat(5000);
    let cmd = send_cmd(&big);
    for (c, h) in [(false, false), (true, true), (true, false), (false, true)] {
        let (mut ctrl, mut host) = pair_with(HYBRID, &TLS_UNIQUE, &TLS_UNIQUE, c, h);
        let req = ctrl.encode_command(&cmd).unwrap();
        let ct_len = u32::from_be_bytes(req.bytes[4..8].try_into().unwrap()) as usize;
        if c {
            assert!(ct_len < 200, "compressed body is small: {ct_len}");
        } else {
            assert!(ct_len > 5000);
        }
        let got = host.decode_command(&req.bytes);
        if c == h {
            assert_eq!(got.unwrap().0, cmd, "ctrl {c} host {h}");
        } else if c {
            // zstd bytes read as JSON.
            assert!(
                matches!(got, Err(RemoteProtocolError::InvalidJson(_))),
                "ctrl {c} host {h}: {got:?}"
            );
        } else {
            // JSON read as a zstd frame.
            assert!(
                matches!(got, Err(RemoteProtocolError::InvalidBody(_))),
                "ctrl {c} host {h}: {got:?}"
            );
        }
    }
}

/// Without compression the JSON limit holds too: a body of more than MAX_JSON_LEN bytes of
/// JSON (which still fits MAX_BODY_CT_LEN) is refused.
#[test]
fn uncompressed_json_over_the_limit_is_refused() {
    let (mut ctrl, mut host) = pair(false);
    let over = vec![b' '; xrcp::session::MAX_JSON_LEN + 1];
    let enc = host.encode(&over).unwrap();
    assert!(enc.bytes.len() as u64 <= u64::from(MAX_BODY_CT_LEN) + 200);
    assert!(matches!(
        ctrl.decode(&enc.bytes).unwrap_err(),
        RemoteProtocolError::InvalidBody(_)
    ));
    let (mut ctrl, mut host) = pair(false);
    let at = vec![b' '; xrcp::session::MAX_JSON_LEN];
    let enc = host.encode(&at).unwrap();
    assert!(!matches!(
        ctrl.decode(&enc.bytes),
        Err(RemoteProtocolError::InvalidBody(_))
    ));
}

#[test]
fn compressed_response_round_trip_and_bomb_is_bounded() {
    let (mut ctrl, mut host) = pair(true);
    let resp = RemoteResponse::ChatEvent {
        chat_event: Some(RRResult::Result(
            json!({"type": "newChatItems", "items": vec!["y"; 1000]}),
        )),
    };
    let enc = host.encode_response(&resp).unwrap();
    assert_eq!(ctrl.decode_response(&enc.bytes).unwrap().0, resp);

    // A 65 MiB JSON compresses to a small body but must not be accepted.
    let (mut ctrl, mut host) = pair(true);
    let huge = vec![b' '; (64 << 20) + 1024];
    let enc = host.encode(&huge).unwrap();
    assert!(enc.bytes.len() < 100_000);
    assert!(matches!(
        ctrl.decode(&enc.bytes).unwrap_err(),
        RemoteProtocolError::InvalidBody(_)
    ));
}

#[test]
fn lengths_are_bounded_and_truncation_reported() {
    let mut over = 1u32.to_be_bytes().to_vec();
    over.extend_from_slice(&(MAX_BODY_CT_LEN + 1).to_be_bytes());
    let mut r = BodyHeadReader::new(true);
    assert_eq!(r.push(&over).unwrap_err(), RemoteProtocolError::InvalidSize);
    assert_eq!(
        BodyHeadReader::read_from(false, &[0, 0, 0]).unwrap_err(),
        RemoteProtocolError::InvalidSize
    );
    let mut short = 1u32.to_be_bytes().to_vec();
    short.extend_from_slice(&100u32.to_be_bytes());
    short.extend_from_slice(&[0; 50]);
    assert!(matches!(
        BodyHeadReader::read_from(false, &short).unwrap_err(),
        RemoteProtocolError::InvalidBody(_)
    ));
    // Requests without signatures are truncated requests.
    let (_, mut host) = pair(false);
    let (_, mut other_host) = pair(false);
    let resp = other_host
        .encode_response(&RemoteResponse::ChatEvent { chat_event: None })
        .unwrap();
    assert!(matches!(
        host.decode_command(&resp.bytes).unwrap_err(),
        RemoteProtocolError::InvalidBody(_)
    ));
}

#[test]
fn head_reader_accepts_any_chunking() {
    let (mut ctrl, host) = pair(false);
    let req = ctrl.encode_command(&send_cmd("/chunks")).unwrap();
    for step in [1usize, 3, 7, 64, 1000] {
        let mut r = host.crypto().head_reader();
        let mut used_total = 0;
        for chunk in req.bytes.chunks(step) {
            used_total += r.push(chunk).unwrap();
        }
        assert!(r.is_complete());
        assert_eq!(used_total, req.bytes.len());
        let head = r.finish().unwrap();
        assert_eq!(head.corr_id(), 1);
        host.crypto().verify_signatures(&head).unwrap();
    }
}

#[test]
fn empty_plaintext_is_invalid_body() {
    // Only a peer holding the keys can produce one: build it from the host's send chain.
    let (mut ctrl, mut host) = pair(false);
    let snd = host.keys_mut().snd_keys().unwrap();
    let ct = xrcp::crypto::secretbox::seal_tail_tag(&snd.keys.body.key, &snd.keys.body.nonce, b"");
    let mut resp = snd.corr_id.to_be_bytes().to_vec();
    resp.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    resp.extend_from_slice(&ct);
    assert_eq!(
        ctrl.decode(&resp).unwrap_err(),
        RemoteProtocolError::InvalidBody("empty body".into())
    );
}
