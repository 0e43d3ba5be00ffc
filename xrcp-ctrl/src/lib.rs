//! The XRCP *controller* role (the desktop side): it listens, shows the invitation as a link
//! and QR code, announces itself to known hosts, and drives the host remotely.
//!
//! The controller in four calls: [`Controller::builder`] → [`Controller::invite`] (the link
//! to show) → [`Invitation::accept`] (a verified session, once the host connected and its
//! user confirmed the session code) → [`Session::command`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ctrl = xrcp_ctrl::Controller::builder()
//!     .device_name("my desktop app")
//!     .data_dir("/tmp/my-app")
//!     .build()?;
//! let invitation = ctrl.invite().await?;
//! println!("scan or paste: {}", invitation.link());
//! let session = invitation
//!     .accept_with(|event| {
//!         if let xrcp_ctrl::WaitEvent::Code { code, .. } = event {
//!             println!("compare with the phone: {code}");
//!         }
//!     })
//!     .await?;
//! match session.command("/help").await? {
//!     xrcp::session::RRResult::Result(json) => println!("{json}"),
//!     xrcp::session::RRResult::Error(json) => eprintln!("the host refused: {json}"),
//! }
//! # Ok(()) }
//! ```
//!
//! A paired host comes back with [`Controller::reconnect`] (a link again) or
//! [`Controller::announce`] (LAN multicast, no link; spec/xrcp.md §5). Where to listen, what
//! the link names ([`ControllerBuilder::advertise`], [`ControllerBuilder::ssh_relay`]), how
//! long it works and where pairings are kept ([`PairingStore`]) are builder options. The
//! `xrcp-ctrl` program is built on exactly this API (see `examples/` for more).
//!
//! # Features
//!
//! `cli` (default) is the `xrcp-ctrl` program: its command line, QR codes, progress bars and
//! line editor. A program embedding a controller turns default features off and builds none
//! of it.
//!
//! `openssl-sha512` (on with `cli`) hashes file attachments with OpenSSL's SHA-512, 1.4×
//! the pure-Rust `sha2` used otherwise (BENCHMARKS.md); the `openssl` crate builds OpenSSL
//! from source (a C compiler, `make` and `perl`; `OPENSSL_NO_VENDOR=1` links the system's
//! instead). An embedding program opts in with this feature.
//!
//! # Internals
//!
//! The modules `address`, `announce`, `connect`, `relay`, `remote`, `session` and `store` are
//! the building blocks underneath: one handshake at a time (`connect::start` →
//! `connect::Listening::connect`), the session layer (`remote::open_session`), the SQLite
//! store. They are private; the workspace's tests and benchmarks drive them directly, so the
//! non-default feature `internals` makes them public at their usual paths, hidden from these
//! docs. Nothing outside this workspace should turn it on: what it exposes changes without
//! notice. The program itself is compiled into the binary (`src/main.rs`), so it uses
//! nothing but this public API.

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

internal_modules!(address, announce, connect, relay, remote, session, store);

mod error;
mod facade;

pub use address::LocalAddress;
pub use announce::AnnounceOptions;
pub use connect::{Admission, WaitEvent, Withdrawal};
pub use error::{ListenFailure, PairingStoreError, RemoteHostError, Stage};
pub use facade::{
    BuildError, Controller, ControllerBuilder, Invitation, PairingStore, Session, LINK_TIMEOUT,
};
pub use relay::{RelayError, SshRelayOptions};
pub use session::{HostEvent, RemoteHostClient};
pub use store::{Binding, HostRecord, HostStore, HostSummary, StoreError};
