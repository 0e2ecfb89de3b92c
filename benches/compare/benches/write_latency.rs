//! Writes into a 1M-key store, call by call: batches of 1000 and single
//! generates, timed one by one, so that the commits that move the digest
//! index's rows on (fresh rows into `digests_recent` once per 16,384 new
//! keys, those into `digests` once per 262,144) show with their own latency
//! and their share of the throughput. The batches cover one whole cycle of
//! `digests_recent`, from empty to its move into `digests`: their mean is
//! the steady rate, moves included.
//!
//! Works on a copy of the 1M-key fixture (the other programs of the run
//! read the original). Prints JSON and writes it to
//! `target/bench-results/write_latency.json` for `scripts/bench.sh`.

mod support;

use std::time::Instant;

use apikeys::{KeyStore, StoreOptions};

use support::{build_store, request, store_path, FixtureDir};

/// 300,000 keys: past the 262,144 that fill `digests_recent` once.
const BATCHES: usize = 300;
const BATCH: usize = 1000;
/// More single generates than the fresh table holds, so that one moves it.
const SINGLES: usize = 17_000;

/// Milliseconds per call, sorted, and their summary.
fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({
        "calls": ms.len(),
        "median_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
        "mean_ms": mean,
        "slowest_ms": ms[ms.len().saturating_sub(4)..].to_vec(),
    })
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (n, batches, singles) = if measuring {
        (1_000_000, BATCHES, SINGLES)
    } else {
        (10_000, 4, 100)
    };
    let dir = FixtureDir::new();
    let fixture = store_path(dir.path(), n);
    if !fixture.exists() {
        drop(build_store(&fixture, n));
    }
    let path = dir.path().join(format!("write-latency-{n}.redb"));
    std::fs::copy(&fixture, &path).expect("copy the fixture");
    let store = KeyStore::open(&path, StoreOptions::new()).expect("open store");

    let requests: Vec<_> = (0..BATCH).map(request).collect();
    let batch_ms: Vec<f64> = (0..batches)
        .map(|_| {
            let started = Instant::now();
            let keys = store.generate_batch(&requests).expect("generate batch");
            assert_eq!(keys.len(), BATCH);
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let keys_per_second = (batches * BATCH) as f64 / (batch_ms.iter().sum::<f64>() / 1e3);
    let single_ms: Vec<f64> = (0..singles)
        .map(|i| {
            let started = Instant::now();
            store.generate(&request(i)).expect("generate");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    store.close().expect("close store");
    let _ = std::fs::remove_file(&path);

    let result = serde_json::json!({
        "keys": n,
        "batch_size": BATCH,
        "batch": summary(batch_ms),
        "batch_keys_per_second": keys_per_second,
        "single": summary(single_ms),
    });
    println!("{result}");
    if measuring {
        let out = support::results_dir();
        std::fs::write(out.join("write_latency.json"), result.to_string())
            .expect("write write_latency.json");
    }
}
