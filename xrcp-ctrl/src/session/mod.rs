//! The controller side of a remote-control session: an HTTP/2 client on the XRCP TLS stream
//! that sends commands and files to the host and long-polls its events (spec/xrcp.md
//! §10).
//!
//! The controller is the TLS *server* but the HTTP/2 *client*; it starts HTTP/2 (preface,
//! SETTINGS, first event poll) as soon as the handshake is done. Byte formats, keys and JSON
//! come from [`xrcp::session`] (the [`xrcp::session::ControllerSession`] engine seals commands
//! and opens responses); this module only moves them through h2 streams.
//!
//! Usage: build a [`xrcp::session::ControllerSession`] from the handshake's keys and call
//! [`RemoteHostClient::connect`]; read host events from the returned channel.

mod client;
#[cfg(test)]
mod tests;

pub use client::{CtrlSessionConfig, HostEvent, RemoteHostClient, CLOSE_GRACE, EVENT_QUEUE_TREE};
