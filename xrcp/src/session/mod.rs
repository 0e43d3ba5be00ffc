//! The remote-control session that runs after the XRCP handshake, as SimpleX Chat speaks it
//! (spec/xrcp.md §10).
//!
//! Over the TLS connection the *controller* runs an HTTP/2 client and the *host* an HTTP/2
//! server (roles reversed relative to TLS, spec/xrcp.md §10). Every request body carries one
//! [`RemoteCommand`], every response body one [`RemoteResponse`], framed, signed and encrypted
//! as [`body`] describes, optionally followed by a streamed file attachment ([`mod@file`]). The
//! HTTP/2 server and client live in `xrcp-host::session` and `xrcp-ctrl::session`; this module is
//! what they share — sans-IO except `http2` (feature `tokio`), the stream helpers both roles
//! use:
//!
//! - [`keys`]: what the handshake hands over ([`SessionSecrets`]), per-message keys, the
//!   send counter and the receive window ([`RemoteKeys`]);
//! - [`engine`]: the session engine of each role ([`ControllerSession`], [`HostSession`]):
//!   seals what it sends, opens what it receives, owns the secrets and the id window;
//! - [`body`]: body encoding/decoding ([`RemoteCrypto`], [`BodyHeadReader`], and
//!   [`RemoteSession`] for single-threaded use);
//! - [`mod@file`]: attachment encryption and checks ([`FileEncryptor`], [`FileDecryptor`]);
//! - [`protocol`]: the command/response JSON;
//! - [`app_info`]: the app-info JSON of both sides and the version checks;
//! - [`error`]: [`RemoteProtocolError`] with the reference's JSON;
//! - `http2` (feature `tokio`): moving bodies and attachments through h2 streams with flow control.

pub mod app_info;
pub mod body;
pub mod engine;
pub mod error;
pub mod file;
#[cfg(feature = "tokio")]
pub mod http2;
pub mod keys;
pub mod protocol;

pub use app_info::{
    use_compression, AppInfoError, AppVersion, AppVersionRange, CtrlAppInfo, HostAppInfo,
    PlatformEncoding, LOCAL_ENCODING,
};
pub use body::{
    BodyHead, BodyHeadReader, DecodedBody, EncodedBody, RemoteCrypto, RemoteSession,
    MAX_BODY_CT_LEN, MAX_JSON_LEN,
};
pub use engine::{ControllerSession, HostSession, WrongRole};
pub use error::{rc_error_from_json, rc_error_to_json, ErrorJsonError, RemoteProtocolError};
pub use file::{
    check_file_size, FileDecryptor, FileDigest, FileDigester, FileEncryptor, FILE_CHUNK_SIZE,
    FILE_HEADER_LEN,
};
pub use keys::{
    MessageKeys, RemoteKeys, RemoteSignatures, SbKeyNonce, SessionSecrets, SndKeys, MAX_SKIP,
};
pub use protocol::{
    owsf_to_tagged, parse_bounded, parse_bounded_measured, CryptoFile, CryptoFileArgs, RRResult,
    RemoteCommand, RemoteFile, RemoteResponse, MAX_JSON_TREE, RECV_WAIT_MICROS,
};
