//! The XRCP *controller* role (the desktop side): it listens, shows the invitation as a link
//! and QR code, announces itself to known hosts, and drives the host remotely.
//!
//! [`connect::start`] → [`connect::Listening::accept`] → [`connect::PendingHello::finish`]
//! runs one handshake; the result feeds the session layer.

pub mod address;
pub mod announce;
pub mod cli;
pub mod connect;
pub mod error;
pub mod remote;
pub mod session;
pub mod store;

pub use connect::{start, Connected, ControllerOptions, Listening, PendingHello};
pub use error::{RemoteHostError, Stage};
