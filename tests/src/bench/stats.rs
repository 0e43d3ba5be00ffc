//! Medians with spread, paired ratios, and the tables the harness prints.
//!
//! Every figure is a median over samples with its 10th/90th percentiles and the median
//! absolute deviation (MAD). Where a figure has a baseline, both are sampled in the same run,
//! interleaved round by round, and the ratio is the median of the per-round ratios (with its
//! own p10/p90): load from other processes on a shared machine hits both halves of a round
//! alike, so the ratio is far steadier than either absolute figure.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Median, p10, p90 and MAD of a sample set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) median: f64,
    pub(crate) p10: f64,
    pub(crate) p90: f64,
    pub(crate) mad: f64,
}

/// Linear interpolation between closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

pub(crate) fn summarize(xs: &[f64]) -> Summary {
    let mut s: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    let median = percentile(&s, 0.5);
    let mut dev: Vec<f64> = s.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(|a, b| a.total_cmp(b));
    Summary {
        n: s.len(),
        median,
        p10: percentile(&s, 0.1),
        p90: percentile(&s, 0.9),
        mad: percentile(&dev, 0.5),
    }
}

/// Per-round ratios `a[i] / b[i]`.
pub(crate) fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// What a row's numbers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds per operation.
    Time,
    /// MB/s (10^6 bytes per second).
    Rate,
    /// KiB of memory.
    KiB,
    /// A plain number.
    Count,
}

/// One line of a table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) unit: Unit,
    pub(crate) summary: Summary,
    /// `(baseline name, per-round ratios summarized)`.
    pub(crate) ratio: Option<(String, Summary)>,
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, unit: Unit, samples: &[f64]) -> Row {
        Row {
            name: name.into(),
            unit,
            summary: summarize(samples),
            ratio: None,
        }
    }

    pub(crate) fn with_ratio(mut self, baseline: impl Into<String>, ratios: &[f64]) -> Row {
        self.ratio = Some((baseline.into(), summarize(ratios)));
        self
    }
}

pub(crate) fn fmt_value(unit: Unit, v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    match unit {
        Unit::Time => fmt_time(v),
        Unit::Rate => format!("{v:.0} MB/s"),
        Unit::KiB => format!("{:.1} MiB", v / 1024.0),
        Unit::Count => format!("{v:.0}"),
    }
}

pub(crate) fn fmt_time(secs: f64) -> String {
    let a = secs.abs();
    if a >= 1.0 {
        format!("{secs:.3} s")
    } else if a >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else if a >= 1e-6 {
        format!("{:.2} µs", secs * 1e6)
    } else {
        format!("{:.0} ns", secs * 1e9)
    }
}

/// A titled table with notes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
}

impl Section {
    pub(crate) fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }

    pub(crate) fn row(&mut self, row: Row) -> &mut Section {
        self.rows.push(row);
        self
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) -> &mut Section {
        self.notes.push(note.into());
        self
    }

    /// The section as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(
            out,
            "| measurement | median | p10 | p90 | MAD | n | ratio to baseline: median [p10–p90] |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for r in &self.rows {
            let s = &r.summary;
            let ratio = match &r.ratio {
                Some((base, q)) => {
                    format!("{:.3}× [{:.3}–{:.3}] vs {}", q.median, q.p10, q.p90, base)
                }
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                fmt_value(r.unit, s.median),
                fmt_value(r.unit, s.p10),
                fmt_value(r.unit, s.p90),
                fmt_value(r.unit, s.mad),
                s.n,
                ratio
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out.push('\n');
        out
    }
}

/// Times `f` per call: a warm-up, then `samples` samples of enough calls each to last about
/// `sample_time` (at least one call). Returns seconds per call, one value per sample.
pub(crate) fn micro<T>(
    samples: usize,
    sample_time: Duration,
    mut f: impl FnMut() -> T,
) -> Vec<f64> {
    let warm = Instant::now();
    let mut calls = 0u64;
    while warm.elapsed() < sample_time.max(Duration::from_millis(20)) || calls < 2 {
        std::hint::black_box(f());
        calls += 1;
    }
    let per_call = warm.elapsed().as_secs_f64() / calls as f64;
    let iters = ((sample_time.as_secs_f64() / per_call).ceil() as u64).max(1);
    (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(f());
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect()
}

/// Times `a` and `b` alternately (A, B, A, B, …), each sample lasting about `sample_time`,
/// so both see the same load; returns seconds per call of each, paired by sample.
pub(crate) fn micro_pair<T, U>(
    samples: usize,
    sample_time: Duration,
    mut a: impl FnMut() -> T,
    mut b: impl FnMut() -> U,
) -> (Vec<f64>, Vec<f64>) {
    let iters = |f: &mut dyn FnMut()| {
        let warm = Instant::now();
        let mut calls = 0u64;
        while warm.elapsed() < sample_time.max(Duration::from_millis(10)) || calls < 2 {
            f();
            calls += 1;
        }
        let per_call = warm.elapsed().as_secs_f64() / calls as f64;
        ((sample_time.as_secs_f64() / per_call).ceil() as u64).max(1)
    };
    let na = iters(&mut || {
        std::hint::black_box(a());
    });
    let nb = iters(&mut || {
        std::hint::black_box(b());
    });
    let mut ta = Vec::with_capacity(samples);
    let mut tb = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..na {
            std::hint::black_box(a());
        }
        ta.push(t.elapsed().as_secs_f64() / na as f64);
        let t = Instant::now();
        for _ in 0..nb {
            std::hint::black_box(b());
        }
        tb.push(t.elapsed().as_secs_f64() / nb as f64);
    }
    (ta, tb)
}

/// Times `run` on inputs made by `setup` (untimed), one call per sample.
pub(crate) fn micro_batched<I, T>(
    samples: usize,
    mut setup: impl FnMut() -> I,
    mut run: impl FnMut(I) -> T,
) -> Vec<f64> {
    for _ in 0..2 {
        std::hint::black_box(run(setup()));
    }
    (0..samples)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            std::hint::black_box(run(input));
            t.elapsed().as_secs_f64()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_mad() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.mad, 1.0);
        assert!((s.p10 - 1.4).abs() < 1e-9);
        assert!((s.p90 - 4.6).abs() < 1e-9);
    }
}
