//! Hardening: a session's chain keys do not outlive it in memory, and neither program can
//! write a core dump (docs/security/terminal-and-secrets.md).
//!
//! The memory test runs a real loopback session in this process (controller and host), notes
//! the chain keys the handshake handed over and the next few states of each chain (held
//! masked, see `xrcp_tests::memscan`), ends the session, drops everything, and then reads
//! every writable mapping of the process through `/proc/self/mem`: no 32-byte window may
//! equal any of those keys. Copies left by moves of key arrays (through futures, structs,
//! HKDF buffers) or by the hash state on the stack would be found there.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use xrcp::crypto::ChainKey;
use xrcp::message::SignedInvitation;
use xrcp::pairing::HostPairing;
use xrcp::session::RRResult;
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::connect::ControllerOptions;
use xrcp_ctrl::remote::{open_session, ControllerApp};
use xrcp_host::notes::NotesApp;
use xrcp_host::remote::{prepare_session, HostAppSettings};
use xrcp_host::HostOptions;
use xrcp_tests::cli::{binaries, Proc};
use xrcp_tests::memscan::{scan_own_memory, scrub_stack, MaskedSecret};

/// How many states of each chain after the handed-over one are looked for too.
const SUCCESSORS: usize = 4;

/// The chain's current key and its next [`SUCCESSORS`] states, masked.
#[inline(never)]
fn chain_states(name: &str, chain: &ChainKey) -> Vec<MaskedSecret> {
    let mut out = vec![MaskedSecret::new(&format!("{name} #0"), chain.as_bytes())];
    let mut c = ChainKey::from_bytes(*chain.as_bytes());
    for i in 1..=SUCCESSORS {
        drop(c.advance());
        out.push(MaskedSecret::new(&format!("{name} #{i}"), c.as_bytes()));
    }
    out
}

/// One session: handshake, a few requests each way, an orderly end; returns the masked keys.
async fn session(dir: &Path) -> Vec<MaskedSecret> {
    let app = ControllerApp {
        device_name: "desk".into(),
        ..ControllerApp::default()
    };
    let options = ControllerOptions {
        app: serde_json::to_value(app.info()).unwrap(),
        bind: Ipv4Addr::LOCALHOST,
        candidates: Some(vec![LocalAddress {
            address: Ipv4Addr::LOCALHOST,
            interface: "lo".into(),
        }]),
        ..ControllerOptions::default()
    };
    let listening = xrcp_ctrl::connect::start(HostPairing::new().unwrap(), options)
        .await
        .unwrap();
    let inv = SignedInvitation::parse(&listening.link()).unwrap();
    let ctrl = tokio::spawn(async move {
        let connected = listening.accept().await.unwrap().finish().await.unwrap();
        let mut keys = chain_states("controller send chain", connected.keys.keys.send_chain());
        keys.extend(chain_states(
            "controller receive chain",
            connected.keys.keys.recv_chain(),
        ));
        // `chain_states` held copies on this thread's stack; those are the test's, not the
        // library's, so they go before the session starts.
        scrub_stack();
        (open_session(connected, &app).await.unwrap(), keys)
    });
    let settings = HostAppSettings {
        device_name: "phone".into(),
        ..HostAppSettings::default()
    };
    let hello = settings.hello_info(&inv.invitation.app).unwrap();
    let opts = HostOptions {
        app: serde_json::to_value(&hello).unwrap(),
        ..HostOptions::default()
    };
    let pending = xrcp_host::connect(inv, None, opts).await.unwrap();
    let code = pending.session_code().to_owned();
    let connected = pending.verify(&code).await.unwrap();
    let (served, _pairing) = prepare_session(connected, &settings).unwrap();
    let notes = NotesApp::open(dir).unwrap();
    let events = notes.subscribe();
    let host = tokio::spawn(async move { served.serve(Arc::new(notes), events).await });
    let (mut remote, keys) = ctrl.await.unwrap();
    for i in 0..3 {
        let r = remote
            .client
            .send_command(&format!("/note secret {i}"), 0)
            .await
            .unwrap();
        assert!(matches!(r, RRResult::Result(_)), "{r:?}");
        // The change also comes as an event: a message the host sends unasked.
        let ev = tokio::time::timeout(Duration::from_secs(15), remote.events.recv())
            .await
            .unwrap();
        assert!(ev.is_some());
    }
    remote.close().await;
    tokio::time::timeout(Duration::from_secs(15), host)
        .await
        .unwrap()
        .unwrap()
        .expect("a clean end");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_keys_are_gone_from_memory_after_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tokio::time::timeout(Duration::from_secs(60), session(dir.path()))
        .await
        .expect("the session finishes in time");
    assert_eq!(keys.len(), 2 * (SUCCESSORS + 1));
    // Everything of the session has been dropped: the tasks have ended and been joined.
    let report = scan_own_memory(&keys).unwrap();
    assert!(
        report.bytes_scanned > 1 << 20,
        "scanned only {} bytes",
        report.bytes_scanned
    );
    for k in &keys {
        println!("{:3} copies of the {}", report.count(&k.name), k.name);
    }
    assert!(
        report.hits.is_empty(),
        "chain keys still in memory after the session ended ({} copies):\n{}",
        report.hits.len(),
        report
            .hits
            .iter()
            .map(|(n, at, region)| format!("  {n} at {at:#x} in {region:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The scanner finds a key that is still held, so a clean scan means something.
#[test]
fn the_scan_finds_a_key_that_is_still_held() {
    let chain = ChainKey::from_bytes(*b"a chain key that is still alive!");
    let masked = MaskedSecret::new("live", chain.as_bytes());
    let report = scan_own_memory(std::slice::from_ref(&masked)).unwrap();
    assert!(report.count("live") >= 1, "the live key was not found");
    drop(chain);
}

// --- core dumps ----------------------------------------------------------------------------

/// Owner uid of `/proc/<pid>/status`: the kernel gives the files of a process that is not
/// dumpable to root (proc(5)), whatever user it runs as.
fn proc_owner(pid: u32) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid()
}

fn core_limit_line(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("a core size limit line")
        .to_owned()
}

#[test]
fn neither_program_can_dump_core() {
    use std::os::unix::process::CommandExt;
    let root = std::fs::metadata("/proc/self/status")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    for (name, path) in [
        ("xrcp-ctrl", &binaries().ctrl),
        ("xrcp-host", &binaries().host),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut cmd = Command::new(path);
        cmd.arg("--data-dir").arg(&data);
        let run_as = if root {
            // As root every /proc/<pid> belongs to root anyway: run the program as nobody,
            // so that only a non-dumpable process shows up as root's. Its data directory is
            // its own (the programs make it private at start).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
            cmd.uid(65534).gid(65534);
            65534
        } else {
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self/status").unwrap())
        };
        let mut p = Proc::spawn(name, cmd, Duration::from_secs(30));
        // Its greeting means main() has run past its start.
        let greeting = p.line(Duration::from_secs(15));
        assert!(greeting.contains("/help"), "{greeting}");
        let pid = p.pid();
        let limit = core_limit_line(pid);
        let fields: Vec<&str> = limit.split_whitespace().collect();
        assert_eq!(&fields[4..6], ["0", "0"], "{name}: {limit}");
        assert_eq!(
            proc_owner(pid),
            0,
            "{name} (running as uid {run_as}) is still dumpable"
        );
        p.send("/quit");
        p.wait(Duration::from_secs(10));
    }
}
