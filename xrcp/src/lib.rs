//! # xrcp — the SimpleX Remote Control Protocol core
//!
//! Shared by both roles: the *controller* (desktop; TLS server; shows the invitation) and the
//! *host* (mobile; TLS client; holds the data). See `spec/xrcp.md` for the protocol as this
//! crate implements it and `ARCHITECTURE.md` for how the modules fit together.
//!
//! Layers, bottom up:
//! - [`codec`]: byte and text encodings, padding, versions (pure functions);
//! - [`crypto`]: keys, the reference's box construction, chain keys, the hybrid KEM secret;
//! - [`message`]: invitation, announcement, HELLO blocks (pure codecs);
//! - [`tls`]: TLS 1.3 with pinned Ed25519 chains and the session code (tls-unique);
//! - [`handshake`]: the XRCP handshake for each role.

#![deny(missing_docs)]

pub mod codec;
#[cfg(feature = "console")]
pub mod console;
pub mod crypto;
pub mod display;
pub mod error;
pub mod handshake;
pub mod hardening;
pub mod message;
pub mod pairing;
pub mod session;
pub mod session_code;
pub mod tls;

pub use error::{ErrorDetail, RcError};
