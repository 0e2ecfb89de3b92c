//! Fleets on PostgreSQL (issue 13, item 8): apikeys on a PostgreSQL store
//! beside its peers on the same server, in the same run.
//!
//! Needs a server: `PG_URL` (for example `postgres://postgres@127.0.0.1:5432/apikeys`,
//! what `pg_start` of scripts/lib/postgres.sh exports; scripts/bench.sh starts
//! and stops one). Without it the program says so and measures nothing. It
//! makes its own database `apikeys_fleet_bench` on that server (dropped and
//! created again each run) and holds every connection over the URL's host:
//! the store and the raw peers alike connect over TCP to the same address,
//! without TLS (a loopback server has none; `sslmode` left at its default).
//!
//! Criterion groups (medians in target/criterion/fleet_*):
//! - `fleet_verify`: verify of a valid key from the process's replica, against
//!   exclusive redb verify of a store of the same keys (target ≤ 1.5x);
//! - `fleet_strict`: strict-mode verify (one prepared `SELECT` of the store per
//!   verify) against a raw prepared `SELECT` by BLAKE3 digest on a table of
//!   the same shape (digest primary key, state, record), same connection
//!   set-up (target ≤ 1.2x);
//! - `fleet_sanctum`: Laravel Sanctum's check on the same server, SHA-256 hex
//!   lookup in `personal_access_tokens` then `UPDATE last_used_at` (autocommit),
//!   and the lookup alone, against fleet verify (target ≥ 50x faster);
//! - `fleet_write`: generate and revoke against one raw `INSERT` / `UPDATE` in
//!   autocommit (one durable commit each, `synchronous_commit` on).
//!
//! Then the revocation delay across processes: this program starts itself
//! again as a watcher process with its own handle (its own replica and feed),
//! which verifies each key in a loop and notes when it is first refused; this
//! process revokes the keys one at a time and notes when each `revoke`
//! returned (its commit). Both read `CLOCK_MONOTONIC`, one clock for the
//! machine. The keys go to the watcher through a pipe, never to a file or the
//! output. p50 / p99 / max go to the summary, with L.
//!
//! Everything is printed as a table at the end and written to
//! `target/bench-results/fleet.json` (scripts/bench.sh shows it).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::{KeyStore, NewKey, Rejection, SecretKey, StoreOptions, VerifyError, MAX_BATCH};
use criterion::{black_box, BenchmarkId, Criterion};
use postgres::{Client, NoTls};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest as _, Sha256};
use support::{
    build_store, pick, record_like, request, results_dir, store_path, target_dir, FixtureDir,
    Presented,
};

const DATABASE: &str = "apikeys_fleet_bench";
const PEPPER: &str = "fleet bench pepper";
/// The default revocation bound L, which the delay bench keeps.
const BOUND: Duration = Duration::from_secs(1);
const WATCHER_ENV: &str = "APIKEYS_FLEET_WATCHER_URL";

fn main() {
    if let Ok(url) = std::env::var(WATCHER_ENV) {
        watcher(&url);
        return;
    }
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let Ok(server) = std::env::var("PG_URL") else {
        eprintln!(
            "fleet: PG_URL is not set, so nothing is measured. It names a PostgreSQL server \
             (postgres://user@host:port/db); scripts/bench.sh starts one with pg_start \
             (scripts/lib/postgres.sh)."
        );
        return;
    };
    let url = bench_database(&server);
    // FLEET_DELAY_ROUNDS=N: the revocation delay alone, over N revocations,
    // after FLEET_DELAY_FILL keys if set (to study its tail without the
    // criterion groups).
    if let Some(rounds) = std::env::var("FLEET_DELAY_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
    {
        if let Some(fill) = std::env::var("FLEET_DELAY_FILL")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            fill_store(&url, fill);
        }
        let delay = revocation_delay(&url, rounds);
        report(false, 0, &delay, &[]);
        return;
    }
    let keys = if measuring { 10_000 } else { 200 };
    let rounds = if measuring { 300 } else { 10 };

    let mut criterion = Criterion::default().configure_from_args();
    let secrets = fill_store(&url, keys);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let sample = Presented::new(pick(&secrets, 4096, &mut rng));

    let paired = verify_groups(
        &mut criterion,
        &url,
        &secrets,
        &sample,
        if measuring { 21 } else { 1 },
    );
    write_group(&mut criterion, &url);
    criterion.final_summary();
    let delay = revocation_delay(&url, rounds);
    report(measuring, keys, &delay, &paired);
}

/// The URL of this program's own database on the server of `server`, made
/// empty: everything the run writes goes there.
fn bench_database(server: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let slash = base
        .rfind('/')
        .filter(|&at| at > "postgres://".len())
        .unwrap_or(base.len());
    let url = format!("{}/{DATABASE}{query}", &base[..slash]);
    let mut admin = connect(server);
    // Two statements: DROP DATABASE refuses to run in a multi-statement batch.
    for statement in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        admin
            .batch_execute(&statement)
            .expect("create the bench database");
    }
    url
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|error| {
        panic!("cannot connect to the PostgreSQL server of PG_URL: {error}")
    })
}

fn options() -> StoreOptions {
    StoreOptions::new().pepper(PEPPER)
}

/// `n` keys in the PostgreSQL store (the fixture requests of every bench) and,
/// for the peers, the same keys in `raw_keys` (BLAKE3 digest, state, a record
/// of the same size) and in Sanctum's `personal_access_tokens`.
fn fill_store(url: &str, n: usize) -> Vec<SecretKey> {
    let started = Instant::now();
    let store = KeyStore::open(url, options()).expect("open the PostgreSQL store");
    let mut secrets = Vec::with_capacity(n);
    while secrets.len() < n {
        let next = secrets.len();
        let count = (n - next).min(MAX_BATCH);
        let requests: Vec<NewKey> = (next..next + count).map(request).collect();
        let keys = store
            .generate_batch(&requests)
            .expect("generate fixture keys");
        secrets.extend(keys.into_iter().map(|key| key.secret));
    }
    store.close().expect("close the fixture store");

    let mut client = connect(url);
    client
        .batch_execute(
            "CREATE TABLE raw_keys (digest bytea PRIMARY KEY, state bigint NOT NULL, record bytea NOT NULL);
             CREATE TABLE personal_access_tokens (
                 id bigserial PRIMARY KEY,
                 tokenable_type varchar(255) NOT NULL,
                 tokenable_id bigint NOT NULL,
                 name varchar(255) NOT NULL,
                 token varchar(64) NOT NULL UNIQUE,
                 abilities text,
                 last_used_at timestamp(0),
                 expires_at timestamp(0),
                 created_at timestamp(0),
                 updated_at timestamp(0));",
        )
        .expect("create the peers' tables");
    let raw_key = raw_digest_key();
    let mut txn = client.transaction().expect("begin");
    let raw = txn
        .prepare("INSERT INTO raw_keys (digest, state, record) VALUES ($1, $2, $3)")
        .expect("prepare");
    let sanctum = txn
        .prepare(
            "INSERT INTO personal_access_tokens
                 (tokenable_type, tokenable_id, name, token, abilities, created_at, updated_at)
             VALUES ('App\\Models\\User', $1, $2, $3, '[\"contacts:read\",\"contacts:write\"]', now(), now())",
        )
        .expect("prepare");
    for (i, secret) in secrets.iter().enumerate() {
        let digest = *blake3::keyed_hash(&raw_key, secret.expose_secret().as_bytes()).as_bytes();
        let record = record_like(i, secret, digest).encode();
        txn.execute(&raw, &[&&digest[..], &i64::MAX, &record])
            .expect("insert raw key");
        let owner = (i % 5000) as i64;
        txn.execute(
            &sanctum,
            &[
                &owner,
                &format!("Service key {i}"),
                &sha256_hex(secret.expose_secret()),
            ],
        )
        .expect("insert Sanctum token");
    }
    txn.commit().expect("commit the peers' rows");
    client
        .batch_execute("ANALYZE")
        .expect("analyze the bench database");
    eprintln!(
        "fixture: {n} keys in PostgreSQL and its peers' tables in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    secrets
}

fn raw_digest_key() -> [u8; 32] {
    blake3::derive_key("apikeys bench raw postgres", b"")
}

fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn accepted(result: Result<impl Sized, VerifyError>) -> bool {
    match result {
        Ok(_) => true,
        Err(VerifyError::Rejected(_)) => false,
        Err(VerifyError::Failed(error)) => panic!("verify failed: {error}"),
    }
}

fn verify_groups(
    criterion: &mut Criterion,
    url: &str,
    secrets: &[SecretKey],
    sample: &Presented,
    rounds: usize,
) -> Vec<(&'static str, f64)> {
    let fixtures = FixtureDir::new();
    let redb_path = store_path(fixtures.path(), secrets.len()).with_extension("fleet.redb");
    let redb_secrets = build_store(&redb_path, secrets.len());
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let redb_sample = Presented::new(pick(&redb_secrets, 4096, &mut rng));
    let exclusive = KeyStore::open(&redb_path, StoreOptions::new()).expect("open redb store");
    let fleet = KeyStore::open(url, options()).expect("open the PostgreSQL store");

    let mut group = criterion.benchmark_group("fleet_verify");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    // In turns, twice each: the machine is shared, and the second pair shows
    // how much of a difference is the load changing between them.
    for round in ["a", "b"] {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("postgres_fleet_memory", round), |b| {
            b.iter(|| {
                i += 1;
                assert!(accepted(fleet.verify(black_box(sample.get(i)))));
            })
        });
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("redb_exclusive", round), |b| {
            b.iter(|| {
                i += 1;
                assert!(accepted(exclusive.verify(black_box(redb_sample.get(i)))));
            })
        });
    }
    group.finish();

    let strict = KeyStore::open(format!("{url}?apikeys_strict=1"), options())
        .expect("open the PostgreSQL store in strict mode");
    let mut raw = connect(url);
    let select = raw
        .prepare("SELECT state, record FROM raw_keys WHERE digest = $1")
        .expect("prepare");
    let raw_key = raw_digest_key();
    let mut raw_verify = |key: &str| -> bool {
        let digest = blake3::keyed_hash(&raw_key, key.as_bytes());
        let row = raw
            .query_opt(&select, &[&&digest.as_bytes()[..]])
            .expect("raw select");
        row.is_some_and(|row| {
            let state: i64 = row.get(0);
            let record: &[u8] = row.get(1);
            state > 0 && !record.is_empty()
        })
    };
    let mut group = criterion.benchmark_group("fleet_strict");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for round in ["a", "b"] {
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("apikeys_strict", round), |b| {
            b.iter(|| {
                i += 1;
                assert!(accepted(strict.verify(black_box(sample.get(i)))));
            })
        });
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("raw_prepared_select", round), |b| {
            b.iter(|| {
                i += 1;
                assert!(raw_verify(black_box(sample.get(i))));
            })
        });
    }
    group.finish();

    // Strict without usage counting: what the usage flush (a write on the
    // same call connection, every flush interval) adds to strict verify.
    let strict_quiet = KeyStore::open(
        format!("{url}?apikeys_strict=1"),
        options().track_usage(false),
    )
    .expect("open the PostgreSQL store in strict mode");
    let mut group = criterion.benchmark_group("fleet_strict_untracked");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut i = 0usize;
    group.bench_function("apikeys_strict_untracked", |b| {
        b.iter(|| {
            i += 1;
            assert!(accepted(strict_quiet.verify(black_box(sample.get(i)))));
        })
    });
    group.finish();

    // The same pairs in alternating rounds (the order swapped every round):
    // the median of the per-round ratios, which the machine's other work
    // biases less than criterion's one-after-the-other.
    let mut memory = Vec::new();
    let mut database = Vec::new();
    let mut i = 0usize;
    for round in 0..rounds {
        let mut time = |keys: &Presented, calls: usize, verify: &mut dyn FnMut(&str) -> bool| {
            let started = Instant::now();
            for _ in 0..calls {
                i += 1;
                assert!(verify(black_box(keys.get(i))));
            }
            started.elapsed().as_nanos() as f64 / calls as f64
        };
        let mut fleet_verify = |key: &str| accepted(fleet.verify(key));
        let mut redb_verify = |key: &str| accepted(exclusive.verify(key));
        let mut strict_verify = |key: &str| accepted(strict.verify(key));
        let (f, r, s, q);
        if round % 2 == 0 {
            f = time(sample, 20_000, &mut fleet_verify);
            r = time(&redb_sample, 20_000, &mut redb_verify);
            s = time(sample, 300, &mut strict_verify);
            q = time(sample, 300, &mut raw_verify);
        } else {
            r = time(&redb_sample, 20_000, &mut redb_verify);
            f = time(sample, 20_000, &mut fleet_verify);
            q = time(sample, 300, &mut raw_verify);
            s = time(sample, 300, &mut strict_verify);
        }
        memory.push(f / r);
        database.push(s / q);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let paired = vec![
        (
            "fleet verify / exclusive redb, paired rounds",
            median(&mut memory),
        ),
        (
            "strict verify / raw prepared SELECT, paired rounds",
            median(&mut database),
        ),
    ];
    strict_quiet.close().expect("close");

    let mut sanctum = connect(url);
    let find = sanctum
        .prepare("SELECT * FROM personal_access_tokens WHERE token = $1 LIMIT 1")
        .expect("prepare");
    let touch = sanctum
        .prepare("UPDATE personal_access_tokens SET last_used_at = now(), updated_at = now() WHERE id = $1")
        .expect("prepare");
    let mut group = criterion.benchmark_group("fleet_sanctum");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut i = 0usize;
    group.bench_function("postgres_fleet_memory", |b| {
        b.iter(|| {
            i += 1;
            assert!(accepted(fleet.verify(black_box(sample.get(i)))));
        })
    });
    let mut i = 0usize;
    group.bench_function("sanctum_select", |b| {
        b.iter(|| {
            i += 1;
            let row = sanctum
                .query_opt(&find, &[&sha256_hex(black_box(sample.get(i)))])
                .expect("Sanctum select");
            assert!(row.is_some());
        })
    });
    let mut i = 0usize;
    group.bench_function("sanctum_select_update", |b| {
        b.iter(|| {
            i += 1;
            let row = sanctum
                .query_opt(&find, &[&sha256_hex(black_box(sample.get(i)))])
                .expect("Sanctum select")
                .expect("token found");
            let id: i64 = row.get("id");
            sanctum.execute(&touch, &[&id]).expect("Sanctum update");
        })
    });
    group.finish();
    fleet.close().expect("close");
    strict.close().expect("close");
    exclusive.close().expect("close");
    let _ = std::fs::remove_file(&redb_path);
    paired
}

fn write_group(criterion: &mut Criterion, url: &str) {
    let store = KeyStore::open(url, options()).expect("open the PostgreSQL store");
    let mut raw = connect(url);
    let insert = raw
        .prepare("INSERT INTO raw_keys (digest, state, record) VALUES ($1, $2, $3)")
        .expect("prepare");
    let update = raw
        .prepare("UPDATE raw_keys SET state = $2 WHERE digest = $1")
        .expect("prepare");
    let mut group = criterion.benchmark_group("fleet_write");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut n = 1_000_000usize;
    group.bench_function("apikeys_generate", |b| {
        b.iter(|| {
            n += 1;
            store.generate(&request(n)).expect("generate")
        })
    });
    let mut n = 0u64;
    let template = record_like(
        0,
        &store.generate(&request(0)).expect("generate").secret,
        [0; 32],
    )
    .encode();
    group.bench_function("raw_insert_autocommit", |b| {
        b.iter(|| {
            n += 1;
            let digest = blake3::hash(format!("raw insert {n}").as_bytes());
            raw.execute(&insert, &[&&digest.as_bytes()[..], &i64::MAX, &template])
                .expect("raw insert")
        })
    });
    group.bench_function("apikeys_revoke", |b| {
        b.iter_custom(|iters| {
            // Keys to revoke, made outside the timing.
            let mut ids = Vec::with_capacity(iters as usize);
            while ids.len() < iters as usize {
                let count = (iters as usize - ids.len()).min(MAX_BATCH);
                let requests: Vec<NewKey> = (0..count).map(request).collect();
                let keys = store
                    .generate_batch(&requests)
                    .expect("generate keys to revoke");
                ids.extend(keys.into_iter().map(|key| key.info.id));
            }
            let started = Instant::now();
            for id in &ids {
                assert!(store.revoke(black_box(id)).expect("revoke"));
            }
            started.elapsed()
        })
    });
    let mut n = 0u64;
    group.bench_function("raw_update_autocommit", |b| {
        b.iter(|| {
            n += 1;
            let digest = blake3::hash(format!("raw insert {}", 1 + n % 1000).as_bytes());
            raw.execute(&update, &[&&digest.as_bytes()[..], &(n as i64)])
                .expect("raw update")
        })
    });
    group.finish();
    store.close().expect("close");
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill, a clock every Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

struct Delay {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    count: usize,
}

/// This process revokes `rounds` keys one at a time; a second process, with its
/// own handle, notes when each is first refused.
fn revocation_delay(url: &str, rounds: usize) -> Delay {
    let store = KeyStore::open(url, options()).expect("open the PostgreSQL store");
    let requests: Vec<NewKey> = (0..rounds).map(request).collect();
    let keys = store
        .generate_batch(&requests)
        .expect("generate keys to revoke");
    let mut child = Command::new(std::env::current_exe().expect("this program"))
        .env(WATCHER_ENV, url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the watcher process");
    {
        let mut stdin = child.stdin.take().expect("watcher stdin");
        for key in &keys {
            writeln!(stdin, "{}", key.secret.expose_secret()).expect("send keys");
        }
    }
    let mut lines = BufReader::new(child.stdout.take().expect("watcher stdout")).lines();
    let ready = lines.next().expect("watcher line").expect("watcher output");
    assert_eq!(ready, "ready", "the watcher reports it is ready");
    let mut committed = Vec::with_capacity(rounds);
    for key in &keys {
        assert!(store.revoke(&key.info.id).expect("revoke"));
        committed.push(monotonic_ns());
        std::thread::sleep(Duration::from_millis(5));
    }
    let refused: Vec<u64> = lines
        .map(|line| line.expect("watcher output").parse().expect("a time"))
        .collect();
    assert!(
        child.wait().expect("watcher").success(),
        "the watcher failed"
    );
    assert_eq!(refused.len(), rounds, "one refusal per revocation");
    store.close().expect("close");
    // A refusal seen before `revoke` returned (the commit is visible before
    // its reply arrives) counts as no delay.
    let mut delays: Vec<f64> = committed
        .iter()
        .zip(&refused)
        .map(|(&commit, &refusal)| refusal.saturating_sub(commit) as f64 / 1e6)
        .collect();
    for (round, delay) in delays
        .iter()
        .enumerate()
        .filter(|(_, delay)| **delay > 20.0)
    {
        eprintln!("slow revocation: #{round} refused {delay:.1} ms after its commit");
    }
    delays.sort_by(f64::total_cmp);
    let at = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    Delay {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: *delays.last().expect("delays"),
        count: delays.len(),
    }
}

/// The watcher process: keys on stdin, "ready" once it has accepted each one,
/// then each key's first refusal time (CLOCK_MONOTONIC, ns) on a line, in order.
fn watcher(url: &str) {
    let secrets: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(|line| line.expect("keys on stdin"))
        .collect();
    let store = KeyStore::open(url, options()).expect("open the PostgreSQL store");
    for secret in &secrets {
        // Generated before this process opened its replica: known at once.
        assert!(accepted(store.verify(secret)), "a fresh key is accepted");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    let mut refused = Vec::with_capacity(secrets.len());
    for secret in &secrets {
        loop {
            match store.verify(secret) {
                Ok(_) => std::hint::spin_loop(),
                Err(VerifyError::Rejected(Rejection::Revoked)) => break,
                Err(other) => panic!("unexpected answer while watching: {other}"),
            }
        }
        refused.push(monotonic_ns());
    }
    for at in refused {
        writeln!(out, "{at}").expect("stdout");
    }
    store.close().expect("close");
}

/// Criterion's median of one benchmark, in nanoseconds.
fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

fn report(measuring: bool, keys: usize, delay: &Delay, paired: &[(&str, f64)]) {
    println!(
        "\nrevocation delay across processes, {} revocations (L = {} ms): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        delay.count,
        BOUND.as_millis(),
        delay.p50_ms,
        delay.p99_ms,
        delay.max_ms
    );
    if !measuring {
        return;
    }
    // An id is of the row's group unless it names its own ("group::id").
    let get = |group: &str, id: &str| {
        let (group, id) = id.split_once("::").unwrap_or((group, id));
        median_ns(group, id).unwrap_or(f64::NAN)
    };
    let pairs = [
        (
            "fleet verify (memory) / exclusive redb, round a",
            "fleet_verify",
            "postgres_fleet_memory/a",
            "redb_exclusive/a",
            "<= 1.5",
        ),
        (
            "fleet verify (memory) / exclusive redb, round b",
            "fleet_verify",
            "postgres_fleet_memory/b",
            "redb_exclusive/b",
            "<= 1.5",
        ),
        (
            "strict verify / raw prepared SELECT, round a",
            "fleet_strict",
            "apikeys_strict/a",
            "raw_prepared_select/a",
            "<= 1.2",
        ),
        (
            "strict verify / raw prepared SELECT, round b",
            "fleet_strict",
            "apikeys_strict/b",
            "raw_prepared_select/b",
            "<= 1.2",
        ),
        (
            "strict verify, usage not tracked / raw prepared SELECT, round b",
            "fleet_strict_untracked",
            "apikeys_strict_untracked",
            // Measured in the tracked group's round b, beside strict verify.
            "fleet_strict::raw_prepared_select/b",
            "",
        ),
        (
            "Sanctum SELECT + UPDATE / fleet verify",
            "fleet_sanctum",
            "sanctum_select_update",
            "postgres_fleet_memory",
            ">= 50",
        ),
        (
            "Sanctum SELECT alone / fleet verify",
            "fleet_sanctum",
            "sanctum_select",
            "postgres_fleet_memory",
            "",
        ),
        (
            "generate / raw INSERT autocommit",
            "fleet_write",
            "apikeys_generate",
            "raw_insert_autocommit",
            "",
        ),
        (
            "revoke / raw UPDATE autocommit",
            "fleet_write",
            "apikeys_revoke",
            "raw_update_autocommit",
            "",
        ),
    ];
    let mut rows = Vec::new();
    println!("\n| {keys} keys | numerator | denominator | ratio | target |");
    println!("|---|---|---|---|---|");
    for (name, group, top, bottom, target) in pairs {
        let (a, b) = (get(group, top), get(group, bottom));
        println!(
            "| {name} | {} | {} | {:.2}x | {target} |",
            human(a),
            human(b),
            a / b
        );
        rows.push(serde_json::json!({
            "pair": name, "numerator_ns": a, "denominator_ns": b, "ratio": a / b, "target": target,
        }));
    }
    for (name, ratio) in paired {
        println!("| {name} | | | {ratio:.2}x | |");
        rows.push(serde_json::json!({ "pair": name, "ratio": ratio }));
    }
    let json = serde_json::json!({
        "keys": keys,
        "pairs": rows,
        "revocation_delay_ms": {
            "count": delay.count, "p50": delay.p50_ms, "p99": delay.p99_ms, "max": delay.max_ms,
            "bound": BOUND.as_millis() as u64,
        },
    });
    std::fs::write(
        results_dir().join("fleet.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write fleet.json");
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
