//! What both modes share: the data directory and pairing store, logging, and one session's
//! establishment with progress reports.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use xrcp::pairing::HostPairing;

use super::Listen;
use crate::address::AddressPreference;
use crate::announce::{AnnounceOptions, Announcer};
use crate::error::RemoteHostError;
use crate::remote::{open_session, ControllerApp, RemoteHost};
use crate::store::{device_name, Binding, HostStore};
use crate::ControllerOptions;

/// `RUST_LOG` controls the logs (default: warnings), written to stderr so stdout stays
/// clean for scripting.
pub(super) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        address: Ipv4Addr,
        port: u16,
        others: Vec<Ipv4Addr>,
    },
    Connecting(SocketAddr),
    SessionCode(String),
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
        port: listen.port,
        bind: listen.bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
        ..ControllerOptions::default()
    };
    if let Some(binding) = stored {
        if listen.addr.is_none() && listen.iface.is_none() && listen.port == 0 {
            binding.apply(&mut options);
        }
    }
    options
}

/// Runs one session from start to connected, reporting progress; stores the pairing.
/// Returns the host's id and the running session.
pub(super) async fn establish(
    ctx: &Context,
    target: Target,
    listen: &Listen,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(i64, RemoteHost), RemoteHostError> {
    let app = ctx.app();
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
    let options = controller_options(&app, listen, stored_binding.as_ref());
    let binding = Binding::of(&options);
    let listening = crate::connect::start(pairing, options).await?;
    let (advertised, port) = listening.advertised();
    progress(Progress::Started {
        link: listening.link(),
        address: advertised.address,
        port,
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
    let accepted = listening.accept().await;
    if let Some(a) = announcer {
        a.stop();
    }
    let pending = accepted?;
    progress(Progress::Connecting(pending.peer()));
    progress(Progress::SessionCode(pending.session_code().to_owned()));
    let connected = pending.finish().await?;
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
    Ok((id, remote))
}
