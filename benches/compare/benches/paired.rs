//! Paired ratios: peers measured in alternating rounds, so that a machine
//! shared with other work slows both sides of each ratio alike.
//!
//! Criterion (benches/verify.rs) measures each peer for a few seconds, one
//! after the other; on a busy 2-core machine the load can change between
//! them. Here each round times a batch of verifies of every peer back to
//! back, and the ratio is taken per round; the median ratio over the rounds
//! is printed as JSON and written to `target/bench-results/paired.json`.
//!
//! Pairs: at 1M keys, apikeys exclusive (usage tracking on, the default)
//! against the floor (BLAKE3 + hash map) and against SQLite Sanctum-style,
//! verifies on 2 threads against 1 (the floor beside it as the control), and
//! in shared mode apikeys against raw redb in the same multi-process mode;
//! at 100k keys, usage tracking on against off (two stores: one file cannot
//! be open twice in exclusive mode), and in shared mode apikeys against raw
//! redb in the same multi-process mode, and tracking on against off (two
//! handles on one file, as two worker processes would hold).

mod support;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::PathBuf;
use std::time::Instant;

use apikeys::{KeyStore, SecretKey, StoreOptions};
use criterion::black_box;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest as _, Sha256};

use redb::ConcurrencyMode;
use support::{build_store, pick, store_path, DigestPrefix, FixtureDir, Presented, RawRedb};

const SAMPLE: usize = 8192;
const ROUNDS: usize = 41;
const BATCH: usize = 20_000;

/// Nanoseconds per call of `verify` over the sample, once each in a batch.
fn time_batch(sample: &Presented, calls: usize, mut verify: impl FnMut(&str) -> bool) -> f64 {
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..calls {
        found += usize::from(verify(black_box(sample.get(i))));
    }
    assert_eq!(found, calls, "every sample key must verify");
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// Verifies per second of `threads` threads verifying `calls` keys each,
/// starting at different places in the sample.
fn throughput(
    sample: &Presented,
    calls: usize,
    threads: usize,
    verify: &(dyn Fn(&str) -> bool + Sync),
) -> f64 {
    let started = Instant::now();
    let found: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let first = t * sample.len() / threads;
                    (0..calls)
                        .map(|i| usize::from(verify(black_box(sample.get(first + i)))))
                        .sum::<usize>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("verify thread"))
            .sum()
    });
    assert_eq!(found, calls * threads, "every sample key must verify");
    (calls * threads) as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn sample_of(secrets: &[SecretKey], seed: u64) -> Presented {
    Presented::new(pick(secrets, SAMPLE, &mut ChaCha8Rng::seed_from_u64(seed)))
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (big, small) = if measuring {
        (1_000_000, 100_000)
    } else {
        (20_000, 2_000)
    };
    let rounds = if measuring { ROUNDS } else { 3 };
    let dir = FixtureDir::new();

    // 1M: floor, apikeys exclusive, SQLite Sanctum-style.
    let path = dir.path().join(format!("paired-{big}.redb"));
    let secrets = build_store(&path, big);
    let sample = sample_of(&secrets, 1);
    let floor_key = blake3::derive_key("apikeys bench floor", b"");
    let mut floor: HashMap<[u8; 32], u32, BuildHasherDefault<DigestPrefix>> =
        HashMap::with_capacity_and_hasher(big, Default::default());
    for (i, secret) in secrets.iter().enumerate() {
        let digest = blake3::keyed_hash(&floor_key, secret.expose_secret().as_bytes());
        floor.insert(*digest.as_bytes(), i as u32);
    }
    let sqlite_path = dir.path().join(format!("paired-{big}.sqlite"));
    let _ = std::fs::remove_file(&sqlite_path);
    let mut db = Connection::open(&sqlite_path).expect("open sqlite");
    db.execute_batch(
        "CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL, token TEXT NOT NULL UNIQUE, abilities TEXT,
            last_used_at TEXT, expires_at TEXT)",
    )
    .expect("schema");
    {
        let txn = db.transaction().expect("transaction");
        {
            let mut insert = txn
                .prepare(
                    "INSERT INTO personal_access_tokens (name, token, abilities)
                     VALUES (?1, ?2, '[\"contacts:read\"]')",
                )
                .expect("prepare");
            for (i, secret) in secrets.iter().enumerate() {
                let token = hex::encode(Sha256::digest(secret.expose_secret().as_bytes()));
                insert
                    .execute(rusqlite::params![format!("Service key {i}"), token])
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    let store = KeyStore::open(&path, StoreOptions::new()).expect("open store");
    let (mut vs_floor, mut vs_sqlite) = (Vec::new(), Vec::new());
    let (mut floor_ns, mut apikeys_ns, mut sqlite_ns) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up round makes every sample key's details resident.
    for round in 0..=rounds {
        let f = time_batch(&sample, BATCH, |key| {
            let digest = blake3::keyed_hash(&floor_key, key.as_bytes());
            floor.contains_key(digest.as_bytes())
        });
        let a = time_batch(&sample, BATCH, |key| store.verify(key).is_ok());
        let s = time_batch(&sample, BATCH / 20, |key| {
            let token = hex::encode(Sha256::digest(key.as_bytes()));
            let mut select = db
                .prepare_cached(
                    "SELECT id, name, abilities, expires_at FROM personal_access_tokens
                     WHERE token = ?1 LIMIT 1",
                )
                .expect("prepare");
            select
                .query_row([token], |row| row.get::<_, i64>(0))
                .optional()
                .expect("select")
                .is_some()
        });
        if round > 0 {
            vs_floor.push(a / f);
            vs_sqlite.push(s / a);
            floor_ns.push(f);
            apikeys_ns.push(a);
            sqlite_ns.push(s);
        }
    }
    // Verifies/s on 2 threads against 1, apikeys and (control) the floor.
    let floor_verify = |key: &str| {
        let digest = blake3::keyed_hash(&floor_key, key.as_bytes());
        floor.contains_key(digest.as_bytes())
    };
    let apikeys_verify = |key: &str| store.verify(key).is_ok();
    let (mut threads_apikeys, mut threads_floor, mut threads_relative) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=rounds {
        let a1 = throughput(&sample, BATCH, 1, &apikeys_verify);
        let a2 = throughput(&sample, BATCH, 2, &apikeys_verify);
        let f1 = throughput(&sample, BATCH, 1, &floor_verify);
        let f2 = throughput(&sample, BATCH, 2, &floor_verify);
        if round > 0 {
            threads_apikeys.push(a2 / a1);
            threads_floor.push(f2 / f1);
            // What apikeys makes of a second thread, given what the machine
            // gave the floor in the same round.
            threads_relative.push((a2 / a1) / (f2 / f1));
        }
    }
    store.close().expect("close");
    drop(db);
    drop(floor);

    // 1M, shared mode: apikeys against raw redb.
    let raw_big_path = dir.path().join(format!("paired-raw-{big}.redb"));
    RawRedb::build(&raw_big_path, &secrets);
    let raw_big = RawRedb::open(&raw_big_path, ConcurrencyMode::MultiWriter);
    let shared_big = KeyStore::open(&path, StoreOptions::new().shared()).expect("open shared");
    let mut shared_big_vs_raw = Vec::new();
    for round in 0..=rounds {
        let a = time_batch(&sample, BATCH / 10, |key| shared_big.verify(key).is_ok());
        let r = time_batch(&sample, BATCH / 10, |key| raw_big.verify(key).is_some());
        if round > 0 {
            shared_big_vs_raw.push(a / r);
        }
    }
    shared_big.close().expect("close");
    drop(raw_big);

    // 100k: usage tracking on against off, two stores of the same size.
    let on_path = store_path(dir.path(), small);
    let off_path: PathBuf = dir.path().join(format!("paired-untracked-{small}.redb"));
    let on_secrets = build_store(&on_path, small);
    let off_secrets = build_store(&off_path, small);
    let on_sample = sample_of(&on_secrets, 2);
    let off_sample = sample_of(&off_secrets, 2);
    let on = KeyStore::open(&on_path, StoreOptions::new()).expect("open tracked");
    let off =
        KeyStore::open(&off_path, StoreOptions::new().track_usage(false)).expect("open untracked");
    let mut tracking = Vec::new();
    for round in 0..=rounds {
        let t_on = time_batch(&on_sample, BATCH, |key| on.verify(key).is_ok());
        let t_off = time_batch(&off_sample, BATCH, |key| off.verify(key).is_ok());
        if round > 0 {
            tracking.push(t_on / t_off);
        }
    }
    on.close().expect("close");
    off.close().expect("close");

    // 100k, shared mode: apikeys (tracking on and off) and raw redb.
    let raw_path = dir.path().join(format!("paired-raw-{small}.redb"));
    RawRedb::build(&raw_path, &on_secrets);
    let raw = RawRedb::open(&raw_path, ConcurrencyMode::MultiWriter);
    let shared = KeyStore::open(&on_path, StoreOptions::new().shared()).expect("open shared");
    let shared_off = KeyStore::open(&on_path, StoreOptions::new().shared().track_usage(false))
        .expect("open shared, untracked");
    let (mut shared_vs_raw, mut shared_tracking) = (Vec::new(), Vec::new());
    let (mut shared_ns, mut raw_ns) = (Vec::new(), Vec::new());
    for round in 0..=rounds {
        let a = time_batch(&on_sample, BATCH / 10, |key| shared.verify(key).is_ok());
        let r = time_batch(&on_sample, BATCH / 10, |key| raw.verify(key).is_some());
        let u = time_batch(&on_sample, BATCH / 10, |key| shared_off.verify(key).is_ok());
        if round > 0 {
            shared_vs_raw.push(a / r);
            shared_tracking.push(a / u);
            shared_ns.push(a);
            raw_ns.push(r);
        }
    }
    shared.close().expect("close");
    shared_off.close().expect("close");

    let result = serde_json::json!({
        "rounds": rounds,
        "keys": big,
        "exclusive_over_floor_median": median(&mut vs_floor),
        "sqlite_over_exclusive_median": median(&mut vs_sqlite),
        "floor_ns_median": median(&mut floor_ns),
        "exclusive_ns_median": median(&mut apikeys_ns),
        "sqlite_ns_median": median(&mut sqlite_ns),
        "two_threads_over_one_median": median(&mut threads_apikeys),
        "floor_two_threads_over_one_median": median(&mut threads_floor),
        "two_threads_scaling_over_floor_scaling_median": median(&mut threads_relative),
        "shared_over_raw_redb_big_median": median(&mut shared_big_vs_raw),
        "tracking_keys": small,
        "tracking_on_over_off_median": median(&mut tracking),
        "shared_over_raw_redb_median": median(&mut shared_vs_raw),
        "shared_ns_median": median(&mut shared_ns),
        "raw_redb_multiwriter_ns_median": median(&mut raw_ns),
        "shared_tracking_on_over_off_median": median(&mut shared_tracking),
    });
    println!("{result}");
    if measuring {
        let out = support::results_dir();
        std::fs::write(out.join("paired.json"), result.to_string()).expect("write paired.json");
    }
}
