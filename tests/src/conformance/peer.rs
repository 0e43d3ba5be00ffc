//! The runner's own side of the protocol, built only from the public API of `xrcp`,
//! `xrcp-ctrl` and `xrcp-host`: a controller (TLS server, invitation, HELLO, raw HTTP/2
//! requests with hand-made bodies) and a host (TLS client, HELLO, the notes app served over
//! HTTP/2). Scenarios take these pieces apart to misbehave at one precise point.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use xrcp::crypto::KeyHash;
use xrcp::handshake::io::{read_block, read_block_or_close, write_block};
use xrcp::handshake::{ControllerHandshake, ControllerKeys, HostHandshake};
use xrcp::message::SignedInvitation;
use xrcp::pairing::{CtrlPairing, HostPairing};
use xrcp::session::{
    owsf_to_tagged, AppVersionRange, BodyHeadReader, CtrlAppInfo, HostAppInfo, MessageKeys,
    PlatformEncoding, RemoteCommand, RemoteCrypto, RemoteSession, RemoteSignatures, SbKeyNonce,
    SessionSecrets,
};
use xrcp::session_code::session_code;
use xrcp::tls::{self, TlsSession, TlsStream};
use zeroize::Zeroizing;

use super::{bail, Res};

pub(crate) type Tls = TlsStream<TcpStream>;

pub(crate) const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The device name of the runner's controller (checked in the IUT host's `connected`).
pub(crate) const RUNNER_CTRL_NAME: &str = "xrcp-conformance controller";
/// The device name of the runner's host (checked in the IUT controller's `connected`).
pub(crate) const RUNNER_HOST_NAME: &str = "xrcp-conformance host";

/// Runs `f` until `until`; a timeout is a failure naming `what`.
pub(crate) async fn within<F: Future>(until: Instant, what: &str, f: F) -> Res<F::Output> {
    match tokio::time::timeout_at(until, f).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("timed out waiting for {what}"),
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The runner controller's app info (as the reference desktop app sends it).
pub(crate) fn ctrl_app() -> Value {
    CtrlAppInfo {
        app_version_range: AppVersionRange::supported(),
        device_name: RUNNER_CTRL_NAME.into(),
        compression: true,
    }
    .to_json()
}

/// The runner host's HELLO app info for a controller's invitation `app`.
pub(crate) fn host_app(ctrl_app: &Value) -> Res<Value> {
    let settings = xrcp_host::remote::HostAppSettings {
        device_name: RUNNER_HOST_NAME.into(),
        ..Default::default()
    };
    let info = settings
        .hello_info(ctrl_app)
        .map_err(|e| format!("the IUT's invitation app info is unusable: {e}"))?;
    Ok(info.to_json())
}

// ----------------------------------------------------------------------------------------
// The runner as controller

/// A listening controller session: the invitation and the TLS server's socket.
pub(crate) struct CtrlListen {
    pub(crate) handshake: ControllerHandshake,
    pub(crate) listener: TcpListener,
    pub(crate) port: u16,
}

impl CtrlListen {
    /// Binds `127.0.0.1:0` and makes a signed invitation for it.
    pub(crate) async fn new(pairing: HostPairing) -> Res<CtrlListen> {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        Self::with_listener(pairing, listener)
    }

    pub(crate) fn with_listener(pairing: HostPairing, listener: TcpListener) -> Res<CtrlListen> {
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        let handshake = ControllerHandshake::new(pairing, LOCALHOST, port, ctrl_app(), now_secs())
            .map_err(|e| format!("making the invitation: {e}"))?;
        Ok(CtrlListen {
            handshake,
            listener,
            port,
        })
    }

    pub(crate) fn link(&self) -> String {
        self.handshake.invitation().to_uri()
    }

    /// Accepts one TCP connection and runs the controller's TLS handshake on it.
    pub(crate) async fn accept_tls(&self, until: Instant) -> Res<(Tls, TlsSession)> {
        let (tcp, _) = within(until, "the IUT's TCP connection", self.listener.accept())
            .await?
            .map_err(|e| format!("accept: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let config = tls::server_config(self.handshake.credentials(), self.handshake.tls_pin())
            .map_err(|e| format!("TLS config: {e}"))?;
        let (stream, session) = within(until, "the TLS handshake", tls::accept(tcp, &config))
            .await?
            .map_err(|e| format!("TLS handshake with the IUT failed: {e}"))?;
        Ok((stream, session))
    }
}

/// Reads the host HELLO block; a connection closed before any byte is a failure.
pub(crate) async fn read_host_hello(stream: &mut Tls, until: Instant) -> Res<Vec<u8>> {
    match within(until, "the IUT's HELLO block", read_block_or_close(stream)).await? {
        Ok(Some(b)) => Ok(b),
        Ok(None) => bail!("the IUT closed the connection without sending its HELLO"),
        Err(e) => bail!("reading the IUT's HELLO block: {e}"),
    }
}

/// A controller session after a successful HELLO exchange.
pub(crate) struct CtrlEstablished {
    pub(crate) stream: Tls,
    pub(crate) keys: ControllerKeys,
    pub(crate) pairing: HostPairing,
    pub(crate) code: String,
}

/// Reads the host HELLO and answers it honestly.
pub(crate) async fn ctrl_hello(
    handshake: ControllerHandshake,
    mut stream: Tls,
    session: TlsSession,
    until: Instant,
) -> Res<CtrlEstablished> {
    let block = read_host_hello(&mut stream, until).await?;
    let out = handshake
        .handle_host_hello(
            &block,
            KeyHash(session.peer_ca_fingerprint),
            &session.tls_unique,
        )
        .map_err(|r| format!("the IUT's HELLO was refused by the runner: {}", r.error))?;
    within(
        until,
        "sending the controller HELLO",
        write_block(&mut stream, &out.reply),
    )
    .await?
    .map_err(|e| format!("sending the controller HELLO: {e}"))?;
    Ok(CtrlEstablished {
        stream,
        keys: out.keys,
        pairing: out.pairing,
        code: session_code(&session.tls_unique),
    })
}

/// How a request body is spoiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tamper {
    None,
    /// One bit of the session-key signature flipped.
    Ssig,
    /// One bit of the identity-key signature flipped.
    Idsig,
    /// Encrypted with a tls-unique other than the session's (signatures valid).
    TlsUnique,
}

/// The runner's HTTP/2 client, with full control over message ids and body bytes.
pub(crate) struct RawClient {
    send: h2::client::SendRequest<Bytes>,
    connection: JoinHandle<()>,
    /// The session's crypto, its send chain (ids taken in order, their keys kept in `keys`)
    /// and its receive window.
    session: RemoteSession,
    bad_code: RemoteCrypto,
    /// `keys[i]` are the keys of id `i + 1`.
    keys: Vec<MessageKeys>,
    swift: bool,
}

impl RawClient {
    /// Starts HTTP/2 (prior knowledge) over the TLS stream, as the reference controller does
    /// right after its HELLO.
    pub(crate) async fn start(est: CtrlEstablished, until: Instant) -> Res<RawClient> {
        let CtrlEstablished { stream, keys, .. } = est;
        let ControllerKeys {
            keys: session,
            session_key,
            identity_key,
            host_app,
            ..
        } = keys;
        let info = HostAppInfo::from_json(&host_app)
            .map_err(|e| format!("the IUT's HELLO app info does not parse: {e}"))?;
        let compression = info.compression && ctrl_app()["compression"] == Value::Bool(true);
        let signatures = RemoteSignatures::Sign {
            session_key,
            identity_key,
        };
        let mut wrong = Zeroizing::new(session.tls_unique().to_vec());
        match wrong.first_mut() {
            Some(b) => *b ^= 0x80,
            None => wrong.push(1),
        }
        let bad_code = RemoteCrypto::new(wrong, signatures.clone(), compression)
            .map_err(|e| format!("{e}"))?;
        let session = RemoteSession::new(SessionSecrets::new(session, signatures), compression)
            .map_err(|e| format!("{e}"))?;
        let (send, connection) =
            within(until, "the HTTP/2 handshake", h2::client::handshake(stream))
                .await?
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(RawClient {
            send,
            connection,
            session,
            bad_code,
            keys: Vec::new(),
            swift: info.encoding == PlatformEncoding::Swift,
        })
    }

    fn keys_for(&mut self, id: u32) -> Res<SbKeyNonce> {
        while self.keys.len() < id as usize {
            let snd = (self.session.keys_mut().snd_keys()).map_err(|e| format!("{e}"))?;
            self.keys.push(snd.keys);
        }
        Ok(self.keys[id as usize - 1].body.clone())
    }

    /// The request body of `send {command}` under message id `id`, spoiled as asked.
    pub(crate) fn body(&mut self, id: u32, command: &str, tamper: Tamper) -> Res<Vec<u8>> {
        let json = RemoteCommand::Send {
            command: command.to_owned(),
            retry_number: 0,
        }
        .to_json_bytes();
        let key = self.keys_for(id)?;
        let crypto = if tamper == Tamper::TlsUnique {
            &self.bad_code
        } else {
            self.session.crypto()
        };
        let mut body = crypto
            .encrypt_encode_body(id, &key, &json)
            .map_err(|e| format!("encoding a body: {e}"))?;
        // u32 corrId ‖ u32 ctLen ‖ ct ‖ 0x40 ssig ‖ 0x40 idsig
        let ct_len = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        let ssig_at = 8 + ct_len + 1;
        match tamper {
            Tamper::Ssig => body[ssig_at + 10] ^= 0x01,
            Tamper::Idsig => body[ssig_at + 65 + 10] ^= 0x01,
            Tamper::None | Tamper::TlsUnique => {}
        }
        Ok(body)
    }

    /// Sends one request body; returns the decrypted response JSON (tagged form).
    pub(crate) async fn post(&mut self, body: Vec<u8>, until: Instant) -> Res<Value> {
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri("https://0.0.0.0/")
            .body(())
            .map_err(|e| format!("request: {e}"))?;
        let mut send = within(until, "HTTP/2 capacity", self.send.clone().ready())
            .await?
            .map_err(|e| format!("the HTTP/2 connection is gone: {e}"))?;
        let (response, mut stream) = send
            .send_request(request, false)
            .map_err(|e| format!("sending a request: {e}"))?;
        stream
            .send_data(Bytes::from(body), true)
            .map_err(|e| format!("sending a request body: {e}"))?;
        let response = within(until, "the IUT's HTTP/2 response", response)
            .await?
            .map_err(|e| format!("no HTTP/2 response: {e}"))?;
        if response.status() != http::StatusCode::OK {
            bail!("HTTP status {} (expected 200)", response.status());
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = within(until, "the response body", body.data()).await? {
            let chunk = chunk.map_err(|e| format!("reading the response body: {e}"))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        let (head, rest) = BodyHeadReader::read_from(false, &bytes)
            .map_err(|e| format!("response body framing: {e}"))?;
        if !rest.is_empty() {
            bail!("{} unexpected bytes after the response body", rest.len());
        }
        let keys = self
            .session
            .keys_mut()
            .rcv_keys(head.corr_id())
            .map_err(|e| format!("response id {}: {e}", head.corr_id()))?;
        let json = self
            .session
            .crypto()
            .decrypt_body(&head, &keys.body)
            .map_err(|e| format!("response body: {e}"))?;
        let v: Value = serde_json::from_slice(&json).map_err(|e| format!("response JSON: {e}"))?;
        Ok(if self.swift { owsf_to_tagged(v) } else { v })
    }

    /// An honest `send` under `id`: the response must be a `chatResponse`.
    pub(crate) async fn command(&mut self, id: u32, command: &str, until: Instant) -> Res<Value> {
        let body = self.body(id, command, Tamper::None)?;
        let r = self.post(body, until).await?;
        expect_chat_response(&r, command)?;
        Ok(r)
    }

    /// Ends the HTTP/2 connection and with it the TLS stream.
    pub(crate) fn close(self) {
        drop(self.send);
        self.connection.abort();
    }
}

/// Checks a response is `chatResponse` with a `result` or an `error`.
pub(crate) fn expect_chat_response(r: &Value, command: &str) -> Res<()> {
    let ok = r["type"] == "chatResponse"
        && (r["chatResponse"].get("result").is_some() || r["chatResponse"].get("error").is_some());
    if !ok {
        bail!("honest command {command:?} answered with {r} (expected a chatResponse)");
    }
    Ok(())
}

/// Checks a response is `protocolError` of the given kind (and, for `pRERemoteControl`, the
/// given XRCP error tag).
pub(crate) fn expect_protocol_error(r: &Value, kind: &str, rc_error: Option<&str>) -> Res<()> {
    let e = &r["remoteProcotolError"];
    if r["type"] != "protocolError" || e["type"] != kind {
        bail!("expected protocolError {kind}, got {r}");
    }
    if let Some(rc) = rc_error {
        if e["rcError"]["type"] != rc {
            bail!("expected protocolError {kind} with rcError {rc}, got {r}");
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// The runner as host

/// A host connection whose TLS handshake completed; nothing of XRCP sent yet.
pub(crate) struct HostDial {
    pub(crate) handshake: HostHandshake,
    pub(crate) stream: Tls,
    pub(crate) session: TlsSession,
    pub(crate) code: String,
}

/// Verifies the IUT's invitation and connects to it with TLS (as the host would, including
/// the stored pairing's checks when `pairing` is given).
pub(crate) async fn host_dial(
    invitation: SignedInvitation,
    pairing: Option<CtrlPairing>,
    until: Instant,
) -> Res<HostDial> {
    let handshake = HostHandshake::new(invitation, pairing)
        .map_err(|e| format!("the runner host refuses the IUT's invitation: {e}"))?;
    let inv = &handshake.invitation().invitation;
    let addr = (inv.host.to_string(), inv.port);
    let config = tls::client_config(handshake.credentials(), handshake.tls_pin())
        .map_err(|e| format!("TLS config: {e}"))?;
    let tcp = within(
        until,
        "the TCP connection to the IUT",
        TcpStream::connect(addr.clone()),
    )
    .await?
    .map_err(|e| format!("connecting to the IUT at {}:{}: {e}", addr.0, addr.1))?;
    let _ = tcp.set_nodelay(true);
    let (stream, session) = within(until, "the TLS handshake", tls::connect(tcp, &config))
        .await?
        .map_err(|e| format!("TLS handshake with the IUT failed: {e}"))?;
    let code = session_code(&session.tls_unique);
    Ok(HostDial {
        handshake,
        stream,
        session,
        code,
    })
}

/// The reference host's 100 ms wait for a post-handshake alert (spec/xrcp.md §6.4).
pub(crate) async fn peek(dial: &mut HostDial) -> Res<()> {
    dial.stream
        .peek_alert(Duration::from_millis(100))
        .await
        .map_err(|e| format!("the IUT refused the runner host after TLS: {e}").into())
}

/// Sends an honest HELLO and processes the IUT controller's reply.
pub(crate) async fn host_hello(dial: HostDial, until: Instant) -> Res<xrcp_host::Connected> {
    let HostDial {
        handshake,
        mut stream,
        session,
        code,
    } = dial;
    let hello = handshake
        .hello_block(host_app(&handshake.invitation().invitation.app)?)
        .map_err(|e| format!("making the HELLO: {e}"))?;
    within(until, "sending the HELLO", write_block(&mut stream, &hello))
        .await?
        .map_err(|e| format!("sending the HELLO: {e}"))?;
    let reply = within(until, "the IUT's controller HELLO", read_block(&mut stream))
        .await?
        .map_err(|e| format!("reading the IUT's controller HELLO: {e}"))?;
    let (keys, pairing) = handshake
        .handle_ctrl_hello(&reply, &session.tls_unique)
        .map_err(|e| format!("the IUT's controller HELLO is refused: {e}"))?;
    Ok(xrcp_host::Connected {
        stream,
        keys,
        pairing,
        session_code: code,
    })
}

/// Serves the notes app (in `dir`) on a connected session in the background, as an honest
/// host; returns the task and the updated pairing.
pub(crate) fn serve_notes(
    connected: xrcp_host::Connected,
    dir: &Path,
) -> Res<(JoinHandle<()>, CtrlPairing)> {
    let settings = xrcp_host::remote::HostAppSettings {
        device_name: RUNNER_HOST_NAME.into(),
        ..Default::default()
    };
    let (served, pairing) = xrcp_host::remote::prepare_session(connected, &settings)
        .map_err(|e| format!("the IUT's app info: {e}"))?;
    let notes = xrcp_host::notes::NotesApp::open(dir).map_err(|e| format!("notes: {e}"))?;
    let events = notes.subscribe();
    let task = tokio::spawn(async move {
        let _ = served.serve(Arc::new(notes), events).await;
    });
    Ok((task, pairing))
}
