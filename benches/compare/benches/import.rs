//! Moving in, measured: the import rate of each source's export (keys per
//! second, target 50,000/s for the SHA-256 and SHA-512 kinds), and the
//! verify of an imported key before its re-digest (its first verify: the
//! source's digest checked, then the durable commit that re-digests it),
//! after it (a native verify of the same string), and a native `flz_sk_`
//! key's verify, in the same run and the same store.
//!
//! `cargo bench -p apikeys-compare --bench import` measures;
//! `cargo test -p apikeys-compare --benches` runs each once on small inputs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use apikeys::{ImportOptions, KeyStore, NewKey, Source, StoreOptions};
use base64::Engine as _;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest as _, Sha256, Sha512};

fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench") && !std::env::args().any(|arg| arg == "--test")
}

/// Rows per imported file.
fn rows() -> usize {
    if measuring() {
        10_000
    } else {
        200
    }
}

/// `len` random characters of `[A-Za-z0-9]`, as the sources' generators make them.
fn random_text(rng: &mut impl RngCore, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[(rng.next_u32() % 62) as usize] as char)
        .collect()
}

/// An export of `n` keys of `source` (DRF with `pbkdf2_iterations` set:
/// Django's PBKDF2 form), with the keys its clients hold.
fn export(
    source: Source,
    n: usize,
    seed: u64,
    pbkdf2_iterations: Option<u32>,
) -> (String, Vec<String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut file = String::new();
    let mut keys = Vec::with_capacity(n);
    match source {
        Source::Sanctum => {
            file.push_str("id,tokenable_type,tokenable_id,name,token,abilities,last_used_at,expires_at,created_at,updated_at\n");
            for id in 1..=n {
                let secret = random_text(&mut rng, 48);
                let token = hex::encode(Sha256::digest(secret.as_bytes()));
                file.push_str(&format!(
                    "{id},App\\Models\\User,{},Token {id},{token},\"[\"\"servers:read\"\"]\",2026-01-02 03:04:05,,2025-12-01 10:00:00,2025-12-01 10:00:00\n",
                    id % 977
                ));
                keys.push(format!("{id}|{secret}"));
            }
        }
        Source::DrfApiKey => {
            file.push_str("id,created,name,revoked,expiry_date,hashed_key,prefix\n");
            for i in 0..n {
                let prefix = random_text(&mut rng, 8);
                let key = format!("{prefix}.{}", random_text(&mut rng, 32));
                let hashed = match pbkdf2_iterations {
                    None => format!("sha512$${}", hex::encode(Sha512::digest(key.as_bytes()))),
                    Some(iterations) => {
                        let salt = random_text(&mut rng, 22);
                        let mut hash = [0u8; 32];
                        pbkdf2::pbkdf2_hmac::<Sha256>(
                            key.as_bytes(),
                            salt.as_bytes(),
                            iterations,
                            &mut hash,
                        );
                        let hash = base64::engine::general_purpose::STANDARD.encode(hash);
                        format!("pbkdf2_sha256${iterations}${salt}${hash}")
                    }
                };
                file.push_str(&format!(
                    "{prefix}.{hashed},2025-11-30 08:00:00.123456+00,Service {i},f,,{hashed},{prefix}\n"
                ));
                keys.push(key);
            }
        }
        Source::Unkey => {
            for i in 0..n {
                let key = format!("sk_{}", random_text(&mut rng, 22));
                let hash = base64::engine::general_purpose::STANDARD
                    .encode(Sha256::digest(key.as_bytes()));
                file.push_str(&format!(
                    "{{\"id\":\"key_{i}\",\"hash\":\"{hash}\",\"start\":\"{}\",\"name\":\"Key {i}\",\"owner_id\":\"user_{}\",\"created_at_m\":1760000000123,\"enabled\":true}}\n",
                    &key[..6],
                    i % 977
                ));
                keys.push(key);
            }
        }
    }
    (file, keys)
}

fn new_store(dir: &tempfile::TempDir) -> KeyStore {
    let path = dir
        .path()
        .join(format!("import-{}.redb", rand_core::OsRng.next_u64()));
    KeyStore::open(
        path,
        StoreOptions::new().flush_interval(Duration::from_secs(3600)),
    )
    .expect("open store")
}

fn bench_import_rate(c: &mut Criterion) {
    let n = rows();
    let mut group = c.benchmark_group("import");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(n as u64));
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        (
            "sanctum_sha256_csv",
            Source::Sanctum,
            export(Source::Sanctum, n, 1, None).0,
        ),
        (
            "drf_sha512_csv",
            Source::DrfApiKey,
            export(Source::DrfApiKey, n, 2, None).0,
        ),
        (
            "unkey_sha256_jsonl",
            Source::Unkey,
            export(Source::Unkey, n, 3, None).0,
        ),
        // Importing reads the PBKDF2 form; the cost is at the first verify.
        (
            "drf_pbkdf2_csv",
            Source::DrfApiKey,
            export(Source::DrfApiKey, n, 4, Some(1)).0,
        ),
    ];
    for (name, source, file) in &files {
        group.bench_function(*name, |b| {
            b.iter_batched(
                || new_store(&dir),
                |store| {
                    let report = store
                        .import(*source, file.as_bytes(), &ImportOptions::new())
                        .expect("import");
                    assert_eq!(report.imported, n);
                    store
                },
                BatchSize::PerIteration,
            )
        });
    }
    // The yardstick, in the same run: as many native keys made in one
    // durable commit (the same work less the parsing, plus making the keys).
    let requests: Vec<NewKey> = (0..n)
        .map(|i| NewKey::new(format!("Token {i}")).scope("servers:read"))
        .collect();
    group.bench_function("native_generate_batch", |b| {
        b.iter_batched(
            || new_store(&dir),
            |store| {
                for batch in requests.chunks(apikeys::MAX_BATCH) {
                    store.generate_batch(batch).expect("generate");
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The first verify of `iters` imported keys, each once: the source's
/// digest checked, then the durable commit that re-digests the key. A fresh
/// store of exactly those keys for each sample (made outside the timing).
fn first_verifies(
    dir: &tempfile::TempDir,
    source: Source,
    pbkdf2_iterations: Option<u32>,
    iters: u64,
    seed: &mut u64,
) -> Duration {
    *seed += 1;
    let (file, keys) = export(source, iters as usize, *seed, pbkdf2_iterations);
    let store = new_store(dir);
    store
        .import(source, file.as_bytes(), &ImportOptions::new())
        .expect("import");
    let start = Instant::now();
    for key in &keys {
        black_box(store.verify(key).expect("an imported key verifies"));
    }
    let elapsed = start.elapsed();
    store.close().expect("close");
    elapsed
}

fn bench_verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = rows();
    // One store: native keys, and imported keys of each SHA kind, half of
    // them verified once (re-digested).
    let store = new_store(&dir);
    // As many native keys as re-digested ones below: the same working set.
    let requests: Vec<NewKey> = (0..n)
        .map(|i| NewKey::new(format!("native {i}")).scope("*"))
        .collect();
    let mut natives = Vec::with_capacity(n);
    for batch in requests.chunks(apikeys::MAX_BATCH) {
        for key in store.generate_batch(batch).expect("generate") {
            natives.push(key.secret.expose_secret().to_string());
        }
    }
    let (sanctum, sanctum_keys) = export(Source::Sanctum, n, 10, None);
    let (drf, drf_keys) = export(Source::DrfApiKey, n, 11, None);
    for (source, file) in [(Source::Sanctum, &sanctum), (Source::DrfApiKey, &drf)] {
        store
            .import(source, file.as_bytes(), &ImportOptions::new())
            .expect("import");
    }
    let redigested: Vec<&String> = sanctum_keys.iter().chain(&drf_keys).step_by(2).collect();
    for key in &redigested {
        store.verify(key).expect("first verify");
    }
    // Keys still on their legacy digest, presented with a wrong secret: the
    // legacy path without the commit (found by handle, digest compared).
    let wrong_secret: Vec<String> = sanctum_keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|key| {
            let other = if key.ends_with('x') { 'y' } else { 'x' };
            format!("{}{other}", &key[..key.len() - 1])
        })
        .collect();

    let mut group = c.benchmark_group("verify_imported");
    let redigested: Vec<String> = redigested.iter().map(|key| key.to_string()).collect();
    let unknown: Vec<String> = (0..1000).map(|i| format!("{}|nope", 900_000 + i)).collect();
    let presented: [(&str, &[String], bool); 4] = [
        ("native_flz_sk", &natives, true),
        ("sanctum_and_drf_after_redigest", &redigested, true),
        ("sanctum_legacy_digest_wrong_secret", &wrong_secret, false),
        ("unknown_sanctum_id", &unknown, false),
    ];
    for (name, keys, valid) in presented {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                let outcome = store.verify(black_box(&keys[i])).is_ok();
                assert_eq!(outcome, valid);
            })
        });
    }
    group.finish();
    store.close().expect("close");

    // First verifies: each re-digests its key in a durable commit.
    let mut group = c.benchmark_group("first_verify");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut seed = 100;
    group.bench_function("sanctum_sha256_then_redigest", |b| {
        b.iter_custom(|iters| first_verifies(&dir, Source::Sanctum, None, iters, &mut seed))
    });
    group.bench_function("drf_sha512_then_redigest", |b| {
        b.iter_custom(|iters| first_verifies(&dir, Source::DrfApiKey, None, iters, &mut seed))
    });
    // Django 5.2's 1,000,000 iterations (1,000 in test mode).
    let iterations = if measuring() { 1_000_000 } else { 1_000 };
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("drf_pbkdf2_sha256_1m_then_redigest", |b| {
        b.iter_custom(|iters| {
            first_verifies(&dir, Source::DrfApiKey, Some(iterations), iters, &mut seed)
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_import_rate(&mut criterion);
    bench_verify(&mut criterion);
    criterion.final_summary();
}
