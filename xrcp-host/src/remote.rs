//! From a finished handshake to a served session: check the controller's app info, decide on
//! compression, and run the HTTP/2 server over the same TLS stream (spec/xrcp.md §10).

use std::sync::Arc;

use tokio::sync::mpsc;
use xrcp::session::{
    use_compression, AppVersion, AppVersionRange, CtrlAppInfo, HostAppInfo, HostSession, RRResult,
    RemoteProtocolError, LOCAL_ENCODING,
};

use crate::connect::Connected;
use crate::error::RemoteCtrlError;
use crate::session::{serve_session, HostApp, HostSessionConfig};

/// What this host says about itself in its HELLO.
#[derive(Clone, Debug)]
pub struct HostAppSettings {
    /// The `deviceName` the controller shows for this host (spec/xrcp.md §10.4).
    pub device_name: String,
    /// The app versions this host accepts; it must overlap the controller's range, and the
    /// HELLO reports the agreed version (spec/xrcp.md §10.4).
    pub version_range: AppVersionRange,
    /// Whether this host offers zstd compression of session bodies; it is used only if the
    /// controller offers it too (spec/xrcp.md §10.2, §10.4).
    pub compression: bool,
    /// Whether files are kept encrypted at rest (ours are not).
    pub encrypt_files: bool,
}

impl Default for HostAppSettings {
    fn default() -> Self {
        HostAppSettings {
            device_name: "xrcp-host".into(),
            version_range: AppVersionRange::supported(),
            compression: true,
            encrypt_files: false,
        }
    }
}

impl HostAppSettings {
    /// Checks the controller's app info from the invitation (`checkAppVersion`) and gives
    /// the HELLO's app info JSON, with the version both support.
    pub fn hello_info(&self, ctrl_app: &serde_json::Value) -> Result<HostAppInfo, RemoteCtrlError> {
        let ctrl = CtrlAppInfo::from_json(ctrl_app)
            .map_err(|e| RemoteCtrlError::BadAppInfo(e.to_string()))?;
        let app_version: AppVersion = ctrl
            .check(&self.version_range)
            .map_err(|e| RemoteCtrlError::BadAppInfo(e.to_string()))?;
        Ok(HostAppInfo {
            app_version,
            device_name: self.device_name.clone(),
            encoding: LOCAL_ENCODING,
            encrypt_files: self.encrypt_files,
            compression: self.compression,
        })
    }
}

/// A session ready to be served.
pub struct ServedSession {
    session: HostSession,
    stream: xrcp::tls::TlsStream<tokio::net::TcpStream>,
    /// The controller's app info from the invitation (device name, version range,
    /// compression; spec/xrcp.md §10.4).
    pub ctrl_info: CtrlAppInfo,
    /// Whether session bodies are compressed: both sides offered it (spec/xrcp.md §10.4).
    pub compression: bool,
    /// The session code both sides showed (spec/xrcp.md §6.3).
    pub session_code: String,
}

impl std::fmt::Debug for ServedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedSession")
            .field("controller", &self.ctrl_info.device_name)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// Builds the session from the handshake result; the pairing is returned for persisting.
pub fn prepare_session(
    connected: Connected,
    settings: &HostAppSettings,
) -> Result<(ServedSession, xrcp::pairing::CtrlPairing), RemoteCtrlError> {
    let Connected {
        stream,
        keys,
        pairing,
        session_code,
    } = connected;
    let ctrl_info = CtrlAppInfo::from_json(&keys.ctrl_app)
        .map_err(|e| RemoteCtrlError::BadAppInfo(e.to_string()))?;
    let compression = use_compression(settings.compression, ctrl_info.compression);
    let session = HostSession::new(
        keys.keys,
        keys.ctrl_session_key,
        keys.ctrl_identity_key,
        compression,
    )
    .map_err(RemoteCtrlError::Session)?;
    Ok((
        ServedSession {
            session,
            stream,
            ctrl_info,
            compression,
            session_code,
        },
        pairing,
    ))
}

impl ServedSession {
    /// Serves the controller's requests with `app` until the connection ends.
    ///
    /// `Ok` only if the controller ended the session on purpose (TLS `close_notify`, which our
    /// controller sends after its HTTP/2 GOAWAY). HTTP/2 reports a transport that simply stops
    /// as a clean end too; that is a cut connection here (`RPEHTTP2`).
    pub async fn serve<A: HostApp>(
        self,
        app: Arc<A>,
        events: mpsc::Receiver<RRResult>,
    ) -> Result<(), RemoteProtocolError> {
        let peer_end = self.stream.peer_end();
        serve_session(
            self.stream,
            peer_end,
            self.session,
            app,
            events,
            &HostSessionConfig::default(),
        )
        .await
    }
}
