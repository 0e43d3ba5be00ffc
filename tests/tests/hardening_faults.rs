//! Hardening: a fault-injecting TCP proxy between our host and our controller cuts or stalls
//! the connection at every stage — inside TLS, between TLS and the HELLOs, inside each HELLO
//! block, and inside the HTTP/2 session (a request, a response, an upload, a download). Both
//! sides must end with a typed error within the configured timeouts plus slack, and nothing
//! may be left behind: open file descriptors and alive tokio tasks return to their baseline.
//!
//! The stage offsets come from a clean calibration run through the same proxy (ClientHello
//! and server flight sizes from the proxy's read log; TLS and HELLO totals at the milestones
//! the API exposes). Session faults are armed relative to the bytes forwarded so far, just
//! before the operation starts.
//!
//! Tests share process-wide counters (fds), so they run one at a time (`SERIAL`); the
//! scenarios inside a test run concurrently to keep the wall time near one timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xrcp::message::SignedInvitation;
use xrcp::pairing::HostPairing;
use xrcp::session::{CryptoFile, RRResult, RemoteFile, RemoteProtocolError};
use xrcp::RcError;
use xrcp_ctrl::connect::Listening;
use xrcp_ctrl::remote::{open_session, ControllerApp};
use xrcp_ctrl::RemoteHostError;
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::{prepare_session, HostAppSettings};
use xrcp_host::RemoteCtrlError;
use xrcp_tests::fault_proxy::{Action, Direction, Fault, FaultProxy};
use xrcp_tests::hardening::{
    chat_result, link, listening_addr, start_controller, Baseline, LinkSettings,
};

/// Every handshake timeout of both sides (controller TLS and HELLO, host steps).
const TIMEOUT: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded two-core machine.
const SLACK: Duration = Duration::from_secs(2);
/// A side's handshake spans at most two of its timeouts (TLS + HELLO), plus [`SLACK`].
const HANDSHAKE_BOUND: Duration = Duration::from_secs(4);
/// The session layer has no configurable timeout; a stalled session must still be noticed
/// within this (e.g. by HTTP/2 keep-alive PINGs).
const SESSION_BOUND: Duration = Duration::from_secs(10);
/// How long resources may take to be released after both sides ended.
const SETTLE: Duration = Duration::from_secs(3);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn settings() -> LinkSettings {
    LinkSettings {
        ctrl_app: ControllerApp {
            device_name: "desk".into(),
            // Uncompressed bodies keep request and response sizes predictable.
            compression: false,
            ..ControllerApp::default()
        },
        host_app: HostAppSettings {
            device_name: "phone".into(),
            compression: false,
            ..HostAppSettings::default()
        },
        tls_timeout: TIMEOUT,
        hello_timeout: TIMEOUT,
        step_timeout: TIMEOUT,
    }
}

/// How the controller's side ended.
#[derive(Debug)]
enum CtrlEnd {
    /// `accept`, `finish` or a non-session failure of `open_session`.
    Handshake(RemoteHostError),
    /// `open_session` or a session operation.
    Session(RemoteProtocolError),
    /// Everything succeeded: the fault did not reach this side.
    Completed,
}

/// How the host's side ended.
#[derive(Debug)]
enum HostEnd {
    Handshake(RemoteCtrlError),
    /// `serve` failed.
    Session(RemoteProtocolError),
    /// `serve` returned `Ok`: the connection ended cleanly.
    Closed,
}

/// Stage offsets measured on a clean connection through the proxy.
#[derive(Clone, Copy, Debug)]
struct Calibration {
    client_hello: u64,
    server_flight: u64,
    /// All TLS bytes of each side (the host's `connect` and the controller's `accept` done).
    client_tls: u64,
    server_tls: u64,
    /// The HELLO blocks as TLS records.
    host_hello: u64,
    ctrl_hello: u64,
}

async fn calibrate() -> Calibration {
    let s = settings();
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &s)
        .await
        .unwrap();
    let proxy = FaultProxy::start(listening_addr(&listening), None)
        .await
        .unwrap();
    let accept = tokio::spawn(listening.accept());
    let opts = s.host_options(&inv, Some(proxy.addr())).unwrap();
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let hello = accept.await.unwrap().unwrap();
    let client_tls = proxy.forwarded(Direction::ToServer);
    let server_tls = proxy.forwarded(Direction::ToClient);
    let flights = proxy.first_flights().expect("TLS flights in the proxy log");
    let finish = tokio::spawn(hello.finish());
    let code = pending.session_code().to_owned();
    let _host = pending.verify(&code).await.unwrap();
    let _ctrl = finish.await.unwrap().unwrap();
    let cal = Calibration {
        client_hello: flights.client_hello,
        server_flight: flights.server_flight,
        client_tls,
        server_tls,
        host_hello: proxy.forwarded(Direction::ToServer) - client_tls,
        ctrl_hello: proxy.forwarded(Direction::ToClient) - server_tls,
    };
    proxy.shutdown(SETTLE).await.unwrap();
    assert!(
        cal.client_hello > 100 && cal.client_hello < cal.client_tls,
        "{cal:?}"
    );
    assert!(
        cal.server_flight > 500 && cal.server_flight <= cal.server_tls,
        "{cal:?}"
    );
    assert!(cal.host_hello > 16384 && cal.ctrl_hello > 16384, "{cal:?}");
    cal
}

/// One scenario's result.
struct Outcome {
    name: String,
    fired: Option<Fault>,
    /// `None`: did not end within the bound (then it was aborted).
    ctrl: Option<(CtrlEnd, Duration)>,
    host: Option<(HostEnd, Duration)>,
    bound: Duration,
    proxy: Result<(), String>,
    /// Files left in the host's upload folder and the controller's download folder.
    leftovers: Vec<PathBuf>,
}

type CtrlCheck = fn(&CtrlEnd) -> bool;
type Scenario = std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>;
type HostCheck = fn(&HostEnd) -> bool;

impl Outcome {
    /// Problems with this outcome: fault not fired, a side not ending in time, or ending
    /// otherwise than expected.
    fn problems(&self, ctrl_ok: (&str, CtrlCheck), host_ok: (&str, HostCheck)) -> Vec<String> {
        let mut p = Vec::new();
        let name = &self.name;
        if self.fired.is_none() {
            p.push(format!("{name}: the fault never fired"));
        }
        match &self.ctrl {
            None => p.push(format!(
                "{name}: controller did not end within {:?}",
                self.bound
            )),
            Some((end, _)) if !(ctrl_ok.1)(end) => p.push(format!(
                "{name}: controller ended with {end:?}, expected {}",
                ctrl_ok.0
            )),
            Some(_) => {}
        }
        match &self.host {
            None => p.push(format!("{name}: host did not end within {:?}", self.bound)),
            Some((end, _)) if !(host_ok.1)(end) => p.push(format!(
                "{name}: host ended with {end:?}, expected {}",
                host_ok.0
            )),
            Some(_) => {}
        }
        if let Err(e) = &self.proxy {
            p.push(format!("{name}: {e}"));
        }
        p
    }

    fn summary(&self) -> String {
        let side = |e: Option<String>, t: Option<Duration>| match (e, t) {
            (Some(e), Some(t)) => format!("{e} after {} ms", t.as_millis()),
            _ => "did not end".to_owned(),
        };
        format!(
            "{:<44} ctrl: {:<60} host: {}",
            self.name,
            side(
                self.ctrl.as_ref().map(|c| short(&c.0)),
                self.ctrl.as_ref().map(|c| c.1)
            ),
            side(
                self.host.as_ref().map(|h| short(&h.0)),
                self.host.as_ref().map(|h| h.1)
            ),
        )
    }
}

fn short(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    if s.len() > 56 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(55).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// `fut`'s output and when it ended, measured from `start`.
async fn timed<T>(start: Instant, fut: impl Future<Output = T>) -> (T, Duration) {
    let v = fut.await;
    (v, start.elapsed())
}

/// A [`timed`] task's result, or `None` (the task aborted) if it did not end by
/// `start + bound`.
async fn bounded<T: Send + 'static>(
    mut task: tokio::task::JoinHandle<(T, Duration)>,
    start: Instant,
    bound: Duration,
) -> Option<(T, Duration)> {
    match tokio::time::timeout_at((start + bound).into(), &mut task).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => panic!("scenario task failed: {e}"),
        Err(_) => {
            task.abort();
            let _ = task.await;
            None
        }
    }
}

async fn ctrl_pipeline(listening: Listening, app: ControllerApp) -> CtrlEnd {
    let connected = match async { listening.accept().await?.finish().await }.await {
        Ok(c) => c,
        Err(e) => return CtrlEnd::Handshake(e),
    };
    let remote = match open_session(connected, &app).await {
        Ok(r) => r,
        Err(RemoteHostError::Session(e)) => return CtrlEnd::Session(e),
        Err(e) => return CtrlEnd::Handshake(e),
    };
    match remote.client.send_command("/help", 0).await {
        Ok(_) => CtrlEnd::Completed,
        Err(e) => CtrlEnd::Session(e),
    }
}

async fn host_pipeline(
    inv: SignedInvitation,
    s: LinkSettings,
    via: std::net::SocketAddr,
    dir: PathBuf,
) -> HostEnd {
    let opts = s.host_options(&inv, Some(via)).unwrap();
    let pending = match xrcp_host::connect(inv, None, opts).await {
        Ok(p) => p,
        Err(e) => return HostEnd::Handshake(e),
    };
    let code = pending.session_code().to_owned();
    let connected = match pending.verify(&code).await {
        Ok(c) => c,
        Err(e) => return HostEnd::Handshake(e),
    };
    let (served, _) = match prepare_session(connected, &s.host_app) {
        Ok(v) => v,
        Err(e) => return HostEnd::Handshake(e),
    };
    let notes = NotesApp::open(&dir).unwrap();
    let events = notes.subscribe();
    match served.serve(Arc::new(notes), events).await {
        Ok(()) => HostEnd::Closed,
        Err(e) => HostEnd::Session(e),
    }
}

/// A fault during the handshake: both sides run their whole pipeline (handshake, session,
/// one command) until something fails.
async fn handshake_scenario(name: String, fault: Fault, bound: Duration) -> Outcome {
    let s = settings();
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &s)
        .await
        .unwrap();
    let proxy = FaultProxy::start(listening_addr(&listening), Some(fault))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let ctrl = tokio::spawn(timed(start, ctrl_pipeline(listening, s.ctrl_app.clone())));
    let host = tokio::spawn(timed(
        start,
        host_pipeline(inv, s, proxy.addr(), dir.path().to_owned()),
    ));
    let ctrl = bounded(ctrl, start, bound).await;
    let host = bounded(host, start, bound).await;
    let fired = proxy.fired();
    let proxy = proxy.shutdown(SETTLE).await;
    Outcome {
        name,
        fired,
        ctrl,
        host,
        bound,
        proxy,
        leftovers: Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionStage {
    /// Inside a 48 kB command request (controller → host).
    Request,
    /// Inside a 48 kB command response (host → controller).
    Response,
    /// Inside a 2 MiB upload (controller → host).
    Upload,
    /// Inside a 2 MiB download (host → controller).
    Download,
}

const BIG_NOTE: usize = 48_000;
const FILE_LEN: usize = 2 << 20;

/// Bytes no compressor shrinks much (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn big_note() -> String {
    hex::encode(noise(BIG_NOTE / 2, 7))
}

/// Files in `dir` (recursively one level), if any.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// A fault inside an established session, armed just before the operation.
async fn session_scenario(stage: SessionStage, action: Action) -> Outcome {
    let name = format!("{action:?} mid {stage:?}");
    let s = settings();
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &s)
        .await
        .unwrap();
    let proxy = FaultProxy::start(listening_addr(&listening), None)
        .await
        .unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    let ctrl_dir = tempfile::tempdir().unwrap();
    let notes = NotesApp::open(host_dir.path()).unwrap();
    let linked = link(listening, inv, None, notes, &s, Some(proxy.addr()))
        .await
        .unwrap();
    let mut remote = linked.remote;
    let src = ctrl_dir.path().join("payload.bin");
    std::fs::write(&src, noise(FILE_LEN, 11)).unwrap();
    let out = ctrl_dir.path().join("downloads");
    std::fs::create_dir(&out).unwrap();

    // Clean preparation, then the fault is armed for the operation's own bytes.
    let (direction, more) = match stage {
        SessionStage::Request => (Direction::ToClient, BIG_NOTE as u64 / 2),
        SessionStage::Response => {
            let created = remote
                .client
                .send_command(&format!("/note {}", big_note()), 0)
                .await;
            chat_result(created).unwrap();
            // The note's event travels through the long-poll; take it before arming.
            let ev = tokio::time::timeout(SLACK, remote.events.recv())
                .await
                .unwrap();
            assert!(matches!(ev, Some(Ok(RRResult::Result(_)))), "{ev:?}");
            (Direction::ToServer, BIG_NOTE as u64 / 2)
        }
        SessionStage::Upload => (Direction::ToClient, FILE_LEN as u64 / 2),
        SessionStage::Download => {
            remote
                .client
                .store_file_path(&src, &mut |_, _| {})
                .await
                .unwrap();
            let ev = tokio::time::timeout(SLACK, remote.events.recv())
                .await
                .unwrap();
            assert!(matches!(ev, Some(Ok(RRResult::Result(_)))), "{ev:?}");
            (Direction::ToServer, FILE_LEN as u64 / 2)
        }
    };
    let file_id = if stage == SessionStage::Download {
        let files = chat_result(remote.client.send_command("/files", 0).await).unwrap();
        files["files"][0]["fileId"].as_i64().unwrap()
    } else {
        0
    };
    proxy.arm(direction, more, action);

    let start = Instant::now();
    let (op_src, op_out) = (src.clone(), out.clone());
    let ctrl = tokio::spawn(timed(start, async move {
        let client = remote.client.clone();
        let result = match stage {
            SessionStage::Request => client
                .send_command(&format!("/note {}", big_note()), 0)
                .await
                .map(drop),
            SessionStage::Response => client.send_command("/notes", 0).await.map(drop),
            SessionStage::Upload => client
                .store_file_path(&op_src, &mut |_, _| {})
                .await
                .map(drop),
            SessionStage::Download => {
                let file = RemoteFile {
                    user_id: 1,
                    file_id,
                    sent: false,
                    file_source: CryptoFile {
                        file_path: "payload.bin".into(),
                        crypto_args: None,
                    },
                };
                client
                    .get_file_to_dir(&file, &op_out, &mut |_, _| {})
                    .await
                    .map(drop)
            }
        };
        drop(client);
        drop(remote);
        match result {
            Ok(()) => CtrlEnd::Completed,
            Err(e) => CtrlEnd::Session(e),
        }
    }));
    let host = tokio::spawn(timed(start, async move {
        match linked.host.await {
            Ok(Ok(())) => HostEnd::Closed,
            Ok(Err(e)) => HostEnd::Session(e),
            Err(e) => panic!("host task: {e}"),
        }
    }));
    let ctrl = bounded(ctrl, start, SESSION_BOUND).await;
    let host = bounded(host, start, SESSION_BOUND).await;
    let fired = proxy.fired();
    let proxy = proxy.shutdown(SETTLE).await;

    // A failed transfer must leave no partial file on either side.
    let uploads = host_dir.path().join("files");
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut leftovers;
    loop {
        leftovers = files_in(&out);
        if stage == SessionStage::Upload {
            leftovers.extend(files_in(&uploads));
        }
        if leftovers.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Outcome {
        name,
        fired,
        ctrl,
        host,
        bound: SESSION_BOUND,
        proxy,
        leftovers,
    }
}

/// The handshake stages and their offsets.
fn handshake_faults(cal: &Calibration, action: Action) -> Vec<(&'static str, Fault)> {
    use Direction::{ToClient, ToServer};
    let f = |direction, after| Fault {
        direction,
        after,
        action,
    };
    vec![
        ("TLS: mid ClientHello", f(ToServer, cal.client_hello / 2)),
        ("TLS: mid server flight", f(ToClient, cal.server_flight / 2)),
        (
            "TLS: mid client's second flight",
            f(ToServer, (cal.client_hello + cal.client_tls) / 2),
        ),
        ("after TLS, before host HELLO", f(ToServer, cal.client_tls)),
        (
            "mid host HELLO",
            f(ToServer, cal.client_tls + cal.host_hello / 2),
        ),
        (
            "mid controller HELLO",
            f(ToClient, cal.server_tls + cal.ctrl_hello / 2),
        ),
    ]
}

fn ctrl_tls_timeout(e: &CtrlEnd) -> bool {
    matches!(
        e,
        CtrlEnd::Handshake(RemoteHostError::Timeout(xrcp_ctrl::Stage::TlsConnection))
    )
}
fn ctrl_hello_timeout(e: &CtrlEnd) -> bool {
    matches!(
        e,
        CtrlEnd::Handshake(RemoteHostError::Timeout(xrcp_ctrl::Stage::HostHello))
    )
}
fn ctrl_disconnected(e: &CtrlEnd) -> bool {
    matches!(e, CtrlEnd::Handshake(RemoteHostError::Disconnected))
}
/// A HELLO cut inside its (single) TLS record yields no plaintext at all, which the
/// controller cannot tell from a host leaving before its HELLO; a cut after some plaintext
/// would be `BLOCK_SIZE`.
fn ctrl_truncated_hello(e: &CtrlEnd) -> bool {
    matches!(
        e,
        CtrlEnd::Handshake(
            RemoteHostError::Disconnected | RemoteHostError::Protocol(RcError::BlockSize)
        )
    )
}
/// The controller HELLO went into socket buffers (or the write failed); the session then
/// fails on HTTP/2.
fn ctrl_session_failed(e: &CtrlEnd) -> bool {
    matches!(
        e,
        CtrlEnd::Session(RemoteProtocolError::Http2(_))
            | CtrlEnd::Handshake(RemoteHostError::Protocol(RcError::Exception(_)))
    )
}
fn ctrl_http2(e: &CtrlEnd) -> bool {
    matches!(e, CtrlEnd::Session(RemoteProtocolError::Http2(_)))
}
fn ctrl_any_error(e: &CtrlEnd) -> bool {
    !matches!(e, CtrlEnd::Completed)
}

fn host_exception(e: &HostEnd) -> bool {
    matches!(
        e,
        HostEnd::Handshake(RemoteCtrlError::Protocol(RcError::Exception(_)))
    )
}
fn host_tls_timeout(e: &HostEnd) -> bool {
    matches!(
        e,
        HostEnd::Handshake(RemoteCtrlError::Timeout(xrcp_host::Stage::Tls))
    )
}
fn host_ctrl_hello_timeout(e: &HostEnd) -> bool {
    matches!(
        e,
        HostEnd::Handshake(RemoteCtrlError::Timeout(xrcp_host::Stage::CtrlHello))
    )
}
/// Closed under the host: its write may fail (`EXCEPTION`), its read sees the end
/// (`BLOCK_SIZE`) or a reset (`EXCEPTION`); a close before the controller's first HELLO byte
/// reads as the controller that stopped waiting (`DISCONNECTED`).
fn host_closed(e: &HostEnd) -> bool {
    matches!(
        e,
        HostEnd::Handshake(
            RemoteCtrlError::Protocol(RcError::BlockSize | RcError::Exception(_))
                | RemoteCtrlError::ControllerStoppedWaiting
        )
    )
}
fn host_http2(e: &HostEnd) -> bool {
    matches!(e, HostEnd::Session(RemoteProtocolError::Http2(_)))
}
fn host_session_error(e: &HostEnd) -> bool {
    matches!(e, HostEnd::Session(_))
}

type Expect = ((&'static str, CtrlCheck), (&'static str, HostCheck));

/// What each handshake stage must end in, by action.
fn expected(stage: &str, action: Action) -> Expect {
    let tls = ("Timeout(TlsConnection)", ctrl_tls_timeout as CtrlCheck);
    match (stage, action) {
        ("TLS: mid ClientHello" | "TLS: mid server flight", Action::Cut) => {
            (tls, ("EXCEPTION", host_exception))
        }
        ("TLS: mid ClientHello" | "TLS: mid server flight", Action::Stall) => {
            (tls, ("Timeout(Tls)", host_tls_timeout))
        }
        ("TLS: mid client's second flight", Action::Cut) => {
            (tls, ("EXCEPTION or BLOCK_SIZE", host_closed))
        }
        ("TLS: mid client's second flight", Action::Stall) => {
            // The host's TLS is complete once its flight is written; it waits for the
            // controller HELLO in vain.
            (tls, ("Timeout(CtrlHello)", host_ctrl_hello_timeout))
        }
        ("after TLS, before host HELLO", Action::Cut) => (
            ("Disconnected", ctrl_disconnected),
            ("EXCEPTION or BLOCK_SIZE", host_closed),
        ),
        ("mid host HELLO", Action::Cut) => (
            ("Disconnected or BLOCK_SIZE", ctrl_truncated_hello),
            ("EXCEPTION or BLOCK_SIZE", host_closed),
        ),
        ("after TLS, before host HELLO" | "mid host HELLO", Action::Stall) => (
            ("Timeout(HostHello)", ctrl_hello_timeout),
            ("Timeout(CtrlHello)", host_ctrl_hello_timeout),
        ),
        ("mid controller HELLO", Action::Cut) => (
            ("session Http2 (or EXCEPTION)", ctrl_session_failed),
            ("BLOCK_SIZE or EXCEPTION", host_closed),
        ),
        ("mid controller HELLO", Action::Stall) => (
            // The controller's HELLO fits in socket buffers: it is in its session and must
            // notice the stall there.
            ("a session error", ctrl_any_error),
            ("Timeout(CtrlHello)", host_ctrl_hello_timeout),
        ),
        _ => unreachable!("{stage}"),
    }
}

/// Runs scenarios concurrently; returns outcomes in order.
async fn run_all<F>(scenarios: Vec<F>) -> Vec<Outcome>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let handles: Vec<_> = scenarios.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("scenario panicked"));
    }
    out
}

/// Checks every outcome and the resource baseline; panics with all problems at once.
async fn conclude(baseline: Baseline, checked: Vec<(Outcome, Expect)>, started: Instant) {
    let mut problems = Vec::new();
    for (o, (c, h)) in &checked {
        println!("{}", o.summary());
        problems.extend(o.problems(*c, *h));
    }
    if let Err(e) = baseline.check(SETTLE).await {
        problems.push(e);
    }
    println!(
        "wall time {} ms (baseline: {} fds, {} tasks)",
        started.elapsed().as_millis(),
        baseline.fds,
        baseline.tasks
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_at_every_stage_ends_both_sides_with_typed_errors() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let baseline = Baseline::now();
    let cal = calibrate().await;
    println!("{cal:?}");
    let faults = handshake_faults(&cal, Action::Cut);
    let mut expects: Vec<Expect> = faults
        .iter()
        .map(|(n, _)| expected(n, Action::Cut))
        .collect();
    let mut all: Vec<Scenario> = faults
        .into_iter()
        .map(|(n, f)| {
            Box::pin(handshake_scenario(format!("Cut {n}"), f, HANDSHAKE_BOUND)) as Scenario
        })
        .collect();
    let stages = [
        SessionStage::Request,
        SessionStage::Response,
        SessionStage::Upload,
        SessionStage::Download,
    ];
    for stage in stages {
        all.push(Box::pin(session_scenario(stage, Action::Cut)));
        // HTTP/2 reports a connection that simply stops as a clean end; the host tells a cut
        // from a controller that left by the missing TLS close_notify.
        let host = ("session Http2", host_http2 as HostCheck);
        expects.push((("session Http2", ctrl_http2), host));
    }
    let outcomes = run_all(all).await;
    conclude(
        baseline,
        outcomes.into_iter().zip(expects).collect(),
        started,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_during_handshake_ends_in_timeouts() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let baseline = Baseline::now();
    let cal = calibrate().await;
    let faults: Vec<_> = handshake_faults(&cal, Action::Stall)
        .into_iter()
        .filter(|(n, _)| *n != "mid controller HELLO")
        .collect();
    let expects: Vec<Expect> = faults
        .iter()
        .map(|(n, _)| expected(n, Action::Stall))
        .collect();
    let outcomes = run_all(
        faults
            .into_iter()
            .map(|(n, f)| handshake_scenario(format!("Stall {n}"), f, HANDSHAKE_BOUND))
            .collect(),
    )
    .await;
    conclude(
        baseline,
        outcomes.into_iter().zip(expects).collect(),
        started,
    )
    .await;
}

/// After its HELLO the controller is in its HTTP/2 session, and from the host's HELLO on so
/// is the host: a stall from there on must still end both sides, within [`SESSION_BOUND`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_during_session_is_detected_by_both_sides() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let baseline = Baseline::now();
    let cal = calibrate().await;
    let (name, fault) = handshake_faults(&cal, Action::Stall)
        .into_iter()
        .find(|(n, _)| *n == "mid controller HELLO")
        .unwrap();
    let mut all: Vec<Scenario> = vec![Box::pin(handshake_scenario(
        format!("Stall {name}"),
        fault,
        SESSION_BOUND,
    ))];
    let mut expects = vec![expected(name, Action::Stall)];
    for stage in [
        SessionStage::Request,
        SessionStage::Response,
        SessionStage::Upload,
        SessionStage::Download,
    ] {
        all.push(Box::pin(session_scenario(stage, Action::Stall)));
        expects.push((
            ("a session error", ctrl_any_error),
            ("a session error", host_session_error),
        ));
    }
    let outcomes = run_all(all).await;
    conclude(
        baseline,
        outcomes.into_iter().zip(expects).collect(),
        started,
    )
    .await;
}

/// A transfer cut in the middle leaves no partial file: not in the host's upload folder,
/// not in the controller's download folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_transfer_leaves_no_partial_file() {
    let _serial = SERIAL.lock().await;
    let baseline = Baseline::now();
    let outcomes = run_all(vec![
        session_scenario(SessionStage::Upload, Action::Cut),
        session_scenario(SessionStage::Download, Action::Cut),
    ])
    .await;
    let mut problems = Vec::new();
    for o in &outcomes {
        println!("{}", o.summary());
        if o.fired.is_none() {
            problems.push(format!("{}: the fault never fired", o.name));
        }
        if !o.leftovers.is_empty() {
            problems.push(format!("{}: left behind {:?}", o.name, o.leftovers));
        }
    }
    if let Err(e) = baseline.check(SETTLE).await {
        problems.push(e);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The leftover check itself: an open socket or a live task is seen, and released ones are
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leftover_check_sees_sockets_and_tasks() {
    let _serial = SERIAL.lock().await;
    let baseline = Baseline::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(baseline.check(Duration::from_millis(100)).await.is_err());
    drop(listener);
    let task = tokio::spawn(std::future::pending::<()>());
    assert!(baseline.check(Duration::from_millis(100)).await.is_err());
    task.abort();
    let _ = task.await;
    baseline.check(SETTLE).await.unwrap();
}
