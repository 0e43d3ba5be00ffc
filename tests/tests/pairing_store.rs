//! The pairing stores across processes and sessions:
//! - crash safety: a writer (`src/bin/xrcp-store-writer.rs`) replaces the DH keys of a
//!   pairing 200 times, one transaction each, and is SIGKILLed at random points; every reopen
//!   must find a consistent store holding the last committed state (or the one being
//!   committed when it died), never anything older or mixed;
//! - the write-after-HELLO rule with real sessions: pair, persist both sides, reopen the
//!   stores and run the next session from what was read back.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use xrcp::message::SignedInvitation;
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::connect::ControllerOptions;
use xrcp_ctrl::store::{Binding, HostStore};
use xrcp_host::store::CtrlStore;
use xrcp_host::HostOptions;

const WRITER: &str = env!("CARGO_BIN_EXE_xrcp-store-writer");
const UPDATES: u32 = 200;

/// A small xorshift generator seeded from the clock; the seed is printed so a failure can
/// be replayed with `XRCP_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("XRCP_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("crash test seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A running writer; killed if still alive when dropped.
struct Writer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Writer {
    fn spawn(role: &str, dir: &std::path::Path) -> Writer {
        let mut child = Command::new(WRITER)
            .args([role, dir.to_str().unwrap(), &UPDATES.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Writer { child, lines }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the writer reported before it died.
#[derive(Default, Debug)]
struct Seen {
    start: Option<String>,
    committed: Vec<String>,
    pending: Option<String>,
}

impl Seen {
    fn take(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["START", _, key] => self.start = Some((*key).to_owned()),
            ["BEGIN", _, key] => self.pending = Some((*key).to_owned()),
            ["COMMIT", _, key] => {
                assert_eq!(
                    self.pending.as_deref(),
                    Some(*key),
                    "COMMIT follows its BEGIN"
                );
                self.pending = None;
                self.committed.push((*key).to_owned());
            }
            _ => panic!("writer said {line:?}"),
        }
    }
}

/// The stored state: (current key, previous key) as hex; for the controller store the
/// previous key is not kept.
fn stored(role: &str, dir: &std::path::Path) -> (String, Option<String>) {
    let hex = |b: &[u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if role == "host" {
        let store = CtrlStore::open(dir).expect("reopen after crash");
        let all = store.list().expect("read after crash");
        assert_eq!(all.len(), 1, "exactly one pairing");
        let p = &all[0].pairing;
        (
            hex(p.dh.public().as_raw()),
            p.prev_dh.as_ref().map(|k| hex(k.public().as_raw())),
        )
    } else {
        let store = HostStore::open(dir).expect("reopen after crash");
        let all = store.list().expect("read after crash");
        assert_eq!(all.len(), 1, "exactly one pairing");
        let k = all[0].pairing.known_host.expect("known host");
        (hex(k.host_dh.as_raw()), None)
    }
}

fn integrity_ok(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let r: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

fn crash_rounds(role: &str, db_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_env_or_clock();
    // The chain of every state ever committed or attempted, in order.
    let mut history: Vec<String> = Vec::new();
    let rounds = 6;
    for round in 0..=rounds {
        let last_round = round == rounds;
        let mut w = Writer::spawn(role, dir.path());
        // Kill after a random number of commits (sometimes before the first), plus a random
        // sub-millisecond delay so the kill also lands inside transactions.
        let kill_after = rng.below(u64::from(UPDATES) * 3 / 4);
        let delay = Duration::from_micros(rng.below(1500));
        let mut seen = Seen::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match w.lines.recv_timeout(left) {
                Ok(line) => seen.take(&line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("writer stalled: {seen:?}"),
            }
            if !last_round && seen.committed.len() as u64 >= kill_after {
                std::thread::sleep(delay);
                w.child.kill().unwrap();
                break;
            }
        }
        let status = w.child.wait().unwrap();
        // Lines written before the kill are still in the pipe.
        while let Ok(line) = w.lines.recv_timeout(Duration::from_secs(5)) {
            seen.take(&line);
        }
        let start = seen.start.clone();
        if let Some(s) = &start {
            if let Some(last) = history.last() {
                assert_eq!(
                    s, last,
                    "round {round} starts from the state the last one left"
                );
            } else {
                history.push(s.clone());
            }
        }
        let before = history.len();
        history.extend(seen.committed.iter().cloned());
        let (current, previous) = stored(role, dir.path());
        let last_committed = history.last().cloned();
        let ok =
            Some(&current) == last_committed.as_ref() || Some(&current) == seen.pending.as_ref();
        assert!(
            ok,
            "round {round}: stored {current} is neither the last commit {last_committed:?} \
             nor the pending {:?}",
            seen.pending
        );
        if Some(&current) == seen.pending.as_ref() {
            history.push(current.clone());
        }
        if role == "host" {
            // The previous key is always the state before the current one.
            let pos = history.iter().rposition(|k| *k == current).unwrap();
            let expected_prev = pos.checked_sub(1).map(|p| history[p].clone());
            assert_eq!(
                previous, expected_prev,
                "round {round}: previous key is the prior state"
            );
        }
        integrity_ok(&dir.path().join(db_file));
        eprintln!(
            "{role} round {round}: {} commits seen (kill after {kill_after}), exit {status}, \
             history {} → {}",
            seen.committed.len(),
            before,
            history.len()
        );
        if last_round {
            assert!(status.success(), "the uninterrupted run finishes");
            assert_eq!(seen.committed.len() as u32, UPDATES);
        }
    }
}

#[test]
fn host_store_survives_sigkill_mid_update() {
    crash_rounds("host", xrcp_host::store::DB_FILE);
}

#[test]
fn controller_store_survives_sigkill_mid_update() {
    crash_rounds("ctrl", xrcp_ctrl::store::DB_FILE);
}

fn ctrl_options() -> ControllerOptions {
    ControllerOptions {
        app: json!({"deviceName": "desk"}),
        bind: Ipv4Addr::LOCALHOST,
        candidates: Some(vec![LocalAddress {
            address: Ipv4Addr::LOCALHOST,
            interface: "lo".into(),
        }]),
        ..ControllerOptions::default()
    }
}

fn host_options() -> HostOptions {
    HostOptions {
        app: json!({"deviceName": "phone"}),
        ..HostOptions::default()
    }
}

/// One loopback session by link; returns what each side must persist.
async fn session(
    hp: xrcp::pairing::HostPairing,
    cp: Option<xrcp::pairing::CtrlPairing>,
) -> (xrcp_ctrl::connect::Connected, xrcp_host::Connected) {
    let listening = xrcp_ctrl::connect::start(hp, ctrl_options()).await.unwrap();
    let inv = SignedInvitation::parse(&listening.link()).unwrap();
    let ctrl = tokio::spawn(async move { listening.accept().await?.finish().await });
    let host = xrcp_host::connect(inv, cp, host_options())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    (ctrl.await.unwrap().unwrap(), host)
}

#[tokio::test]
async fn stored_pairings_carry_the_next_session() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let (cdir, hdir) = (dir.path().join("ctrl"), dir.path().join("host"));

        let (c, h) = session(xrcp::pairing::HostPairing::new().unwrap(), None).await;
        let hid = HostStore::open(&cdir)
            .unwrap()
            .insert("phone", &c.pairing, &Binding::default())
            .unwrap();
        let cid = CtrlStore::open(&hdir)
            .unwrap()
            .upsert("desk", &h.pairing)
            .unwrap();
        let first_host_dh = h.pairing.dh.public();
        drop((c, h));

        // "Restart": fresh handles, everything read back from disk.
        let mut hs = HostStore::open(&cdir).unwrap();
        let mut cs = CtrlStore::open(&hdir).unwrap();
        let hr = hs.get(hid).unwrap().unwrap();
        let cr = cs.find_by_fingerprint(&h_ctrl_ca(&hr)).unwrap().unwrap();
        assert_eq!(cr.id, cid);
        assert_eq!(hr.pairing.known_host.unwrap().host_dh, first_host_dh);

        let (c, h) = session(hr.pairing, Some(cr.pairing)).await;
        hs.update_after_session(hid, "phone", &c.pairing, &Binding::default())
            .unwrap();
        assert_eq!(cs.upsert("desk", &h.pairing).unwrap(), cid);
        drop((hs, cs));

        let hr = HostStore::open(&cdir).unwrap().get(hid).unwrap().unwrap();
        let cr = CtrlStore::open(&hdir).unwrap().get(cid).unwrap().unwrap();
        let known = hr.pairing.known_host.unwrap();
        assert_eq!(
            known.host_dh,
            cr.pairing.dh.public(),
            "controller has the newest host key"
        );
        assert_eq!(
            cr.pairing.prev_dh.unwrap().public(),
            first_host_dh,
            "host kept the previous"
        );
        assert_eq!(known.host_ca.0, cr.pairing.ca.fingerprint());
    })
    .await
    .unwrap();
}

/// The controller CA fingerprint as the host stores it (the invitation's `ca`).
fn h_ctrl_ca(r: &xrcp_ctrl::store::HostRecord) -> xrcp::crypto::KeyHash {
    xrcp::crypto::KeyHash(r.pairing.ca.fingerprint())
}
