//! The host side of a remote-control session: an HTTP/2 server on the XRCP TLS stream that
//! runs the controller's commands against the local application (spec/xrcp.md §10).
//!
//! The host is the TLS *client* but the HTTP/2 *server*: after the HELLO exchange the
//! controller speaks first (connection preface). The handshake reads whole 16384-byte blocks
//! and never past the controller's HELLO, so the stream is handed over as it is. Byte
//! formats, keys and JSON come from [`xrcp::session`] (the [`xrcp::session::HostSession`]
//! engine opens requests and seals responses); this module only moves them through h2
//! streams.
//!
//! Usage: build a [`xrcp::session::HostSession`] from the handshake's keys, implement
//! [`HostApp`], create an event channel, and await [`serve_session`].

mod app;
mod server;

pub use app::{
    FileReader, FolderFile, FolderStore, HostApp, HostAppError, OutgoingFile, StoredFile,
    FILE_IO_BLOCK,
};
pub use server::{serve_session, HostSessionConfig};
