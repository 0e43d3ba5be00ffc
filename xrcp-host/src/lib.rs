//! The XRCP *host* role (the mobile side): it holds the data, verifies the controller's
//! invitation, connects out over TLS, and is driven remotely once the user confirmed the
//! session code.
//!
//! [`connect::connect`] → [`connect::PendingConfirmation::verify`] (or `confirm`/`reject`)
//! runs one handshake; the result feeds the session layer.

pub mod cli;
pub mod connect;
pub mod discover;
pub mod error;
pub mod notes;
pub mod remote;
pub mod session;
pub mod store;

pub use connect::{connect, CodeCheck, Connected, HostOptions, PendingConfirmation, CODE_TRIES};
pub use error::{RemoteCtrlError, Stage};
