//! From a finished handshake to a running remote host: check the host's app info, decide
//! on compression, and start the HTTP/2 client over the same TLS stream (spec/xrcp.md §10).

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use xrcp::pairing::HostPairing;
use xrcp::session::{
    use_compression, AppVersionRange, ControllerSession, CtrlAppInfo, HostAppInfo, LOCAL_ENCODING,
};
use xrcp::tls::TlsStream;

use crate::connect::Connected;
use crate::error::RemoteHostError;
use crate::session::{CtrlSessionConfig, HostEvent, RemoteHostClient};

/// What this controller says about itself in invitations.
#[derive(Clone, Debug)]
pub struct ControllerApp {
    /// The `deviceName` the host shows for this controller; [`ControllerApp::info`] replaces
    /// `+` and `%` in it (spec/xrcp.md §4.3, §10.4).
    pub device_name: String,
    /// The app versions this controller accepts; the host's version must be in it
    /// (spec/xrcp.md §10.4).
    pub version_range: AppVersionRange,
    /// Whether this controller offers zstd compression of session bodies; it is used only if
    /// the host offers it too (spec/xrcp.md §10.2, §10.4).
    pub compression: bool,
}

impl Default for ControllerApp {
    fn default() -> Self {
        ControllerApp {
            device_name: "xrcp-ctrl".into(),
            version_range: AppVersionRange::supported(),
            compression: true,
        }
    }
}

impl ControllerApp {
    /// The invitation's `app` JSON. Characters a reference host could not verify in it
    /// (`+`, `%`; spec/xrcp.md §4.3) are replaced in the device name.
    pub fn info(&self) -> CtrlAppInfo {
        CtrlAppInfo {
            app_version_range: self.version_range.clone(),
            device_name: safe_device_name(&self.device_name),
            compression: self.compression,
        }
    }
}

/// A device name that survives the reference host's double percent-decoding of `app`.
pub fn safe_device_name(name: &str) -> String {
    name.replace(['+', '%'], "_")
}

/// A connected host.
pub struct RemoteHost {
    /// The HTTP/2 client that sends commands and files to the host (spec/xrcp.md §10).
    pub client: RemoteHostClient,
    /// Events from the host's long-poll.
    pub events: mpsc::Receiver<HostEvent>,
    /// The host's app info from its HELLO (version, device name, encoding, compression;
    /// spec/xrcp.md §10.4).
    pub host_info: HostAppInfo,
    /// Whether session bodies are compressed: both sides offered it (spec/xrcp.md §10.4).
    pub compression: bool,
    /// The session code both sides showed (spec/xrcp.md §6.3).
    pub session_code: String,
    /// The updated pairing; persist it.
    pub pairing: HostPairing,
}

impl RemoteHost {
    /// Ends the session on purpose, so that the host can tell it from a cut connection
    /// ([`RemoteHostClient::close`]).
    pub async fn close(self) {
        drop(self.events);
        self.client.close().await;
    }
}

impl std::fmt::Debug for RemoteHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteHost")
            .field("host", &self.host_info.device_name)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// Checks the host's app info against ours and starts the session client.
pub async fn open_session(
    connected: Connected,
    app: &ControllerApp,
) -> Result<RemoteHost, RemoteHostError> {
    let Connected {
        stream,
        keys,
        pairing,
        session_code,
        ..
    } = connected;
    let host_info = HostAppInfo::from_json(&keys.host_app).map_err(RemoteHostError::BadAppInfo)?;
    host_info
        .check(&app.version_range, LOCAL_ENCODING)
        .map_err(RemoteHostError::BadAppInfo)?;
    let compression = use_compression(app.compression, host_info.compression);
    let session =
        ControllerSession::new(keys.keys, keys.session_key, keys.identity_key, compression)?;
    let (client, events) = RemoteHostClient::connect::<TlsStream<TcpStream>>(
        stream,
        session,
        host_info.encoding,
        CtrlSessionConfig::default(),
    )
    .await?;
    Ok(RemoteHost {
        client,
        events,
        host_info,
        compression,
        session_code,
        pairing,
    })
}
