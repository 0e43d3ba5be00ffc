//! The controller's HTTP/2 client over the XRCP TLS stream (spec/xrcp.md §10; the
//! reference's `sendRemoteCommand`, `remoteSend`, `remoteRecv`, `remoteStoreFile`,
//! `remoteGetFile` and `pollEvents`).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use xrcp::session::{
    check_file_size, owsf_to_tagged, parse_bounded_measured, ControllerSession, FileDigest,
    FileDigester, PlatformEncoding, RRResult, RemoteCommand, RemoteFile, RemoteProtocolError,
    RemoteResponse, SbKeyNonce, LOCAL_ENCODING, MAX_JSON_TREE, RECV_WAIT_MICROS,
};
use xrcp::ErrorDetail;

use xrcp::session::http2::{
    decode_turn, finish, http2_error, keepalive, send_body, send_file, BodyBudget, BodyReader,
    BODY_HEAD_TIMEOUT, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, UNVERIFIED_BODY_BUDGET,
};

/// An event from the host's long-poll, or the error a poll ended with.
pub type HostEvent = Result<RRResult, RemoteProtocolError>;

/// Settings of the controller's session client.
#[derive(Clone, Debug)]
pub struct CtrlSessionConfig {
    /// How long each event poll asks the host to wait (reference: 10 s).
    pub recv_wait: Duration,
    /// Events buffered before polling pauses until the application reads them.
    pub event_buffer: usize,
    /// Per-stream receive window (how much of one download may be in flight).
    pub initial_window_size: u32,
    /// Connection receive window (caps data buffered across all streams).
    pub connection_window_size: u32,
    /// Largest HTTP/2 frame we accept ([`xrcp::session::http2::MAX_FRAME_SIZE`]).
    pub max_frame_size: u32,
    /// How long a response may take to deliver its body head once its headers are in
    /// ([`BODY_HEAD_TIMEOUT`]); the request then fails and its stream is reset.
    pub body_head_timeout: Duration,
    /// Bytes of not yet verified response bodies all streams may hold together
    /// ([`UNVERIFIED_BODY_BUDGET`]).
    pub unverified_body_budget: usize,
}

impl Default for CtrlSessionConfig {
    fn default() -> Self {
        CtrlSessionConfig {
            recv_wait: Duration::from_micros(RECV_WAIT_MICROS as u64),
            event_buffer: 256,
            initial_window_size: 1 << 20,
            connection_window_size: 4 << 20,
            max_frame_size: xrcp::session::http2::MAX_FRAME_SIZE,
            body_head_timeout: BODY_HEAD_TIMEOUT,
            unverified_body_budget: UNVERIFIED_BODY_BUDGET,
        }
    }
}

/// How much memory (estimated JSON trees) events may hold while they wait for the application
/// to take them: 24 MiB, the largest single event ([`MAX_JSON_TREE`]). Polling pauses above it,
/// so at most this plus one event wait.
pub const EVENT_QUEUE_TREE: usize = MAX_JSON_TREE;

/// Authority of every request: the reference's client is attached with host `0.0.0.0`
/// (spec/xrcp.md §10.1); the host does not look at it.
const REQUEST_URI: &str = "https://0.0.0.0/";

/// What every request needs; shared with the poll task.
struct Core {
    send_request: SendRequest<Bytes>,
    /// Seals the commands and opens the responses of all streams.
    session: ControllerSession,
    host_encoding: PlatformEncoding,
    closed: watch::Receiver<bool>,
    /// Unverified response bytes of all streams (docs/security/bodies.md).
    budget: BodyBudget,
    head_timeout: Duration,
}

/// Aborts the session's background tasks when the last client handle goes away.
struct Tasks {
    connection: Option<JoinHandle<()>>,
    poller: JoinHandle<()>,
}

/// How long a closing session may take to say goodbye (GOAWAY, TLS `close_notify`) before its
/// connection is dropped anyway. It takes milliseconds normally; the bound is for a loaded
/// machine, where missing it makes the host report a cut instead of an ordered end (seen
/// with 1 s while the test suite ran on two cores).
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);

impl Drop for Tasks {
    /// Ends the session the way a peer can tell from a cut: once the poller (the last holder
    /// of the request handle) is gone, h2 sends GOAWAY(NO_ERROR) and shuts the stream down,
    /// which sends TLS `close_notify`. The connection task gets [`CLOSE_GRACE`] for that.
    fn drop(&mut self) {
        self.poller.abort();
        let Some(connection) = self.connection.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let abort = connection.abort_handle();
                    if tokio::time::timeout(CLOSE_GRACE, connection).await.is_err() {
                        abort.abort();
                    }
                });
            }
            Err(_) => connection.abort(),
        }
    }
}

/// The session's transport, closed the way a peer can tell from a cut (spec/xrcp.md §10.1).
///
/// Shutting down sends TLS `close_notify` and our TCP FIN; then this keeps reading (and
/// dropping) whatever the host still sends until the host closes too. Without that wait the
/// process may close the socket while bytes of the host's are unread, and the kernel then
/// answers with a TCP reset, which can destroy our `close_notify` in the host's receive
/// queue before it reads it: the host would report a cut connection for an ordered end (seen
/// under load in CI). The wait is bounded by [`CLOSE_GRACE`] where the connection task runs.
struct Lingering<S> {
    io: S,
    shut: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.shut = true;
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                // The host closed its side (with or without its own close_notify).
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {}
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// A connected host (`RemoteHostClient`): send commands, store and fetch files. Clones share
/// the session; the session ends when the last clone is dropped or the connection fails.
#[derive(Clone)]
pub struct RemoteHostClient {
    core: Arc<Core>,
    _tasks: Arc<Tasks>,
}

/// A decoded response with the rest of its body (a possible attachment).
struct Reply {
    response: RemoteResponse,
    file_key: SbKeyNonce,
    body: BodyReader,
    /// Estimated memory of the response's JSON tree.
    tree: usize,
}

/// A file to upload with a request.
struct Upload<'a, R> {
    reader: R,
    size: u32,
    progress: &'a mut (dyn FnMut(u64, u64) + Send),
}

impl RemoteHostClient {
    /// Starts HTTP/2 on the TLS stream right away — connection preface, then at once the
    /// event long-poll, as the reference does after the host HELLO (spec/xrcp.md §10.1) — and returns
    /// the client with the stream of host events.
    ///
    /// `host_encoding` is the host app info's `encoding`: responses of a Swift host are
    /// converted to the tagged JSON form before parsing. (No prefix buffer is needed here:
    /// the host sends nothing after its HELLO until it has our HELLO.)
    pub async fn connect<S>(
        io: S,
        session: ControllerSession,
        host_encoding: PlatformEncoding,
        config: CtrlSessionConfig,
    ) -> Result<(RemoteHostClient, mpsc::Receiver<HostEvent>), RemoteProtocolError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send_request, mut connection) = h2::client::Builder::new()
            .initial_window_size(config.initial_window_size)
            .initial_connection_window_size(config.connection_window_size)
            .max_frame_size(config.max_frame_size)
            .handshake::<_, Bytes>(Lingering { io, shut: false })
            .await
            .map_err(http2_error)?;
        let (closed_tx, closed) = watch::channel(false);
        let ping_pong = connection.ping_pong();
        let connection = tokio::spawn(async move {
            let alive = keepalive(ping_pong, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT);
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::debug!("session connection ended: {e}");
                },
                reason = alive => tracing::debug!("host unresponsive, closing: {reason}"),
            }
            let _ = closed_tx.send(true);
        });
        let core = Arc::new(Core {
            send_request,
            session,
            host_encoding,
            closed,
            budget: BodyBudget::new(config.unverified_body_budget),
            head_timeout: config.body_head_timeout,
        });
        let (events_tx, events) = mpsc::channel(config.event_buffer.max(1));
        let poller = tokio::spawn(poll_events(Arc::clone(&core), config.recv_wait, events_tx));
        let client = RemoteHostClient {
            core,
            _tasks: Arc::new(Tasks {
                connection: Some(connection),
                poller,
            }),
        };
        Ok((client, events))
    }

    /// Ends the session on purpose and waits (at most 3 s) until the host has
    /// been told: GOAWAY, then TLS `close_notify`. Other clones of this client keep the
    /// session open; the last one to go closes it (dropping it does the same in the
    /// background, but a process about to exit should await this).
    pub async fn close(self) {
        let mut closed = self.core.closed.clone();
        let last = Arc::strong_count(&self._tasks) == 1;
        drop(self);
        if last {
            let _ = tokio::time::timeout(CLOSE_GRACE, closed.wait_for(|c| *c)).await;
        }
    }

    /// Whether the HTTP/2 connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.core.closed.borrow()
    }

    /// Waits until the HTTP/2 connection ends (the reference then stops the session with
    /// `RHSRDisconnected`).
    pub async fn closed(&self) {
        let mut rx = self.core.closed.clone();
        // An error means the sender is gone, which also means the connection ended.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// `remoteSend`: runs a chat command on the host; gives the chat response or chat error.
    pub async fn send_command(
        &self,
        command: &str,
        retry_number: i64,
    ) -> Result<RRResult, RemoteProtocolError> {
        let cmd = RemoteCommand::Send {
            command: command.to_owned(),
            retry_number,
        };
        match self
            .core
            .request(&cmd, None::<Upload<'_, &[u8]>>)
            .await?
            .response
        {
            RemoteResponse::ChatResponse { chat_response } => Ok(chat_response),
            other => Err(other.into_unexpected()),
        }
    }

    /// `remoteRecv`: one event poll; `None` when the host had no event within `wait`.
    pub async fn recv(&self, wait: Duration) -> Result<Option<RRResult>, RemoteProtocolError> {
        self.core.recv(wait).await
    }

    /// `remoteStoreFile`: uploads exactly `file_size` bytes from `reader` (whose SHA-512 is
    /// `file_digest`) under `file_name`; returns the path the host stored it at.
    /// `progress(sent, total)` is called after every chunk.
    pub async fn store_file<R>(
        &self,
        reader: R,
        file_size: u32,
        file_digest: FileDigest,
        file_name: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<String, RemoteProtocolError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let cmd = RemoteCommand::StoreFile {
            file_name: file_name.to_owned(),
            file_size,
            file_digest,
        };
        let upload = Upload {
            reader,
            size: file_size,
            progress,
        };
        match self.core.request(&cmd, Some(upload)).await?.response {
            RemoteResponse::FileStored { file_path } => Ok(file_path),
            other => Err(other.into_unexpected()),
        }
    }

    /// Uploads a local file under its base name: reads it once for size and digest (the
    /// reference's `getFileInfo`), then again to send it.
    pub async fn store_file_path(
        &self,
        path: &Path,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<String, RemoteProtocolError> {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            RemoteProtocolError::Exception(format!("{} names no file", path.display()).into())
        })?;
        let (size, digest) = file_info(path).await?;
        let file = tokio::fs::File::open(path).await.map_err(io_error)?;
        let file = tokio::io::BufReader::with_capacity(FILE_IO_BLOCK, file);
        self.store_file(file, size, digest, name, progress).await
    }

    /// `remoteGetFile`: downloads a chat item's file into `out`; returns its size. `out`
    /// receives data before the tag and digest are checked: on error its content must be
    /// discarded ([`RemoteHostClient::get_file_to_dir`] does that).
    pub async fn get_file<W>(
        &self,
        file: &RemoteFile,
        out: &mut W,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u32, RemoteProtocolError>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let cmd = RemoteCommand::GetFile { file: file.clone() };
        let mut reply = self.core.request(&cmd, None::<Upload<'_, &[u8]>>).await?;
        match reply.response {
            RemoteResponse::File {
                file_size,
                file_digest,
            } => {
                reply
                    .body
                    .receive_file(&reply.file_key, file_size, file_digest, out, progress)
                    .await?;
                Ok(file_size)
            }
            other => Err(other.into_unexpected()),
        }
    }

    /// Downloads a chat item's file into `dir` under the base name of its host path, and
    /// returns the path it got. An existing file is never replaced: when the name is taken,
    /// the download gets the first free `name (1).ext`, `name (2).ext`, …. The data goes to a
    /// temporary `<name>.part` (created new, never opened if it exists) and appears under its
    /// final name only once the tag and digest were checked, by a hard link that fails
    /// rather than replace (so two downloads, or another program, cannot race for a name).
    pub async fn get_file_to_dir(
        &self,
        file: &RemoteFile,
        dir: &Path,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<PathBuf, RemoteProtocolError> {
        let name = Path::new(&file.file_source.file_path)
            .file_name()
            .ok_or_else(|| RemoteProtocolError::Exception("remote file has no name".into()))?
            .to_os_string();
        let (part, out) = create_part(dir, &name).await?;
        let mut out = tokio::io::BufWriter::with_capacity(FILE_IO_BLOCK, out);
        let got = self.get_file(file, &mut out, progress).await;
        let synced = match &got {
            // `receive_file` flushed the buffer before checking the tag and digest.
            Ok(_) => out.get_mut().sync_all().await.map_err(io_error),
            Err(_) => Ok(()),
        };
        drop(out);
        got.and(synced)?;
        let (part_path, dir, name) = (part.0.clone(), dir.to_owned(), name.clone());
        let dest = tokio::task::spawn_blocking(move || publish(&part_path, &dir, &name))
            .await
            .map_err(|e| RemoteProtocolError::Exception(ErrorDetail::caused_by(e)))?
            .map_err(io_error)?;
        // `publish` linked or moved the data to `dest`; dropping `part` removes what is left.
        drop(part);
        Ok(dest)
    }
}

/// How many numbered names (`name (1).ext` …) a download tries before giving up.
const MAX_NAME_TRIES: u32 = 1000;

/// `name`, or with `n > 0` the numbered variant `stem (n).ext`: the number goes before the
/// extension so that the file still opens with the same program (`report (1).pdf`, and
/// `archive (1).tar.gz` for a compressed tar).
fn numbered_name(name: &std::ffi::OsStr, n: u32) -> std::ffi::OsString {
    if n == 0 {
        return name.to_owned();
    }
    let text = name.to_string_lossy();
    // A leading dot starts a hidden name, not an extension.
    let split = match text.get(1..).and_then(|t| t.rfind('.')).map(|i| i + 1) {
        Some(i) if text[..i].ends_with(".tar") && i > 4 => Some(i - 4),
        other => other,
    };
    match split {
        Some(i) if name.to_str().is_some() => format!("{} ({n}){}", &text[..i], &text[i..]).into(),
        _ => {
            let mut out = name.to_owned();
            out.push(format!(" ({n})"));
            out
        }
    }
}

/// Creates the temporary file of a download in `dir`: `<name>.part`, or `<name>.<n>.part` when
/// another download (or a leftover) holds that name. Created new (`O_EXCL`): never an
/// existing file, never through a symbolic link.
async fn create_part(
    dir: &Path,
    name: &std::ffi::OsStr,
) -> Result<(PartFile, tokio::fs::File), RemoteProtocolError> {
    for n in 0..MAX_NAME_TRIES {
        let mut part_name = name.to_os_string();
        if n > 0 {
            part_name.push(format!(".{n}"));
        }
        part_name.push(".part");
        let path = dir.join(part_name);
        let mut o = tokio::fs::OpenOptions::new();
        o.write(true).create_new(true);
        match o.open(&path).await {
            Ok(f) => return Ok((PartFile(path), f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(e)),
        }
    }
    Err(RemoteProtocolError::Exception(
        format!(
            "too many unfinished downloads of {} in {}",
            name.to_string_lossy(),
            dir.display()
        )
        .into(),
    ))
}

/// Gives the finished `part` the first free name of `name`'s series in `dir` and returns it.
/// A hard link fails when the name exists, so nothing is replaced, and the file appears
/// complete. Where the file system has no hard links, the name is first claimed by creating
/// it new (empty), then the data is renamed over that claim.
fn publish(part: &Path, dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<PathBuf> {
    let mut links = true;
    for n in 0..MAX_NAME_TRIES {
        let dest = dir.join(numbered_name(name, n));
        if links {
            match std::fs::hard_link(part, &dest) {
                Ok(()) => return Ok(dest),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if no_hard_links(&e) => links = false,
                Err(e) => return Err(e),
            }
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
        {
            Ok(_) => {
                std::fs::rename(part, &dest)?;
                return Ok(dest);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{} and {MAX_NAME_TRIES} numbered names like it already exist in {}",
        name.to_string_lossy(),
        dir.display()
    )))
}

/// Whether a failed `link` means that the file system has no hard links (FAT, some network
/// and FUSE file systems) rather than a problem with this name.
fn no_hard_links(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::Unsupported | K::PermissionDenied)
        || matches!(e.raw_os_error(), Some(1 | 18 | 31 | 95))
}

/// The `.part` file of a download. Removed when dropped: on an error, a failed link, and also
/// when the download's future is dropped half-way (the user interrupted it,
/// the session was stopped), so that no path leaves it behind; after the
/// hard link to the final name too (the data lives on under that name).
struct PartFile(PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), "removing an unfinished download: {e}");
            }
        }
    }
}

impl Core {
    async fn recv(&self, wait: Duration) -> Result<Option<RRResult>, RemoteProtocolError> {
        Ok(self.recv_measured(wait).await?.map(|(ev, _)| ev))
    }

    /// [`Core::recv`], with the estimated memory of the event's JSON tree.
    async fn recv_measured(
        &self,
        wait: Duration,
    ) -> Result<Option<(RRResult, usize)>, RemoteProtocolError> {
        let wait = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
        let cmd = RemoteCommand::Recv { wait };
        let reply = self.request(&cmd, None::<Upload<'_, &[u8]>>).await?;
        match reply.response {
            RemoteResponse::ChatEvent { chat_event } => Ok(chat_event.map(|ev| (ev, reply.tree))),
            other => Err(other.into_unexpected()),
        }
    }

    /// `sendRemoteCommand`: one stream: POST the body (and attachment), read and decrypt the
    /// response head. Sending and waiting for the response run together, so a host that
    /// answers early (e.g. rejecting an upload) is heard even while we are still sending.
    async fn request<R>(
        &self,
        cmd: &RemoteCommand,
        upload: Option<Upload<'_, R>>,
    ) -> Result<Reply, RemoteProtocolError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let sealed = self.session.seal_command(cmd)?;
        let mut sender = self
            .send_request
            .clone()
            .ready()
            .await
            .map_err(http2_error)?;
        let request = http::Request::post(REQUEST_URI)
            .body(())
            .map_err(|e| RemoteProtocolError::Http2(ErrorDetail::caused_by(e)))?;
        let (response, mut stream) = sender.send_request(request, false).map_err(http2_error)?;
        let file_key = sealed.file_key;
        let send = async {
            send_body(&mut stream, Bytes::from(sealed.bytes), upload.is_none())?;
            let Some(mut up) = upload else {
                return Ok(());
            };
            if let Err(e) =
                send_file(&mut stream, &file_key, up.size, &mut up.reader, up.progress).await
            {
                stream.send_reset(h2::Reason::CANCEL);
                return Err(e);
            }
            finish(&mut stream)
        };
        let (sent, response) = tokio::join!(send, response);
        let response = match (sent, response) {
            (_, Ok(r)) => r,
            (Err(e), Err(_)) => return Err(e),
            (Ok(()), Err(e)) => return Err(http2_error(e)),
        };
        let mut body = BodyReader::new(response.into_body());
        let (head, hold) = tokio::time::timeout(
            self.head_timeout,
            body.read_head(self.session.head_reader(), &self.budget),
        )
        .await
        .map_err(|_| {
            RemoteProtocolError::Http2(
                format!(
                    "response body not received within {} s",
                    self.head_timeout.as_secs_f64()
                )
                .into(),
            )
        })??;
        // Decoding one body at a time bounds the memory of decompressed JSON (§12).
        let turn = decode_turn().await;
        let opened = self.session.open_response(&head)?;
        drop((head, hold));
        let (json, file_key) = (opened.json, opened.file_key);
        let (value, tree) = parse_bounded_measured(&json, MAX_JSON_TREE)?;
        drop(json);
        let response = if self.host_encoding == PlatformEncoding::Swift
            && LOCAL_ENCODING == PlatformEncoding::Kotlin
        {
            RemoteResponse::from_json_value(owsf_to_tagged(value))?
        } else {
            RemoteResponse::from_json_value(value)?
        };
        drop(turn);
        Ok(Reply {
            response,
            file_key,
            body,
            tree,
        })
    }
}

/// `pollEvents`: one `recv` after another for the life of the session. Errors are passed on
/// and polling continues (as in the reference) unless the connection is gone or nobody
/// listens any more.
///
/// The host can push events unasked, so what waits in `events` for the application is bounded
/// in memory too, not only in number: no new poll starts while the events not yet taken hold
/// more than [`EVENT_QUEUE_TREE`] of JSON trees (docs/security/bodies.md).
async fn poll_events(core: Arc<Core>, wait: Duration, events: mpsc::Sender<HostEvent>) {
    // Tree sizes of the events sent, oldest first; the application takes them in order, so
    // the last `queued` of them are the ones still waiting.
    let mut sizes = std::collections::VecDeque::new();
    loop {
        loop {
            let queued = events.max_capacity() - events.capacity();
            while sizes.len() > queued {
                sizes.pop_front();
            }
            if sizes.iter().sum::<usize>() <= EVENT_QUEUE_TREE {
                break;
            }
            // Nothing tells the sender that a message was taken; look again shortly.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if events.is_closed() || *core.closed.borrow() {
                return;
            }
        }
        let (event, size) = match core.recv_measured(wait).await {
            Ok(None) => continue,
            Ok(Some((ev, size))) => (Ok(ev), size),
            Err(e) => (Err(e), 0),
        };
        let failed = event.is_err();
        if events.send(event).await.is_err() || *core.closed.borrow() {
            break;
        }
        sizes.push_back(size);
        if failed {
            // Do not spin if the host keeps rejecting polls.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if *core.closed.borrow() {
                break;
            }
        }
    }
}

fn io_error(e: std::io::Error) -> RemoteProtocolError {
    RemoteProtocolError::Exception(ErrorDetail::caused_by(e))
}

/// Block size of the controller's file reads and writes: one blocking-thread hand-off per
/// MiB (tokio's `File` runs every operation on one), and the digest pre-pass reads with std in
/// blocks of this size on a blocking thread.
const FILE_IO_BLOCK: usize = 1 << 20;

/// Size and SHA-512 of a local file, refusing files too large for an attachment. The store
/// request carries the digest ahead of the data (spec/xrcp.md §10, `fileDigest` in the
/// `storeFile` command), so this pass cannot be folded into the send: it is the controller's
/// one SHA-512 pass of a store, run on a blocking thread with large reads.
async fn file_info(path: &Path) -> Result<(u32, FileDigest), RemoteProtocolError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path).map_err(io_error)?;
        let mut digester = FileDigester::new();
        let mut buf = vec![0u8; FILE_IO_BLOCK];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            size += n as u64;
            check_file_size(size)?;
            digester.update(&buf[..n]);
        }
        Ok((check_file_size(size)?, digester.finish()))
    })
    .await
    .map_err(|e| RemoteProtocolError::Exception(ErrorDetail::caused_by(e)))?
}

#[cfg(test)]
mod download_names {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn numbered_names_keep_the_extension() {
        let n = |name: &str, k| numbered_name(OsStr::new(name), k).into_string().unwrap();
        assert_eq!(n("report.pdf", 0), "report.pdf");
        assert_eq!(n("report.pdf", 1), "report (1).pdf");
        assert_eq!(n("my.report.pdf", 2), "my.report (2).pdf");
        assert_eq!(n("archive.tar.gz", 1), "archive (1).tar.gz");
        assert_eq!(n(".bashrc", 1), ".bashrc (1)");
        assert_eq!(n(".tar.gz", 1), ".tar (1).gz");
        assert_eq!(n("README", 3), "README (3)");
    }

    #[test]
    fn publishing_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.txt"), b"mine").unwrap();
        std::fs::write(d.join("a (1).txt"), b"mine too").unwrap();
        let part = d.join("a.txt.part");
        std::fs::write(&part, b"downloaded").unwrap();
        let got = publish(&part, d, OsStr::new("a.txt")).unwrap();
        assert_eq!(got, d.join("a (2).txt"));
        assert_eq!(std::fs::read(&got).unwrap(), b"downloaded");
        assert_eq!(std::fs::read(d.join("a.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(d.join("a (1).txt")).unwrap(), b"mine too");
    }
}

#[cfg(test)]
mod lingering_close {
    use super::*;

    /// The lingering close (spec/xrcp.md §10.1): shutting down sends our end of the stream,
    /// then keeps reading and dropping what the peer still sends, and finishes only when the
    /// peer has closed too. A plain shutdown would finish at once and leave the peer's late
    /// bytes unread, which makes the kernel answer with a reset (the CI failure of the fifth
    /// session); this test fails if the wrapper stops waiting.
    #[tokio::test]
    async fn closing_waits_for_the_peer_and_drains_its_late_bytes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = Lingering {
            io: ours,
            shut: false,
        };
        // The peer has sent more than our side will ever read as data (beyond the duplex's
        // buffer, so it blocks until our close drains it).
        let late = tokio::spawn(async move {
            theirs.write_all(&[7u8; 1000]).await.unwrap();
            // Our end of the stream arrives once the late bytes are drained.
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "we sent nothing but our end");
            // The peer closes a moment later; only then may our close finish.
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(theirs);
        });
        let t = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), ours.shutdown())
            .await
            .expect("the close ends once the peer has closed")
            .unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "the close did not wait for the peer ({:?})",
            t.elapsed()
        );
        late.await.unwrap();
    }
}
