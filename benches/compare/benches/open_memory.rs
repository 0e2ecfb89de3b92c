//! Opening a 1M-key store: wall time, and resident memory per key.
//!
//! Each measurement runs in a fresh child process, so that the memory of
//! building the store (or of an earlier open) is not counted: the child reads
//! its resident set size (`/proc/self/statm`), opens the store in exclusive
//! mode (which loads the in-memory index), reads it again, and prints one
//! JSON line. The parent prints the median of the runs as JSON, and writes
//! it to `target/bench-results/open.json` for `scripts/bench.sh`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use apikeys::{KeyStore, Rejection, StoreOptions, VerifyError};

use support::{build_store, resident_bytes, store_path, FixtureDir};

const CHILD: &str = "APIKEYS_OPEN_MEMORY_CHILD";
const RUNS: usize = 5;

fn main() {
    if let Some(path) = std::env::var_os(CHILD) {
        measure_once(Path::new(&path));
        return;
    }
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let n = if measuring { 1_000_000 } else { 10_000 };
    let dir = FixtureDir::new();
    let path = store_path(dir.path(), n);
    if !path.exists() {
        drop(build_store(&path, n));
    }
    let runs = if measuring { RUNS } else { 1 };
    let mut seconds = Vec::new();
    let mut per_key = Vec::new();
    for _ in 0..runs {
        let output = Command::new(std::env::current_exe().expect("own path"))
            .env(CHILD, &path)
            .output()
            .expect("run child");
        assert!(
            output.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = String::from_utf8(output.stdout).expect("utf-8");
        let value: serde_json::Value = serde_json::from_str(line.trim()).expect("child JSON");
        seconds.push(value["open_seconds"].as_f64().expect("open_seconds"));
        let grown = value["rss_after"].as_f64().expect("rss_after")
            - value["rss_before"].as_f64().expect("rss_before");
        per_key.push(grown / n as f64);
    }
    let result = serde_json::json!({
        "keys": n,
        "runs": runs,
        "open_seconds_median": median(&mut seconds),
        "bytes_per_key_median": median(&mut per_key),
        "open_seconds": seconds,
        "bytes_per_key": per_key,
    });
    println!("{result}");
    if measuring {
        let out = support::results_dir();
        std::fs::write(out.join("open.json"), result.to_string()).expect("write open.json");
    }
}

fn measure_once(path: &Path) {
    let before = resident_bytes();
    let started = Instant::now();
    let store = KeyStore::open(path, StoreOptions::new()).expect("open store");
    let open_seconds = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    // The store answers: an unknown well-formed key is looked up and not found.
    let unknown =
        apikeys::generate_with(&mut rand_core::OsRng, "flz", Some("prod")).expect("random key");
    assert!(matches!(
        store.verify(unknown.expose_secret()),
        Err(VerifyError::Rejected(Rejection::NotFound))
    ));
    println!(
        "{}",
        serde_json::json!({
            "open_seconds": open_seconds,
            "rss_before": before,
            "rss_after": after,
        })
    );
    store.close().expect("close");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
