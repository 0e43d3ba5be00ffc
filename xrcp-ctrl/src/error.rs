//! Errors of the controller role, after the reference's `RemoteHostError`: the protocol's
//! own kinds plus what only a running session can hit (timeouts, a host that left).

use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};
use xrcp::session::{AppInfoError, RemoteProtocolError};
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

/// Why the listener could not be bound.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenFailure {
    /// Another program listens on the port already.
    InUse,
    /// The address is not one of this machine's.
    NotLocal,
    /// A port below 1024 needs privileges.
    Denied,
    /// Anything else the OS said.
    Other(String),
}

impl ListenFailure {
    /// Classifies an error of `bind(2)`.
    pub fn of(e: &std::io::Error) -> ListenFailure {
        match e.kind() {
            std::io::ErrorKind::AddrInUse => ListenFailure::InUse,
            std::io::ErrorKind::AddrNotAvailable => ListenFailure::NotLocal,
            std::io::ErrorKind::PermissionDenied => ListenFailure::Denied,
            _ => ListenFailure::Other(e.to_string()),
        }
    }
}

/// Every message is one line for a person: what happened, then (after " — ") what to do.
/// Programs use [`RemoteHostError::kind`] and [`RemoteHostError::details`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteHostError {
    /// A protocol error, with the reference's kind.
    #[error("{0}")]
    Protocol(#[from] RcError),
    #[error("{}", timeout_text(*.0))]
    /// A step took longer than its deadline.
    Timeout(Stage),
    /// The host closed the connection before its HELLO (e.g. its user rejected the code).
    #[error(
        "host disconnected before the session started (its user may have rejected the code) \
         — start again with a new link"
    )]
    Disconnected,
    /// The host's app info is unreadable or its version is outside ours.
    #[error("the host's app does not work with this controller ({0}) — update the older one")]
    BadAppInfo(#[source] AppInfoError),
    /// The session layer failed.
    #[error("{0}")]
    Session(#[from] RemoteProtocolError),
    /// No paired host has this id.
    #[error("no remote host {0} — see the paired hosts with /list remote hosts (xrcp-ctrl list)")]
    UnknownHost(i64),
    /// The pairing store failed.
    #[error(
        "the pairing store failed ({0}) — check the data directory (--data-dir) and its \
         permissions"
    )]
    Store(#[source] PairingStoreError),
    /// The listener could not be bound (kind `CTRL_TLS_START`, as the reference's
    /// `RCETLSStartFailed`, with the address and port).
    #[error("{}", listen_text(*.addr, *.port, .failure))]
    Listen {
        /// The address bound.
        addr: Ipv4Addr,
        /// The port bound.
        port: u16,
        /// Why it failed.
        failure: ListenFailure,
    },
    /// `addr=` / `--addr` names an address this machine does not have.
    #[error(
        "{addr} is not one of this machine's addresses ({}) — choose one of them with addr= / \
         --addr; to put a relay or port-forward address into the link on purpose, use \
         advertise= / --advertise",
        list(local)
    )]
    AddressNotLocal {
        /// The address asked for.
        addr: Ipv4Addr,
        /// This machine's addresses.
        local: Vec<Ipv4Addr>,
    },
    /// `iface=` / `--iface` names no interface with a usable IPv4 address.
    #[error(
        "there is no interface '{iface}' with an IPv4 address here — the interfaces are: {} \
         (iface= / --iface)",
        list(interfaces)
    )]
    UnknownInterface {
        /// The interface asked for.
        iface: String,
        /// This machine's interfaces with an IPv4 address.
        interfaces: Vec<String>,
    },
    /// Multicast was asked for with a loopback address in the link.
    #[error(
        "multicast announcements do not leave this machine from a loopback address ({addr}) \
         — choose a LAN address with addr= / --addr or iface= / --iface, or connect the host \
         with the link instead"
    )]
    MulticastOnLoopback {
        /// The loopback address.
        addr: Ipv4Addr,
    },
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

fn timeout_text(stage: Stage) -> &'static str {
    match stage {
        Stage::TlsConnection => {
            "no host connected before the link expired — make a new link and connect the host \
             sooner"
        }
        Stage::HostHello => {
            "the host did not confirm the session code in time — start again with a new link \
             and type the code sooner"
        }
        Stage::CtrlHello => {
            "the host stopped answering while the session was set up — start again with a new \
             link"
        }
    }
}

fn listen_text(addr: Ipv4Addr, port: u16, failure: &ListenFailure) -> String {
    match failure {
        ListenFailure::InUse => {
            format!("port {port} is in use — pick another with port= / --port")
        }
        ListenFailure::NotLocal => format!(
            "cannot listen on {addr}: it is not one of this machine's addresses — choose \
             another with bind= / --bind"
        ),
        ListenFailure::Denied => format!(
            "port {port} needs administrator rights — pick one above 1023 with port= / --port"
        ),
        ListenFailure::Other(why) => format!(
            "cannot listen on {addr}:{port} ({why}) — pick another port with port= / --port"
        ),
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
            RemoteHostError::Listen { .. } => RcError::TlsStartFailed.kind(),
            RemoteHostError::AddressNotLocal { .. }
            | RemoteHostError::UnknownInterface { .. }
            | RemoteHostError::MulticastOnLoopback { .. } => "BAD_OPTION",
            RemoteHostError::Relay(_) => "SSH_RELAY",
            RemoteHostError::HostCaRefused | RemoteHostError::PairingLost(_) => "PAIRING_LOST",
        }
    }

    /// Structured facts for scripting output beside the kind (e.g. `port` for a port in use,
    /// `response_type` for a response that does not fit), so that programs need not read
    /// the message.
    pub fn details(&self) -> Map<String, Value> {
        let v = match self {
            RemoteHostError::Listen {
                addr,
                port,
                failure,
            } => json!({
                "addr": addr.to_string(),
                "port": port,
                "reason": match failure {
                    ListenFailure::InUse => "in_use",
                    ListenFailure::NotLocal => "not_local",
                    ListenFailure::Denied => "denied",
                    ListenFailure::Other(_) => "other",
                },
            }),
            RemoteHostError::AddressNotLocal { addr, local } => json!({
                "option": "addr",
                "addr": addr.to_string(),
                "local_addresses": local.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            RemoteHostError::UnknownInterface { iface, interfaces } => json!({
                "option": "iface",
                "iface": iface,
                "interfaces": interfaces,
            }),
            RemoteHostError::MulticastOnLoopback { addr } => json!({
                "option": "multicast",
                "addr": addr.to_string(),
            }),
            RemoteHostError::Timeout(stage) => json!({"stage": match stage {
                Stage::TlsConnection => "tls_connection",
                Stage::HostHello => "host_hello",
                Stage::CtrlHello => "ctrl_hello",
            }}),
            RemoteHostError::UnknownHost(id) | RemoteHostError::PairingLost(id) => {
                json!({"host_id": id})
            }
            RemoteHostError::Session(e) => session_details(e),
            RemoteHostError::Protocol(RcError::Syntax(detail)) => json!({"detail": detail}),
            _ => json!({}),
        };
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// Structured facts of a session-layer error: its JSON tag, and the type of a response that
/// did not fit.
pub(crate) fn session_details(e: &RemoteProtocolError) -> Value {
    let mut v = json!({"protocol_error": e.tag()});
    if let Some(t) = e.response_type() {
        v["response_type"] = Value::from(t);
    }
    v
}

pub use xrcp::pairing::PairingStoreError;

impl From<crate::store::StoreError> for PairingStoreError {
    fn from(e: crate::store::StoreError) -> Self {
        PairingStoreError::new(e)
    }
}

/// A handshake block that could not be read or written is reported as its wire kind
/// (`BLOCK_SIZE` or `EXCEPTION`), as before the block I/O had its own error type.
impl From<xrcp::handshake::io::BlockIoError> for RemoteHostError {
    fn from(err: xrcp::handshake::io::BlockIoError) -> Self {
        RemoteHostError::Protocol(RcError::from(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The app info error is kept as the source; the text a person reads is unchanged.
    #[test]
    fn bad_app_info_keeps_its_source() {
        use std::error::Error as _;
        let e = RemoteHostError::BadAppInfo(AppInfoError::IncompatibleEncoding);
        assert_eq!(
            e.to_string(),
            "the host's app does not work with this controller (incompatible JSON encoding) — \
             update the older one"
        );
        assert_eq!(e.kind(), "BAD_APP_INFO");
        let source = e.source().and_then(|s| s.downcast_ref::<AppInfoError>());
        assert_eq!(source, Some(&AppInfoError::IncompatibleEncoding));
    }

    #[test]
    fn a_port_in_use_names_the_port_and_the_option() {
        let e = RemoteHostError::Listen {
            addr: Ipv4Addr::LOCALHOST,
            port: 5225,
            failure: ListenFailure::of(&std::io::Error::from(std::io::ErrorKind::AddrInUse)),
        };
        assert_eq!(e.kind(), "CTRL_TLS_START");
        assert_eq!(
            e.to_string(),
            "port 5225 is in use — pick another with port= / --port"
        );
        assert_eq!(e.details()["port"], 5225);
        assert_eq!(e.details()["reason"], "in_use");
    }

    #[test]
    fn session_errors_are_plain_words_with_structured_details() {
        let e = RemoteHostError::Session(RemoteProtocolError::UnexpectedResponse(
            r#"{"type":"chatCmdError"}"#.into(),
        ));
        let text = e.to_string();
        assert!(
            !text.contains('{') && !text.contains("Unexpected"),
            "{text}"
        );
        assert_eq!(e.details()["response_type"], "chatCmdError");
        assert_eq!(e.details()["protocol_error"], "unexpectedResponse");
    }

    #[test]
    fn option_errors_list_what_is_valid() {
        let e = RemoteHostError::UnknownInterface {
            iface: "nosuch".into(),
            interfaces: vec!["lo".into(), "eth0".into()],
        };
        assert_eq!(e.kind(), "BAD_OPTION");
        assert!(e.to_string().contains("lo, eth0"), "{e}");
        let e = RemoteHostError::AddressNotLocal {
            addr: "10.9.9.9".parse().unwrap(),
            local: vec![Ipv4Addr::LOCALHOST],
        };
        assert!(e.to_string().contains("--advertise"), "{e}");
        assert_eq!(e.details()["local_addresses"][0], "127.0.0.1");
    }
}
