//! The XRCP *controller* role (the desktop side): it listens, shows the invitation as a link
//! and QR code, announces itself to known hosts, and drives the host remotely.
//!
//! Embedding: [`Controller::builder`] → [`Controller::invite`] → [`Invitation::accept`] →
//! [`Session::command`] (see [`facade`] and `examples/`). Underneath,
//! [`connect::start`] → [`connect::Listening::connect`] runs one handshake (or, for a known
//! host, [`connect::Listening::accept`] → [`connect::PendingHello::finish`]) and
//! [`remote::open_session`] starts the session layer.
//!
//! The `xrcp-ctrl` program is the `cli` feature (on by default); without it this crate builds
//! no command-line, terminal or image code.

#![deny(missing_docs)]

pub mod address;
pub mod announce;
// The chat view of the interactive mode (the program's only).
#[cfg(feature = "cli")]
pub(crate) mod chat;
#[cfg(feature = "cli")]
pub mod cli;
pub mod connect;
pub mod error;
pub mod facade;
pub mod relay;
pub mod remote;
pub mod session;
pub mod store;

pub use connect::{
    start, start_on, Admission, Connected, ControllerOptions, Listening, PendingHello, WaitEvent,
    Withdrawal,
};
pub use error::{ListenFailure, PairingStoreError, RemoteHostError, Stage};
pub use facade::{BuildError, Controller, ControllerBuilder, Invitation, PairingStore, Session};
