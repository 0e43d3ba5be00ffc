//! `session_sequence`: structure-aware (`arbitrary`) sequences of session operations against a
//! controller/host pair of `RemoteSession`s, checked against a model of the receive window.
//!
//! Operations, in both directions (requests are signed, responses are not): send and deliver;
//! send and hold back; deliver a held message (out of order); replay a delivered one; let the
//! sender skip ahead (burn up to 300 ids, more than the 256-id window); deliver a copy with one
//! bit flipped, truncated, or with its id rewritten; send a genuine id under another session's
//! tls-unique. Two fresh messages are sent at the end.
//!
//! The model is the documented window (`RemoteKeys::rcv_keys`): ids above `last + 256` are
//! `ManySkippedIds`, `last` is `DuplicateId`, ids below `last` use and forget a stored key or
//! are `EarlierId`, and only the 256 ids below the newest keep stored keys. A body refused
//! before the id check (framing, signatures) must not touch the window; a body refused after
//! it (decryption, session code) has used its id.
//!
//! Invariants:
//! - no (direction, id) is ever accepted twice;
//! - an accepted body is exactly a message the peer sent for that id (same JSON and attachment
//!   key), never a tampered, forged or wrong-session-code one;
//! - every genuine message whose id the window allows is accepted, however late, repeated or
//!   reordered the traffic before it — so rejected messages leave the session usable;
//! - window errors are exactly the model's, and after every delivery the receiver's counter
//!   and number of stored keys equal the model's.

use std::collections::{BTreeSet, HashSet};

use arbitrary::{Arbitrary, Unstructured};
use xrcp::session::{
    BodyHeadReader, RemoteCrypto, RemoteProtocolError, RemoteSession, RemoteSignatures, MAX_SKIP,
};
use xrcp::RcError;
use zeroize::Zeroizing;

use crate::common::{ctrl_session, fixed, hexv, host_session, TLS_UNIQUE};

const MAX_OPS: usize = 48;
const SKIP_BUDGET: u32 = 600;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Controller → host (request, signed).
    ToHost,
    /// Host → controller (response).
    ToCtrl,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Send { dir: Dir, payload: u8 },
    Hold { dir: Dir, payload: u8 },
    DeliverHeld { index: u8 },
    Replay { index: u8 },
    SkipAhead { dir: Dir, n: u16 },
    FlipBit { index: u8, bit: u16 },
    Truncate { index: u8, keep: u16 },
    ForgeId { index: u8, delta: i16 },
    WrongSessionCode { dir: Dir, payload: u8 },
}

#[derive(Arbitrary, Debug)]
pub struct Script {
    compression: bool,
    ops: Vec<Op>,
}

struct Msg {
    dir: Dir,
    id: u32,
    bytes: Vec<u8>,
    json: Vec<u8>,
    file_key: ([u8; 32], [u8; 24]),
    wrong_code: bool,
    delivered: bool,
}

impl Msg {
    /// `corrId ‖ ctLen ‖ ct`: what the signatures cover and what identifies a body.
    fn signed(&self) -> &[u8] {
        let ct_len =
            u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]]);
        &self.bytes[..8 + ct_len as usize]
    }
}

#[derive(Default)]
struct Window {
    last: u32,
    stored: BTreeSet<u32>,
}

impl Window {
    fn take(&mut self, id: u32) -> Result<(), RemoteProtocolError> {
        if id < self.last {
            return if self.stored.remove(&id) {
                Ok(())
            } else {
                Err(RemoteProtocolError::EarlierId(self.last - id))
            };
        }
        if id == self.last {
            return Err(RemoteProtocolError::DuplicateId);
        }
        if u64::from(id) > u64::from(self.last) + u64::from(MAX_SKIP) {
            return Err(RemoteProtocolError::ManySkippedIds(id - self.last));
        }
        self.stored.extend(self.last + 1..id);
        self.last = id;
        let floor = id.saturating_sub(MAX_SKIP);
        self.stored.retain(|&s| s >= floor);
        Ok(())
    }
}

struct State {
    compression: bool,
    ctrl: RemoteSession,
    host: RemoteSession,
    /// Receive-window models: [host (receives requests), controller (receives responses)].
    windows: [Window; 2],
    pool: Vec<Msg>,
    accepted: HashSet<(Dir, u32)>,
    skip_budget: u32,
}

fn slot(dir: Dir) -> usize {
    match dir {
        Dir::ToHost => 0,
        Dir::ToCtrl => 1,
    }
}

impl State {
    fn sender(&mut self, dir: Dir) -> &mut RemoteSession {
        match dir {
            Dir::ToHost => &mut self.ctrl,
            Dir::ToCtrl => &mut self.host,
        }
    }

    fn receiver(&mut self, dir: Dir) -> &mut RemoteSession {
        match dir {
            Dir::ToHost => &mut self.host,
            Dir::ToCtrl => &mut self.ctrl,
        }
    }

    /// Encodes a message from the sender of `dir` and adds it to the pool; returns its index.
    fn send(&mut self, dir: Dir, payload: u8, wrong_code: bool) -> Option<usize> {
        let json = match dir {
            Dir::ToHost => format!(r#"{{"type":"send","command":"/m {payload}","retryNumber":0}}"#),
            Dir::ToCtrl => format!(r#"{{"type":"fileStored","filePath":"f{payload}"}}"#),
        }
        .into_bytes();
        let compression = self.compression;
        let sender = self.sender(dir);
        if sender.keys().snd_counter() == u32::MAX {
            return None;
        }
        let (id, bytes, file_key) = if wrong_code {
            let k = sender.keys_mut().snd_keys().expect("ids left");
            let f = fixed();
            let signatures = match dir {
                Dir::ToHost => RemoteSignatures::Sign {
                    session_key: f.session_key.clone(),
                    identity_key: f.identity_key.clone(),
                },
                Dir::ToCtrl => RemoteSignatures::Verify {
                    session_key: f.session_pub,
                    identity_key: f.identity_pub,
                },
            };
            let other = RemoteCrypto::new(Zeroizing::new(vec![0xee; 32]), signatures, compression)
                .expect("32-byte code");
            let bytes = other
                .encrypt_encode_body(k.corr_id, &k.keys.body, &json)
                .expect("encode");
            (k.corr_id, bytes, k.keys.file)
        } else {
            let e = sender.encode(&json).expect("encode");
            (e.corr_id, e.bytes, e.file_key)
        };
        self.pool.push(Msg {
            dir,
            id,
            bytes,
            json,
            file_key: (*file_key.key.as_bytes(), file_key.nonce.0),
            wrong_code,
            delivered: false,
        });
        Some(self.pool.len() - 1)
    }

    /// Delivers `bytes` to the receiver of `dir` and checks the outcome against the model.
    fn deliver(&mut self, dir: Dir, bytes: &[u8]) {
        let s = slot(dir);
        let rcv = self.receiver(dir);
        let pre = BodyHeadReader::read_from(rcv.crypto().expects_signatures(), bytes)
            .and_then(|(head, _)| rcv.crypto().verify_signatures(&head).map(|()| head));
        let result = rcv.decode(bytes).map(|(b, rest)| {
            (
                b.corr_id,
                b.json,
                (*b.file_key.key.as_bytes(), b.file_key.nonce.0),
                rest.len(),
            )
        });
        let (counter, stored) = (rcv.keys().rcv_counter(), rcv.keys().skipped_count());
        match pre {
            Err(e) => assert_eq!(result.err(), Some(e), "framing/signature error differs"),
            Ok(head) => {
                let id = head.corr_id();
                match self.windows[s].take(id) {
                    Err(e) => assert_eq!(result.err(), Some(e), "window error differs for id {id}"),
                    Ok(()) => {
                        let signed = &bytes[..8 + head.ciphertext().len()];
                        let original = self
                            .pool
                            .iter()
                            .find(|m| m.dir == dir && m.id == id && m.signed() == signed);
                        match (original, result) {
                            (Some(m), Ok((got_id, json, key, _))) if !m.wrong_code => {
                                assert_eq!(got_id, id);
                                assert_eq!(json, m.json, "accepted body has other JSON");
                                assert_eq!(key, m.file_key, "accepted body has another file key");
                                assert!(
                                    self.accepted.insert((dir, id)),
                                    "id {id} accepted twice ({dir:?})"
                                );
                            }
                            (Some(m), Err(RemoteProtocolError::SessionCode)) if m.wrong_code => {}
                            (Some(m), r) => panic!(
                                "message {id} ({dir:?}, wrong code: {}) gave {:?}",
                                m.wrong_code,
                                r.map(|(i, ..)| i)
                            ),
                            (None, Ok((got_id, ..))) => {
                                panic!("accepted a body nobody sent (id {got_id}, {dir:?})")
                            }
                            (None, Err(e)) => assert!(
                                matches!(
                                    e,
                                    RemoteProtocolError::RemoteControl(RcError::Decrypt)
                                        | RemoteProtocolError::InvalidBody(_)
                                        | RemoteProtocolError::SessionCode
                                ),
                                "unexpected error for a forged body: {e:?}"
                            ),
                        }
                    }
                }
            }
        }
        let w = &self.windows[s];
        assert_eq!(counter, w.last, "receive counter differs from the model");
        assert_eq!(stored, w.stored.len(), "stored keys differ from the model");
    }

    fn pick(&self, index: u8, filter: impl Fn(&Msg) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.pool.len())
            .filter(|&i| filter(&self.pool[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[usize::from(index) % candidates.len()])
    }

    /// Delivers a copy of pooled message `i` after `edit`; an unedited copy marks it delivered.
    fn deliver_pooled(&mut self, i: usize, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = self.pool[i].bytes.clone();
        edit(&mut bytes);
        let dir = self.pool[i].dir;
        if bytes == self.pool[i].bytes {
            self.pool[i].delivered = true;
        }
        self.deliver(dir, &bytes);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send { dir, payload } => {
                if let Some(i) = self.send(dir, payload, false) {
                    self.deliver_pooled(i, |_| {});
                }
            }
            Op::Hold { dir, payload } => {
                self.send(dir, payload, false);
            }
            Op::DeliverHeld { index } => {
                if let Some(i) = self.pick(index, |m| !m.delivered) {
                    self.deliver_pooled(i, |_| {});
                }
            }
            Op::Replay { index } => {
                if let Some(i) = self.pick(index, |m| m.delivered) {
                    self.deliver_pooled(i, |_| {});
                }
            }
            Op::SkipAhead { dir, n } => {
                let n = (u32::from(n) % 300 + 1).min(self.skip_budget);
                self.skip_budget -= n;
                let sender = self.sender(dir);
                for _ in 0..n {
                    if sender.keys_mut().snd_keys().is_err() {
                        break;
                    }
                }
            }
            Op::FlipBit { index, bit } => {
                if let Some(i) = self.pick(index, |_| true) {
                    self.deliver_pooled(i, |b| {
                        let at = usize::from(bit / 8) % b.len();
                        b[at] ^= 1 << (bit % 8);
                    });
                }
            }
            Op::Truncate { index, keep } => {
                if let Some(i) = self.pick(index, |_| true) {
                    self.deliver_pooled(i, |b| {
                        let keep = usize::from(keep) % (b.len() + 1);
                        b.truncate(keep);
                    });
                }
            }
            Op::ForgeId { index, delta } => {
                if let Some(i) = self.pick(index, |_| true) {
                    self.deliver_pooled(i, |b| {
                        let id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let forged = id.wrapping_add(delta as i32 as u32);
                        b[..4].copy_from_slice(&forged.to_be_bytes());
                    });
                }
            }
            Op::WrongSessionCode { dir, payload } => {
                if let Some(i) = self.send(dir, payload, true) {
                    self.deliver_pooled(i, |_| {});
                }
            }
        }
    }
}

pub fn run(data: &[u8]) {
    let Ok(script) = Unstructured::new(data).arbitrary::<Script>() else {
        return;
    };
    let code = hexv(TLS_UNIQUE);
    let mut st = State {
        compression: script.compression,
        ctrl: ctrl_session(&code, script.compression),
        host: host_session(&code, script.compression),
        windows: Default::default(),
        pool: Vec::new(),
        accepted: HashSet::new(),
        skip_budget: SKIP_BUDGET,
    };
    for op in script.ops.iter().take(MAX_OPS) {
        st.apply(op);
    }
    // Whatever happened, fresh traffic is accepted whenever the window allows its id.
    for dir in [Dir::ToHost, Dir::ToCtrl] {
        if let Some(i) = st.send(dir, 0xff, false) {
            let id = st.pool[i].id;
            let w = &st.windows[slot(dir)];
            let allowed = w.stored.contains(&id)
                || id > w.last && u64::from(id) <= u64::from(w.last) + u64::from(MAX_SKIP);
            st.deliver_pooled(i, |_| {});
            assert_eq!(
                st.accepted.contains(&(dir, id)),
                allowed,
                "fresh message {id} ({dir:?}) vs window at {}",
                st.windows[slot(dir)].last
            );
        }
    }
}
