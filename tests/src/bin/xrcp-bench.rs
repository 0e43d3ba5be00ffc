//! `xrcp-bench`: loopback benchmarks of session setup, command round trips, file throughput,
//! memory and discovery, each against a baseline measured in the same run (BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p xrcp-tests --bin xrcp-bench -- [SECTION…] [--quick] [--out FILE]
//! ```
//!
//! The harness lives in `tests/src/bench/`.

#[path = "../bench/mod.rs"]
mod bench;

fn main() {
    bench::main();
}
