//! The host's HTTP/2 server over the XRCP TLS stream (spec/xrcp.md §10; the reference's
//! `handleRemoteCommand`, `handleRecv`, `handleStoreFile`, `handleGetFile`).
//!
//! Every stream is one command: the server does not look at method or path, answers `200`
//! with a streamed body, and handles streams concurrently (the controller keeps an event
//! long-poll open while the user's commands run). A request that fails to parse, verify or
//! decrypt is answered with `protocolError` and the session goes on, as in the reference.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use xrcp::session::{
    HostSession, RRResult, RemoteCommand, RemoteProtocolError, RemoteResponse, SbKeyNonce,
};
use xrcp::tls::PeerEnd;

use super::app::{HostApp, HostAppError, OutgoingFile, StoredFile};
use xrcp::session::http2::{
    decode_turn, finish, http2_error, keepalive, send_body, send_file, BodyBudget, BodyReader,
    BODY_HEAD_TIMEOUT, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_FRAME_SIZE,
    UNVERIFIED_BODY_BUDGET,
};

/// HTTP/2 settings of the host's server. The reference uses the Haskell `http2` defaults; these
/// only size buffers and limits on our side and need no agreement with the peer.
#[derive(Clone, Debug)]
pub struct HostSessionConfig {
    /// Concurrent streams the controller may open (RFC 9113 recommends at least 100).
    pub max_concurrent_streams: u32,
    /// Per-stream receive window: how much of one upload may be in flight.
    pub initial_window_size: u32,
    /// Connection receive window: caps data buffered across all streams.
    pub connection_window_size: u32,
    /// Largest HTTP/2 frame we accept ([`xrcp::session::http2::MAX_FRAME_SIZE`]).
    pub max_frame_size: u32,
    /// How long a request may take to deliver its body up to the signatures
    /// ([`BODY_HEAD_TIMEOUT`]); a stream past it is reset.
    pub body_head_timeout: Duration,
    /// Bytes of unverified request bodies all streams may hold together
    /// ([`UNVERIFIED_BODY_BUDGET`]).
    pub unverified_body_budget: usize,
}

impl Default for HostSessionConfig {
    fn default() -> Self {
        HostSessionConfig {
            max_concurrent_streams: 100,
            initial_window_size: 1 << 20,
            connection_window_size: 4 << 20,
            max_frame_size: MAX_FRAME_SIZE,
            body_head_timeout: BODY_HEAD_TIMEOUT,
            unverified_body_budget: UNVERIFIED_BODY_BUDGET,
        }
    }
}

/// State shared by the streams of one session.
struct Shared<A> {
    /// Opens the requests and seals the responses of all streams.
    session: HostSession,
    app: Arc<A>,
    /// Events for the controller's `recv` long-poll (the reference's `remoteOutputQ`).
    events: tokio::sync::Mutex<mpsc::Receiver<RRResult>>,
    /// Requests being served, and how many of them are event polls waiting for an event.
    in_flight: AtomicUsize,
    polling: AtomicUsize,
    /// A request's stream failed at the HTTP/2 level (body cut, reply not deliverable).
    broken: AtomicBool,
    /// Unverified request bytes of all streams (docs/security/bodies.md).
    budget: BodyBudget,
    head_timeout: Duration,
}

/// Counts a request (or a waiting poll) for as long as it lives, including when its task is
/// aborted.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<A> Shared<A> {
    /// Whether the connection ended while serving: a request other than a waiting event
    /// poll was in progress, or one's stream failed.
    fn interrupted(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
            || self
                .in_flight
                .load(Ordering::SeqCst)
                .saturating_sub(self.polling.load(Ordering::SeqCst))
                > 0
    }
}

/// Serves one session until the controller closes the connection.
///
/// - `io`: the TLS stream after the HELLO exchange (the handshake reads whole blocks, so
///   nothing past the controller's HELLO has been taken from it);
/// - `peer_end`: how the TLS stream under `io` ended ([`xrcp::tls::TlsStream::peer_end`];
///   `PeerEnd::default()` for a transport without TLS);
/// - `session`: the host's session engine from the handshake ([`HostSession::new`]);
/// - `events`: chat events to hand out to `recv` polls, in order.
///
/// Returns `Ok` when the controller ended the session on purpose and `RPEHTTP2` when the
/// connection failed or was cut (`session_end`). Dropping the future ends the session and
/// aborts its in-flight requests.
pub async fn serve_session<S, A>(
    io: S,
    peer_end: PeerEnd,
    session: HostSession,
    app: Arc<A>,
    events: mpsc::Receiver<RRResult>,
    config: &HostSessionConfig,
) -> Result<(), RemoteProtocolError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: HostApp,
{
    let mut conn = h2::server::Builder::new()
        .max_concurrent_streams(config.max_concurrent_streams)
        .initial_window_size(config.initial_window_size)
        .initial_connection_window_size(config.connection_window_size)
        .max_frame_size(config.max_frame_size)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(http2_error)?;
    let shared = Arc::new(Shared {
        session,
        app,
        events: tokio::sync::Mutex::new(events),
        in_flight: AtomicUsize::new(0),
        polling: AtomicUsize::new(0),
        broken: AtomicBool::new(false),
        budget: BodyBudget::new(config.unverified_body_budget),
        head_timeout: config.body_head_timeout,
    });
    let mut tasks = JoinSet::new();
    let alive = keepalive(conn.ping_pong(), KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT);
    tokio::pin!(alive);
    let mut interrupted = false;
    let result = loop {
        let next = tokio::select! {
            next = conn.accept() => next,
            reason = &mut alive => break Err(RemoteProtocolError::Http2(reason.into())),
        };
        match next {
            None => {
                interrupted = shared.interrupted();
                break Ok(());
            }
            Some(Ok((request, respond))) => {
                let shared = Arc::clone(&shared);
                tasks.spawn(handle_request(shared, request.into_body(), respond));
            }
            Some(Err(e)) if e.is_io() || e.is_go_away() => {
                tracing::debug!("session connection ended: {e}");
                break if e.is_go_away() && e.reason() == Some(h2::Reason::NO_ERROR) {
                    Ok(())
                } else {
                    Err(http2_error(e))
                };
            }
            Some(Err(e)) => break Err(http2_error(e)),
        }
        while tasks.try_join_next().is_some() {}
    };
    tasks.abort_all();
    session_end(result, interrupted, &peer_end)
}

/// Whether the session ended on purpose — the one place this is decided. h2 reports a
/// transport that simply stops as a clean end (`h2_end` is `Ok`), so:
/// - after the controller's TLS `close_notify` (our controller sends it after its GOAWAY) the
///   end is clean, even if a write of ours then failed (its socket is gone);
/// - otherwise an h2 failure is the session's failure;
/// - an end without `close_notify` on TLS, or, on a transport without TLS, one while a request
///   other than a waiting event poll was still being served (`interrupted`), is a cut
///   connection (`RPEHTTP2`).
fn session_end(
    h2_end: Result<(), RemoteProtocolError>,
    interrupted: bool,
    peer_end: &PeerEnd,
) -> Result<(), RemoteProtocolError> {
    if peer_end.closed_cleanly() {
        return Ok(());
    }
    h2_end?;
    if peer_end.truncated() {
        return Err(RemoteProtocolError::Http2(
            "connection cut: it ended without TLS close_notify".into(),
        ));
    }
    if interrupted {
        return Err(RemoteProtocolError::Http2(
            "connection ended during a request".into(),
        ));
    }
    Ok(())
}

/// One stream: parse and check the request, run it, reply.
async fn handle_request<A: HostApp>(
    shared: Arc<Shared<A>>,
    body: h2::RecvStream,
    mut respond: SendResponse<Bytes>,
) {
    let _counted = Counted::new(&shared.in_flight);
    let mut reader = BodyReader::new(body);
    let deadline = Instant::now() + shared.head_timeout;
    let parsed = parse_request(&shared, &mut reader, deadline).await;
    let (cmd, file_key) = match parsed {
        Ok(v) => v,
        Err(None) => {
            // The body did not arrive in time: nothing to answer, and its budget is back.
            tracing::debug!(
                "request body not received within {:?}; stream reset",
                shared.head_timeout
            );
            respond.send_reset(h2::Reason::CANCEL);
            return;
        }
        Err(Some(e)) => {
            if matches!(e, RemoteProtocolError::Http2(_)) {
                shared.broken.store(true, Ordering::SeqCst);
            }
            tracing::debug!("rejected request: {e}");
            let rr = RemoteResponse::ProtocolError {
                remote_procotol_error: e,
            };
            return reply(&shared, &mut respond, &rr, None).await;
        }
    };
    match cmd {
        RemoteCommand::Send {
            command,
            retry_number,
        } => {
            let result = shared.app.execute(command, retry_number).await;
            let rr = RemoteResponse::ChatResponse {
                chat_response: result,
            };
            reply(&shared, &mut respond, &rr, None).await;
        }
        RemoteCommand::Recv { wait } => {
            let chat_event = next_event(&shared, wait).await;
            reply(
                &shared,
                &mut respond,
                &RemoteResponse::ChatEvent { chat_event },
                None,
            )
            .await;
        }
        RemoteCommand::StoreFile {
            file_name,
            file_size,
            file_digest,
        } => {
            let rr = match shared.app.store_file(file_name, file_size).await {
                Err(e) => e.into_response(),
                Ok(mut dest) => {
                    let received = reader
                        .receive_file(&file_key, file_size, file_digest, &mut dest, &mut |_, _| {})
                        .await;
                    match received {
                        Ok(()) => match dest.commit_verified(file_digest).await {
                            Ok(file_path) => RemoteResponse::FileStored { file_path },
                            Err(e) => e.into_response(),
                        },
                        Err(e) => {
                            dest.discard().await;
                            HostAppError::Protocol(e).into_response()
                        }
                    }
                }
            };
            reply(&shared, &mut respond, &rr, None).await;
        }
        RemoteCommand::GetFile { file } => match shared.app.get_file(file).await {
            Err(e) => reply(&shared, &mut respond, &e.into_response(), None).await,
            Ok(file) => {
                let rr = RemoteResponse::File {
                    file_size: file.size,
                    file_digest: file.digest,
                };
                reply(&shared, &mut respond, &rr, Some(file)).await;
            }
        },
    }
}

/// `parseRequest`: head, signatures, id window, decryption, session code, JSON. `Err(None)`
/// when the head was not complete by `deadline`.
async fn parse_request<A>(
    shared: &Shared<A>,
    reader: &mut BodyReader,
    deadline: Instant,
) -> Result<(RemoteCommand, SbKeyNonce), Option<RemoteProtocolError>> {
    let (head, _hold) = tokio::time::timeout_at(
        deadline,
        reader.read_head(shared.session.head_reader(), &shared.budget),
    )
    .await
    .map_err(|_| None)??;
    // Decoding one body at a time bounds the memory of decompressed JSON (§12); the engine
    // checks the signatures before the id window, so a forged body uses up nothing.
    let _turn = decode_turn().await;
    Ok(shared.session.open_command(&head)?)
}

/// `handleRecv`: the next event, or none after `wait` µs. A negative wait waits for an event
/// without limit, as the reference's `timeout` does.
async fn next_event<A>(shared: &Shared<A>, wait: i64) -> Option<RRResult> {
    let _waiting = Counted::new(&shared.polling);
    let take = async {
        let mut rx = shared.events.lock().await;
        rx.recv().await
    };
    let Ok(wait) = u64::try_from(wait) else {
        return match take.await {
            Some(ev) => Some(ev),
            None => std::future::pending().await,
        };
    };
    let deadline = Instant::now() + Duration::from_micros(wait);
    match tokio::time::timeout_at(deadline, take).await {
        Ok(Some(ev)) => Some(ev),
        // The application closed its event queue: answer "no event" at the usual time so
        // the controller's poll does not spin.
        Ok(None) => {
            tokio::time::sleep_until(deadline).await;
            None
        }
        Err(_) => None,
    }
}

/// `replyWith`: take the next send id, encrypt, answer 200 with the body and the optional
/// attachment. If the reply cannot be produced the stream is reset (the reference only logs;
/// a reset at least ends the controller's wait).
async fn reply<A: HostApp>(
    shared: &Shared<A>,
    respond: &mut SendResponse<Bytes>,
    rr: &RemoteResponse,
    file: Option<OutgoingFile<A::Reader>>,
) {
    if let Err(e) = try_reply(shared, respond, rr, file).await {
        if matches!(e, RemoteProtocolError::Http2(_)) {
            shared.broken.store(true, Ordering::SeqCst);
        }
        tracing::warn!("sending a response failed: {e}");
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
    }
}

async fn try_reply<A: HostApp>(
    shared: &Shared<A>,
    respond: &mut SendResponse<Bytes>,
    rr: &RemoteResponse,
    file: Option<OutgoingFile<A::Reader>>,
) -> Result<(), RemoteProtocolError> {
    let body = shared.session.seal_response(rr)?;
    let mut stream = respond
        .send_response(http::Response::new(()), false)
        .map_err(http2_error)?;
    send_body(&mut stream, Bytes::from(body.bytes), file.is_none())?;
    let Some(mut file) = file else {
        return Ok(());
    };
    let sent = send_file(
        &mut stream,
        &body.file_key,
        file.size,
        &mut file.reader,
        &mut |_, _| {},
    )
    .await;
    if let Err(e) = sent {
        // The response header is out; ending the stream lets the controller see a short
        // attachment (`RPEFileSize`) rather than hang.
        tracing::warn!("sending a file failed: {e}");
    }
    finish(&mut stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without TLS (no `close_notify` to go by) h2's clean end is a cut exactly when a request
    /// was still being served; an h2 failure is always one. (The TLS cases run end to end in
    /// the remote-session tests.)
    #[test]
    fn the_end_of_a_session_without_tls() {
        let open = PeerEnd::default();
        assert_eq!(session_end(Ok(()), false, &open), Ok(()));
        assert!(matches!(
            session_end(Ok(()), true, &open),
            Err(RemoteProtocolError::Http2(_))
        ));
        let failed = RemoteProtocolError::Http2("reset".into());
        assert_eq!(session_end(Err(failed.clone()), false, &open), Err(failed));
    }
}
