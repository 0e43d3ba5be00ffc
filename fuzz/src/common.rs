//! Fixed keys shared by the harnesses: the values of `spec/vectors/*.json`, so that the seeds
//! made from those vectors (see `seed.sh`) reach past every MAC and signature.

use std::sync::OnceLock;

use xrcp::crypto::chain::ChainKey;
use xrcp::crypto::keys::{Ed25519PublicKey, Ed25519SecretKey, X25519SecretKey};
use xrcp::crypto::{BoxKey, Nonce};
use xrcp::handshake::SessionKeys;
use xrcp::session::{RemoteSession, RemoteSignatures, SessionSecrets};

/// RFC 7748 Alice: the controller's session DH key in every vector.
pub const ALICE_SK: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
/// RFC 7748 Bob: the host's DH key in every vector.
pub const BOB_SK: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
/// X25519(Alice, Bob): the announcement key and the HELLO key K1.
pub const K1: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
/// `messages.json` announcement nonce.
pub const ANNOUNCEMENT_NONCE: &str = "000102030405060708090a0b0c0d0e0f1011121314151617";
/// `messages.json` host_hello nonce.
pub const HOST_HELLO_NONCE: &str = "6465666768696a6b6c6d6e6f707172737475767778797a7b";
/// `messages.json` ctrl_hello key and nonce (key_schedule `dh_kem` chain A, step 1).
pub const CTRL_HELLO_KEY: &str = "906399fe1632da38dde771c004651ee94e53ded3d24cb33ddd539a6c057509f0";
pub const CTRL_HELLO_NONCE: &str = "3ba1385636b1f6888799a22be5caca2a2925bd81584cb917";
/// `messages.json` ctrl_error nonce (its key is K1).
pub const CTRL_ERROR_NONCE: &str = "303132333435363738393a3b3c3d3e3f4041424344454647";
/// key_schedule `dh_kem`: chain A after the controller HELLO's step (the controller's send
/// chain and the host's receive chain when the session starts).
pub const CHAIN_A1: &str = "7b92f86a9f695c809cb0e7453eb668c2e85b6b0670f695253ce8f161c32c4ed1";
/// key_schedule `dh_kem`: chain B (the host's send chain, the controller's receive chain).
pub const CHAIN_B: &str = "3049eb692ea57647a401c0f060cb81d4bce8f56d5a0a9b86d517665a99993f26";
/// `messages.json` session_body tls-unique.
pub const TLS_UNIQUE: &str = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf";
/// RFC 8032 test 1 and test 2 seeds: the controller's session and identity keys.
pub const SESSION_KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub const IDENTITY_KEY: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

pub fn hexv(s: &str) -> Vec<u8> {
    fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad hex constant"),
        }
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| (nib(p[0]) << 4) | nib(p[1]))
        .collect()
}

pub fn hexa<const N: usize>(s: &str) -> [u8; N] {
    hexv(s)
        .try_into()
        .expect("hex constant of the wrong length")
}

pub fn box_key(s: &str) -> BoxKey {
    BoxKey::from_bytes(hexa(s))
}

pub fn nonce(s: &str) -> Nonce {
    Nonce(hexa(s))
}

/// Keys that cost a scalar multiplication to set up, made once per process.
pub struct Fixed {
    pub alice: X25519SecretKey,
    pub bob: X25519SecretKey,
    /// Two unrelated DH keys for announcement pairings that must not fit.
    pub stranger: X25519SecretKey,
    pub stranger2: X25519SecretKey,
    pub session_key: Ed25519SecretKey,
    pub identity_key: Ed25519SecretKey,
    pub session_pub: Ed25519PublicKey,
    pub identity_pub: Ed25519PublicKey,
}

pub fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let session_key = Ed25519SecretKey::from_bytes(hexa(SESSION_KEY));
        let identity_key = Ed25519SecretKey::from_bytes(hexa(IDENTITY_KEY));
        Fixed {
            alice: X25519SecretKey::from_bytes(hexa(ALICE_SK)),
            bob: X25519SecretKey::from_bytes(hexa(BOB_SK)),
            stranger: X25519SecretKey::from_bytes([5; 32]),
            stranger2: X25519SecretKey::from_bytes([6; 32]),
            session_pub: session_key.public(),
            identity_pub: identity_key.public(),
            session_key,
            identity_key,
        }
    })
}

/// The controller's session as the `messages.json` session bodies assume it: sends on chain
/// A (already stepped by its HELLO), receives on chain B, signs requests.
pub fn ctrl_session(tls_unique: &[u8], compression: bool) -> RemoteSession {
    let f = fixed();
    RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(
                &tls_unique,
                ChainKey::from_bytes(hexa(CHAIN_A1)),
                ChainKey::from_bytes(hexa(CHAIN_B)),
            ),
            RemoteSignatures::Sign {
                session_key: f.session_key.clone(),
                identity_key: f.identity_key.clone(),
            },
        ),
        compression,
    )
    .expect("a 32-byte tls-unique is valid")
}

/// The host's matching session: sends on chain B, receives on chain A, verifies requests.
pub fn host_session(tls_unique: &[u8], compression: bool) -> RemoteSession {
    let f = fixed();
    RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(
                &tls_unique,
                ChainKey::from_bytes(hexa(CHAIN_B)),
                ChainKey::from_bytes(hexa(CHAIN_A1)),
            ),
            RemoteSignatures::Verify {
                session_key: f.session_pub,
                identity_key: f.identity_pub,
            },
        ),
        compression,
    )
    .expect("a 32-byte tls-unique is valid")
}

/// A byte cursor that never fails: reads past the end give zeros / empty slices, so every
/// input means something.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Splits `data` into chunks whose sizes cycle through `1..=max` starting from `seed`, to
/// drive incremental readers with awkward boundaries.
pub fn chunks(data: &[u8], seed: u8, max: usize) -> Vec<&[u8]> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut size = usize::from(seed) % max + 1;
    let mut rest = data;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
        size = (size * 7 + 3) % max + 1;
    }
    out
}
