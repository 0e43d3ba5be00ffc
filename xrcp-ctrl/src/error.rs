//! Errors of the controller role, after the reference's `RemoteHostError`: the protocol's
//! own kinds plus what only a running session can hit (timeouts, a host that left).

use std::fmt;

use xrcp::session::RemoteProtocolError;
use xrcp::RcError;

/// Where a timeout happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a host to complete TLS (60 s).
    TlsConnection,
    /// Waiting for the host HELLO (60 s).
    HostHello,
    /// Sending the controller HELLO.
    CtrlHello,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::TlsConnection => "TLS connection",
            Stage::HostHello => "host HELLO",
            Stage::CtrlHello => "controller HELLO",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteHostError {
    /// A protocol error, with the reference's kind.
    #[error("{0}")]
    Protocol(#[from] RcError),
    #[error("timeout waiting for {0}")]
    Timeout(Stage),
    /// The host closed the connection before its HELLO (e.g. its user rejected the code).
    #[error("host disconnected")]
    Disconnected,
    /// The host's app info is unreadable or its version is outside ours.
    #[error("host app info: {0}")]
    BadAppInfo(String),
    /// The session layer failed.
    #[error("session: {0:?}")]
    Session(#[from] RemoteProtocolError),
    /// No paired host has this id.
    #[error("no remote host {0}")]
    UnknownHost(i64),
    /// The pairing store failed.
    #[error("pairing store: {0}")]
    Store(String),
}

impl RemoteHostError {
    /// A stable name for scripting output: the protocol kind, or `TIMEOUT` / `DISCONNECTED`.
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteHostError::Protocol(e) => e.kind(),
            RemoteHostError::Timeout(_) => "TIMEOUT",
            RemoteHostError::Disconnected => "DISCONNECTED",
            RemoteHostError::BadAppInfo(_) => "BAD_APP_INFO",
            RemoteHostError::Session(_) => "SESSION",
            RemoteHostError::UnknownHost(_) => "UNKNOWN_HOST",
            RemoteHostError::Store(_) => "STORE",
        }
    }
}
