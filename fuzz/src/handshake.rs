//! `handshake`: the two sans-IO state machines, `ControllerHandshake::handle_host_hello` and
//! `HostHandshake::handle_ctrl_hello`, driven with genuine, edited, crafted and arbitrary
//! blocks.
//!
//! Both handshakes consume `self` and cannot be cloned, so each input builds new handshakes;
//! the host's sntrup761 key pair (about 25 ms to make even in an uninstrumented release build)
//! is made once and cloned into each (`HostHandshake::without_kem` + `with_kem`). Two
//! scenarios, chosen by the input:
//! - `Controller`: the real controller against a host played by the harness with a fixed DH
//!   key and a KEM key pair made once: no key generation per input (hundreds of runs per
//!   second). The harness seals whatever HELLO the input describes (genuine, bad version,
//!   other CA, bad KEM key, arbitrary padded plaintext) under the right key, so every check
//!   behind the MAC is reachable; it then reads the controller's reply as a host would;
//! - `Both` (one input in 4): both real state machines, with the controller's encapsulation
//!   and the host's decapsulation.
//!
//! The pairings (a fresh one, and a known one left by a completed session) are built once in
//! a `OnceLock` and cloned.
//!
//! Invariants (`Controller`):
//! - for an intact block, the outcome is exactly the documented order of checks: padding
//!   (`DECRYPT`), JSON (`SYNTAX`), the HELLO's CA against TLS (`IDENTITY`), a known host's
//!   pinned CA (`INTERNAL`), the version (`VERSION`), else success;
//! - the controller accepts only blocks whose content is exactly what the host sent;
//! - a refusal after the DH step carries an ERROR block that the host opens to
//!   `<the controller's error>`; an acceptance carries a HELLO that the host opens with its
//!   KEM secret, both chains agree in both directions, the host's app JSON, version and
//!   tls-unique are handed over, and the pairing records the TLS CA and the host's DH key.
//!
//! Invariants (`Both`):
//! - a genuine invitation is accepted by the host, and its link parses back to it;
//!   the controller's announcement (known pairing) opens with the host's current key;
//! - the controller accepts a HELLO only if its block content is exactly the host's and the
//!   TLS CA is the host's; a genuine HELLO with the host's CA is always accepted, and with
//!   another CA always refused as `IDENTITY`; every ERROR reply is one block;
//! - an accepted HELLO hands over the host's app JSON, the tls-unique and the host CA;
//! - the host completes only if the controller did and the reply content is exactly the
//!   controller's; then both chains agree in both directions, the host has the invitation's
//!   keys and app, and the controller recorded the host's new DH key; a genuine reply always
//!   completes; a genuine ERROR reads back as `CTRL_ERROR <the controller's error>`.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;
use xrcp::codec::json::to_aeson_string;
use xrcp::codec::version::SUPPORTED;
use xrcp::codec::{pad, unpad, Version};
use xrcp::crypto::secretbox::seal;
use xrcp::crypto::{chain_init, HybridSecret, KemKeyPair, KeyHash, Nonce};
use xrcp::handshake::{ControllerHandshake, HostHandshake};
use xrcp::message::announcement::ANNOUNCEMENT_PAD;
use xrcp::message::{
    decode_block, encode_block, Announcement, CtrlEncHello, DhKeyUsed, HostEncHello, HostHello,
    SignedInvitation, BLOCK_SIZE, HELLO_PAD,
};
use xrcp::pairing::{CtrlPairing, HostPairing, KnownHost};
use xrcp::RcError;

use crate::common::fixed;

const TS: i64 = 1_700_000_000;

#[derive(Arbitrary, Debug)]
pub enum Edit {
    Genuine,
    /// XOR `mask` into the block byte at `at % BLOCK_SIZE`.
    Flip {
        at: u16,
        mask: u8,
    },
    /// Keep `keep` bytes of the content and frame it again.
    Truncate {
        keep: u16,
    },
    /// Overwrite the 2-byte length prefix.
    SetLength {
        len: u16,
    },
    /// Arbitrary content, framed as a block.
    Content(Vec<u8>),
    /// Arbitrary bytes as the block (any length).
    Raw(Vec<u8>),
    /// Overwrite content bytes from `at`.
    Splice {
        at: u16,
        bytes: Vec<u8>,
    },
}

#[derive(Debug)]
pub enum Input {
    Controller(CtrlInput),
    Both(BothInput),
}

/// One input in 4 (first byte `% 4 == 3`) runs both real state machines: they add the
/// host's decapsulation to the controller scenario's encapsulation (the host's KEM key pair is
/// made once and cloned, `HostHandshake::without_kem`).
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if u8::arbitrary(u)? % 4 == 3 {
            Ok(Input::Both(u.arbitrary()?))
        } else {
            Ok(Input::Controller(u.arbitrary()?))
        }
    }
}

/// What the harness host seals into its HELLO box.
#[derive(Arbitrary, Debug)]
pub enum HelloBody {
    /// A well-formed HELLO JSON.
    Json {
        version: u16,
        /// The CA in the JSON: the host's (else 0x99…, which may equal the TLS one).
        ca_is_host: bool,
        app: Option<String>,
        /// A valid KEM public key (else a 3-byte one).
        kem_ok: bool,
    },
    /// Any padded plaintext (length prefix and fill included).
    Plain(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub struct CtrlInput {
    known: bool,
    ctrl_app: Option<String>,
    hello: HelloBody,
    to_ctrl: Edit,
    tls_ca_is_host: bool,
    tls_unique: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
pub struct BothInput {
    known: bool,
    ctrl_app: Option<String>,
    host_app: Option<String>,
    to_ctrl: Edit,
    tls_ca_is_host: bool,
    tls_unique: Vec<u8>,
    to_host: Edit,
}

struct Pairings {
    fresh: HostPairing,
    known_host: HostPairing,
    known_ctrl: CtrlPairing,
}

fn pairings() -> &'static Pairings {
    static P: OnceLock<Pairings> = OnceLock::new();
    P.get_or_init(|| {
        let fresh = HostPairing::new().expect("pairing");
        // One completed session leaves a known pairing on both sides.
        let ctrl = ControllerHandshake::new(
            HostPairing::new().expect("pairing"),
            Ipv4Addr::LOCALHOST,
            5000,
            serde_json::json!({"deviceName": "desk"}),
            TS,
        )
        .expect("controller");
        let host = HostHandshake::new(ctrl.invitation().clone(), None).expect("host");
        let hello = host.hello_block(Value::Null).expect("hello");
        let out = ctrl
            .handle_host_hello(&hello, host.ca_fingerprint(), &[1; 32])
            .map_err(|r| r.error)
            .expect("controller accepts");
        let (_, known_ctrl) = host
            .handle_ctrl_hello(&out.reply, &[1; 32])
            .expect("host completes");
        Pairings {
            fresh,
            known_host: out.pairing,
            known_ctrl,
        }
    })
}

fn app(text: &Option<String>, name: &str) -> Value {
    match text {
        None => serde_json::json!({ "deviceName": name }),
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

fn apply(edit: &Edit, block: &[u8]) -> Vec<u8> {
    let content = || decode_block(block).map(<[u8]>::to_vec).unwrap_or_default();
    let frame = |c: &[u8]| encode_block(c).unwrap_or_else(|_| block.to_vec());
    match edit {
        Edit::Genuine => block.to_vec(),
        Edit::Flip { at, mask } => {
            let mut b = block.to_vec();
            if !b.is_empty() {
                let i = usize::from(*at) % b.len();
                b[i] ^= mask;
            }
            b
        }
        Edit::Truncate { keep } => {
            let c = content();
            frame(&c[..usize::from(*keep).min(c.len())])
        }
        Edit::SetLength { len } => {
            let mut b = block.to_vec();
            if b.len() >= 2 {
                b[..2].copy_from_slice(&len.to_be_bytes());
            }
            b
        }
        Edit::Content(c) => frame(c),
        Edit::Raw(r) => r.clone(),
        Edit::Splice { at, bytes } => {
            let mut c = content();
            let at = usize::from(*at).min(c.len());
            let end = (at + bytes.len()).min(c.len());
            c[at..end].copy_from_slice(&bytes[..end - at]);
            frame(&c)
        }
    }
}

/// Whether two blocks carry the same content (fill bytes do not count).
fn same_content(a: &[u8], b: &[u8]) -> bool {
    matches!((decode_block(a), decode_block(b)), (Ok(x), Ok(y)) if x == y)
}

fn same_dh_key(a: &[u8], b: &[u8]) -> bool {
    let key = |blk: &[u8]| {
        decode_block(blk)
            .and_then(HostEncHello::decode)
            .map(|h| h.dh_key)
            .ok()
    };
    matches!((key(a), key(b)), (Some(x), Some(y)) if x == y)
}

/// A controller starts unless its app JSON has `+` or `%` (which a Haskell host would decode
/// twice): then `new` refuses with `INTERNAL`.
fn start(pairing: HostPairing, app: Value) -> Option<ControllerHandshake> {
    match ControllerHandshake::new(pairing, Ipv4Addr::LOCALHOST, 5000, app.clone(), TS) {
        Ok(c) => {
            assert!(
                json_survives(&app),
                "started with '+' or '%' in the app JSON"
            );
            Some(c)
        }
        Err(e) => {
            assert!(
                matches!(e, RcError::Internal(_)),
                "controller start failed: {e}"
            );
            assert!(!json_survives(&app), "controller start failed: {e}");
            None
        }
    }
}

fn json_survives(v: &Value) -> bool {
    !to_aeson_string(v).contains(['+', '%'])
}

pub fn run(data: &[u8]) {
    match Unstructured::new(data).arbitrary::<Input>() {
        Ok(Input::Controller(input)) => controller(&input),
        Ok(Input::Both(input)) => both(&input),
        Err(_) => {}
    }
}

fn both(input: &BothInput) {
    let p = pairings();
    let (host_pairing, ctrl_pairing) = if input.known {
        (p.known_host.clone(), Some(p.known_ctrl.clone()))
    } else {
        (p.fresh.clone(), None)
    };
    let ctrl_app = app(&input.ctrl_app, "desk");
    let Some(ctrl) = start(host_pairing, ctrl_app.clone()) else {
        return;
    };
    let inv = ctrl.invitation().clone();
    inv.verify().expect("own invitation verifies");
    let link = inv.to_uri();
    if json_survives(&ctrl_app) && link.len() <= xrcp::message::invitation::MAX_INVITATION_LEN {
        assert_eq!(
            SignedInvitation::parse(&link).expect("own link parses"),
            inv
        );
    }
    match (&ctrl_pairing, ctrl.announcement()) {
        (Some(cp), Ok(datagram)) => {
            let ann = Announcement::decode(&datagram).expect("own announcement decodes");
            let opened = ann.open([(&cp.dh, cp.prev_dh.as_ref())]);
            if json_survives(&ctrl_app) {
                let (_, used, got) = opened.expect("the paired host opens the announcement");
                assert_eq!(used, DhKeyUsed::Current);
                assert_eq!(got, inv);
            }
        }
        (Some(_), Err(e)) => {
            assert_eq!(e, RcError::Encrypt);
            assert!(
                link.len() + 2 > ANNOUNCEMENT_PAD,
                "announcement failed for a short link"
            );
        }
        (None, r) => assert_eq!(r.err(), Some(RcError::NewController)),
    }

    let host = HostHandshake::without_kem(inv.clone(), ctrl_pairing.clone())
        .expect("the host accepts a genuine invitation")
        .with_kem(host_kem().clone());
    let host_ca = host.ca_fingerprint();
    let host_app = app(&input.host_app, "phone");
    let (hello, hello_ok) = match host.hello_block(host_app.clone()) {
        Ok(b) => {
            assert_eq!(b.len(), BLOCK_SIZE);
            (b, true)
        }
        Err(e) => {
            assert_eq!(e, RcError::BlockSize, "hello_block failed");
            (encode_block(b"").expect("empty block"), false)
        }
    };

    let to_ctrl = apply(&input.to_ctrl, &hello);
    let genuine_hello = hello_ok && same_content(&to_ctrl, &hello);
    let tls_ca = if input.tls_ca_is_host {
        host_ca
    } else {
        KeyHash([0x99; 32])
    };
    let ctrl_result = ctrl.handle_host_hello(&to_ctrl, tls_ca, &input.tls_unique);
    match &ctrl_result {
        Ok(out) => {
            assert!(
                genuine_hello,
                "the controller accepted a HELLO the host did not send"
            );
            assert!(
                input.tls_ca_is_host,
                "the controller accepted a CA TLS did not show"
            );
            assert_eq!(out.reply.len(), BLOCK_SIZE);
            assert_eq!(out.keys.host_app, host_app);
            assert_eq!(out.keys.keys.tls_unique(), &input.tls_unique[..]);
            assert_eq!(out.pairing.known_host.map(|k| k.host_ca), Some(host_ca));
        }
        Err(rejected) => {
            if genuine_hello {
                assert!(
                    !input.tls_ca_is_host,
                    "genuine HELLO refused: {}",
                    rejected.error
                );
                assert_eq!(rejected.error, RcError::Identity);
            }
            if let Some(reply) = &rejected.reply {
                assert_eq!(reply.len(), BLOCK_SIZE);
            }
            assert!(
                matches!(
                    rejected.error,
                    RcError::Decrypt
                        | RcError::BlockSize
                        | RcError::Syntax(_)
                        | RcError::Identity
                        | RcError::Version
                ),
                "unexpected controller error {:?}",
                rejected.error
            );
        }
    }

    let genuine_reply = match &ctrl_result {
        Ok(out) => Some(out.reply.clone()),
        Err(rejected) => rejected.reply.clone(),
    };
    let base = genuine_reply
        .clone()
        .unwrap_or_else(|| encode_block(b"").expect("empty block"));
    let to_host = apply(&input.to_host, &base);
    let reply_intact = genuine_reply.is_some() && same_content(&to_host, &base);
    let host_result = host.handle_ctrl_hello(&to_host, &input.tls_unique);
    match (host_result, ctrl_result) {
        (Ok((hk, cp)), Ok(out)) => {
            assert!(
                reply_intact,
                "the host accepted a reply the controller did not send"
            );
            // Equal chain keys make equal message keys from here on.
            assert_eq!(
                hk.keys.recv_chain().as_bytes(),
                out.keys.keys.send_chain().as_bytes()
            );
            assert_eq!(
                hk.keys.send_chain().as_bytes(),
                out.keys.keys.recv_chain().as_bytes()
            );
            assert_eq!(hk.keys.tls_unique(), &input.tls_unique[..]);
            assert_eq!(hk.version, out.keys.version);
            assert_eq!(hk.ctrl_app, inv.invitation.app);
            assert_eq!(hk.ctrl_session_key, inv.invitation.skey);
            assert_eq!(hk.ctrl_identity_key, inv.invitation.idkey);
            assert_eq!(hk.ctrl_session_key, out.keys.session_key.public());
            assert_eq!(cp.ctrl_ca, inv.invitation.ca);
            assert_eq!(cp.prev_dh.is_some(), input.known);
            assert_eq!(
                out.pairing.known_host.map(|k| k.host_dh),
                Some(cp.dh.public())
            );
            assert_eq!(KeyHash(cp.ca.fingerprint()), host_ca);
        }
        (Ok(_), Err(rejected)) => panic!(
            "the host completed a handshake the controller refused ({})",
            rejected.error
        ),
        (Err(e), Ok(_)) => {
            assert!(
                !reply_intact,
                "the host refused the genuine controller HELLO: {e}"
            );
            assert!(
                matches!(
                    e,
                    RcError::Decrypt
                        | RcError::BlockSize
                        | RcError::Syntax(_)
                        | RcError::CtrlError(_)
                ),
                "unexpected host error {e:?}"
            );
        }
        (Err(e), Err(rejected)) => {
            // The ERROR is sealed under the key of the DH key the controller read, so it only
            // reads back when that was the host's.
            if reply_intact && same_dh_key(&to_ctrl, &hello) {
                assert_eq!(e, RcError::CtrlError(rejected.error.text_form()));
            }
        }
    }
}

fn host_kem() -> &'static KemKeyPair {
    static KEM: OnceLock<KemKeyPair> = OnceLock::new();
    KEM.get_or_init(KemKeyPair::generate)
}

fn controller(input: &CtrlInput) {
    let p = pairings();
    let (host_pairing, host_ca) = if input.known {
        (p.known_host.clone(), KeyHash(p.known_ctrl.ca.fingerprint()))
    } else {
        (p.fresh.clone(), KeyHash([0x42; 32]))
    };
    let other_ca = KeyHash([0x99; 32]);
    let tls_ca = if input.tls_ca_is_host {
        host_ca
    } else {
        other_ca
    };
    let Some(ctrl) = start(host_pairing, app(&input.ctrl_app, "desk")) else {
        return;
    };
    let bob = &fixed().bob;
    let hello_key = bob
        .dh(&ctrl.invitation().invitation.dh)
        .expect("the controller's session key is a valid point");

    let plain = match &input.hello {
        HelloBody::Json {
            version,
            ca_is_host,
            app: a,
            kem_ok,
        } => {
            let ca = if *ca_is_host { host_ca } else { other_ca };
            let app_json = app(a, "phone");
            let json = if *kem_ok {
                HostHello {
                    version: Version(*version),
                    ca,
                    app: app_json,
                    kem: host_kem().public().clone(),
                }
                .to_json()
            } else {
                format!(
                    r#"{{"v":{version},"ca":"{}","app":{},"kem":"AAAA"}}"#,
                    ca.to_text(),
                    to_aeson_string(&app_json)
                )
            };
            match pad(json.as_bytes(), HELLO_PAD) {
                Ok(p) => p,
                Err(_) => return,
            }
        }
        HelloBody::Plain(p) => p.clone(),
    };
    let n = Nonce([7; 24]);
    let enc = HostEncHello {
        dh_key: bob.public(),
        nonce: n,
        ciphertext: seal(&hello_key, &n, &plain),
    };
    let Ok(block) = encode_block(&enc.encode()) else {
        return;
    };
    // The documented order of checks.
    let expected: Result<HostHello, RcError> = match unpad(&plain) {
        Err(_) => Err(RcError::Decrypt),
        Ok(json) => HostHello::from_json(json).and_then(|h| {
            if h.ca != tls_ca {
                Err(RcError::Identity)
            } else if input.known && host_ca != tls_ca {
                Err(RcError::Internal(String::new()))
            } else if !SUPPORTED.contains(h.version) {
                Err(RcError::Version)
            } else {
                Ok(h)
            }
        }),
    };

    let to_ctrl = apply(&input.to_ctrl, &block);
    let intact = same_content(&to_ctrl, &block);
    match ctrl.handle_host_hello(&to_ctrl, tls_ca, &input.tls_unique) {
        Ok(out) => {
            assert!(
                intact,
                "the controller accepted a HELLO the host did not send"
            );
            let h = match &expected {
                Ok(h) => h,
                Err(e) => panic!("accepted a HELLO that must be refused with {e}"),
            };
            assert_eq!(out.reply.len(), BLOCK_SIZE);
            assert_eq!(out.keys.host_app, h.app);
            assert_eq!(out.keys.version, h.version);
            assert_eq!(out.keys.keys.tls_unique(), &input.tls_unique[..]);
            assert_eq!(
                out.pairing.known_host,
                Some(KnownHost {
                    host_ca: tls_ca,
                    host_dh: bob.public(),
                })
            );
            // The host's side: KEM secret, chains, the controller HELLO's box.
            let reply = CtrlEncHello::decode(decode_block(&out.reply).expect("reply block"))
                .expect("reply decodes");
            let CtrlEncHello::Hello {
                kem_ciphertext,
                ciphertext,
            } = reply
            else {
                panic!("an accepted HELLO was answered with an ERROR");
            };
            let secret = host_kem().decapsulate(&kem_ciphertext);
            let (mut recv, send) = chain_init(&HybridSecret::new(&hello_key, &secret));
            let (k, n) = recv.advance();
            let inner = CtrlEncHello::open_hello(&ciphertext, &k, &n)
                .expect("the host opens the controller HELLO");
            assert_eq!(inner, serde_json::json!({}));
            assert_eq!(recv.as_bytes(), out.keys.keys.send_chain().as_bytes());
            assert_eq!(send.as_bytes(), out.keys.keys.recv_chain().as_bytes());
        }
        Err(rejected) => {
            if intact {
                match &expected {
                    Ok(_) => panic!("a valid HELLO was refused: {}", rejected.error),
                    Err(e) => assert_eq!(rejected.error.kind(), e.kind(), "{}", rejected.error),
                }
            }
            match &rejected.reply {
                Some(reply) => {
                    assert_eq!(reply.len(), BLOCK_SIZE);
                    if same_dh_key(&to_ctrl, &block) {
                        let content = decode_block(reply).expect("ERROR block");
                        let CtrlEncHello::Error { nonce, ciphertext } =
                            CtrlEncHello::decode(content).expect("ERROR decodes")
                        else {
                            panic!("a refusal carried a HELLO");
                        };
                        let text = CtrlEncHello::open_error(&ciphertext, &hello_key, &nonce)
                            .expect("the host opens the ERROR");
                        assert_eq!(text, rejected.error.text_form());
                    }
                }
                None => assert!(!intact, "no ERROR block for a readable HELLO"),
            }
        }
    }
}
