//! The crash-safety writer for `tests/tests/pairing_store.rs`: opens a pairing store, makes
//! sure it holds one pairing, then replaces that pairing's DH keys `COUNT` times, one
//! transaction each, the way every later session does (spec/xrcp.md §9.3). The test kills it
//! with SIGKILL at random points and checks what survives.
//!
//! `xrcp-store-writer host|ctrl DIR COUNT` prints, flushed, one line per step:
//! - `START id key` — the stored key before the first update;
//! - `BEGIN i key` — about to commit state `i` (its key);
//! - `COMMIT i key` — state `i` is committed.
//!
//! `key` is the hex of the DH public key that identifies a state: the host's current DH
//! key (`host`, a `CtrlStore`) or the stored host DH key (`ctrl`, a `HostStore`).

use std::io::Write;
use std::process::ExitCode;

use xrcp::crypto::{Ed25519SecretKey, KeyHash, X25519PublicKey, X25519SecretKey};
use xrcp::pairing::{CtrlPairing, HostPairing, KnownHost};
use xrcp::tls::{CaRole, TlsIdentity};
use xrcp_ctrl::store::{Binding, HostStore};
use xrcp_host::store::CtrlStore;

fn hex(k: &X25519PublicKey) -> String {
    k.as_raw().iter().map(|b| format!("{b:02x}")).collect()
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn host(dir: &str, count: u32) -> Result<(), String> {
    let mut store = CtrlStore::open(dir).map_err(|e| e.to_string())?;
    let record = match store.list().map_err(|e| e.to_string())?.pop() {
        Some(r) => r,
        None => {
            let p = CtrlPairing {
                ca: TlsIdentity::generate(CaRole::Host).map_err(|e| e.to_string())?,
                ctrl_ca: KeyHash([5; 32]),
                ctrl_identity: Ed25519SecretKey::generate().public(),
                dh: X25519SecretKey::generate(),
                prev_dh: None,
            };
            let id = store.insert("desk", &p).map_err(|e| e.to_string())?;
            store.get(id).map_err(|e| e.to_string())?.ok_or("lost")?
        }
    };
    let (id, mut pairing) = (record.id, record.pairing);
    say(format!("START {id} {}", hex(&pairing.dh.public())));
    for i in 1..=count {
        let next = CtrlPairing {
            dh: X25519SecretKey::generate(),
            prev_dh: Some(pairing.dh.clone()),
            ..pairing.clone()
        };
        let key = hex(&next.dh.public());
        say(format!("BEGIN {i} {key}"));
        store
            .update_after_session(id, "desk", &next)
            .map_err(|e| e.to_string())?;
        say(format!("COMMIT {i} {key}"));
        pairing = next;
    }
    Ok(())
}

fn ctrl(dir: &str, count: u32) -> Result<(), String> {
    let mut store = HostStore::open(dir).map_err(|e| e.to_string())?;
    let record = match store.list().map_err(|e| e.to_string())?.pop() {
        Some(r) => r,
        None => {
            let mut p = HostPairing::new().map_err(|e| e.to_string())?;
            p.known_host = Some(KnownHost {
                host_ca: KeyHash([6; 32]),
                host_dh: X25519SecretKey::generate().public(),
            });
            let id = store
                .insert("phone", &p, &Binding::default())
                .map_err(|e| e.to_string())?;
            store.get(id).map_err(|e| e.to_string())?.ok_or("lost")?
        }
    };
    let (id, mut pairing) = (record.id, record.pairing);
    let known = pairing.known_host.ok_or("no known host")?;
    say(format!("START {id} {}", hex(&known.host_dh)));
    for i in 1..=count {
        let host_dh = X25519SecretKey::generate().public();
        pairing.known_host = Some(KnownHost { host_dh, ..known });
        let key = hex(&host_dh);
        say(format!("BEGIN {i} {key}"));
        store
            .update_after_session(id, "phone", &pairing, &Binding::default())
            .map_err(|e| e.to_string())?;
        say(format!("COMMIT {i} {key}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(role), Some(dir), Some(count)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: xrcp-store-writer host|ctrl DIR COUNT");
        return ExitCode::FAILURE;
    };
    let Ok(count) = count.parse() else {
        eprintln!("COUNT is not a number");
        return ExitCode::FAILURE;
    };
    let r = match role.as_str() {
        "host" => host(dir, count),
        "ctrl" => ctrl(dir, count),
        _ => Err(format!("unknown role {role}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(format!("FAILED {e}"));
            ExitCode::FAILURE
        }
    }
}
