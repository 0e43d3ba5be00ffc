//! §2 Command round trip: `RemoteHostClient::send_command` → response, against a trivial
//! host application that answers at once, compared with a bare HTTP/2 request/response of
//! the same body sizes over the same TLS and h2 stacks (see `h2base`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use xrcp::session::RRResult;

use super::cpu::rtt_body_lengths;
use super::fixtures::{link, pattern, BenchApp, PlainTls, Res};
use super::h2base::H2Baseline;
use super::stats::{fmt_time, ratios, Row, Section, Unit};
use super::{Config, Results};

pub(crate) async fn run(cfg: &Config, r: &mut Results) -> Res<Section> {
    let mut s = Section::new("2. Command round trip on loopback");
    let rounds = cfg.samples(300);
    let warmup = 50;
    let pattern = pattern();
    let tls = PlainTls::new()?;

    struct Variant {
        tag: &'static str,
        label: &'static str,
        linked: super::fixtures::Linked,
        base: H2Baseline,
        req: Bytes,
        resp: usize,
        xrcp: Vec<f64>,
        bare: Vec<f64>,
    }
    let mut variants = Vec::new();
    for (tag, label, compression, nodelay) in [
        ("zstd", "zstd, as shipped", true, false),
        ("plain", "plain, as shipped", false, false),
        (
            "zstd_nodelay",
            "zstd, + TCP_NODELAY on the controller socket",
            true,
            true,
        ),
        (
            "plain_nodelay",
            "plain, + TCP_NODELAY on the controller socket",
            false,
            true,
        ),
    ] {
        let (req, resp) = rtt_body_lengths(compression)?;
        variants.push(Variant {
            tag,
            label,
            linked: link(
                Arc::new(BenchApp::new(pattern.clone())),
                compression,
                nodelay,
            )
            .await?,
            base: H2Baseline::connect(&tls, pattern.clone()).await?,
            req: Bytes::from(vec![0xa5; req]),
            resp,
            xrcp: Vec::new(),
            bare: Vec::new(),
        });
    }

    for round in 0..rounds + warmup {
        for v in variants.iter_mut() {
            // Alternate which goes first so neither always follows the other.
            for step in 0..2 {
                if (round + step) % 2 == 0 {
                    let t = Instant::now();
                    let got = v.linked.remote.client.send_command("/bench", 0).await?;
                    let dt = t.elapsed().as_secs_f64();
                    if !matches!(got, RRResult::Result(_)) {
                        return Err(format!("unexpected response {got:?}").into());
                    }
                    if round >= warmup {
                        v.xrcp.push(dt);
                    }
                } else {
                    let t = Instant::now();
                    let n = v.base.echo(v.req.clone(), v.resp).await?;
                    let dt = t.elapsed().as_secs_f64();
                    if n != v.resp as u64 {
                        return Err("short baseline response".into());
                    }
                    if round >= warmup {
                        v.bare.push(dt);
                    }
                }
            }
        }
    }

    for v in &variants {
        let base_name = "bare HTTP/2 (row above)";
        let b = Row::new(
            format!(
                "bare HTTP/2 over rustls, {} B request / {} B response (baseline)",
                v.req.len(),
                v.resp,
            ),
            Unit::Time,
            &v.bare,
        );
        r.put(&format!("rtt.{}.bare", v.tag), b.summary);
        s.row(b);
        let x = Row::new(
            format!(
                "XRCP send_command → response ({}; trivial HostApp)",
                v.label
            ),
            Unit::Time,
            &v.xrcp,
        )
        .with_ratio(base_name, &ratios(&v.xrcp, &v.bare));
        r.put(&format!("rtt.{}.xrcp", v.tag), x.summary);
        r.put(
            &format!("rtt.{}.ratio", v.tag),
            x.ratio.as_ref().map(|q| q.1).expect("ratio"),
        );
        s.row(x);
    }
    s.note(format!(
        "Rounds: {rounds} per variant after {warmup} warm-up rounds; XRCP and baseline requests \
         alternate. Compression `zstd` is the default (both sides offer it); `plain` has it off \
         on both sides. The controller's background event long-poll stays open throughout, as \
         in every real session."
    ));
    for tag in ["zstd", "plain", "zstd_nodelay", "plain_nodelay"] {
        let cpu_tag = tag.trim_end_matches("_nodelay");
        if let (Some(x), Some(b), Some(cpu)) = (
            r.try_get(&format!("rtt.{tag}.xrcp")),
            r.try_get(&format!("rtt.{tag}.bare")),
            r.try_value(&format!("msg.{cpu_tag}.total")),
        ) {
            s.note(format!(
                "{tag}: XRCP − bare = {}; session-layer CPU per round trip (2b) = {}",
                fmt_time(x.median - b.median),
                fmt_time(cpu)
            ));
        }
    }
    Ok(s)
}
