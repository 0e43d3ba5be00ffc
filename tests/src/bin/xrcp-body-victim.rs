//! The victim process of `tests/tests/hardening_bodies.rs`: one side of a remote-control
//! session over loopback TCP, with the fixed keys of [`xrcp_tests::bodies`], so that the test
//! (the hostile peer) can read this process's peak memory (`VmHWM`) on its own.
//!
//! - `host HEAD_TIMEOUT_MS` — listens on 127.0.0.1, prints `PORT n`, serves one session with
//!   [`EchoApp`] (body head deadline as given) and prints `ENDED ok|error` when it ends.
//! - `ctrl PORT` — connects to 127.0.0.1:PORT as the controller and runs: `send /bomb`, the
//!   first event of the long-poll, `send /hello`, printing `SEND /bomb <outcome>`,
//!   `EVENT <outcome>`, `SEND /hello <outcome>`, then `DONE`, and waits for stdin to close.
//! - `ctrl-idle PORT IDLE_MS` — connects likewise, leaves the event queue alone for IDLE_MS,
//!   then prints `QUEUED n` (events waiting), `SEND /hello <outcome>`, `DONE`.
//! - `ctrl-stall PORT HEAD_TIMEOUT_MS` — connects likewise (body deadline as given), sends 20
//!   `/stall` commands at once, prints `STALLED <outcome>@<seconds>,…`, `SEND /hello …`, `DONE`.
//!
//! Outcomes are `ok <type>` or `error <error tag>`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use xrcp::session::{PlatformEncoding, RRResult, RemoteProtocolError};
use xrcp_ctrl::session::{CtrlSessionConfig, RemoteHostClient};
use xrcp_host::session::{serve_session, HostSessionConfig};
use xrcp_tests::bodies::{ctrl_session, host_session, EchoApp};

fn outcome(r: Result<Option<RRResult>, RemoteProtocolError>) -> String {
    match r {
        Ok(Some(RRResult::Result(v))) => format!("ok {}", v["type"].as_str().unwrap_or("?")),
        Ok(Some(RRResult::Error(e))) => format!("chat-error {e}"),
        Ok(None) => "ok none".into(),
        Err(e) => format!("error {}", e.tag()),
    }
}

async fn host(head_timeout: Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("PORT {}", listener.local_addr().unwrap().port());
    let (io, _) = listener.accept().await.unwrap();
    let (_events_tx, events) = tokio::sync::mpsc::channel(4);
    let config = HostSessionConfig {
        body_head_timeout: head_timeout,
        ..HostSessionConfig::default()
    };
    let ended = serve_session(
        io,
        xrcp::tls::PeerEnd::default(),
        host_session().into_host().expect("host secrets"),
        Arc::new(EchoApp),
        events,
        &config,
    )
    .await;
    println!("ENDED {}", if ended.is_ok() { "ok" } else { "error" });
}

async fn ctrl(port: u16) {
    let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let config = CtrlSessionConfig {
        recv_wait: Duration::from_millis(500),
        ..CtrlSessionConfig::default()
    };
    let (client, mut events) = RemoteHostClient::connect(
        io,
        ctrl_session()
            .into_controller()
            .expect("controller secrets"),
        PlatformEncoding::Kotlin,
        config,
    )
    .await
    .unwrap();
    let r = client.send_command("/bomb", 0).await.map(Some);
    println!("SEND /bomb {}", outcome(r));
    let ev = match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(ev)) => outcome(ev.map(Some)),
        Ok(None) => "error closed".into(),
        Err(_) => "error timeout".into(),
    };
    println!("EVENT {ev}");
    let r = client.send_command("/hello", 0).await.map(Some);
    println!("SEND /hello {}", outcome(r));
    println!("DONE");
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    client.close().await;
}

/// Connects and leaves the events alone for `idle`, then takes what waits and sends a command.
async fn ctrl_idle(port: u16, idle: Duration) {
    let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let config = CtrlSessionConfig {
        recv_wait: Duration::from_millis(500),
        ..CtrlSessionConfig::default()
    };
    let (client, mut events) = RemoteHostClient::connect(
        io,
        ctrl_session()
            .into_controller()
            .expect("controller secrets"),
        PlatformEncoding::Kotlin,
        config,
    )
    .await
    .unwrap();
    tokio::time::sleep(idle).await;
    let mut queued = 0;
    while events.try_recv().is_ok() {
        queued += 1;
    }
    println!("QUEUED {queued}");
    let r = client.send_command("/hello", 0).await.map(Some);
    println!("SEND /hello {}", outcome(r));
    println!("DONE");
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    client.close().await;
}

/// Sends `/stall` 20 times at once (the test's host never finishes those responses), prints
/// `STALLED <outcomes>` with the seconds they took, then `SEND /hello <outcome>` and `DONE`.
async fn ctrl_stall(port: u16, head_timeout: Duration) {
    let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let config = CtrlSessionConfig {
        recv_wait: Duration::from_millis(500),
        body_head_timeout: head_timeout,
        ..CtrlSessionConfig::default()
    };
    let (client, _events) = RemoteHostClient::connect(
        io,
        ctrl_session()
            .into_controller()
            .expect("controller secrets"),
        PlatformEncoding::Kotlin,
        config,
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let stalls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let r = client.send_command("/stall", 0).await.map(Some);
                (outcome(r), started.elapsed().as_secs_f64())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for s in stalls {
        let (o, at) = s.await.unwrap();
        outcomes.push(format!("{o}@{at:.1}"));
    }
    println!("STALLED {}", outcomes.join(","));
    let r = client.send_command("/hello", 0).await.map(Some);
    println!("SEND /hello {}", outcome(r));
    println!("DONE");
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    client.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One worker thread: the peak memory measured is the session's, not a thread pool's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    match args.first().map(String::as_str) {
        Some("host") => {
            let ms = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30_000);
            rt.block_on(host(Duration::from_millis(ms)));
        }
        Some("ctrl") => {
            let port = args.get(1).and_then(|a| a.parse().ok()).expect("ctrl PORT");
            rt.block_on(ctrl(port));
        }
        Some("ctrl-idle") => {
            let port = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .expect("ctrl-idle PORT");
            let ms = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3_000);
            rt.block_on(ctrl_idle(port, Duration::from_millis(ms)));
        }
        Some("ctrl-stall") => {
            let port = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .expect("ctrl-stall PORT");
            let ms = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30_000);
            rt.block_on(ctrl_stall(port, Duration::from_millis(ms)));
        }
        _ => {
            eprintln!(
                "usage: xrcp-body-victim host HEAD_TIMEOUT_MS | ctrl PORT | ctrl-idle PORT IDLE_MS | \
                 ctrl-stall PORT HEAD_TIMEOUT_MS"
            );
            std::process::exit(2);
        }
    }
}
