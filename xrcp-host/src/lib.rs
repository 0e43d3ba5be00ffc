//! The XRCP *host* role (the mobile side): it holds the data, verifies the controller's
//! invitation, connects out over TLS, and is driven remotely once the person confirmed the
//! session code.
//!
//! Embedding, in four calls: [`Host::builder`] (with an [`Application`]) → [`Host::connect`]
//! (a link) or [`Host::find`] (a paired controller on the LAN) → [`PendingSession::confirm`]
//! or [`PendingSession::verify`] → [`Session::serve`]:
//!
//! ```no_run
//! use xrcp::session::RRResult;
//! use xrcp_host::{BoxFuture, Host};
//!
//! struct Echo;
//! impl xrcp_host::Application for Echo {
//!     fn execute(&self, command: String, _retry: i64) -> BoxFuture<'_, RRResult> {
//!         Box::pin(async move { RRResult::Result(serde_json::json!({"echo": command})) })
//!     }
//! }
//! # async fn run(link: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder().app(Echo).data_dir("/tmp/my-host").build()?;
//! let pending = host.connect(link).await?;
//! println!("compare with the controller: {}", pending.session_code());
//! let session = pending.confirm().await?;
//! session.serve().await?;
//! # Ok(()) }
//! ```
//!
//! The `xrcp-host` program (feature `cli`, on by default) is a user of exactly this API: its
//! command line lives in the binary, not in this library, so it cannot reach anything
//! else. Without `cli` this crate builds no command-line or terminal code, nor the `notes`
//! app the program serves.
//!
//! `openssl-sha512` (on with `cli`) hashes file attachments with OpenSSL's SHA-512, 1.4×
//! the pure-Rust `sha2` used otherwise (BENCHMARKS.md); the `openssl` crate builds OpenSSL
//! from source (a C compiler, `make` and `perl`; `OPENSSL_NO_VENDOR=1` links the system's
//! instead). An embedding program opts in with this feature.
//!
//! # The machinery underneath
//!
//! The handshake (`connect`), multicast discovery (`discover`), the HTTP/2 session server
//! (`session`, `remote`) and the SQLite store's internals are not part of the API. The
//! workspace's tests and benchmarks drive them directly (a handshake cut at each step, a
//! discovery flood, a session without the store), so the non-default feature `internals`
//! makes those modules public, at their usual paths and hidden from the documentation.
//! Nothing outside this workspace should turn it on: what it exposes changes without
//! notice. (A feature rather than an always-public hidden module, so that a program
//! cannot come to depend on it by accident.)

#![deny(missing_docs)]

/// Declares the machinery modules: `pub` (and hidden from the documentation) with the
/// `internals` feature, private otherwise. Without the feature, what only the tests use is
/// unused here, and their `pub` items are unreachable by design.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code, unreachable_pub, unused_imports)]
        mod $name;
    )*};
}

internal_modules!(connect, discover, error, remote, session, store);

mod facade;
#[cfg(feature = "cli")]
pub mod notes;

pub use connect::{CodeCheck, CODE_TRIES};
pub use discover::{DiscoverOptions, DiscoveryBudget};
pub use error::{PairingStoreError, RemoteCtrlError, Stage};
pub use facade::{
    Application, BoxFuture, BoxReader, BuildError, EventSender, Found, Host, HostBuilder,
    Listening, PairingStore, PendingSession, Session, UploadFile,
};
pub use session::{FileReader, FolderFile, FolderStore, HostAppError, OutgoingFile};
pub use store::{CtrlRecord, CtrlStore, CtrlSummary, StoreError};

// What the workspace's tests call at the crate root (see "The machinery underneath").
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use connect::{connect, Connected, HostOptions, PendingConfirmation};
