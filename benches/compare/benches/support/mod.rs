//! Fixtures shared by the benchmark programs: an apikeys store of N keys
//! built through the public API, and the same keys laid out the way the
//! peers (an in-memory map, raw redb, SQLite Sanctum-style) keep them.
//!
//! Everything is built in the run that measures it, into a directory the run
//! deletes: the plaintext keys stay in memory and never reach the disk.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use apikeys::{KeyRecord, KeyStore, NewKey, SecretKey, StoreOptions, Timestamp, MAX_BATCH};
use rand_chacha::rand_core::RngCore;
use redb::{ConcurrencyMode, Database, ReadableDatabase, TableDefinition};

/// Keys presented to a verifier, packed back to back in one buffer.
///
/// A server verifies a key it has just read out of the request, so the key's
/// bytes are in cache. Keys kept as separately allocated strings sit wherever
/// the allocator put them, among the fixture's million others: reading one
/// missed the cache, and that miss (up to half of a rejection's time, by
/// `perf annotate`) belonged to the harness, not to any peer. Every peer reads
/// its input from here.
pub struct Presented {
    text: String,
    ends: Vec<usize>,
}

impl Presented {
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Presented {
        let mut text = String::new();
        let mut ends = Vec::new();
        for key in keys {
            text.push_str(key);
            ends.push(text.len());
        }
        Presented { text, ends }
    }

    /// The `i`-th key, cycling.
    pub fn get(&self, i: usize) -> &str {
        let i = i % self.ends.len();
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }
}

/// `count` keys of the store drawn at random (with repeats), in draw order.
pub fn pick<'a>(secrets: &'a [SecretKey], count: usize, rng: &mut impl RngCore) -> Vec<&'a str> {
    (0..count)
        .map(|_| secrets[(rng.next_u64() % secrets.len() as u64) as usize].expose_secret())
        .collect()
}

/// Where fixtures go: `$APIKEYS_BENCH_DIR` when the driver script sets it
/// (so that later programs of the same run reuse them), else a temporary
/// directory deleted on drop.
pub struct FixtureDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl FixtureDir {
    pub fn new() -> FixtureDir {
        match std::env::var_os("APIKEYS_BENCH_DIR") {
            Some(dir) => {
                let path = PathBuf::from(dir);
                std::fs::create_dir_all(&path).expect("create APIKEYS_BENCH_DIR");
                FixtureDir { path, _temp: None }
            }
            None => {
                // Under target/ rather than /tmp: durable commits must reach
                // a real disk, and /tmp may be a RAM file system.
                let base = target_dir();
                std::fs::create_dir_all(&base).expect("create target/");
                let temp = tempfile::Builder::new()
                    .prefix("bench-fixtures-")
                    .tempdir_in(base)
                    .expect("create fixture dir");
                FixtureDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The workspace's target directory, where scripts/bench.sh and
/// benches/report.py look: `$CARGO_TARGET_DIR` when set (a relative one is
/// taken from the workspace root, as scripts/bench.sh does), else `target/`
/// at the workspace root, two levels above this crate.
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Where the programs leave their JSON for scripts/bench.sh and
/// benches/report.py: `target/bench-results/`, created if missing.
pub fn results_dir() -> PathBuf {
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    dir
}

/// Path of the apikeys store of `n` keys inside a fixture directory.
pub fn store_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("apikeys-{n}.redb"))
}

/// The request used for every fixture key: a realistic name, env tag and
/// two scopes, so that records and index entries have a real size.
pub fn request(i: usize) -> NewKey {
    NewKey::new(format!("Service key {i}"))
        .env("prod")
        .scopes(["contacts:read", "contacts:write"])
        .owner(format!("account-{}", i % 5000))
}

/// Builds (or, with `reuse`, finds) a store of `n` keys. Returns the secrets
/// when it built them.
pub fn build_store(path: &Path, n: usize) -> Vec<SecretKey> {
    let _ = std::fs::remove_file(path);
    let started = Instant::now();
    let options = StoreOptions::new()
        .track_usage(false)
        .flush_interval(std::time::Duration::ZERO);
    let store = KeyStore::open(path, options).expect("open fixture store");
    let mut secrets = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let count = (n - next).min(MAX_BATCH);
        let requests: Vec<NewKey> = (next..next + count).map(request).collect();
        let keys = store
            .generate_batch(&requests)
            .expect("generate fixture keys");
        secrets.extend(keys.into_iter().map(|key| key.secret));
        next += count;
    }
    store.close().expect("close fixture store");
    eprintln!(
        "fixture: {n} keys generated in {:.1} s ({:.0} keys/s)",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    secrets
}

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Passes the first 8 bytes of an already uniformly random digest through as
/// the hash: the cheapest possible map of digests.
#[derive(Default)]
pub struct DigestPrefix(u64);

impl std::hash::Hasher for DigestPrefix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if let Some(first) = bytes.get(..8) {
            self.0 = u64::from_le_bytes(first.try_into().expect("8 bytes"));
        }
    }
    fn write_usize(&mut self, _length_prefix: usize) {}
}

const RAW_KEYS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("keys");

/// The plainest redb lookup: a file of digest -> encoded record (a record
/// shaped like the store's), one `get` per verify.
pub struct RawRedb {
    key: [u8; 32],
    db: Database,
}

impl RawRedb {
    pub fn build(path: &Path, secrets: &[SecretKey]) {
        let _ = std::fs::remove_file(path);
        let key = blake3::derive_key("apikeys bench raw redb", b"");
        let db = Database::create(path).expect("create raw redb");
        let txn = db.begin_write().expect("write txn");
        {
            let mut table = txn.open_table(RAW_KEYS).expect("table");
            for (i, secret) in secrets.iter().enumerate() {
                let digest =
                    *blake3::keyed_hash(&key, secret.expose_secret().as_bytes()).as_bytes();
                let record = record_like(i, secret, digest);
                table
                    .insert(&digest, record.encode().as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    pub fn open(path: &Path, mode: ConcurrencyMode) -> RawRedb {
        let db = Database::builder()
            .set_concurrency_mode(mode)
            .open(path)
            .expect("open raw redb");
        RawRedb {
            key: blake3::derive_key("apikeys bench raw redb", b""),
            db,
        }
    }

    /// Digest, fresh read transaction, one `get`: the length of the record found.
    pub fn verify(&self, key: &str) -> Option<usize> {
        let digest = blake3::keyed_hash(&self.key, key.as_bytes());
        let txn = self.db.begin_read().expect("read txn");
        let table = txn.open_table(RAW_KEYS).expect("table");
        let found = table.get(digest.as_bytes()).expect("get");
        found.map(|bytes| bytes.value().len())
    }
}

/// A record shaped like the ones the store writes for the same request.
pub fn record_like(i: usize, secret: &SecretKey, digest: [u8; 32]) -> KeyRecord {
    let request_name = format!("Service key {i}");
    KeyRecord {
        id: format!("{i:016}"),
        digest,
        hint: secret.hint(),
        name: request_name,
        env: Some("prod".into()),
        scopes: vec!["contacts:read".into(), "contacts:write".into()],
        owner: Some(format!("account-{}", i % 5000)),
        metadata: None,
        created_at: Timestamp::from_unix(1_790_000_000),
        expires_at: None,
        revoked_at: None,
        rotated_from: None,
        rotated_to: None,
        origin: None,
    }
}
