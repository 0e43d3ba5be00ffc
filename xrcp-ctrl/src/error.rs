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
    /// The SSH tunnel to the relay could not be set up or ended.
    #[error("{0}")]
    Relay(#[from] crate::relay::RelayError),
    /// No paired host connected in time, but a host presenting another CA than the pinned
    /// one tried (TLS refused it): the paired host no longer has this pairing, or another
    /// device used the link.
    #[error(
        "no paired host connected; a device that is not the paired host tried: the host may \
         no longer have this pairing. To pair again, forget the host and link it anew"
    )]
    HostCaRefused,
    /// [`RemoteHostError::HostCaRefused`] for `connect <id>`, with the commands to run.
    #[error(
        "paired host {0} did not connect, but a device with another identity tried: host {0} \
         no longer has this pairing (it was reset or forgot this controller, or it stopped \
         before saving the pairing when it was linked), or another device used the link. To \
         pair again, forget the host with `xrcp-ctrl delete {0}` \
         (interactively `/delete remote host {0}`) and link it anew with `xrcp-ctrl link` \
         (`/start remote host new`)"
    )]
    PairingLost(i64),
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
            RemoteHostError::Relay(_) => "SSH_RELAY",
            RemoteHostError::HostCaRefused | RemoteHostError::PairingLost(_) => "PAIRING_LOST",
        }
    }
}
