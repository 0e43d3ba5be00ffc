//! Errors of the host role, after the reference's `RemoteCtrlError`: the protocol's own
//! kinds plus timeouts and the user's verdict on the session code.

use std::fmt;

use serde_json::{json, Map, Value};
use xrcp::session::RemoteProtocolError;
use xrcp::RcError;

/// Where a timeout happened (each step is bounded by 15 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The TCP connection to the controller.
    Connect,
    /// The TLS handshake.
    Tls,
    /// Sending the host HELLO.
    HostHello,
    /// Waiting for the controller HELLO.
    CtrlHello,
    /// Waiting for a multicast announcement.
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

/// Every message is one line for a person: what happened, then (after " — ") what to do.
/// Programs use [`RemoteCtrlError::kind`] and [`RemoteCtrlError::details`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCtrlError {
    /// A protocol error, with the reference's kind.
    #[error("{0}")]
    Protocol(#[from] RcError),
    #[error("{}", timeout_text(*.0))]
    /// A step took longer than its deadline.
    Timeout(Stage),
    /// The code the user typed is not this session's.
    #[error(
        "the code typed is not this session's code, so nothing was sent — connect again and \
         type the code shown on the controller's screen"
    )]
    BadVerificationCode,
    /// The controller closed the connection while the session code was being compared (its
    /// link expired or its user stopped it); nothing was exchanged.
    #[error("the controller stopped waiting — start a new link on the controller")]
    ControllerStoppedWaiting,
    /// The controller's app info is unreadable or its version range does not overlap ours.
    #[error("the controller's app does not work with this host ({0}) — update the older one")]
    BadAppInfo(String),
    /// The session layer failed.
    #[error("{0}")]
    Session(RemoteProtocolError),
    /// The TCP connection to the controller's address failed (kind `EXCEPTION`, as the
    /// reference reports it); the OS error is the source.
    #[error("{} — check that the other side is running and reachable, then try again", dial_text(*.addr, .source))]
    Dial {
        /// The address dialed.
        addr: std::net::SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The link's host name could not be resolved (kind `EXCEPTION`).
    #[error("cannot resolve {name}: {} — check that the other side is running and reachable, then try again", xrcp::error::plain(&.source.to_string()))]
    Resolve {
        /// The name in the link.
        name: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// The pairing store failed.
    #[error(
        "the pairing store failed ({0}) — check the data directory (--data-dir) and its \
         permissions"
    )]
    Store(#[source] PairingStoreError),
}

fn dial_text(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        // What a used or expired link meets: say so in plain words.
        std::io::ErrorKind::ConnectionRefused => format!(
            "nothing answers at {addr}: the link was already used or has expired, or the \
             controller stopped (make a new link on the controller)"
        ),
        _ => xrcp::error::plain(&format!("connect {addr}: {e}")),
    }
}

fn timeout_text(stage: Stage) -> &'static str {
    match stage {
        Stage::Connect => {
            "the controller did not answer in time — check that the link's address is reachable \
             from here (through a tunnel: via= / --connect-via)"
        }
        Stage::Tls => {
            "the secure connection to the controller was not set up in time — try again, or \
             make a new link on the controller"
        }
        Stage::HostHello => {
            "sending the confirmation to the controller took too long — make a new link on the \
             controller and connect again"
        }
        Stage::CtrlHello => {
            "the controller stopped waiting — start a new link on the controller and connect \
             again"
        }
        Stage::Discovery => {
            "no paired controller announced itself in time — start the session on the \
             controller with multicast on, then search again, or connect with a link"
        }
    }
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
            RemoteCtrlError::Dial { .. } | RemoteCtrlError::Resolve { .. } => "EXCEPTION",
        }
    }

    /// Structured facts for scripting output beside the kind, so that programs need not
    /// read the message.
    pub fn details(&self) -> Map<String, Value> {
        let v = match self {
            RemoteCtrlError::Timeout(stage) => json!({"stage": match stage {
                Stage::Connect => "connect",
                Stage::Tls => "tls",
                Stage::HostHello => "host_hello",
                Stage::CtrlHello => "ctrl_hello",
                Stage::Discovery => "discovery",
            }}),
            RemoteCtrlError::Session(e) => {
                let mut v = json!({"protocol_error": e.tag()});
                if let Some(t) = e.response_type() {
                    v["response_type"] = Value::from(t);
                }
                v
            }
            RemoteCtrlError::Protocol(RcError::Syntax(detail)) => json!({"detail": detail}),
            RemoteCtrlError::Protocol(RcError::CtrlError(text)) => {
                json!({"controller_error": text})
            }
            _ => json!({}),
        };
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

pub use xrcp::pairing::PairingStoreError;

impl From<crate::store::StoreError> for PairingStoreError {
    fn from(e: crate::store::StoreError) -> Self {
        PairingStoreError::new(e)
    }
}

/// A handshake block that could not be read or written is reported as its wire kind
/// (`BLOCK_SIZE` or `EXCEPTION`), as before the block I/O had its own error type.
impl From<xrcp::handshake::io::BlockIoError> for RemoteCtrlError {
    fn from(err: xrcp::handshake::io::BlockIoError) -> Self {
        RemoteCtrlError::Protocol(RcError::from(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_plain_words() {
        let all = [
            RemoteCtrlError::Protocol(RcError::Invitation),
            RemoteCtrlError::Protocol(RcError::NotDiscovered),
            RemoteCtrlError::Timeout(Stage::CtrlHello),
            RemoteCtrlError::BadVerificationCode,
            RemoteCtrlError::Session(RemoteProtocolError::SessionCode),
        ];
        for e in all {
            let text = e.to_string();
            assert!(text.contains(" — "), "{text}");
            for leak in [e.kind(), "RCE", "PRE", "{"] {
                assert!(!text.contains(leak), "{text}");
            }
        }
        assert_eq!(
            RemoteCtrlError::Timeout(Stage::Discovery).details()["stage"],
            "discovery"
        );
    }
}
