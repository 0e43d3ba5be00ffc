//! Replays every saved input under `fuzz/regressions/<target>/` through its harness, without
//! libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.
//! A file that makes a harness panic fails the test with its path. Set
//! `XRCP_FUZZ_REPLAY_DIR` to replay another tree of the same layout instead (e.g. a corpus:
//! `XRCP_FUZZ_REPLAY_DIR=fuzz/corpus`).

use std::path::Path;

#[test]
fn regressions_replay_cleanly() {
    let root = match std::env::var_os("XRCP_FUZZ_REPLAY_DIR") {
        Some(dir) => Path::new(&dir).to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions"),
    };
    let mut replayed = 0;
    for (name, run) in xrcp_fuzz::TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.is_file()) {
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} regression inputs");
}
