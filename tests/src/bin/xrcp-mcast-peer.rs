//! One side of a multicast test, run by `tests/tests/multicast.rs` inside a network namespace
//! (`ip netns exec NS xrcp-mcast-peer ...`). Each run is a fresh process that reopens its
//! pairing store from disk, as a restarted app would.
//!
//! Commands (results are printed one per line, `WORD args`, for the test to read):
//! - `ctrl-pair DIR ADDR` — new pairing, prints `LINK`, `CODE`, `PAIRED id`.
//! - `host-pair DIR LINK` — connects by link, prints `CODE`, `PAIRED id`.
//! - `ctrl-announce DIR ADDR COUNT INTERVAL_MS` — known host (the first stored), announced by
//!   multicast; prints `ANNOUNCING`, `CODE`, `CONNECTED id code`.
//! - `host-discover DIR TIMEOUT_MS [twice] [extra=N]` — prints `LISTENING` (and
//!   `SUBSCRIBERS n`), then `FOUND id Current|Previous name`, `CODE`, `CONNECTED id code` and
//!   `STATS ...`, or `STATS ...` and `ERROR KIND` (exit code 2). `extra=N` listens for N more
//!   controllers first (made-up pairings with their own DH keys, ids -1..-N), so that an
//!   unknown key costs as much as with N + 1 paired controllers.
//! - `flood SRC COUNT RATE` — sends COUNT well-formed 985-byte announcements with random keys,
//!   nonces and boxes (nobody can open them) to the discovery group from SRC, RATE a second;
//!   prints `FLOODING` once a second's worth is out, then `SENT n ms`.
//! - `ctrl-forge DIR ADDR spoof|tamper|unknown SPOOF_SRC COUNT INTERVAL_MS` — sends bad
//!   announcements for the first stored host and exits: genuine ones from SPOOF_SRC instead of
//!   ADDR, genuine ones with a flipped byte, or ones from a controller the host never paired.
//!   Prints `SENT n`.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use xrcp::crypto::{KeyHash, Nonce, X25519PublicKey, X25519SecretKey};
use xrcp::message::announcement::ANNOUNCEMENT_LEN;
use xrcp::message::{Announcement, SignedInvitation};
use xrcp::pairing::{HostPairing, KnownHost};
use xrcp_ctrl::address::LocalAddress;
use xrcp_ctrl::announce::{start_announced, AnnounceOptions, Announcer};
use xrcp_ctrl::connect::ControllerOptions;
use xrcp_ctrl::store::{Binding, HostStore};
use xrcp_host::discover::{DiscoverOptions, Discovery, DISCOVERY_PORT, MULTICAST_GROUP};
use xrcp_host::store::CtrlStore;
use xrcp_host::HostOptions;

type Res<T> = Result<T, String>;

fn arg(args: &[String], i: usize) -> Res<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}"))
}

fn num<T: std::str::FromStr>(args: &[String], i: usize) -> Res<T> {
    arg(args, i)?
        .parse()
        .map_err(|_| format!("argument {i} is not a number"))
}

fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ctrl_options(addr: Ipv4Addr) -> ControllerOptions {
    ControllerOptions {
        app: json!({"deviceName": "ns desktop"}),
        bind: addr,
        candidates: Some(vec![LocalAddress {
            address: addr,
            interface: "veth".into(),
        }]),
        tls_timeout: Duration::from_secs(20),
        hello_timeout: Duration::from_secs(20),
        ..ControllerOptions::default()
    }
}

fn host_options() -> HostOptions {
    HostOptions {
        app: json!({"deviceName": "ns phone"}),
        ..HostOptions::default()
    }
}

fn name(app: &serde_json::Value) -> String {
    xrcp_host::store::device_name(app)
}

async fn ctrl_pair(args: &[String]) -> Res<()> {
    let mut store = HostStore::open(arg(args, 2)?).map_err(|e| e.to_string())?;
    let addr: Ipv4Addr = num(args, 3)?;
    let options = ctrl_options(addr);
    let binding = Binding::of(&options);
    let listening =
        xrcp_ctrl::connect::start(HostPairing::new().map_err(|e| e.to_string())?, options)
            .await
            .map_err(|e| e.to_string())?;
    say(format!("LINK {}", listening.link()));
    let pending = listening.accept().await.map_err(|e| e.to_string())?;
    say(format!("CODE {}", pending.session_code()));
    let c = pending.finish().await.map_err(|e| e.to_string())?;
    // Written only now, after the HELLO exchange.
    let id = store
        .insert(&name(&c.keys.host_app), &c.pairing, &binding)
        .map_err(|e| e.to_string())?;
    say(format!("PAIRED {id}"));
    Ok(())
}

async fn host_pair(args: &[String]) -> Res<()> {
    let mut store = CtrlStore::open(arg(args, 2)?).map_err(|e| e.to_string())?;
    let inv = SignedInvitation::parse(arg(args, 3)?).map_err(|e| e.to_string())?;
    let pending = xrcp_host::connect(inv, None, host_options())
        .await
        .map_err(|e| e.to_string())?;
    say(format!("CODE {}", pending.session_code()));
    let c = pending.confirm().await.map_err(|e| e.to_string())?;
    let id = store
        .upsert(&name(&c.keys.ctrl_app), &c.pairing)
        .map_err(|e| e.to_string())?;
    say(format!("PAIRED {id}"));
    Ok(())
}

fn first_host(store: &HostStore) -> Res<xrcp_ctrl::store::HostRecord> {
    store
        .list()
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no stored host".to_owned())
}

fn announce_options(args: &[String], count_at: usize) -> Res<AnnounceOptions> {
    Ok(AnnounceOptions {
        count: num(args, count_at)?,
        interval: Duration::from_millis(num(args, count_at + 1)?),
        ..AnnounceOptions::default()
    })
}

async fn ctrl_announce(args: &[String]) -> Res<()> {
    let mut store = HostStore::open(arg(args, 2)?).map_err(|e| e.to_string())?;
    let addr: Ipv4Addr = num(args, 3)?;
    let record = first_host(&store)?;
    let mut options = ctrl_options(addr);
    record.binding.apply(&mut options);
    options.port = 0;
    let binding = Binding::of(&options);
    let announced = start_announced(record.pairing, options, &announce_options(args, 4)?)
        .await
        .map_err(|e| e.to_string())?;
    say("ANNOUNCING".into());
    let pending = announced.accept().await.map_err(|e| e.to_string())?;
    say(format!("CODE {}", pending.session_code()));
    let c = pending.finish().await.map_err(|e| e.to_string())?;
    store
        .update_after_session(record.id, &name(&c.keys.host_app), &c.pairing, &binding)
        .map_err(|e| e.to_string())?;
    say(format!(
        "CONNECTED {} {}",
        record.id,
        c.session_code.replace(' ', "")
    ));
    Ok(())
}

async fn host_discover(args: &[String]) -> Res<ExitCode> {
    let mut store = CtrlStore::open(arg(args, 2)?).map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(num(args, 3)?);
    let twice = args.iter().skip(4).any(|a| a == "twice");
    let extra: usize = match args.iter().skip(4).find_map(|a| a.strip_prefix("extra=")) {
        Some(n) => n.parse().map_err(|_| "extra= is not a number".to_owned())?,
        None => 0,
    };
    let options = DiscoverOptions {
        timeout,
        ..DiscoverOptions::default()
    };
    let mut known = store.known().map_err(|e| e.to_string())?;
    if let Some((_, real)) = known.first().cloned() {
        // Listed before the real one: every key is tried against theirs first.
        for i in 0..extra {
            let mut other = real.clone();
            other.dh = X25519SecretKey::generate();
            other.prev_dh = Some(X25519SecretKey::generate());
            known.insert(0, (-1 - i as i64, other));
        }
    }
    // Both listeners from one Discovery: they share its membership.
    let discovery = Discovery::new();
    let mut listener = discovery
        .listener(known.clone(), &options)
        .map_err(|e| e.to_string())?;
    let mut second = if twice {
        let l = discovery
            .listener(known, &options)
            .map_err(|e| e.to_string())?;
        say(format!("SUBSCRIBERS {}", l.subscription().subscribers()));
        Some(l)
    } else {
        None
    };
    say("LISTENING".into());
    let listening = Instant::now();
    let found = match &mut second {
        Some(other) => {
            let (a, b) = tokio::join!(listener.find(timeout), other.find(timeout));
            let b = b.map_err(|e| format!("second listener: {e}"))?;
            say(format!("FOUND2 {} {:?}", b.id, b.key_used));
            a
        }
        None => listener.find(timeout).await,
    };
    let stats = listener.stats();
    let stats_line = format!(
        "STATS datagrams={} malformed={} not_found={} invalid={} wrong_source={} cache_hits={} dh={} over_budget={} ms={}",
        stats.datagrams,
        stats.malformed,
        stats.not_found,
        stats.invalid,
        stats.wrong_source,
        stats.cache_hits,
        stats.dh_operations,
        stats.over_budget,
        listening.elapsed().as_millis()
    );
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            say(stats_line);
            say(format!("ERROR {}", e.kind()));
            return Ok(ExitCode::from(2));
        }
    };
    drop(second);
    drop(listener);
    say(format!(
        "FOUND {} {:?} {}",
        found.id,
        found.key_used,
        name(found.app())
    ));
    let id = found.id;
    let pending = found
        .connect(host_options())
        .await
        .map_err(|e| e.to_string())?;
    say(format!("CODE {}", pending.session_code()));
    // A known controller: no code comparison (the pairing pins its identity).
    let c = pending.confirm().await.map_err(|e| e.to_string())?;
    store
        .update_after_session(id, &name(&c.keys.ctrl_app), &c.pairing)
        .map_err(|e| e.to_string())?;
    say(format!(
        "CONNECTED {id} {}",
        c.session_code.replace(' ', "")
    ));
    say(stats_line);
    Ok(ExitCode::SUCCESS)
}

async fn ctrl_forge(args: &[String]) -> Res<()> {
    let store = HostStore::open(arg(args, 2)?).map_err(|e| e.to_string())?;
    let addr: Ipv4Addr = num(args, 3)?;
    let kind = arg(args, 4)?;
    let spoof_src: Ipv4Addr = num(args, 5)?;
    let options = announce_options(args, 6)?;
    let mut pairing = first_host(&store)?.pairing;
    if kind == "unknown" {
        // A controller this host never paired with, announcing to some other host.
        pairing = HostPairing::new().map_err(|e| e.to_string())?;
        pairing.known_host = Some(KnownHost {
            host_ca: KeyHash([7; 32]),
            host_dh: X25519SecretKey::generate().public(),
        });
    }
    let listening = xrcp_ctrl::connect::start(pairing, ctrl_options(addr))
        .await
        .map_err(|e| e.to_string())?;
    let mut datagrams = Vec::new();
    for _ in 0..options.count {
        let mut d = listening.announcement().map_err(|e| e.to_string())?;
        if kind == "tamper" {
            d[500] ^= 0x20;
        }
        datagrams.push(d);
    }
    let source = match kind {
        "spoof" => spoof_src,
        "tamper" | "unknown" => addr,
        other => return Err(format!("unknown forgery {other}")),
    };
    let mut datagrams = datagrams.into_iter();
    let announcer = Announcer::start_with(source, &options, move || {
        datagrams
            .next()
            .ok_or_else(|| xrcp::RcError::Internal("no more".into()))
    })
    .map_err(|e| e.to_string())?;
    let sent = tokio::time::timeout(Duration::from_secs(30), announcer.finished())
        .await
        .map_err(|_| "announcer did not finish".to_owned())?;
    say(format!("SENT {sent}"));
    Ok(())
}

/// A small xorshift generator: the flood needs fast unpredictable-looking bytes, not
/// secrets.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }
}

/// Sends `count` random-key announcements at `rate` a second (bounded in count and, at
/// twice the planned duration plus 5 s, in time).
fn flood(args: &[String]) -> Res<()> {
    let src: Ipv4Addr = num(args, 2)?;
    let count: u64 = num(args, 3)?;
    let rate: u64 = num::<u64>(args, 4)?.max(1);
    let socket = std::net::UdpSocket::bind((src, 0)).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_multicast_ttl_v4(1)
        .map_err(|e| format!("ttl: {e}"))?;
    let mut datagram = Announcement {
        dh_key: X25519PublicKey::from_raw([0; 32]),
        nonce: Nonce::random(),
        ciphertext: vec![0; ANNOUNCEMENT_LEN - 1 - 44 - 24],
    }
    .encode();
    if datagram.len() != ANNOUNCEMENT_LEN {
        return Err(format!("flood datagram is {} bytes", datagram.len()));
    }
    let mut rng = XorShift(
        u64::from(std::process::id()) << 32
            | u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos()),
            )
            | 1,
    );
    rng.fill(&mut datagram[45..]);
    let to = (MULTICAST_GROUP, DISCOVERY_PORT);
    let start = Instant::now();
    let give_up = start + Duration::from_millis(count * 2_000 / rate) + Duration::from_secs(5);
    let (mut sent, mut announced) = (0u64, false);
    while sent < count && Instant::now() < give_up {
        let due = (start.elapsed().as_micros() as u64)
            .saturating_mul(rate)
            .div_euclid(1_000_000)
            .min(count);
        while sent < due {
            // A new key and nonce every datagram, and a changed box.
            rng.fill(&mut datagram[13..69]);
            let at = 69 + (rng.next() as usize) % (ANNOUNCEMENT_LEN - 69 - 8);
            rng.fill(&mut datagram[at..at + 8]);
            socket
                .send_to(&datagram, to)
                .map_err(|e| format!("send: {e}"))?;
            sent += 1;
        }
        if !announced && sent >= rate.min(count) {
            announced = true;
            say("FLOODING".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    say(format!("SENT {sent} {}", start.elapsed().as_millis()));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or_default();
    let result = match cmd {
        "ctrl-pair" => ctrl_pair(&args).await.map(|()| ExitCode::SUCCESS),
        "host-pair" => host_pair(&args).await.map(|()| ExitCode::SUCCESS),
        "ctrl-announce" => ctrl_announce(&args).await.map(|()| ExitCode::SUCCESS),
        "host-discover" => host_discover(&args).await,
        "ctrl-forge" => ctrl_forge(&args).await.map(|()| ExitCode::SUCCESS),
        "flood" => flood(&args).map(|()| ExitCode::SUCCESS),
        _ => Err(format!("unknown command {cmd:?}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say(format!("FAILED {e}"));
            ExitCode::FAILURE
        }
    }
}
