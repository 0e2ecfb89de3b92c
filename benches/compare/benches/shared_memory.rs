//! Shared mode at 1M keys, as PHP-FPM or gunicorn uses it: how long a new
//! worker process takes to open the store, and how much memory the shared
//! index costs the machine with 16 workers, against one process.
//!
//! Each worker opens the store in shared mode (timed), verifies one key
//! (timed: the first verify of a new worker), then verifies 200,000 keys drawn
//! at random (touching the whole index), and waits. The parent then reads
//! every worker's `/proc/PID/smaps` entry of the index file: `Rss` is what
//! one worker has resident, `Pss` its share when the pages are shared, so the
//! sum of `Pss` over the workers is what they cost together.
//!
//! `cargo bench --bench shared_memory` (about a minute; `SHARED_KEYS` and
//! `SHARED_WORKERS` change the sizes, `SHARED_STORE=<dir>` keeps the store
//! for later runs, `SHARED_SEQUENTIAL=1` starts the workers one at a time). Prints one JSON object; the figures go
//! to BENCHMARKS.md. Under `cargo test --benches` it runs on 20,000 keys and 2
//! workers and checks every verify, so the bench itself is tested.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::{KeyStore, NewKey, StoreOptions, MAX_BATCH};

const ROLE: &str = "APIKEYS_SHARED_MEMORY_WORKER";

fn main() {
    let testing = !std::env::args().any(|arg| arg == "--bench");
    if let Ok(store) = std::env::var(ROLE) {
        worker(Path::new(&store));
        return;
    }
    let count = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (keys, workers) = if testing {
        (20_000, 2)
    } else {
        (count("SHARED_KEYS", 1_000_000), count("SHARED_WORKERS", 16))
    };
    // SHARED_STORE=<dir> keeps the store there and reuses it in later runs
    // (building 1M keys takes minutes); otherwise a temporary directory.
    let kept = std::env::var_os("SHARED_STORE").map(std::path::PathBuf::from);
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = kept.as_deref().unwrap_or(temporary.path());
    std::fs::create_dir_all(dir).expect("store directory");
    let path = dir.join("keys.redb");
    let secrets_path = dir.join("secrets");
    if !(path.exists() && secrets_path.exists()) {
        let _ = std::fs::remove_file(&path);
        let store = KeyStore::open(&path, StoreOptions::new()).expect("open");
        let mut secrets = Vec::with_capacity(keys);
        while secrets.len() < keys {
            let batch = (keys - secrets.len()).min(MAX_BATCH);
            for key in store
                .generate_batch(&vec![NewKey::new("bench"); batch])
                .expect("generate")
            {
                secrets.push(key.secret.expose_secret().to_string());
            }
        }
        store.close().expect("close");
        std::fs::write(&secrets_path, secrets.join("\n").into_bytes()).expect("write secrets");
    }
    let keys = std::fs::read_to_string(&secrets_path)
        .expect("secrets")
        .lines()
        .count();

    // The first shared open builds the index from the store (the exclusive
    // writes above left none).
    let started = Instant::now();
    KeyStore::open(&path, StoreOptions::new().shared())
        .expect("open shared")
        .close()
        .expect("close");
    let build = started.elapsed();

    // SHARED_SEQUENTIAL=1: each worker starts once the previous one has
    // reported (one at a time); otherwise all start at once.
    let sequential = std::env::var_os("SHARED_SEQUENTIAL").is_some();
    let exe = std::env::current_exe().expect("bench binary");
    let mut children = Vec::new();
    let mut opens = Vec::new();
    let mut firsts = Vec::new();
    let mut one_rss = 0;
    let mut pss_sum = 0;
    let report = |child: &mut std::process::Child, opens: &mut Vec<f64>, firsts: &mut Vec<f64>| {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("worker reports");
        let mut times = line
            .split_whitespace()
            .map(|t| t.parse::<f64>().expect("a time"));
        opens.push(times.next().expect("open time"));
        firsts.push(times.next().expect("first verify time"));
    };
    for _ in 0..workers {
        let mut child = Command::new(&exe)
            .env(ROLE, &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("worker starts");
        if sequential {
            report(&mut child, &mut opens, &mut firsts);
        }
        children.push(child);
    }
    if !sequential {
        for child in &mut children {
            report(child, &mut opens, &mut firsts);
        }
    }
    for child in &children {
        let (rss, pss) = index_memory(child.id(), &path);
        one_rss = one_rss.max(rss);
        pss_sum += pss;
    }
    for mut child in children {
        drop(child.stdin.take());
        assert!(child.wait().expect("worker ends").success());
    }
    opens.sort_by(f64::total_cmp);
    firsts.sort_by(f64::total_cmp);
    let index_bytes = std::fs::metadata(path.with_extension("redb.index"))
        .expect("index file")
        .len();
    println!(
        "{}",
        serde_json::json!({
            "keys": keys,
            "workers": workers,
            "sequential": sequential,
            "index_file_bytes": index_bytes,
            "index_build_ms": build.as_secs_f64() * 1e3,
            "worker_open_us_median": opens[opens.len() / 2],
            "worker_open_us_max": opens[opens.len() - 1],
            "worker_first_verify_us_median": firsts[firsts.len() / 2],
            "worker_first_verify_us_max": firsts[firsts.len() - 1],
            "index_rss_one_worker_kib": one_rss,
            "index_pss_all_workers_kib": pss_sum,
            "pss_all_over_rss_one": pss_sum as f64 / one_rss.max(1) as f64,
        })
    );
    if testing {
        assert!(pss_sum > 0 && one_rss > 0, "the index was not mapped");
    }
}

/// A worker: opens the store, reports how long that took, verifies keys
/// until it has touched the index, then waits for its stdin to close.
fn worker(path: &Path) {
    let started = Instant::now();
    let store = KeyStore::open(
        path,
        StoreOptions::new().shared().flush_interval(Duration::ZERO),
    )
    .expect("worker opens");
    let open = started.elapsed();
    let secrets = std::fs::read_to_string(path.with_file_name("secrets")).expect("secrets");
    let secrets: Vec<&str> = secrets.lines().collect();
    // The first verify of a key this process holds no details of reads
    // them from the store file, which shared mode opens in the background:
    // this is what a worker's first request waits for.
    let verifying = Instant::now();
    assert!(store.verify(secrets[0]).is_ok(), "a stored key is refused");
    let first = verifying.elapsed();
    let mut state = u64::from(std::process::id()) | 1;
    for _ in 0..(secrets.len() / 5).max(1000) {
        // xorshift: any spread of keys will do.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let secret = secrets[(state % secrets.len() as u64) as usize];
        assert!(store.verify(secret).is_ok(), "a stored key is refused");
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} {}",
        open.as_secs_f64() * 1e6,
        first.as_secs_f64() * 1e6
    )
    .expect("report");
    out.flush().expect("report");
    drop(out);
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(store);
}

/// `Rss` and `Pss` (KiB) of the process's mapping of the store's index.
fn index_memory(pid: u32, store: &Path) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let index = format!("{}.index", store.display());
    let (mut rss, mut pss, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let is_header = line.split_whitespace().next().is_some_and(|range| {
            range.contains('-') && range.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if is_header {
            inside = line.ends_with(&index);
            continue;
        }
        let field = |name: &str, total: &mut u64| {
            if let Some(value) = line.strip_prefix(name) {
                *total += value
                    .trim()
                    .trim_end_matches(" kB")
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        };
        if inside {
            field("Rss:", &mut rss);
            field("Pss:", &mut pss);
        }
    }
    (rss, pss)
}
