//! apikeys against what people use today, measured in one run.
//!
//! For N = 100k and 1M keys, every peer holds the same keys and is asked
//! about the same sample of them, in the same order:
//!
//! - `floor`: BLAKE3 keyed digest + an in-memory hash map lookup, the
//!   physical limit of "hash, then look up";
//! - `raw_redb`: the digest, then a fresh read transaction and one `get` in a
//!   redb file laid out like the store (32-byte digest -> record bytes), in
//!   redb's default mode and in the multi-process mode shared stores use;
//! - `sqlite`: Laravel Sanctum's way (SHA-256 hex of the token, `SELECT ...
//!   WHERE token = ?` on an indexed column, rusqlite bundled, defaults), and
//!   the same with Sanctum's per-request `UPDATE ... SET last_used_at`;
//! - `apikeys`: `KeyStore::verify` in exclusive and shared mode, usage
//!   tracking on and off, with valid, unknown, malformed and bad-checksum keys.
//!
//! Then: generate (one, a batch of 1000, a batch of `MAX_BATCH`), revoke, one
//! durable redb commit as their yardstick (in a small file, and in a table
//! the size of the store), list 10k keys, verify throughput on 1 and 2 threads, and
//! PBKDF2-SHA256 at Django's 1.5M iterations for contrast.
//!
//! `cargo test -p apikeys-compare --benches` runs every benchmark once on small stores (criterion's
//! test mode); `scripts/bench.sh` runs the whole suite and prints the ratios.

mod support;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apikeys::{
    generate_with, KeyStore, ListFilter, Rejection, SecretKey, StoreOptions, VerifyError, MAX_BATCH,
};
use criterion::{black_box, BenchmarkId, Criterion, SamplingMode, Throughput};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{ConcurrencyMode, Database, Durability, TableDefinition};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest as _, Sha256};

use support::{
    build_store, pick, request, store_path, DigestPrefix, FixtureDir, Presented, RawRedb,
};

/// How many distinct keys each verify benchmark cycles through. Spread over
/// the whole store, so that lookups miss the CPU caches as real traffic does.
const SAMPLE: usize = 8192;

/// Whether criterion runs for real (`cargo bench`) rather than in test mode
/// (`cargo test -p apikeys-compare --benches`), where every benchmark runs once.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench") && !std::env::args().any(|arg| arg == "--test")
}

/// The store sizes: the real ones when measuring, small ones in test mode;
/// `APIKEYS_BENCH_SIZES=100000` (comma-separated) picks others while tuning.
fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("APIKEYS_BENCH_SIZES") {
        return list
            .split(',')
            .map(|n| n.trim().parse().expect("APIKEYS_BENCH_SIZES: numbers"))
            .collect();
    }
    if measuring() {
        vec![100_000, 1_000_000]
    } else {
        vec![2_000, 20_000]
    }
}

fn label(n: usize) -> String {
    match n {
        n if n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The keys one store holds, and the keys presented to it.
struct Keys {
    /// Every key of the store, in generation order.
    all: Vec<SecretKey>,
    /// Valid keys, picked from `all` at random.
    valid: Presented,
    /// Well-formed keys that are in no store.
    unknown: Presented,
    /// Truncated keys, keys with a character out of the alphabet, wrong kind.
    malformed: Presented,
    /// Valid keys with their last checksum character changed.
    bad_checksum: Presented,
}

impl Keys {
    fn new(all: Vec<SecretKey>) -> Keys {
        let mut rng = ChaCha8Rng::seed_from_u64(all.len() as u64);
        let sample = pick(&all, SAMPLE, &mut rng);
        let unknown: Vec<String> = (0..SAMPLE)
            .map(|_| {
                generate_with(&mut rng, "flz", Some("prod"))
                    .expect("seeded generator")
                    .expose_secret()
                    .to_string()
            })
            .collect();
        let malformed: Vec<String> = sample
            .iter()
            .enumerate()
            .map(|(i, key)| match i % 3 {
                0 => key[..key.len() - 1].to_string(),
                1 => format!("{}-{}", &key[..20], &key[21..]),
                _ => key.replacen("_sk_", "_pk_", 1),
            })
            .collect();
        let bad_checksum: Vec<String> = sample
            .iter()
            .map(|key| {
                let last = key.as_bytes()[key.len() - 1];
                let other = if last == b'0' { '1' } else { '0' };
                format!("{}{other}", &key[..key.len() - 1])
            })
            .collect();
        Keys {
            valid: Presented::new(sample),
            unknown: Presented::new(unknown.iter().map(String::as_str)),
            malformed: Presented::new(malformed.iter().map(String::as_str)),
            bad_checksum: Presented::new(bad_checksum.iter().map(String::as_str)),
            all,
        }
    }

    fn valid(&self, i: usize) -> &str {
        self.valid.get(i)
    }
}

/// Cycles through a list of presented keys.
struct Cycle(usize);

impl Cycle {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_add(1);
        self.0 % SAMPLE
    }
}

/// BLAKE3 keyed digest + in-memory hash map: the floor.
struct Floor {
    key: [u8; 32],
    map: HashMap<[u8; 32], u32, BuildHasherDefault<DigestPrefix>>,
}

impl Floor {
    fn new(keys: &Keys) -> Floor {
        let key = blake3::derive_key("apikeys bench floor", b"");
        let mut map = HashMap::with_capacity_and_hasher(keys.all.len(), Default::default());
        for (i, secret) in keys.all.iter().enumerate() {
            let digest = blake3::keyed_hash(&key, secret.expose_secret().as_bytes());
            map.insert(*digest.as_bytes(), i as u32);
        }
        Floor { key, map }
    }

    fn verify(&self, key: &str) -> Option<u32> {
        let digest = blake3::keyed_hash(&self.key, key.as_bytes());
        self.map.get(digest.as_bytes()).copied()
    }
}

/// Laravel Sanctum's `personal_access_tokens`, in SQLite with its defaults.
struct Sanctum {
    db: Connection,
}

/// What Sanctum reads of a token row to authenticate a request.
#[allow(dead_code)]
struct TokenRow {
    id: i64,
    tokenable_id: i64,
    name: String,
    abilities: String,
    expires_at: Option<String>,
}

impl Sanctum {
    fn build(path: &Path, keys: &Keys) -> Sanctum {
        let _ = std::fs::remove_file(path);
        let mut db = Connection::open(path).expect("open sqlite");
        db.execute_batch(
            "CREATE TABLE personal_access_tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                tokenable_type TEXT NOT NULL,
                tokenable_id INTEGER NOT NULL,
                name TEXT NOT NULL,
                token TEXT NOT NULL UNIQUE,
                abilities TEXT,
                last_used_at TEXT,
                expires_at TEXT,
                created_at TEXT,
                updated_at TEXT
            );",
        )
        .expect("schema");
        let txn = db.transaction().expect("transaction");
        {
            let mut insert = txn
                .prepare(
                    "INSERT INTO personal_access_tokens
                     (tokenable_type, tokenable_id, name, token, abilities, created_at, updated_at)
                     VALUES ('App\\Models\\User', ?1, ?2, ?3, '[\"contacts:read\",\"contacts:write\"]',
                             '2026-11-27 00:00:00', '2026-11-27 00:00:00')",
                )
                .expect("prepare insert");
            for (i, secret) in keys.all.iter().enumerate() {
                insert
                    .execute(params![
                        (i % 5000) as i64,
                        format!("Service key {i}"),
                        sha256_hex(secret.expose_secret())
                    ])
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        Sanctum { db }
    }

    /// SHA-256 hex, then the indexed lookup, then the row read.
    fn verify(&self, key: &str) -> Option<TokenRow> {
        let token = sha256_hex(key);
        let mut select = self
            .db
            .prepare_cached(
                "SELECT id, tokenable_id, name, abilities, expires_at
                 FROM personal_access_tokens WHERE token = ?1 LIMIT 1",
            )
            .expect("prepare select");
        select
            .query_row([token], |row| {
                Ok(TokenRow {
                    id: row.get(0)?,
                    tokenable_id: row.get(1)?,
                    name: row.get(2)?,
                    abilities: row.get(3)?,
                    expires_at: row.get(4)?,
                })
            })
            .optional()
            .expect("select")
    }

    /// Verify, then Sanctum's `last_used_at` update, committed on its own.
    fn verify_and_touch(&self, key: &str) -> Option<i64> {
        let row = self.verify(key)?;
        // Nanoseconds: every update writes a different value, so none is a no-op.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
            .to_string();
        let mut update = self
            .db
            .prepare_cached(
                "UPDATE personal_access_tokens SET last_used_at = ?1, updated_at = ?1 WHERE id = ?2",
            )
            .expect("prepare update");
        update.execute(params![now, row.id]).expect("update");
        Some(row.id)
    }
}

fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn open_store(path: &Path, shared: bool, track_usage: bool) -> KeyStore {
    let options = StoreOptions::new().track_usage(track_usage);
    let options = if shared { options.shared() } else { options };
    KeyStore::open(path, options).expect("open store")
}

/// Sanity checks outside the timed loops: a benchmark of the wrong outcome
/// measures nothing.
fn check_store(store: &KeyStore, keys: &Keys) {
    for i in 0..16 {
        store.verify(keys.valid(i)).expect("valid key verifies");
        assert!(matches!(
            store.verify(keys.unknown.get(i)),
            Err(VerifyError::Rejected(Rejection::NotFound))
        ));
        assert!(matches!(
            store.verify(keys.malformed.get(i)),
            Err(VerifyError::Rejected(Rejection::Malformed))
        ));
        assert!(matches!(
            store.verify(keys.bad_checksum.get(i)),
            Err(VerifyError::Rejected(Rejection::Malformed))
        ));
    }
}

fn bench_verify(c: &mut Criterion, dir: &Path, n: usize) {
    let path = store_path(dir, n);
    let keys = Keys::new(build_store(&path, n));
    let group_name = format!("verify_{}", label(n));

    let floor = Floor::new(&keys);
    for i in 0..16 {
        assert!(floor.verify(keys.valid(i)).is_some());
        assert!(floor.verify(keys.unknown.get(i)).is_none());
    }
    let raw_path = dir.join(format!("raw-{n}.redb"));
    RawRedb::build(&raw_path, &keys.all);
    let sqlite_path = dir.join(format!("sanctum-{n}.sqlite"));
    let sanctum = Sanctum::build(&sqlite_path, &keys);

    let mut group = c.benchmark_group(&group_name);
    group.throughput(Throughput::Elements(1));

    group.bench_function("floor_valid", |b| {
        let mut cycle = Cycle(0);
        b.iter(|| floor.verify(black_box(keys.valid(cycle.next()))))
    });
    group.bench_function("floor_unknown", |b| {
        let mut cycle = Cycle(0);
        b.iter(|| floor.verify(black_box(keys.unknown.get(cycle.next()))))
    });

    for (name, mode) in [
        ("raw_redb_valid", ConcurrencyMode::ExclusiveWriter),
        ("raw_redb_multiwriter_valid", ConcurrencyMode::MultiWriter),
    ] {
        let raw = RawRedb::open(&raw_path, mode);
        for i in 0..16 {
            assert!(raw.verify(keys.valid(i)).is_some());
        }
        group.bench_function(name, |b| {
            let mut cycle = Cycle(0);
            b.iter(|| raw.verify(black_box(keys.valid(cycle.next()))))
        });
        if mode == ConcurrencyMode::MultiWriter {
            group.bench_function("raw_redb_multiwriter_unknown", |b| {
                let mut cycle = Cycle(0);
                b.iter(|| raw.verify(black_box(keys.unknown.get(cycle.next()))))
            });
        }
    }

    for i in 0..16 {
        assert!(sanctum.verify(keys.valid(i)).is_some());
        assert!(sanctum.verify(keys.unknown.get(i)).is_none());
    }
    group.bench_function("sqlite_sanctum_valid", |b| {
        let mut cycle = Cycle(0);
        b.iter(|| sanctum.verify(black_box(keys.valid(cycle.next()))))
    });
    group.bench_function("sqlite_sanctum_unknown", |b| {
        let mut cycle = Cycle(0);
        b.iter(|| sanctum.verify(black_box(keys.unknown.get(cycle.next()))))
    });

    for (shared, mode) in [(false, "exclusive"), (true, "shared")] {
        for track in [true, false] {
            let store = open_store(&path, shared, track);
            check_store(&store, &keys);
            let suffix = if track { "" } else { "_untracked" };
            group.bench_function(format!("apikeys_{mode}{suffix}_valid"), |b| {
                let mut cycle = Cycle(0);
                b.iter(|| store.verify(black_box(keys.valid(cycle.next()))))
            });
            if track {
                group.bench_function(format!("apikeys_{mode}_unknown"), |b| {
                    let mut cycle = Cycle(0);
                    b.iter(|| store.verify(black_box(keys.unknown.get(cycle.next()))))
                });
                group.bench_function(format!("apikeys_{mode}_malformed"), |b| {
                    let mut cycle = Cycle(0);
                    b.iter(|| store.verify(black_box(keys.malformed.get(cycle.next()))))
                });
                group.bench_function(format!("apikeys_{mode}_bad_checksum"), |b| {
                    let mut cycle = Cycle(0);
                    b.iter(|| store.verify(black_box(keys.bad_checksum.get(cycle.next()))))
                });
            }
            store.close().expect("close store");
        }
    }
    group.finish();

    {
        // Each update is a durable commit: milliseconds, so fewer samples.
        let mut slow = c.benchmark_group(&group_name);
        slow.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(4));
        slow.throughput(Throughput::Elements(1));
        slow.bench_function("sqlite_sanctum_touch_valid", |b| {
            let mut cycle = Cycle(0);
            b.iter(|| sanctum.verify_and_touch(black_box(keys.valid(cycle.next()))))
        });
        slow.finish();
    }
    drop(sanctum);

    if n == *sizes().last().expect("sizes") {
        bench_threads(c, &path, &keys, &floor, n);
    }
}

/// Wall time of `iters` calls of `verify` split between `threads` threads,
/// each presenting different keys.
fn run_threads(
    threads: usize,
    iters: u64,
    keys: &Keys,
    verify: &(dyn Fn(&str) + Sync),
) -> Duration {
    let per_thread = (iters as usize).div_ceil(threads);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                let mut cycle = Cycle(t * SAMPLE / 2);
                barrier.wait();
                for _ in 0..per_thread {
                    verify(black_box(keys.valid(cycle.next())));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let started = Instant::now();
        barrier.wait();
        let elapsed = started.elapsed();
        // Normalize to `iters` verifies.
        elapsed.mul_f64(iters as f64 / (per_thread * threads) as f64)
    })
}

/// Verifies per second on 1 and 2 threads sharing one exclusive store, usage
/// tracking on. Each reported time is wall time divided by verifies done.
/// The floor on 1 and 2 threads is the control: what the machine itself
/// gives a second thread of pure computation during this run.
fn bench_threads(c: &mut Criterion, path: &Path, keys: &Keys, floor: &Floor, n: usize) {
    let store = open_store(path, false, true);
    let mut group = c.benchmark_group(format!("threads_{}", label(n)));
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("apikeys_exclusive_valid", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, keys, &|key| {
                        let _ = black_box(store.verify(key));
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("floor_valid", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, keys, &|key| {
                        black_box(floor.verify(key));
                    })
                })
            },
        );
    }
    group.finish();
    store.close().expect("close store");
}

const COMMIT_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");

/// The rows generate and revoke write, written with raw redb into tables
/// shaped and sized like the store's (format 5, below 262,144 keys, where
/// `digests_recent` stays empty): the least a store of this
/// layout commits, without generating, checking or reading anything.
struct RawWrites {
    db: Database,
    /// The `digests_fresh` rows, the newest keys': numbers `first_fresh..`.
    fresh: Vec<u64>,
    first_fresh: u32,
    next_number: u32,
    next_event: u64,
    rng: ChaCha8Rng,
}

const RAW_RECORDS: TableDefinition<u32, &[u8]> = TableDefinition::new("records");
const RAW_DIGESTS: TableDefinition<u64, i64> = TableDefinition::new("digests");
const RAW_FRESH: TableDefinition<u64, i64> = TableDefinition::new("digests_fresh");
const RAW_EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// About the encoded size of a benchmark key's record, and of an event.
const RAW_RECORD: [u8; 150] = [5; 150];
const RAW_EVENT: [u8; 40] = [3; 40];

impl RawWrites {
    fn build(path: &Path, n: usize) -> RawWrites {
        let _ = std::fs::remove_file(path);
        let mut builder = Database::builder();
        builder.set_cache_size(16 * 1024 * 1024); // as the store's, exclusive mode
        let db = builder.create(path).expect("create raw writes db");
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let n = n as u32;
        // Half of the fresh table's limit: a typical moment between moves
        // (half of a small test store).
        let first_fresh = n - (n / 2).min(8192) + 1;
        let mut fresh = Vec::new();
        let txn = db.begin_write().expect("write txn");
        {
            let mut records = txn.open_table(RAW_RECORDS).expect("table");
            let mut digests = txn.open_table(RAW_DIGESTS).expect("table");
            let mut fresh_table = txn.open_table(RAW_FRESH).expect("table");
            let mut events = txn.open_table(RAW_EVENTS).expect("table");
            for number in 1..=n {
                records
                    .insert(number, RAW_RECORD.as_slice())
                    .expect("insert");
                let row = rng.next_u64() & !u64::from(u32::MAX) | u64::from(number);
                if number < first_fresh {
                    digests.insert(row, i64::MAX).expect("insert");
                } else {
                    fresh_table.insert(row, i64::MAX).expect("insert");
                    fresh.push(row);
                }
                events
                    .insert(u64::from(number), RAW_EVENT.as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        RawWrites {
            db,
            fresh,
            first_fresh,
            next_number: n + 1,
            next_event: u64::from(n) + 1,
            rng,
        }
    }

    fn commit(&mut self, number: u32, row: u64, state: i64) {
        let mut txn = self.db.begin_write().expect("write txn");
        txn.set_durability(Durability::Immediate)
            .expect("durability");
        txn.open_table(RAW_RECORDS)
            .expect("table")
            .insert(number, RAW_RECORD.as_slice())
            .expect("insert");
        txn.open_table(RAW_FRESH)
            .expect("table")
            .insert(row, state)
            .expect("insert");
        txn.open_table(RAW_EVENTS)
            .expect("table")
            .insert(self.next_event, RAW_EVENT.as_slice())
            .expect("insert");
        self.next_event += 1;
        txn.commit().expect("commit");
    }

    /// Generate's rows: a record appended, a digest row, an event.
    fn generate(&mut self) {
        let number = self.next_number;
        self.next_number += 1;
        let row = self.rng.next_u64() & !u64::from(u32::MAX) | u64::from(number);
        self.commit(number, row, i64::MAX);
    }

    /// Revoke's rows, for one of the newest keys (as the apikeys row revokes
    /// keys it has just generated): its record and digest row rewritten, an
    /// event.
    fn revoke(&mut self) {
        let i = (self.rng.next_u64() % self.fresh.len() as u64) as usize;
        self.commit(self.first_fresh + i as u32, self.fresh[i], -1);
    }
}

/// generate, revoke, and one durable redb commit as their yardstick, on the
/// smallest real store; a batch of 1000 and one of `MAX_BATCH`; a list of
/// 10k keys.
fn bench_writes(c: &mut Criterion, dir: &Path) {
    let n = sizes()[0];
    let path = store_path(dir, n);
    let store = open_store(&path, false, true);
    let mut group = c.benchmark_group("writes");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(4));

    let commit_path = dir.join("commit.redb");
    let _ = std::fs::remove_file(&commit_path);
    let commit_db = Database::create(&commit_path).expect("create commit db");
    let mut row = 0u64;
    group.bench_function("redb_durable_commit", |b| {
        b.iter(|| {
            let mut txn = commit_db.begin_write().expect("write txn");
            txn.set_durability(Durability::Immediate)
                .expect("durability");
            {
                let mut table = txn.open_table(COMMIT_TABLE).expect("table");
                row += 1;
                table.insert(row, [7u8; 64].as_slice()).expect("insert");
            }
            txn.commit().expect("commit")
        })
    });
    drop(commit_db);

    // The same commit into a table as large as the store (its N rows at
    // random keys, the new row too): what a commit costs when its B-tree is
    // three levels deep and mostly out of the cache, as the store's are.
    let sized_path = dir.join("commit-sized.redb");
    let _ = std::fs::remove_file(&sized_path);
    let mut builder = Database::builder();
    builder.set_cache_size(16 * 1024 * 1024); // as the store's, exclusive mode
    let sized_db = builder.create(&sized_path).expect("create sized commit db");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    {
        let txn = sized_db.begin_write().expect("write txn");
        {
            let mut table = txn.open_table(COMMIT_TABLE).expect("table");
            for _ in 0..n {
                table
                    .insert(rng.next_u64(), [7u8; 64].as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    group.bench_function("redb_durable_commit_store_sized", |b| {
        b.iter(|| {
            let mut txn = sized_db.begin_write().expect("write txn");
            txn.set_durability(Durability::Immediate)
                .expect("durability");
            {
                let mut table = txn.open_table(COMMIT_TABLE).expect("table");
                table
                    .insert(rng.next_u64(), [7u8; 64].as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit")
        })
    });
    drop(sized_db);

    let mut raw = RawWrites::build(&dir.join("raw-writes.redb"), n);
    group.bench_function("raw_redb_generate_rows", |b| b.iter(|| raw.generate()));
    group.bench_function("raw_redb_revoke_rows", |b| b.iter(|| raw.revoke()));
    drop(raw);

    let mut i = 0usize;
    group.bench_function("apikeys_generate", |b| {
        b.iter(|| {
            i += 1;
            store.generate(&request(i)).expect("generate")
        })
    });
    group.bench_function("apikeys_revoke", |b| {
        b.iter_custom(|iters| {
            let mut ids = Vec::with_capacity(iters as usize);
            while ids.len() < iters as usize {
                let count = (iters as usize - ids.len()).min(MAX_BATCH);
                let requests: Vec<_> = (0..count).map(request).collect();
                let keys = store.generate_batch(&requests).expect("generate batch");
                ids.extend(keys.into_iter().map(|key| key.info.id));
            }
            let started = Instant::now();
            for id in &ids {
                assert!(store.revoke(id).expect("revoke"));
            }
            started.elapsed()
        })
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("apikeys_generate_batch_1000", |b| {
        let requests: Vec<_> = (0..1000).map(request).collect();
        b.iter(|| store.generate_batch(&requests).expect("generate batch"))
    });
    // The largest batch a call accepts, beside the 1000 the target names.
    group.throughput(Throughput::Elements(MAX_BATCH as u64));
    group.bench_function(format!("apikeys_generate_batch_{MAX_BATCH}"), |b| {
        let requests: Vec<_> = (0..MAX_BATCH).map(request).collect();
        b.iter(|| store.generate_batch(&requests).expect("generate batch"))
    });
    group.finish();
    store.close().expect("close store");

    let list_path = dir.join("list-10k.redb");
    let _ = build_store(&list_path, 10_000);
    let store = open_store(&list_path, false, true);
    let mut group = c.benchmark_group("list");
    group.sample_size(20);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("apikeys_list_10k", |b| {
        b.iter(|| {
            let keys = store.list(&ListFilter::default()).expect("list");
            assert_eq!(keys.len(), 10_000);
            keys
        })
    });
    group.finish();
    store.close().expect("close store");
}

/// PBKDF2-SHA256 at Django's 1,500,000 iterations: a handful of verifies.
fn bench_pbkdf2(c: &mut Criterion) {
    let iterations = if measuring() { 1_500_000 } else { 1_000 };
    let salt = b"bench-salt-16byt";
    let key = "flz_sk_prod_0123456789abcdefghijABCDEF";
    let mut stored = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(key.as_bytes(), salt, iterations, &mut stored);
    let mut group = c.benchmark_group("pbkdf2");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("pbkdf2_sha256_1500k_valid", |b| {
        b.iter(|| {
            let mut derived = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(
                black_box(key).as_bytes(),
                salt,
                iterations,
                &mut derived,
            );
            assert_eq!(derived, stored);
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let dir = FixtureDir::new();
    for n in sizes() {
        bench_verify(&mut criterion, dir.path(), n);
    }
    bench_writes(&mut criterion, dir.path());
    bench_pbkdf2(&mut criterion);
    criterion.final_summary();
}
