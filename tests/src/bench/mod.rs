//! The loopback benchmark harness behind `xrcp-bench` (BENCHMARKS.md).
//!
//! Sections: `cpu` (same-run CPU breakdowns the targets use), `crypto` (the attachment
//! keystream paths and the per-byte floor against scp; also part of `cpu`), `setup`, `rtt`, `files`,
//! `memory`, `discovery`, `programs` (the real programs against OpenSSH), `pairings` (the
//! programs with 10,000 pairings); then a verdict on each target. Every figure is a median with
//! p10/p90 and MAD; every comparison is a ratio to a baseline sampled in the same run,
//! interleaved round by round.
//!
//! ```text
//! xrcp-bench [SECTION…] [--quick] [--scale F] [--file-mib N] [--out FILE]
//! xrcp-bench criterion [DIR]        # medians ± MAD from target/criterion (cargo bench -p xrcp)
//! xrcp-bench profile-files store|get [MIB] [COUNT]   # XRCP transfers only, for a profiler
//! xrcp-bench profile-programs store|get [MIB] [COUNT]   # the programs' transfers only
//! ```

mod cpu;
mod crypto;
mod discovery;
mod files;
mod fixtures;
mod h2base;
mod pairings;
mod programs;
mod rtt;
mod setup;
mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fixtures::Res;
use stats::{fmt_time, Section, Summary};

/// Command-line settings.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Small sample counts and files: checks that everything runs, in seconds.
    pub(crate) quick: bool,
    /// Multiplies every sample count.
    pub(crate) scale: f64,
    /// File size for the throughput section.
    pub(crate) file_mib: u32,
}

impl Config {
    /// A section's default sample count, scaled (quick: a tenth, at least 3).
    pub(crate) fn samples(&self, default: usize) -> usize {
        let n = default as f64 * self.scale * if self.quick { 0.1 } else { 1.0 };
        (n.round() as usize).max(3)
    }
}

/// Figures shared between sections (for the ratios and the target verdicts).
#[derive(Default, Debug)]
pub(crate) struct Results {
    summaries: BTreeMap<String, Summary>,
    values: BTreeMap<String, f64>,
}

impl Results {
    pub(crate) fn put(&mut self, key: &str, s: Summary) {
        self.summaries.insert(key.to_owned(), s);
    }
    pub(crate) fn put_value(&mut self, key: &str, v: f64) {
        self.values.insert(key.to_owned(), v);
    }
    pub(crate) fn get(&self, key: &str) -> Summary {
        *self
            .summaries
            .get(key)
            .unwrap_or_else(|| panic!("no result {key}"))
    }
    pub(crate) fn try_get(&self, key: &str) -> Option<Summary> {
        self.summaries.get(key).copied()
    }
    pub(crate) fn try_value(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }
}

const SECTIONS: [&str; 9] = [
    "cpu",
    "crypto",
    "setup",
    "rtt",
    "files",
    "memory",
    "discovery",
    "programs",
    "pairings",
];

fn usage() -> ! {
    eprintln!(
        "usage: xrcp-bench [{}…] [--quick] [--scale F] [--file-mib N] [--out FILE]\n       \
         xrcp-bench criterion [DIR]\n       \
         xrcp-bench profile-files store|get [MIB] [COUNT]\n       \
         xrcp-bench profile-programs store|get [MIB] [COUNT]",
        SECTIONS.join("|")
    );
    std::process::exit(2)
}

pub(crate) fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("memory-child") => {
            let mib = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| usage());
            runtime().block_on(files::memory_child(mib)).map(|line| {
                println!("MEMORY {line}");
            })
        }
        Some("profile-files") => {
            let dir = args.get(1).cloned().unwrap_or_else(|| usage());
            let mib = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
            let count = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
            runtime().block_on(files::profile_only(&dir, mib, count))
        }
        Some("profile-programs") => {
            let dir = args.get(1).cloned().unwrap_or_else(|| usage());
            let mib = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(256);
            let count = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
            programs::profile_only(&dir, mib, count)
        }
        Some("criterion") => criterion_table(
            &args
                .get(1)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target/criterion")),
        ),
        _ => run_sections(&args),
    };
    if let Err(e) = result {
        eprintln!("xrcp-bench: {e}");
        std::process::exit(1);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn run_sections(args: &[String]) -> Res<()> {
    let mut cfg = Config {
        quick: false,
        scale: 1.0,
        file_mib: 256,
    };
    let mut wanted = Vec::new();
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => cfg.quick = true,
            "--scale" => {
                cfg.scale = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--file-mib" => {
                cfg.file_mib = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--out" => out = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            s if SECTIONS.contains(&s) => wanted.push(s.to_owned()),
            "all" => {}
            _ => usage(),
        }
    }
    if cfg.quick && !args.iter().any(|a| a == "--file-mib") {
        cfg.file_mib = 16;
    }
    if wanted.is_empty() {
        wanted = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let want = |s: &str| wanted.iter().any(|w| w == s);

    let mut report = String::new();
    let _ = writeln!(report, "{}", machine());
    eprintln!("{}", machine());
    let mut r = Results::default();
    let rt = runtime();
    let emit = |s: Section, report: &mut String| {
        let md = s.markdown();
        print!("{md}");
        report.push_str(&md);
    };
    // The CPU parts run first: setup's and rtt's notes and the targets refer to them.
    if want("cpu") || want("setup") {
        emit(cpu::setup_parts(&cfg, &mut r)?, &mut report);
    }
    if want("cpu") || want("rtt") {
        emit(cpu::message_parts(&cfg, &mut r)?, &mut report);
    }
    if want("cpu") || want("files") {
        emit(cpu::byte_parts(&cfg, &mut r)?, &mut report);
    }
    if want("cpu") || want("crypto") {
        emit(crypto::run(&cfg, &mut r)?, &mut report);
    }
    if want("cpu") {
        emit(cpu::alternatives(&cfg, &mut r)?, &mut report);
    }
    if want("setup") {
        emit(rt.block_on(setup::run(&cfg, &mut r))?, &mut report);
    }
    if want("rtt") {
        emit(rt.block_on(rtt::run(&cfg, &mut r))?, &mut report);
    }
    if want("files") {
        emit(rt.block_on(files::run(&cfg, &mut r))?, &mut report);
    }
    if want("memory") {
        emit(files::memory(&cfg, &mut r)?, &mut report);
    }
    if want("discovery") {
        emit(discovery::run(&cfg, &mut r)?, &mut report);
    }
    if want("programs") {
        emit(programs::run(&cfg, &mut r, &rt)?, &mut report);
    }
    if want("pairings") {
        emit(pairings::run(&cfg, &mut r)?, &mut report);
    }
    emit(targets(&r), &mut report);
    if let Some(path) = out {
        std::fs::write(&path, &report)?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// nproc, CPU model, memory and load, for the report's header.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cores} CPUs ({model}), MemTotal {mem}, load average at start {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The issue's targets, judged from this run's figures.
fn targets(r: &Results) -> Section {
    let mut s = Section::new("Targets");
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    if let (Some(plain), Some(kem), Some(lib), Some(nopeek), Some(ql), Some(qn)) = (
        r.try_get("setup.plain"),
        r.try_get("setup.kem"),
        r.try_get("setup.lib"),
        r.try_get("setup.nopeek"),
        r.try_get("setup.target.lib"),
        r.try_get("setup.target.nopeek"),
    ) {
        s.note(format!(
            "Session setup ≤ 1.5 × plain rustls + KEM (issue 8; medians: 1.5 × {} + {}): library drivers {} = \
             {:.2}× [{:.2}–{:.2}] of the bound per round → {}; serial driver (KEM first, no peek) {} = \
             {:.2}× [{:.2}–{:.2}] → {}",
            fmt_time(plain.median),
            fmt_time(kem.median),
            fmt_time(lib.median),
            ql.median,
            ql.p10,
            ql.p90,
            verdict(ql.median <= 1.0),
            fmt_time(nopeek.median),
            qn.median,
            qn.p10,
            qn.p90,
            verdict(qn.median <= 1.0),
        ));
    }
    if let (Some(lib), Some(new)) = (r.try_get("setup.lib"), r.try_get("setup.lib_new")) {
        s.note(format!(
            "Session setup < 3 ms in the default build (issue 16; scripted connect on loopback): \
             known pairing {} [{}–{}], new pairing {} [{}–{}] → {}",
            fmt_time(lib.median),
            fmt_time(lib.p10),
            fmt_time(lib.p90),
            fmt_time(new.median),
            fmt_time(new.p10),
            fmt_time(new.p90),
            verdict(lib.median < 0.003 && new.median < 0.003)
        ));
    }
    for tag in ["zstd", "plain", "zstd_nodelay", "plain_nodelay"] {
        if let Some(q) = r.try_get(&format!("rtt.{tag}.ratio")) {
            s.note(format!(
                "Command round trip ≤ 2 × bare HTTP/2 ({tag}): {:.2}× [{:.2}–{:.2}] → {}",
                q.median,
                q.p10,
                q.p90,
                verdict(q.median <= 2.0)
            ));
        }
    }
    for (key, what) in [("files.store.ratio", "store"), ("files.get.ratio", "get")] {
        if let Some(q) = r.try_get(key) {
            s.note(format!(
                "File throughput ≥ 45% of raw rustls ({what}): {:.0}% [{:.0}–{:.0}%] → {}",
                q.median * 100.0,
                q.p10 * 100.0,
                q.p90 * 100.0,
                verdict(q.median >= 0.45)
            ));
        }
    }
    for (key, what) in [
        ("prog.store.vs_scp", "xrcp-ctrl /store vs scp upload"),
        ("prog.get.vs_scp", "xrcp-ctrl /get vs scp download"),
    ] {
        if let Some(q) = r.try_get(key) {
            s.note(format!(
                "Programs' files ≥ 1.0 × scp chacha20-poly1305 ({what}): {:.2}× [{:.2}–{:.2}] → {}",
                q.median,
                q.p10,
                q.p90,
                verdict(q.median >= 1.0)
            ));
        }
    }
    for (key, what) in [
        (
            "prog.store.vs_sftp_fsync",
            "xrcp-ctrl /store vs sftp -f upload",
        ),
        (
            "prog.get.vs_sftp_fsync",
            "xrcp-ctrl /get vs sftp -f download",
        ),
    ] {
        if let Some(q) = r.try_get(key) {
            s.note(format!(
                "Programs' files against OpenSSH with the same durability (both flush each \
                 received file to disk; chacha20-poly1305) ({what}): {:.2}× [{:.2}–{:.2}]",
                q.median, q.p10, q.p90
            ));
        }
    }
    // The issue's alternative to ≥ 1.0×: the arithmetic that the remaining gap is the
    // protocol's own per-byte work. CPU per GB of both ends (from `programs`: 0 store, 1 get,
    // 2 scp upload, 3 scp download) against the protocol's mandated crypto per byte (from
    // `crypto`): if the programs' excess over scp is no more than that work, everything else
    // they do costs less than scp's whole pipeline.
    for (what, ours, theirs, own, floor, scp_rate) in [
        (
            "store",
            0,
            2,
            "crypto.own.store",
            "crypto.floor.store",
            "prog.files.2",
        ),
        (
            "get",
            1,
            3,
            "crypto.own.get",
            "crypto.floor.get",
            "prog.files.3",
        ),
    ] {
        let (Some(x), Some(y), Some(own)) = (
            r.try_get(&format!("prog.cpu.{ours}")),
            r.try_get(&format!("prog.cpu.{theirs}")),
            r.try_value(own),
        ) else {
            continue;
        };
        let gap = x.median - y.median;
        let rest = x.median - own;
        let mut line = format!(
            "Programs' files, the arithmetic ({what}): {:.2} CPU s/GB against scp's {:.2}; the \
             excess {gap:.2} is {} the protocol's own per-byte work {own:.2}, and everything \
             else the programs do costs {rest:.2}, {:.2}× scp's whole pipeline → {}",
            x.median,
            y.median,
            if gap <= own { "within" } else { "more than" },
            rest / y.median,
            if gap <= own {
                "the gap is the protocol's own work"
            } else {
                "NOT explained by the protocol's own work"
            }
        );
        if let (Some(ceiling), Some(scp)) = (r.try_value(floor), r.try_get(scp_rate)) {
            line.push_str(&format!(
                "; crypto alone on two cores allows at most {ceiling:.0} MB/s, {:.2}× scp's {:.0} MB/s",
                ceiling / scp.median,
                scp.median
            ));
        }
        s.note(line);
    }
    for (key, what) in [
        ("pairings.host.list", "xrcp-host list"),
        ("pairings.ctrl.list", "xrcp-ctrl list"),
        (
            "pairings.host.find",
            "xrcp-host find, start until listening",
        ),
    ] {
        if let Some(q) = r.try_get(key) {
            s.note(format!(
                "{what} with {} pairings < 50 ms (the whole process): {} [{}–{}] → {}",
                pairings::PAIRINGS,
                fmt_time(q.median),
                fmt_time(q.p10),
                fmt_time(q.p90),
                verdict(q.median < 0.050)
            ));
        }
    }
    if let (Some(a), Some(b)) = (
        r.try_get("disc.100.repeat_ratio"),
        r.try_get("disc.1000.repeat_ratio"),
    ) {
        s.note(format!(
            "Repeated announcement O(1) in pairings: repeated cost at 100 / 1,000 pairings = {:.2}× / {:.2}× \
             the cost at 1 → {}",
            a.median,
            b.median,
            verdict(b.median < 2.0)
        ));
    }
    if let Some(m) = r.try_value("mem.ratio") {
        s.note(format!(
            "Memory flat in file size: peak RSS ratio between the two sizes = {m:.3} → {}",
            verdict(m < 1.1)
        ));
    }
    s
}

/// Medians and MADs of criterion's saved estimates (`cargo bench -p xrcp` first).
fn criterion_table(dir: &Path) -> Res<()> {
    let mut rows = Vec::new();
    collect_estimates(dir, &mut rows)?;
    if rows.is_empty() {
        return Err(format!("no criterion results under {}", dir.display()).into());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("| benchmark | median | MAD | throughput at median |");
    println!("|---|---:|---:|---:|");
    for (id, median, mad, bytes) in rows {
        let tput = bytes
            .map(|b| format!("{:.0} MB/s", b as f64 / (median * 1e-9) / 1e6))
            .unwrap_or_default();
        println!(
            "| {id} | {} | {} | {tput} |",
            fmt_time(median * 1e-9),
            fmt_time(mad * 1e-9)
        );
    }
    Ok(())
}

type EstimateRow = (String, f64, f64, Option<u64>);

fn collect_estimates(dir: &Path, rows: &mut Vec<EstimateRow>) -> Res<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        let est = p.join("new/estimates.json");
        let bench = p.join("new/benchmark.json");
        if est.is_file() && bench.is_file() {
            let est: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(est)?)?;
            let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bench)?)?;
            let id = b["full_id"].as_str().unwrap_or("?").to_owned();
            let median = est["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
            let mad = est["median_abs_dev"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let bytes = b["throughput"]["Bytes"].as_u64();
            rows.push((id, median, mad, bytes));
        } else {
            collect_estimates(&p, rows)?;
        }
    }
    Ok(())
}
