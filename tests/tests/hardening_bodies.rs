//! Issue #12, findings 2 and 3: hostile bodies on an established session.
//!
//! The victim runs in its own process (`xrcp-body-victim`) so that its peak resident memory
//! (`VmHWM` in `/proc/<pid>/status`) is the session's alone; this test process is the hostile
//! peer, holding the session keys (docs/security/bodies.md).
//!
//! - a signed zstd bomb (a few KiB expanding to 60 MiB of `[0,0,…]` JSON) sent to the host as
//!   a request, and to the controller as a response and as an event of its long-poll, is
//!   refused, the session answers a normal command afterwards, and the victim's peak memory
//!   stays under 64 MiB;
//! - 99 streams (the host allows 100 at once; the last is for a real command) each announcing
//!   the largest body, sending 1 MiB of it and then trickling bytes, never the signatures: the
//!   host's peak memory stays under 64 MiB, every one of those streams is reset after the body
//!   deadline, and a real command sent meanwhile is answered;
//! - the same on the controller: 20 responses announcing the largest body and never finishing
//!   fail after the body deadline, within bounded memory, and the session goes on;
//! - a host pushing large events while the application does not read them: polling pauses
//!   once the waiting events hold 24 MiB of JSON trees.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use xrcp::session::{
    RRResult, RemoteCommand, RemoteProtocolError, RemoteResponse, RemoteSession, MAX_BODY_CT_LEN,
};
use xrcp_tests::bodies::{
    bomb_json, command_bomb, ctrl_session, encode_unsized, host_session, response_bomb, vm_hwm,
};

const VICTIM: &str = env!("CARGO_BIN_EXE_xrcp-body-victim");
/// What the brief allows a victim to reach, bomb or not.
const PEAK_LIMIT: u64 = 64 << 20;

/// The victim process and its stdout lines.
struct Victim {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std_mpsc::Receiver<String>,
}

impl Victim {
    fn spawn(args: &[&str]) -> Victim {
        let mut child = Command::new(VICTIM)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start xrcp-body-victim");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Victim {
            child,
            stdin,
            lines,
        }
    }

    /// The next line of output, within `within`.
    fn line(&self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("victim said nothing within {within:?}: {e}"))
    }

    fn peak(&self) -> u64 {
        vm_hwm(self.child.id()).expect("victim's /proc status")
    }

    /// Closes its stdin and waits (up to 10 s) for it to exit; kills it otherwise.
    fn finish(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Sends one request body and reads the whole response body.
async fn exchange(send: &SendRequest<Bytes>, body: Vec<u8>) -> Result<Vec<u8>, h2::Error> {
    let mut send = send.clone().ready().await?;
    let request = http::Request::post("https://0.0.0.0/").body(()).unwrap();
    let (response, mut stream) = send.send_request(request, false)?;
    stream.send_data(Bytes::from(body), true)?;
    let mut body = response.await?.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A signed `send` command and its decoded response.
async fn command(
    send: &SendRequest<Bytes>,
    ctrl: &mut RemoteSession,
    json: &[u8],
) -> RemoteResponse {
    let body = ctrl.encode(json).unwrap().bytes;
    let reply = tokio::time::timeout(Duration::from_secs(30), exchange(send, body))
        .await
        .expect("host answered in time")
        .expect("host answered");
    ctrl.decode_response(&reply).unwrap().0
}

fn send_json(text: &str) -> Vec<u8> {
    RemoteCommand::Send {
        command: text.into(),
        retry_number: 0,
    }
    .to_json_bytes()
}

async fn connect_to_host(victim: &Victim) -> SendRequest<Bytes> {
    let line = victim.line(Duration::from_secs(10));
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected victim output {line:?}"));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_request_is_refused_within_bounded_memory() {
    let victim = Victim::spawn(&["host", "30000"]);
    let send = connect_to_host(&victim).await;
    let mut ctrl = ctrl_session();
    let before = victim.peak();

    // Once with a frame that states its size, once with one that does not (so that only
    // decompressing tells).
    let bomb = command_bomb();
    for sized in [true, false] {
        let body = if sized {
            ctrl.encode(&bomb).unwrap().bytes
        } else {
            encode_unsized(&mut ctrl, &bomb)
        };
        let reply = tokio::time::timeout(Duration::from_secs(60), exchange(&send, body))
            .await
            .expect("host answered in time")
            .expect("host answered");
        match ctrl.decode_response(&reply).unwrap().0 {
            RemoteResponse::ProtocolError {
                remote_procotol_error: RemoteProtocolError::InvalidBody(_),
            } => {}
            other => panic!(
                "the bomb (sized frame: {sized}) was not refused as an invalid body: {:.300}",
                format!("{other:?}")
            ),
        }
    }
    drop(bomb);
    // The session goes on.
    let reply = command(&send, &mut ctrl, &send_json("/hello")).await;
    let RemoteResponse::ChatResponse {
        chat_response: RRResult::Result(v),
    } = reply
    else {
        panic!("no answer after the bomb: {reply:?}");
    };
    assert_eq!(v["command"], "/hello");

    let peak = victim.peak();
    eprintln!(
        "host peak memory: {:.1} MiB before the bomb, {:.1} MiB after",
        mib(before),
        mib(peak)
    );
    assert!(
        peak < PEAK_LIMIT,
        "host peak memory {:.1} MiB (limit {:.0} MiB)",
        mib(peak),
        mib(PEAK_LIMIT)
    );
    drop(send);
    assert_eq!(victim.line(Duration::from_secs(10)), "ENDED ok");
    victim.finish();
}

/// The hostile host: answers `send /bomb` and the first event poll with bombs, everything
/// else normally. Each request is served by its own task so that the connection (and its
/// PING replies) keeps being driven.
///
/// With `flood`, every event poll is instead answered at once with a chat event of many tiny
/// values (about 13 MiB as a tree), counted in `flood`.
async fn serve_bombs(tcp: TcpStream, flood: Option<Arc<AtomicUsize>>) {
    let mut conn = h2::server::handshake(tcp).await.unwrap();
    let flood_event = Arc::new(bomb_json(
        r#"{"type":"chatEvent","chatEvent":{"result":{"type":"newChatItems","#,
        "}}}",
        400 << 10,
    ));
    let host = Arc::new(Mutex::new(host_session()));
    let event_bomb = Arc::new(response_bomb(true));
    let response_bomb = Arc::new(response_bomb(false));
    let first_poll = Arc::new(std::sync::atomic::AtomicBool::new(true));
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        let host = Arc::clone(&host);
        let (event_bomb, response_bomb) = (Arc::clone(&event_bomb), Arc::clone(&response_bomb));
        let first_poll = Arc::clone(&first_poll);
        let (flood, flood_event) = (flood.clone(), Arc::clone(&flood_event));
        tokio::spawn(async move {
            let mut body = request.into_body();
            let mut bytes = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            let Ok((cmd, _, _)) = host.lock().await.decode_command(&bytes) else {
                return;
            };
            // The event bomb goes in a frame that does not state its size, the response bomb
            // in one that does.
            let (json, unsized_frame, delay) = match &cmd {
                RemoteCommand::Recv { .. } if flood.is_some() => {
                    flood.as_ref().map(|n| n.fetch_add(1, Ordering::SeqCst));
                    (flood_event.to_vec(), false, Duration::ZERO)
                }
                RemoteCommand::Recv { .. }
                    if first_poll.swap(false, std::sync::atomic::Ordering::SeqCst) =>
                {
                    (event_bomb.to_vec(), true, Duration::ZERO)
                }
                RemoteCommand::Recv { .. } => (
                    br#"{"type":"chatEvent"}"#.to_vec(),
                    false,
                    Duration::from_millis(300),
                ),
                RemoteCommand::Send { command, .. } if command == "/stall" => {
                    // The largest body announced, 1 MiB of it sent, then a byte now and then.
                    let Ok(mut stream) = respond.send_response(http::Response::new(()), false)
                    else {
                        return;
                    };
                    let mut head = Vec::with_capacity(8 + (1 << 20));
                    head.extend_from_slice(&4000u32.to_be_bytes());
                    head.extend_from_slice(&MAX_BODY_CT_LEN.to_be_bytes());
                    head.resize(8 + (1 << 20), 0xab);
                    let _ = stream.send_data(Bytes::from(head), false);
                    // Until the controller gives up on the stream.
                    loop {
                        tokio::select! {
                            _ = std::future::poll_fn(|cx| stream.poll_reset(cx)) => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {
                                let _ = stream.send_data(Bytes::from_static(b"x"), false);
                            }
                        }
                    }
                    return;
                }
                RemoteCommand::Send { command, .. } if command == "/bomb" => {
                    (response_bomb.to_vec(), false, Duration::ZERO)
                }
                RemoteCommand::Send { command, .. } => (
                    serde_json::to_vec(&serde_json::json!({"type": "chatResponse",
                        "chatResponse": {"result": {"type": "echo", "command": command}}}))
                    .unwrap(),
                    false,
                    Duration::ZERO,
                ),
                _ => return,
            };
            tokio::time::sleep(delay).await;
            let body = if unsized_frame {
                encode_unsized(&mut *host.lock().await, &json)
            } else {
                host.lock().await.encode(&json).unwrap().bytes
            };
            if let Ok(mut stream) = respond.send_response(http::Response::new(()), false) {
                let _ = stream.send_data(Bytes::from(body), true);
                // Keep the stream until h2 has sent it (or the peer reset it).
                std::future::poll_fn(|cx| stream.poll_reset(cx)).await.ok();
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bomb_responses_and_events_are_refused_within_bounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let victim = Victim::spawn(&["ctrl", &port]);
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("victim connected")
        .unwrap();
    let server = tokio::spawn(serve_bombs(tcp, None));

    let within = Duration::from_secs(30);
    let lines: Vec<String> = (0..4).map(|_| victim.line(within)).collect();
    let peak = victim.peak();
    eprintln!(
        "controller said {lines:?}; peak memory {:.1} MiB",
        mib(peak)
    );
    assert_eq!(
        lines,
        [
            "SEND /bomb error invalidBody",
            "EVENT error invalidBody",
            "SEND /hello ok echo",
            "DONE"
        ]
    );
    assert!(
        peak < PEAK_LIMIT,
        "controller peak memory {:.1} MiB (limit {:.0} MiB)",
        mib(peak),
        mib(PEAK_LIMIT)
    );
    victim.finish();
    server.abort();
}

/// A host pushing large events faster than the application takes them: polling pauses once
/// the waiting events hold [`EVENT_QUEUE_TREE`] of JSON trees, instead of queueing up to the
/// queue's 256 events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_events_wait_in_bounded_memory() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let victim = Victim::spawn(&["ctrl-idle", &port, "3000"]);
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("victim connected")
        .unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(serve_bombs(tcp, Some(Arc::clone(&served))));

    let queued = victim.line(Duration::from_secs(30));
    let polls = served.load(Ordering::SeqCst);
    let rest: Vec<String> = (0..2)
        .map(|_| victim.line(Duration::from_secs(30)))
        .collect();
    let peak = victim.peak();
    eprintln!(
        "host answered {polls} polls while the application was idle; {queued}; {rest:?}; \
         controller peak memory {:.1} MiB",
        mib(peak)
    );
    // Two events of ~13 MiB pass the 24 MiB bound; one more poll may be under way.
    assert!(
        polls <= 4,
        "{polls} events pushed while the application was idle"
    );
    assert_eq!(rest, ["SEND /hello ok echo", "DONE"]);
    assert!(
        peak < PEAK_LIMIT,
        "controller peak memory {:.1} MiB (limit {:.0} MiB)",
        mib(peak),
        mib(PEAK_LIMIT)
    );
    victim.finish();
    server.abort();
}

/// The same on the controller: responses that announce the largest body and never finish
/// fail after the body deadline, memory stays bounded, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_responses_fail_after_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let victim = Victim::spawn(&["ctrl-stall", &port, "2000"]);
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("victim connected")
        .unwrap();
    let server = tokio::spawn(serve_bombs(tcp, None));

    let stalled = victim.line(Duration::from_secs(20));
    let rest: Vec<String> = (0..2)
        .map(|_| victim.line(Duration::from_secs(20)))
        .collect();
    let peak = victim.peak();
    eprintln!(
        "{stalled}; {rest:?}; controller peak memory {:.1} MiB",
        mib(peak)
    );
    let outcomes = stalled.strip_prefix("STALLED ").expect("STALLED line");
    for o in outcomes.split(',') {
        let (what, at) = o.split_once('@').unwrap();
        assert_eq!(what, "error hTTP2", "{o}");
        let at: f64 = at.parse().unwrap();
        assert!((1.9..15.0).contains(&at), "failed at {at} s: {o}");
    }
    assert_eq!(rest, ["SEND /hello ok echo", "DONE"]);
    assert!(
        peak < PEAK_LIMIT,
        "controller peak memory {:.1} MiB (limit {:.0} MiB)",
        mib(peak),
        mib(PEAK_LIMIT)
    );
    victim.finish();
    server.abort();
}

/// What happened to one stalled stream.
#[derive(Debug, PartialEq)]
enum Stalled {
    Reset(h2::Reason),
    Answered,
    Other(String),
    NotReset,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_unsigned_bodies_are_bounded_and_reset() {
    const STREAMS: usize = 99;
    const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
    let victim = Victim::spawn(&["host", &HEAD_TIMEOUT.as_millis().to_string()]);
    let send = connect_to_host(&victim).await;
    let mut ctrl = ctrl_session();

    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..STREAMS {
        let mut sender = send.clone().ready().await.unwrap();
        let request = http::Request::post("https://0.0.0.0/").body(()).unwrap();
        let (response, mut stream) = sender.send_request(request, false).unwrap();
        let mut head = Vec::with_capacity(8 + (1 << 20));
        head.extend_from_slice(&(i as u32 + 1000).to_be_bytes());
        head.extend_from_slice(&MAX_BODY_CT_LEN.to_be_bytes());
        head.resize(8 + (1 << 20), 0xab);
        stream.send_data(Bytes::from(head), false).unwrap();
        stalled.push(tokio::spawn(async move {
            let trickle = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if stream.send_data(Bytes::from_static(b"x"), false).is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            let outcome = tokio::select! {
                r = response => r,
                () = trickle => unreachable!(),
            };
            let outcome = match outcome {
                Ok(_) => Stalled::Answered,
                Err(e) => match e.reason() {
                    Some(reason) if e.is_reset() => Stalled::Reset(reason),
                    _ => Stalled::Other(e.to_string()),
                },
            };
            (outcome, started.elapsed())
        }));
    }
    // A real command on the same session, sent while the stalled streams hold the budget.
    let reply = command(&send, &mut ctrl, &send_json("/hello")).await;
    let answered_after = started.elapsed();
    assert!(
        matches!(&reply, RemoteResponse::ChatResponse { chat_response: RRResult::Result(v) } if v["command"] == "/hello"),
        "{reply:?}"
    );

    // All of them by one deadline, well after the host's.
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT * 5;
    let mut outcomes = Vec::new();
    for t in stalled {
        let r = tokio::time::timeout_at(deadline, t).await;
        outcomes.push(match r {
            Ok(joined) => joined.unwrap(),
            Err(_) => (Stalled::NotReset, started.elapsed()),
        });
    }
    let peak = victim.peak();
    eprintln!(
        "host peak memory {:.1} MiB; real command answered after {answered_after:?}; \
         stalled streams: {:?}",
        mib(peak),
        outcomes.iter().take(3).collect::<Vec<_>>()
    );
    for (outcome, at) in &outcomes {
        assert_eq!(outcome, &Stalled::Reset(h2::Reason::CANCEL), "at {at:?}");
        assert!(*at >= HEAD_TIMEOUT, "reset before the deadline, at {at:?}");
    }
    assert!(
        peak < PEAK_LIMIT,
        "host peak memory {:.1} MiB (limit {:.0} MiB)",
        mib(peak),
        mib(PEAK_LIMIT)
    );
    // Still usable after the attack.
    let reply = command(&send, &mut ctrl, &send_json("/again")).await;
    assert!(
        matches!(reply, RemoteResponse::ChatResponse { .. }),
        "{reply:?}"
    );
    drop(send);
    assert_eq!(victim.line(Duration::from_secs(10)), "ENDED ok");
    victim.finish();
}
