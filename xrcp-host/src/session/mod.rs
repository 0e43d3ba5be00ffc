//! The host side of a remote-control session: an HTTP/2 server on the XRCP TLS stream that
//! runs the controller's commands against the local application (research notes §1–§3).
//!
//! The host is the TLS *client* but the HTTP/2 *server*: after the HELLO exchange the
//! controller speaks first (connection preface), so the host must also feed HTTP/2 any bytes
//! it already read past the HELLO block ([`Prefixed`]). Byte formats, keys and JSON come
//! from [`xrcp::session`]; this module only moves them through h2 streams.
//!
//! Usage: build a [`xrcp::session::RemoteSession`] from the handshake's secrets, implement
//! [`HostApp`], create an event channel, and await [`serve_session`].

mod app;
mod prefixed;
mod server;

pub use app::{
    FileReader, FolderFile, FolderStore, HostApp, HostAppError, OutgoingFile, StoredFile,
    FILE_IO_BLOCK,
};
pub use prefixed::Prefixed;
pub use server::{serve_session, HostSessionConfig};
