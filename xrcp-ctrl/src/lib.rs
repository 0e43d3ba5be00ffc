//! The XRCP *controller* role (the desktop side): it listens, shows the invitation as a link
//! and QR code, announces itself to known hosts, and drives the host remotely.
//!
//! [`connect::start`] → [`connect::Listening::connect`] runs one handshake (or, for a known
//! host, [`connect::Listening::accept`] → [`connect::PendingHello::finish`]); the result
//! feeds the session layer.

pub mod address;
pub mod announce;
pub(crate) mod chat;
pub mod cli;
pub mod connect;
pub mod error;
pub mod relay;
pub mod remote;
pub mod session;
pub mod store;

pub use connect::{
    start, start_on, Admission, Connected, ControllerOptions, Listening, PendingHello, WaitEvent,
    Withdrawal,
};
pub use error::{ListenFailure, RemoteHostError, Stage};
