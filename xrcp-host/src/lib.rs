//! The XRCP *host* role (the mobile side): it holds the data, verifies the controller's
//! invitation, connects out over TLS, and is driven remotely once the user confirmed the
//! session code.
//!
//! Embedding: [`Host::builder`] (with an [`Application`]) → [`Host::connect`] (a link) →
//! [`PendingSession::confirm`] → [`Session::serve`] (see [`facade`] and `examples/`).
//! Underneath, [`connect::connect`] → [`connect::PendingConfirmation::verify`] (or
//! `confirm`/`reject`) runs one handshake and [`remote::prepare_session`] starts the session
//! layer.
//!
//! The `xrcp-host` program and its notes app are the `cli` feature (on by default); without
//! it this crate builds no command-line or terminal code.

#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod connect;
pub mod discover;
pub mod error;
pub mod facade;
#[cfg(feature = "cli")]
pub mod notes;
pub mod remote;
pub mod session;
pub mod store;

pub use connect::{connect, CodeCheck, Connected, HostOptions, PendingConfirmation, CODE_TRIES};
pub use error::{PairingStoreError, RemoteCtrlError, Stage};
pub use facade::{
    Application, BuildError, Host, HostBuilder, PairingStore, PendingSession, Session, UploadFile,
};
