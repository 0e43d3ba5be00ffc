//! Helpers of `tests/hardening_bodies.rs` and its victim process (`xrcp-body-victim`): a pair
//! of session keys both processes derive alike, a toy host application, decompression bombs,
//! and peak-memory readings from `/proc`.

use std::time::Duration;

use serde_json::json;
use xrcp::crypto::chain::{chain_init, HybridSecret};
use xrcp::crypto::keys::Ed25519SecretKey;
use xrcp::handshake::SessionKeys;
use xrcp::session::{RRResult, RemoteFile, RemoteSession, RemoteSignatures, SessionSecrets};
use xrcp_host::session::{FolderFile, HostApp, HostAppError, OutgoingFile};

const TLS_UNIQUE: [u8; 32] = [0x5a; 32];
const HYBRID: [u8; 32] = [0x42; 32];
/// RFC 8032 test 1 secret (session key) and test 2 secret (identity key).
const SESSION_KEY: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const IDENTITY_KEY: [u8; 32] = [
    0x4c, 0xcd, 0x08, 0x9b, 0x28, 0xff, 0x96, 0xda, 0x9d, 0xb6, 0xc3, 0x46, 0xec, 0x11, 0x4e, 0x0f,
    0x5b, 0x8a, 0x31, 0x9f, 0x35, 0xab, 0xa6, 0x24, 0xda, 0x8c, 0xf6, 0xed, 0x4f, 0xb8, 0xa6, 0xfb,
];

/// The controller's session, as the handshake would leave it (fixed keys, compression on).
pub fn ctrl_session() -> RemoteSession {
    let (mut snd, rcv) = chain_init(&HybridSecret::from_bytes(HYBRID));
    let _hello = snd.advance();
    RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(&TLS_UNIQUE, snd, rcv),
            RemoteSignatures::Sign {
                session_key: Ed25519SecretKey::from_bytes(SESSION_KEY),
                identity_key: Ed25519SecretKey::from_bytes(IDENTITY_KEY),
            },
        ),
        true,
    )
    .expect("controller session")
}

/// The host's half of the same session.
pub fn host_session() -> RemoteSession {
    let (mut rcv, snd) = chain_init(&HybridSecret::from_bytes(HYBRID));
    let _hello = rcv.advance();
    RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(&TLS_UNIQUE, snd, rcv),
            RemoteSignatures::Verify {
                session_key: Ed25519SecretKey::from_bytes(SESSION_KEY).public(),
                identity_key: Ed25519SecretKey::from_bytes(IDENTITY_KEY).public(),
            },
        ),
        true,
    )
    .expect("host session")
}

/// `{"n": 0, "junk": [0,0,0,…]}` with `len` bytes of JSON in all: the worst case for a
/// generic JSON tree (two bytes of text, a whole node in memory, per value). Returns the
/// text with `prefix` and `suffix` around the object's inside.
pub fn bomb_json(prefix: &str, suffix: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"\"junk\":[0");
    let fill = len.saturating_sub(out.len() + suffix.len() + 1);
    out.extend_from_slice(&b",0".repeat(fill / 2));
    out.push(b']');
    out.extend_from_slice(suffix.as_bytes());
    out
}

/// A 60 MiB command JSON that is a valid `send` apart from its size.
pub fn command_bomb() -> Vec<u8> {
    bomb_json(
        r#"{"type":"send","command":"/x","retryNumber":0,"#,
        "}",
        60 << 20,
    )
}

/// A 60 MiB chat response (`event`: a chat event) that is valid apart from its size.
pub fn response_bomb(event: bool) -> Vec<u8> {
    let prefix = if event {
        r#"{"type":"chatEvent","chatEvent":{"result":{"type":"newChatItems","#
    } else {
        r#"{"type":"chatResponse","chatResponse":{"result":{"type":"chats","#
    };
    bomb_json(prefix, "}}}", 60 << 20)
}

/// Peak resident memory of process `pid` (`VmHWM`), in bytes.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// A host application that echoes commands; `/slow` takes a while. No files.
pub struct EchoApp;

impl HostApp for EchoApp {
    type Stored = FolderFile;
    type Reader = xrcp_host::session::FileReader;

    async fn execute(&self, command: String, _retry_number: i64) -> RRResult {
        if command == "/slow" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        RRResult::Result(json!({"type": "echo", "command": command}))
    }

    async fn store_file(&self, _name: String, _size: u32) -> Result<FolderFile, HostAppError> {
        Err(HostAppError::Chat(json!({"type": "noFiles"})))
    }

    async fn get_file(
        &self,
        _file: RemoteFile,
    ) -> Result<OutgoingFile<xrcp_host::session::FileReader>, HostAppError> {
        Err(HostAppError::Chat(json!({"type": "noFiles"})))
    }
}

/// Encodes `json` as the next body of `session` with a zstd frame that does not record its
/// content size (a streaming encoder's frame), so the receiver can only learn the size by
/// decompressing; `RemoteSession::encode` makes frames that record it.
pub fn encode_unsized(session: &mut RemoteSession, json: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    enc.write_all(json).expect("zstd");
    let frame = enc.finish().expect("zstd");
    // The same crypto without compression sends the frame as it is.
    let plain = RemoteSession::new(
        SessionSecrets::new(
            SessionKeys::new(
                &TLS_UNIQUE,
                chain_init(&HybridSecret::from_bytes([0; 32])).0,
                chain_init(&HybridSecret::from_bytes([0; 32])).1,
            ),
            match session.crypto().expects_signatures() {
                true => RemoteSignatures::Verify {
                    session_key: Ed25519SecretKey::from_bytes(SESSION_KEY).public(),
                    identity_key: Ed25519SecretKey::from_bytes(IDENTITY_KEY).public(),
                },
                false => RemoteSignatures::Sign {
                    session_key: Ed25519SecretKey::from_bytes(SESSION_KEY),
                    identity_key: Ed25519SecretKey::from_bytes(IDENTITY_KEY),
                },
            },
        ),
        false,
    )
    .expect("session");
    let snd = session.keys_mut().snd_keys().expect("send keys");
    plain
        .crypto()
        .encrypt_encode_body(snd.corr_id, &snd.keys.body, &frame)
        .expect("encode")
}
