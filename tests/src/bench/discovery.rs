//! §4 Discovery: the cost of one announcement datagram in
//! `xrcp_host::discover::AnnouncementMatcher` with 1, 100 and 1,000 known controllers — the
//! scenario of `xrcp-host/benches/discover.rs` (its author's harness, re-run separately and
//! quoted in BENCHMARKS.md), here with medians and spread:
//! - *first*: a new session key of the last-listed controller (every other pairing's current
//!   and previous key is tried first: the worst case);
//! - *repeated*: that controller's next datagram (same key, fresh nonce);
//! - *unknown first / repeated*: a controller nobody paired with.

use std::net::Ipv4Addr;
use std::time::Instant;

use xrcp::crypto::{Ed25519SecretKey, KeyHash, X25519PublicKey, X25519SecretKey};
use xrcp::handshake::ControllerHandshake;
use xrcp::pairing::{CtrlPairing, HostPairing, KnownHost};
use xrcp::tls::{CaRole, TlsIdentity};
use xrcp_host::discover::AnnouncementMatcher;

use super::fixtures::Res;
use super::stats::{summarize, Row, Section, Unit};
use super::{Config, Results};

const ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn controller(host_dh: X25519PublicKey) -> Res<ControllerHandshake> {
    let mut hp = HostPairing::new()?;
    hp.known_host = Some(KnownHost {
        host_ca: KeyHash([2; 32]),
        host_dh,
    });
    Ok(ControllerHandshake::new(
        hp,
        ADDR,
        4000,
        serde_json::json!({"deviceName": "bench"}),
        1,
    )?)
}

/// Seconds per call of `handle` on each datagram (one call per sample).
fn each(m: &mut AnnouncementMatcher, datagrams: &[Vec<u8>], expect_found: bool) -> Res<Vec<f64>> {
    let mut out = Vec::with_capacity(datagrams.len());
    for d in datagrams {
        let t = Instant::now();
        let got = m.handle(std::hint::black_box(d), ADDR);
        out.push(t.elapsed().as_secs_f64());
        if got.is_ok() != expect_found {
            return Err(format!("unexpected discovery result {:?}", got.err()).into());
        }
    }
    Ok(out)
}

pub(crate) fn run(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s =
        Section::new("4. Discovery: one announcement datagram (AnnouncementMatcher::handle)");
    let ca = TlsIdentity::generate(CaRole::Host)?;
    let repeats = cfg.samples(2000);
    let mut repeated_by_n = Vec::new();
    let mut first_by_n = Vec::new();
    for n in [1usize, 100, 1000] {
        let known: Vec<(i64, CtrlPairing)> = (0..n)
            .map(|i| {
                (
                    i as i64,
                    CtrlPairing {
                        ca: ca.clone(),
                        ctrl_ca: KeyHash([1; 32]),
                        ctrl_identity: Ed25519SecretKey::generate().public(),
                        dh: X25519SecretKey::generate(),
                        prev_dh: Some(X25519SecretKey::generate()),
                    },
                )
            })
            .collect();
        let target = known[n - 1].1.dh.public();
        let sessions = cfg.samples((4000 / n).clamp(15, 100));
        let firsts = (0..sessions)
            .map(|_| controller(target)?.announcement().map_err(Into::into))
            .collect::<Res<Vec<_>>>()?;
        let mut m = AnnouncementMatcher::new(known.clone());
        let first = each(&mut m, &firsts, true)?;

        let hs = controller(target)?;
        let datagrams = (0..repeats)
            .map(|_| hs.announcement())
            .collect::<Result<Vec<_>, _>>()?;
        m.handle(&datagrams[0], ADDR)?;
        let repeated = each(&mut m, &datagrams, true)?;

        let stranger = X25519SecretKey::generate().public();
        let unknown_firsts = (0..sessions)
            .map(|_| controller(stranger)?.announcement().map_err(Into::into))
            .collect::<Res<Vec<_>>>()?;
        let unknown_first = each(&mut m, &unknown_firsts, false)?;
        let hs = controller(stranger)?;
        let unknown_repeats = (0..repeats.min(500))
            .map(|_| hs.announcement())
            .collect::<Result<Vec<_>, _>>()?;
        let _ = m.handle(&unknown_repeats[0], ADDR);
        let unknown_repeated = each(&mut m, &unknown_repeats, false)?;

        for (what, v) in [
            ("first", &first),
            ("repeated", &repeated),
            ("unknown first", &unknown_first),
            ("unknown repeated", &unknown_repeated),
        ] {
            let row = Row::new(format!("{n} known, {what}"), Unit::Time, v);
            r.put(&format!("disc.{n}.{}", what.replace(' ', "_")), row.summary);
            s.row(row);
        }
        repeated_by_n.push((n, repeated));
        first_by_n.push((n, first));
    }
    // Repeated cost against 1 known controller: O(1) means ≈ 1 at 100 and 1,000. The samples
    // are not paired in time, so the ratio is of medians (shown as median [p10 ratio – p90
    // ratio] of the repeated samples over the 1-pairing median).
    let base = summarize(&repeated_by_n[0].1).median;
    for (n, v) in &repeated_by_n[1..] {
        let rel: Vec<f64> = v.iter().map(|x| x / base).collect();
        let row = Row::new(
            format!("{n} known, repeated ÷ 1 known, repeated"),
            Unit::Count,
            &[],
        )
        .with_ratio("1 known, repeated (median)", &rel);
        r.put(
            &format!("disc.{n}.repeat_ratio"),
            row.ratio.as_ref().map(|q| q.1).expect("ratio"),
        );
        s.row(row);
    }
    let fbase = summarize(&first_by_n[0].1).median;
    for (n, v) in &first_by_n[1..] {
        let rel: Vec<f64> = v.iter().map(|x| x / fbase).collect();
        s.row(
            Row::new(
                format!("{n} known, first ÷ 1 known, first"),
                Unit::Count,
                &[],
            )
            .with_ratio("1 known, first (median)", &rel),
        );
    }
    s.note(
        "One `handle` call per sample (timer resolution is far below the µs figures). \
         The first sight of a key costs one X25519 per stored key (2 per pairing: current and \
         previous) until a box opens; repeats hit the matched-key cache.",
    );
    Ok(s)
}
