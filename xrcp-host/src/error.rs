//! Errors of the host role, after the reference's `RemoteCtrlError`: the protocol's own
//! kinds plus timeouts and the user's verdict on the session code.

use std::fmt;

use xrcp::session::RemoteProtocolError;
use xrcp::RcError;

/// Where a timeout happened (each step is bounded by 15 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Tls,
    HostHello,
    CtrlHello,
    Discovery,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "TCP connection",
            Stage::Tls => "TLS handshake",
            Stage::HostHello => "sending host HELLO",
            Stage::CtrlHello => "controller HELLO",
            Stage::Discovery => "controller announcement",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCtrlError {
    /// A protocol error, with the reference's kind.
    #[error("{0}")]
    Protocol(#[from] RcError),
    #[error("timeout: {0}")]
    Timeout(Stage),
    /// The code the user typed is not this session's.
    #[error("session code does not match")]
    BadVerificationCode,
    /// The controller closed the connection while the session code was being compared (its
    /// link expired or its user stopped it); nothing was exchanged.
    #[error("the controller stopped waiting — start a new link on the controller")]
    ControllerStoppedWaiting,
    /// The controller's app info is unreadable or its version range does not overlap ours.
    #[error("controller app info: {0}")]
    BadAppInfo(String),
    /// The session layer failed.
    #[error("session: {0:?}")]
    Session(RemoteProtocolError),
    /// The pairing store failed.
    #[error("pairing store: {0}")]
    Store(String),
}

impl RemoteCtrlError {
    /// A stable name for scripting output: the protocol kind, or `TIMEOUT` /
    /// `BAD_VERIFICATION_CODE` / `DISCONNECTED` (the controller stopped waiting).
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteCtrlError::Protocol(e) => e.kind(),
            RemoteCtrlError::Timeout(_) => "TIMEOUT",
            RemoteCtrlError::BadVerificationCode => "BAD_VERIFICATION_CODE",
            RemoteCtrlError::ControllerStoppedWaiting => "DISCONNECTED",
            RemoteCtrlError::BadAppInfo(_) => "BAD_APP_INFO",
            RemoteCtrlError::Session(_) => "SESSION",
            RemoteCtrlError::Store(_) => "STORE",
        }
    }
}
