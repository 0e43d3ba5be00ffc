//! Hardening: 1,000 sequential sessions in one process — each a full handshake over TCP
//! loopback (reusing and updating the pairing, as a real desktop and phone do), the HTTP/2
//! session, and one command round trip through the notes app. Every 100 sessions, open file
//! descriptors and alive tasks must be back at their baseline (each host session must also
//! end by itself once its controller left), and the resident set must not grow beyond a
//! small bound between session 100 (after warm-up) and session 1,000.
//!
//! `XRCP_SOAK_SESSIONS` overrides the count (for quick local runs); the default is 1,000.
//!
//! The host's 100 ms post-handshake alert peek is a fixed cost of every session (100 s of a
//! 1,000-session run by itself). A socket without `TCP_NODELAY` adds Nagle + delayed-ACK
//! stalls (~40 ms) to every HTTP/2 exchange; `both_sides_disable_nagle` checks for that.

use std::time::{Duration, Instant};

use xrcp::pairing::HostPairing;
use xrcp_ctrl::remote::open_session;
use xrcp_host::notes::NotesApp;
use xrcp_tests::hardening::{
    chat_result, link, open_fds, rss_bytes, start_controller, Baseline, LinkSettings,
};

const SESSIONS: usize = 1_000;
const WARM_UP: usize = 100;
/// Allowed RSS growth from session 100 to the last one (allocator noise, caches).
const RSS_GROWTH: u64 = 10 << 20;
/// One session, end to end, must not take longer than this.
const SESSION_LIMIT: Duration = Duration::from_secs(20);

/// The tests of this file count the process's file descriptors: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_sequential_sessions_leak_neither_fds_nor_memory() {
    let _serial = SERIAL.lock().await;
    let sessions = std::env::var("XRCP_SOAK_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SESSIONS);
    assert!(
        sessions > WARM_UP,
        "XRCP_SOAK_SESSIONS must exceed {WARM_UP}"
    );
    let settings = LinkSettings::default();
    let data = tempfile::tempdir().unwrap();
    // One notes database for the life of the host, as in the real program.
    let notes = NotesApp::open(data.path()).unwrap();
    let baseline = Baseline::now();
    let started = Instant::now();

    let mut ctrl_pairing = HostPairing::new().unwrap();
    let mut host_pairing = None;
    let mut rss_warm = 0;
    let mut slowest = Duration::ZERO;
    let mut fd_peak = 0;
    // Time spent per phase over all sessions: start, handshake + session start, command,
    // teardown.
    let mut phases = [Duration::ZERO; 4];
    for i in 1..=sessions {
        let t = Instant::now();
        let session = async {
            let mut lap = Instant::now();
            let mut mark = |phase: usize| {
                phases[phase] += lap.elapsed();
                lap = Instant::now();
            };
            let (listening, inv) = start_controller(ctrl_pairing.clone(), &settings).await?;
            mark(0);
            let linked = link(
                listening,
                inv,
                host_pairing.take(),
                notes.clone(),
                &settings,
                None,
            )
            .await?;
            mark(1);
            let list = chat_result(linked.remote.client.send_command("/notes", 0).await)?;
            if list["type"] != "notes" {
                return Err(format!("unexpected response {list}"));
            }
            mark(2);
            let pairing = linked.remote.pairing.clone();
            fd_peak = fd_peak.max(open_fds());
            drop(linked.remote);
            // The controller went away: the host's server ends on its own.
            match tokio::time::timeout(Duration::from_secs(5), linked.host).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("host task: {e}")),
                Err(_) => return Err("host session did not end after the controller left".into()),
            }
            mark(3);
            Ok::<_, String>((pairing, linked.host_pairing))
        };
        let (cp, hp) = tokio::time::timeout(SESSION_LIMIT, session)
            .await
            .unwrap_or_else(|_| panic!("session {i} took more than {SESSION_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("session {i}: {e}"));
        ctrl_pairing = cp;
        host_pairing = Some(hp);
        slowest = slowest.max(t.elapsed());

        if i % 100 == 0 || i == sessions {
            if let Err(e) = baseline.check(Duration::from_secs(2)).await {
                panic!("after session {i}: {e}");
            }
            let fds = open_fds();
            let rss = rss_bytes();
            println!(
                "session {i}: {} ms elapsed, rss {} KiB, fds {fds} (peak {fd_peak})",
                started.elapsed().as_millis(),
                rss >> 10
            );
            if i == WARM_UP {
                rss_warm = rss;
            }
        }
    }
    let total = started.elapsed();
    let rss_end = rss_bytes();
    println!(
        "{sessions} sessions in {:.1} s ({:.1} ms each, slowest {} ms); \
         rss {} KiB after {WARM_UP}, {} KiB at the end",
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / sessions as f64,
        slowest.as_millis(),
        rss_warm >> 10,
        rss_end >> 10
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / sessions as f64;
    println!(
        "per session: start {:.1} ms, handshake and session start {:.1} ms (includes the host's \
         100 ms alert peek), command {:.1} ms, teardown {:.1} ms",
        ms(phases[0]),
        ms(phases[1]),
        ms(phases[2]),
        ms(phases[3])
    );
    assert!(rss_warm > 0, "VmRSS readable");
    assert!(
        rss_end <= rss_warm + RSS_GROWTH,
        "RSS grew by {} KiB from session {WARM_UP} to {sessions} (bound {} KiB)",
        (rss_end - rss_warm) >> 10,
        RSS_GROWTH >> 10
    );
    // The pairing was carried through every session: the controller knows this host.
    assert!(ctrl_pairing.known_host.is_some());
}

/// Both ends of the session socket set `TCP_NODELAY`: HTTP/2 writes a request as several
/// small frames, and with Nagle's algorithm on the sender waits for the peer's delayed ACK
/// (~40 ms on Linux) before sending the rest — measured here as ~47 ms per command round
/// trip instead of ~3 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_disable_nagle() {
    let _serial = SERIAL.lock().await;
    let settings = LinkSettings::default();
    let (listening, inv) = start_controller(HostPairing::new().unwrap(), &settings)
        .await
        .unwrap();
    let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
    let opts = settings.host_options(&inv, None).unwrap();
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let code = pending.session_code().to_owned();
    let host = pending.verify(&code).await.unwrap();
    let ctrl = ctrl.await.unwrap().unwrap();
    let host_nodelay = host.stream.get_ref().nodelay().unwrap();
    let ctrl_nodelay = ctrl.stream.get_ref().nodelay().unwrap();
    // The session still works either way.
    let remote = open_session(ctrl, &settings.ctrl_app).await.unwrap();
    drop(remote);
    assert!(host_nodelay, "the host's socket has TCP_NODELAY");
    assert!(
        ctrl_nodelay,
        "the controller's accepted socket has TCP_NODELAY"
    );
}
