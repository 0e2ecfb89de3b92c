//! Shared mode at 1M keys, as PHP-FPM or gunicorn uses it: how long a new
//! worker process takes to open the store, and how much memory the shared
//! index costs the machine with 16 workers, against one process.
//!
//! Each worker opens the store in shared mode, verifies 200,000 keys drawn
//! at random (touching the whole index), and waits. The parent then reads
//! every worker's `/proc/PID/smaps` entry of the index file: `Rss` is what
//! one worker has resident, `Pss` its share when the pages are shared, so the
//! sum of `Pss` over the workers is what they cost together.
//!
//! `cargo bench --bench shared_memory` (about a minute; `SHARED_KEYS` and
//! `SHARED_WORKERS` change the sizes). Prints one JSON object; the figures go
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
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    let secrets = {
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
        secrets
    };
    std::fs::write(dir.path().join("secrets"), secrets.join("\n").into_bytes())
        .expect("write secrets");

    // The first shared open builds the index from the store (the exclusive
    // writes above left none).
    let started = Instant::now();
    KeyStore::open(&path, StoreOptions::new().shared())
        .expect("open shared")
        .close()
        .expect("close");
    let build = started.elapsed();

    let exe = std::env::current_exe().expect("bench binary");
    let mut children: Vec<_> = (0..workers)
        .map(|_| {
            Command::new(&exe)
                .env(ROLE, &path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("worker starts")
        })
        .collect();
    let mut opens = Vec::new();
    let mut one_rss = 0;
    let mut pss_sum = 0;
    for child in &mut children {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("worker reports");
        let open_us: f64 = line.trim().parse().expect("open time");
        opens.push(open_us);
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
    let index_bytes = std::fs::metadata(path.with_extension("redb.index"))
        .expect("index file")
        .len();
    println!(
        "{}",
        serde_json::json!({
            "keys": keys,
            "workers": workers,
            "index_file_bytes": index_bytes,
            "index_build_ms": build.as_secs_f64() * 1e3,
            "worker_open_us_median": opens[opens.len() / 2],
            "worker_open_us_max": opens[opens.len() - 1],
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
    writeln!(out, "{}", open.as_secs_f64() * 1e6).expect("report");
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
