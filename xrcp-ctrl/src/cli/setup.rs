//! What both modes share: the data directory and pairing store, logging, and one session's
//! establishment with progress reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use xrcp::pairing::HostPairing;

use super::Listen;
use crate::address::{choose, local_addresses, AddressPreference};
use crate::announce::{AnnounceOptions, Announcer};
use crate::connect::{WaitEvent, Withdrawal};
use crate::error::RemoteHostError;
use crate::relay::{RelayError, SshRelay};
use crate::remote::{open_session, ControllerApp, RemoteHost};
use crate::store::{device_name, Binding, HostStore};
use crate::ControllerOptions;
use tokio::net::TcpListener;
use xrcp::message::TransportHost;
use xrcp::RcError;

/// `RUST_LOG` controls the logs (default: warnings), written to stderr so stdout stays
/// clean for scripting.
pub(super) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Log lines can quote the peer: escaped like everything else shown on a terminal, and
    // without colours (their escape sequences would be escaped too).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| xrcp::display::EscapingWriter(std::io::stderr()))
        .try_init();
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("xrcp-ctrl");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/xrcp-ctrl"),
        None => PathBuf::from(".xrcp-ctrl"),
    }
}

/// The program's state shared by its tasks.
#[derive(Clone)]
pub(super) struct Context {
    pub(crate) store: Arc<Mutex<HostStore>>,
    pub(crate) app: Arc<Mutex<ControllerApp>>,
}

impl Context {
    pub(crate) fn open(
        dir: Option<PathBuf>,
        device_name: Option<String>,
    ) -> Result<Context, String> {
        let dir = dir.unwrap_or_else(default_data_dir);
        let store = HostStore::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut app = ControllerApp::default();
        if let Some(name) = device_name {
            app.device_name = name;
        }
        Ok(Context {
            store: Arc::new(Mutex::new(store)),
            app: Arc::new(Mutex::new(app)),
        })
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, HostStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn app(&self) -> ControllerApp {
        self.app
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Which host a session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    New,
    Known { id: i64, multicast: bool },
}

/// What happens while a session is set up.
#[derive(Debug)]
pub(super) enum Progress {
    Started {
        link: String,
        /// What the link names.
        address: TransportHost,
        port: u16,
        /// Where the listener is bound.
        bound: SocketAddr,
        /// The link names a relay or forward rather than one of this machine's addresses.
        relayed: bool,
        others: Vec<Ipv4Addr>,
    },
    /// A connection from this address completed TLS.
    Connecting(SocketAddr),
    /// The session code of the connection from `peer`.
    SessionCode { peer: SocketAddr, code: String },
    /// The connection from `peer` is gone before proving it holds the invitation; its code
    /// no longer counts.
    Withdrawn {
        peer: SocketAddr,
        reason: Withdrawal,
    },
    /// The host connected from `peer` while `others` were still waiting with this link.
    Contested {
        peer: SocketAddr,
        others: Vec<SocketAddr>,
    },
}

/// Options for a session from the command-line flags and, for a known host without flags,
/// its stored binding.
pub(super) fn controller_options(
    app: &ControllerApp,
    listen: &Listen,
    stored: Option<&Binding>,
) -> ControllerOptions {
    let mut options = ControllerOptions {
        app: serde_json::to_value(app.info()).unwrap_or_default(),
        address: AddressPreference {
            address: listen.addr,
            interface: listen.iface.clone(),
        },
        port: listen
            .bind
            .and_then(|(_, port)| port)
            .unwrap_or(listen.port),
        advertise: listen.advertise.clone(),
        // A listener behind a relay or tunnel only needs to be reachable from this machine;
        // otherwise `establish` binds the address put into the link (never every interface
        // by surprise).
        bind: listen.bind.map(|(addr, _)| addr).unwrap_or(
            if listen.advertise.is_some() || listen.ssh_relay.is_some() {
                Ipv4Addr::LOCALHOST
            } else {
                Ipv4Addr::UNSPECIFIED
            },
        ),
        tls_timeout: std::time::Duration::from_secs(listen.timeout),
        ..ControllerOptions::default()
    };
    if let Some(binding) = stored {
        let told = listen.addr.is_some()
            || listen.iface.is_some()
            || listen.port != 0
            || listen.bind.is_some_and(|(_, port)| port.is_some())
            || listen.advertise.is_some()
            || listen.ssh_relay.is_some();
        if !told {
            binding.apply(&mut options);
        }
    }
    options
}

/// Runs one session from start to connected, reporting progress; stores the pairing.
/// Returns the host's id, the running session, and the SSH tunnel it runs through (keep it
/// for as long as the session).
pub(super) async fn establish(
    ctx: &Context,
    target: Target,
    listen: &Listen,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(i64, RemoteHost, Option<SshRelay>), RemoteHostError> {
    let app = ctx.app();
    // What the user typed is checked before anything else, so a wrong option is reported at
    // once (not after the link's lifetime).
    let candidates = local_addresses();
    let typed = AddressPreference {
        address: listen.addr,
        interface: listen.iface.clone(),
    };
    crate::address::check(&typed, &candidates)?;
    let multicast = matches!(
        target,
        Target::Known {
            multicast: true,
            ..
        }
    );
    if let Some(addr) = listen.addr.filter(|a| multicast && a.is_loopback()) {
        return Err(RemoteHostError::MulticastOnLoopback { addr });
    }
    let (pairing, stored_binding) = match target {
        Target::New => (HostPairing::new()?, None),
        Target::Known { id, .. } => {
            let rec = ctx
                .store()
                .get(id)
                .map_err(|e| RemoteHostError::Store(e.to_string()))?
                .ok_or(RemoteHostError::UnknownHost(id))?;
            (rec.pairing, Some(rec.binding))
        }
    };
    let mut options = controller_options(&app, listen, stored_binding.as_ref());
    let binding = Binding::of(&options);
    if options.advertise.is_none() && listen.ssh_relay.is_none() {
        // The address the link names (a stored one may have gone: then the reference's
        // fallback applies) is also the one the listener binds, unless --bind/bind= says
        // otherwise.
        let (chosen, _) = choose(&options.address, candidates.clone())?;
        if multicast && chosen.address.is_loopback() {
            return Err(RemoteHostError::MulticastOnLoopback {
                addr: chosen.address,
            });
        }
        options.address.address = Some(chosen.address);
        if listen.bind.is_none() {
            options.bind = chosen.address;
        }
        options.candidates = Some(candidates);
    }
    let mut relay = None;
    let listening = match &listen.ssh_relay {
        None => crate::connect::start(pairing, options).await?,
        Some(relay_options) => {
            let listener = TcpListener::bind((options.bind, options.port))
                .await
                .map_err(|e| RemoteHostError::Listen {
                    addr: options.bind,
                    port: options.port,
                    failure: crate::error::ListenFailure::of(&e),
                })?;
            let local = listener.local_addr().map_err(|_| RcError::TlsStartFailed)?;
            // ssh connects to the listener from this machine: its own address, or loopback
            // when it listens on every address.
            let target = if local.ip().is_unspecified() {
                SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
            } else {
                local
            };
            let advertised = match &listen.advertise {
                Some((host, _)) => host.clone(),
                None => TransportHost::for_advertising(relay_options.server()).map_err(|e| {
                    let why = match e {
                        RcError::Syntax(why) => why,
                        other => other.to_string(),
                    };
                    RelayError::BadServerName(format!(
                        "'{}' cannot go into a link: {why}",
                        relay_options.server()
                    ))
                })?,
            };
            let mut relay_options = relay_options.clone();
            relay_options.remote_port = listen.relay_port;
            relay_options.ssh_options = listen.ssh_options.clone();
            let tunnel = SshRelay::start(&relay_options, target, &advertised).await?;
            options.advertise = Some((advertised, Some(tunnel.port())));
            relay = Some(tunnel);
            crate::connect::start_on(listener, pairing, options).await?
        }
    };
    let (advertised, port) = listening.advertised();
    progress(Progress::Started {
        link: listening.link(),
        address: advertised.clone(),
        port,
        bound: listening.bound(),
        relayed: listening.local_address().is_none(),
        others: listening
            .other_addresses()
            .iter()
            .map(|a| a.address)
            .collect(),
    });
    let announcer = match target {
        Target::Known {
            multicast: true, ..
        } => Some(Announcer::start(&listening, &AnnounceOptions::default())?),
        _ => None,
    };
    let connected = listening
        .connect(|event| match event {
            WaitEvent::Code { peer, code } => {
                progress(Progress::Connecting(peer));
                progress(Progress::SessionCode { peer, code });
            }
            WaitEvent::Withdrawn { peer, reason, .. } => {
                progress(Progress::Withdrawn { peer, reason })
            }
        })
        .await;
    if let Some(a) = announcer {
        a.stop();
    }
    let connected = connected.map_err(|e| match (target, e) {
        (Target::Known { id, .. }, RemoteHostError::HostCaRefused) => {
            RemoteHostError::PairingLost(id)
        }
        (_, e) => e,
    })?;
    if !connected.contested.is_empty() {
        progress(Progress::Contested {
            peer: connected.peer,
            others: connected.contested.clone(),
        });
    }
    let remote = open_session(connected, &app).await?;
    let name = device_name(&serde_json::to_value(&remote.host_info).unwrap_or_default());
    let id = {
        let mut store = ctx.store();
        let result = match target {
            Target::New => store.insert(&name, &remote.pairing, &binding),
            Target::Known { id, .. } => store
                .update_after_session(id, &name, &remote.pairing, &binding)
                .map(|()| id),
        };
        result.map_err(|e| RemoteHostError::Store(e.to_string()))?
    };
    Ok((id, remote, relay))
}

/// What a person is told when a connection's session code no longer counts.
pub(super) fn withdrawn_line(peer: SocketAddr, reason: Withdrawal) -> String {
    match reason {
        Withdrawal::Superseded => {
            format!("closed the other connection from {peer}: another host connected with this link")
        }
        _ => format!(
            "the connection from {peer} ended ({reason}): ignore its session code; still waiting for the host"
        ),
    }
}

/// Said once when the link names a relay: what was advertised and why that is safe.
pub(super) fn relayed_lines(address: &TransportHost, port: u16, bound: SocketAddr) -> [String; 2] {
    [
        format!(
            "The link points to {address}:{port}; this controller listens on {bound}. \
             Hosts reach it through your relay or port forward."
        ),
        "That is safe: the host checks this controller's identity from the link, and you \
         compare the session code."
            .to_owned(),
    ]
}

/// The warning when other connections were waiting with the same link as the host.
pub(super) fn contested_line(peer: SocketAddr, others: &[SocketAddr]) -> String {
    let others: Vec<String> = others.iter().map(|a| a.to_string()).collect();
    format!(
        "warning: the host connected from {peer} while other connections ({}) were also waiting \
         with this link. If the code your host showed was not the one shown for {peer}, end this \
         session now: someone else has your link.",
        others.join(", ")
    )
}
