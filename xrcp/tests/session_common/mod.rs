//! Fixed keys and session pairs shared by the `session_*` tests.
#![allow(dead_code)]

use xrcp::crypto::chain::{chain_init, HybridSecret};
use xrcp::crypto::keys::Ed25519SecretKey;
use xrcp::handshake::SessionKeys;
use xrcp::session::{RemoteSession, RemoteSignatures, SessionSecrets};

pub(crate) const TLS_UNIQUE: [u8; 32] = [0x5a; 32];
pub(crate) const HYBRID: [u8; 32] = [0x42; 32];
/// RFC 8032 test 1 secret (session key) and test 2 secret (identity key).
pub(crate) const SESSION_KEY: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub(crate) const IDENTITY_KEY: &str =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

pub(crate) fn key(hex_str: &str) -> Ed25519SecretKey {
    Ed25519SecretKey::from_bytes(hex::decode(hex_str).unwrap().try_into().unwrap())
}

/// Controller and host sessions as the handshake would leave them: `chain_init` of a fixed
/// hybrid secret, the controller's send chain (= the host's receive chain) stepped once by
/// the controller HELLO.
pub(crate) fn pair_with(
    hybrid: [u8; 32],
    ctrl_unique: &[u8],
    host_unique: &[u8],
    ctrl_compress: bool,
    host_compress: bool,
) -> (RemoteSession, RemoteSession) {
    let sess = key(SESSION_KEY);
    let id = key(IDENTITY_KEY);
    let (mut a, b) = chain_init(&HybridSecret::from_bytes(hybrid));
    let _hello = a.advance();
    let (mut a2, b2) = chain_init(&HybridSecret::from_bytes(hybrid));
    let _hello = a2.advance();
    let ctrl = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(ctrl_unique, a, b),
            RemoteSignatures::Sign {
                session_key: sess.clone(),
                identity_key: id.clone(),
            },
        ),
        ctrl_compress,
    )
    .unwrap();
    let host = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(host_unique, b2, a2),
            RemoteSignatures::Verify {
                session_key: sess.public(),
                identity_key: id.public(),
            },
        ),
        host_compress,
    )
    .unwrap();
    (ctrl, host)
}

pub(crate) fn pair(compression: bool) -> (RemoteSession, RemoteSession) {
    pair_with(HYBRID, &TLS_UNIQUE, &TLS_UNIQUE, compression, compression)
}
