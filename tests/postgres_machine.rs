//! Machines on a real PostgreSQL server (feature `postgres-tests`, the
//! server in `PG_URL`, as for tests/postgres.rs): each "machine" is a
//! machine-local directory of its own (its feeder lease and index) shared by
//! several worker processes, which are this test binary run again
//! (`worker_process`, a no-op unless `APIKEYS_MACHINE_WORKER` is set). Each
//! machine's connections carry its name as `application_name`, so that
//! `pg_stat_activity` counts them per machine.
//!
//! Times are read on `CLOCK_BOOTTIME`, the clock the library's bound uses
//! and one clock for every process of this (real) machine. The only timing
//! assertion is the bound itself: a revoked key is never accepted by a verify
//! that started more than L after the revocation returned (its commit is
//! before that). Everything else is measured and printed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::{Error, KeyStore, LocalDir, NewKey, StoreOptions, VerifyError};
use postgres::{Client, NoTls};

const BOUND: Duration = Duration::from_millis(300);

#[path = "support/database.rs"]
mod database;
use database::Database;

fn boot_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) },
        0
    );
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Database {
    /// Backends of this database per machine (`application_name`).
    fn backends(&self, admin: &mut Client, machine: &str) -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                &[&machine],
            )
            .unwrap()
            .get(0)
    }
}

fn writer_options() -> StoreOptions {
    StoreOptions::new()
        .pepper("machine pepper")
        .flush_interval(Duration::ZERO)
        .revocation_bound(BOUND)
        .local_dir(LocalDir::PerProcess)
}

/// One worker process of a machine, driven line by line.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn start(url: &str, secrets: &[String]) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "worker_process",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("APIKEYS_MACHINE_WORKER", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        writeln!(input, "{}", secrets.len()).unwrap();
        for secret in secrets {
            writeln!(input, "{secret}").unwrap();
        }
        let mut worker = Worker {
            child,
            input,
            output,
        };
        assert_eq!(worker.answer(), "ready");
        worker
    }

    /// The next protocol line (what follows an `@`; the test harness
    /// prints its own text too, `test worker_process ... ` without a line
    /// end before the first answer).
    fn answer(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(
                self.output.read_line(&mut line).unwrap() > 0,
                "the worker ended"
            );
            if let Some((_, answer)) = line.trim_end().split_once('@') {
                return answer.to_string();
            }
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.input, "{command}").unwrap();
        self.input.flush().unwrap();
    }

    /// Verifies key `i` once: `ok`, `rejected <reason>`, `unavailable`.
    fn verify(&mut self, i: usize) -> String {
        self.send(&format!("verify {i}"));
        self.answer()
    }

    /// Reads a watch's results: per key (last accept, accepts, refusals,
    /// unavailable) and the other errors.
    fn watched(&mut self, keys: usize) -> Watched {
        let mut per_key = Vec::new();
        for _ in 0..keys {
            let answer = self.answer();
            let numbers: Vec<u64> = answer
                .split(' ')
                .skip(1)
                .map(|n| n.parse().unwrap())
                .collect();
            per_key.push([numbers[0], numbers[1], numbers[2], numbers[3]]);
        }
        let errors = self.answer();
        Watched { per_key, errors }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the worker as a server ends its workers: its store closed (and
    /// dropped) before it exits.
    fn quit(mut self) {
        self.send("quit");
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Watched {
    /// Per key: the last accept's start (boot ns, 0 if none), accepts,
    /// refusals, unavailable.
    per_key: Vec<[u64; 4]>,
    /// `errors <n>`: verifies that failed other than unavailable.
    errors: String,
}

/// The process of this test binary that stands for one worker: opens the
/// store at the URL it was given and answers commands on stdin.
#[test]
fn worker_process() {
    let Ok(url) = std::env::var("APIKEYS_MACHINE_WORKER") else {
        return;
    };
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines().map(|line| line.unwrap());
    let count: usize = lines.next().unwrap().parse().unwrap();
    let secrets: Vec<String> = (0..count).map(|_| lines.next().unwrap()).collect();
    let store = KeyStore::open(
        &url,
        StoreOptions::new()
            .pepper("machine pepper")
            .flush_interval(Duration::from_millis(200)),
    )
    .unwrap();
    let out = |line: String| {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "@{line}").unwrap();
        stdout.flush().unwrap();
    };
    out("ready".into());
    let classify = |result: Result<apikeys::VerifiedKey<'_>, VerifyError>| match result {
        Ok(_) => "ok".to_string(),
        Err(VerifyError::Rejected(rejection)) => format!("rejected {rejection:?}"),
        Err(VerifyError::Failed(Error::DatabaseUnavailable(_))) => "unavailable".into(),
        Err(VerifyError::Failed(error)) => format!("error {error}"),
    };
    for line in lines {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("verify"), Some(i)) => {
                let i: usize = i.parse().unwrap();
                out(classify(store.verify(&secrets[i])));
            }
            (Some("watch"), Some(ms)) => {
                let until = Instant::now() + Duration::from_millis(ms.parse().unwrap());
                let mut per_key = vec![[0u64; 4]; secrets.len()];
                let mut errors = 0u64;
                while Instant::now() < until {
                    for (i, secret) in secrets.iter().enumerate() {
                        let started = boot_nanos();
                        match store.verify(secret) {
                            Ok(_) => {
                                per_key[i][0] = started;
                                per_key[i][1] += 1;
                            }
                            Err(VerifyError::Rejected(_)) => per_key[i][2] += 1,
                            Err(VerifyError::Failed(Error::DatabaseUnavailable(_))) => {
                                per_key[i][3] += 1
                            }
                            Err(VerifyError::Failed(_)) => errors += 1,
                        }
                    }
                }
                for (i, [last, accepts, refusals, unavailable]) in per_key.iter().enumerate() {
                    out(format!("{i} {last} {accepts} {refusals} {unavailable}"));
                }
                out(format!("errors {errors}"));
            }
            (Some("quit"), _) | (None, _) => return,
            _ => out(format!("unknown {line}")),
        }
    }
}

/// A machine: its local directory and its workers.
struct Machine {
    name: String,
    dir: tempfile::TempDir,
    workers: Vec<Worker>,
}

impl Machine {
    /// `url` is the server's (maybe through a proxy); `parameters` more
    /// `apikeys_*` parameters.
    fn start(name: &str, url: &str, workers: usize, secrets: &[String], extra: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let url = format!(
            "{url}?application_name={name}&apikeys_local={}&apikeys_bound_ms={}{extra}",
            dir.path().display(),
            BOUND.as_millis()
        );
        let workers = (0..workers).map(|_| Worker::start(&url, secrets)).collect();
        Machine {
            name: name.to_string(),
            dir,
            workers,
        }
    }

    /// The pid holding the machine's feeder lease, from `/proc/locks`.
    fn feeder(&self) -> Option<u32> {
        feeder_of(self.dir.path())
    }

    fn wait_all_ok(&mut self, key: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for worker in &mut self.workers {
            while worker.verify(key) != "ok" {
                assert!(Instant::now() < deadline, "a worker never accepted");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn feeder_of(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let lease = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "lease"))?;
    let inode = std::fs::metadata(&lease).unwrap().ino();
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, file) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        (*kind == "FLOCK" && file.rsplit(':').next()? == inode.to_string())
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Sends `watch` to every worker listed, then collects their results.
fn watch(workers: &mut [&mut Worker], ms: u64, keys: usize) -> Vec<Watched> {
    for worker in workers.iter_mut() {
        worker.send(&format!("watch {ms}"));
    }
    workers.iter_mut().map(|w| w.watched(keys)).collect()
}

/// Checks the bound on every watch's result: no accept of key `i` that
/// started later than L after its revocation returned.
fn assert_bound(results: &[Watched], revoked_at: &[Option<u64>]) {
    let bound = BOUND.as_nanos() as u64;
    for watched in results {
        assert_eq!(watched.errors, "errors 0");
        for (i, revoked) in revoked_at.iter().enumerate() {
            if let Some(revoked) = revoked {
                let last = watched.per_key[i][0];
                assert!(
                    last <= revoked + bound,
                    "key {i} accepted {} ms after its revocation returned (L = {BOUND:?})",
                    (last - revoked) as f64 / 1e6
                );
            }
        }
    }
}

fn generate(writer: &KeyStore, n: usize) -> (Vec<String>, Vec<String>) {
    let keys: Vec<NewKey> = (0..n).map(|i| NewKey::new(format!("k{i}"))).collect();
    let generated = writer.generate_batch(&keys).unwrap();
    (
        generated
            .iter()
            .map(|k| k.secret.expose_secret().to_string())
            .collect(),
        generated.iter().map(|k| k.id().to_string()).collect(),
    )
}

#[test]
fn connections_per_machine_do_not_grow_with_workers() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, ids) = generate(&writer, 20);
    let mut machines: Vec<Machine> = (0..3)
        .map(|m| {
            Machine::start(
                &format!("m{m}"),
                &db.url,
                4,
                &secrets,
                "&apikeys_idle_ms=500",
            )
        })
        .collect();
    for machine in &mut machines {
        machine.wait_all_ok(0);
    }
    // A first look at each key: a worker reads a key's details (name,
    // scopes: they never change) from the database once, through its own
    // connection, closed once idle.
    let warm_up = {
        let mut all: Vec<&mut Worker> = machines
            .iter_mut()
            .flat_map(|m| m.workers.iter_mut())
            .collect();
        watch(&mut all, 300, secrets.len())
    };
    let mut admin = db.client();
    // At rest: the feeder's feed connection only, once idle calls closed.
    std::thread::sleep(Duration::from_millis(1500));
    for machine in &machines {
        let at_rest = db.backends(&mut admin, &machine.name);
        println!(
            "{}: {} workers, {at_rest} backends at rest",
            machine.name,
            machine.workers.len()
        );
        assert_eq!(
            at_rest, 1,
            "{}: one feed connection per machine",
            machine.name
        );
        assert!(machine.feeder().is_some());
    }
    // Under load: every worker verifies every key (usage flushed every 200 ms).
    let sampled = Arc::new(Mutex::new(Vec::new()));
    let statements: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let statements = statements.clone();
        let (sampled, stop, url, names) = (
            sampled.clone(),
            stop.clone(),
            db.url.clone(),
            machines.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        );
        std::thread::spawn(move || {
            let mut admin = Client::connect(&url, NoTls).unwrap();
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                // Per machine: every backend, and those whose last
                // statement was not a worker's read of a key (its details
                // once, or its state while the machine is not current),
                // counting a call connection being set up (no statement
                // yet, or the last it prepares) as one about to read.
                let counts: Vec<(i64, i64)> = names
                    .iter()
                    .map(|name| {
                        let row = admin
                            .query_one(
                                "SELECT count(*), count(*) FILTER (WHERE query NOT LIKE 'SELECT record FROM apikeys_keys%' AND query NOT LIKE 'SELECT state FROM apikeys_keys%' AND query NOT LIKE 'SELECT k.record FROM apikeys_legacy%' AND query <> '') FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                                &[name],
                            )
                            .unwrap();
                        (row.get(0), row.get(1))
                    })
                    .collect();
                // What the connections counted as not reads last ran, for
                // the failure message.
                let others: Vec<String> = admin
                    .query(
                        "SELECT application_name || ': ' || left(query, 60) FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY($1) AND query NOT LIKE 'SELECT record FROM apikeys_keys%' AND query NOT LIKE 'SELECT state FROM apikeys_keys%' AND query NOT LIKE 'SELECT k.record FROM apikeys_legacy%' AND query <> ''",
                        &[&names],
                    )
                    .unwrap()
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                statements.lock().unwrap().push(others);
                sampled.lock().unwrap().push(counts);
            }
        })
    };
    let mut all: Vec<&mut Worker> = machines
        .iter_mut()
        .flat_map(|m| m.workers.iter_mut())
        .collect();
    let started = Instant::now();
    let results = watch(&mut all, 2000, secrets.len());
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let verifies: u64 = results
        .iter()
        .map(|w| w.per_key.iter().map(|k| k[1]).sum::<u64>())
        .sum();
    assert!(results.iter().all(|w| w.errors == "errors 0"));
    let samples = sampled.lock().unwrap().clone();
    let peak = |of: fn(&(i64, i64)) -> i64| -> Vec<i64> {
        (0..machines.len())
            .map(|m| samples.iter().map(|s| of(&s[m])).max().unwrap_or(0))
            .collect()
    };
    let (all_peak, not_reads_peak) = (peak(|s| s.0), peak(|s| s.1));
    println!(
        "under load ({verifies} verifies by 12 workers in {elapsed:?}, usage flushed every 200 ms): peak backends per machine {all_peak:?}, of which not a worker's read of a key {not_reads_peak:?}; samples (all, not reads) {samples:?}"
    );
    for (all, not_reads) in all_peak.iter().zip(&not_reads_peak) {
        assert!(
            *not_reads <= 2,
            "usage goes through the feeder: the feed and its usage connection, whatever the workers; last statements per sample: {:?}",
            statements.lock().unwrap()
        );
        assert!(
            *all <= 2 + 4,
            "besides, at most one connection per worker, while it reads a key"
        );
    }
    // The usage the workers counted reaches the database through the
    // feeders, exactly: each key's accepts in the watch, and key 0's one
    // accept per worker before it.
    let expected: Vec<u64> = (0..secrets.len())
        .map(|i| {
            let watched: u64 = results
                .iter()
                .chain(&warm_up)
                .map(|w| w.per_key[i][1])
                .sum();
            watched + if i == 0 { 12 } else { 0 }
        })
        .collect();
    let counted = || -> Vec<u64> {
        ids.iter()
            .map(|id| writer.get(id).unwrap().use_count)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while counted() != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        counted(),
        expected,
        "every use counted once, by the feeders"
    );
    // Nothing more arrives later (no count handed over twice).
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(counted(), expected);
    // Idle again: back to one per machine.
    std::thread::sleep(Duration::from_millis(1500));
    for machine in &machines {
        let after = db.backends(&mut admin, &machine.name);
        println!("{}: {after} backends at rest after the load", machine.name);
        assert_eq!(after, 1);
    }
}

/// Revokes keys `range` one every `every`, recording when each returned.
fn revoke_spaced(
    writer: &KeyStore,
    ids: &[String],
    range: std::ops::Range<usize>,
    every: Duration,
    revoked_at: &mut [Option<u64>],
) {
    for i in range {
        writer.revoke(&ids[i]).unwrap();
        revoked_at[i] = Some(boot_nanos());
        std::thread::sleep(every);
    }
}

#[test]
fn a_killed_feeder_is_replaced_and_no_revoked_key_is_accepted_past_the_bound() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, ids) = generate(&writer, 30);
    let mut machine = Machine::start("killed", &db.url, 3, &secrets, "");
    let mut other = Machine::start("other", &db.url, 2, &secrets, "");
    machine.wait_all_ok(0);
    other.wait_all_ok(0);
    let feeder = machine.feeder().expect("a feeder");
    let position = machine
        .workers
        .iter()
        .position(|w| w.pid() == feeder)
        .expect("the feeder is one of the workers");
    let mut revoked_at = vec![None; secrets.len()];
    let (writer, ids, secrets) = (&writer, &ids, &secrets);
    let results = std::thread::scope(|scope| {
        let mut victim = machine.workers.remove(position);
        let mut watchers: Vec<&mut Worker> = machine
            .workers
            .iter_mut()
            .chain(other.workers.iter_mut())
            .collect();
        for worker in watchers.iter_mut() {
            worker.send("watch 4000");
        }
        let revoking = scope.spawn(move || {
            let mut at = vec![None; secrets.len()];
            std::thread::sleep(Duration::from_millis(500));
            revoke_spaced(writer, ids, 0..5, Duration::from_millis(40), &mut at);
            // The feeder dies mid-stream; revocations continue.
            let killed = boot_nanos();
            victim.child.kill().unwrap();
            victim.child.wait().unwrap();
            revoke_spaced(writer, ids, 5..20, Duration::from_millis(40), &mut at);
            (at, killed)
        });
        let results: Vec<Watched> = watchers
            .iter_mut()
            .map(|w| w.watched(secrets.len()))
            .collect();
        let (at, killed) = revoking.join().unwrap();
        (results, at, killed)
    });
    let (results, at, killed) = results;
    revoked_at.copy_from_slice(&at);
    let successor = machine.feeder().expect("another process took the lease");
    assert_ne!(successor, feeder);
    assert!(machine.workers.iter().any(|w| w.pid() == successor));
    assert_bound(&results, &revoked_at);
    let unavailable: u64 = results
        .iter()
        .map(|w| w.per_key.iter().map(|k| k[3]).sum::<u64>())
        .sum();
    println!(
        "feeder {feeder} killed; successor {successor}; {unavailable} verifies unavailable; revocations after the kill: {}",
        revoked_at.iter().flatten().filter(|at| **at > killed).count()
    );
    // Service goes on from the index: revoked refused, valid accepted.
    for worker in machine.workers.iter_mut().chain(other.workers.iter_mut()) {
        assert_eq!(worker.verify(3), "rejected Revoked");
        assert_eq!(worker.verify(25), "ok");
    }
}

#[test]
fn takeover_time_after_a_feeder_is_killed_is_measured() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, _) = generate(&writer, 5);
    let mut machine = Machine::start("takeover", &db.url, 3, &secrets, "");
    machine.wait_all_ok(0);
    let mut times = Vec::new();
    for _ in 0..2 {
        let feeder = machine.feeder().unwrap();
        let position = machine
            .workers
            .iter()
            .position(|w| w.pid() == feeder)
            .unwrap();
        let mut victim = machine.workers.remove(position);
        let killed = Instant::now();
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        let successor = loop {
            if let Some(pid) = machine.feeder().filter(|pid| *pid != feeder) {
                break pid;
            }
            assert!(killed.elapsed() < Duration::from_secs(10), "no takeover");
            std::thread::sleep(Duration::from_millis(2));
        };
        let lease = killed.elapsed();
        // Confirmed current again: verifies answer from the index (a
        // refused index would make them ask the database, still `ok`), so
        // watch the machine's feed connection come back instead.
        let mut admin = db.client();
        while db.backends(&mut admin, &machine.name) < 1 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let connected = killed.elapsed();
        println!("takeover by {successor}: lease taken {lease:?}, feed connected {connected:?} after the kill (poll L/4 = {:?})", BOUND / 4);
        times.push(lease);
        for worker in &mut machine.workers {
            assert_eq!(worker.verify(1), "ok");
        }
    }
}

#[test]
fn a_terminated_feed_connection_is_survived_without_a_stale_accept() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, ids) = generate(&writer, 20);
    let mut machine = Machine::start("terminated", &db.url, 3, &secrets, "");
    machine.wait_all_ok(0);
    let mut admin = db.client();
    let name = machine.name.clone();
    let (results, revoked_at) = std::thread::scope(|scope| {
        let mut watchers: Vec<&mut Worker> = machine.workers.iter_mut().collect();
        for worker in watchers.iter_mut() {
            worker.send("watch 3000");
        }
        let revoking = scope.spawn(|| {
            let mut at = vec![None; secrets.len()];
            for round in 0..3 {
                std::thread::sleep(Duration::from_millis(300));
                let terminated: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1) t",
                        &[&name],
                    )
                    .unwrap()
                    .get(0);
                println!("round {round}: terminated {terminated} backends of the machine");
                revoke_spaced(&writer, &ids, round * 5..round * 5 + 5, Duration::from_millis(30), &mut at);
            }
            at
        });
        let results: Vec<Watched> = watchers
            .iter_mut()
            .map(|w| w.watched(secrets.len()))
            .collect();
        (results, revoking.join().unwrap())
    });
    assert_bound(&results, &revoked_at);
    let unavailable: u64 = results
        .iter()
        .map(|w| w.per_key.iter().map(|k| k[3]).sum::<u64>())
        .sum();
    println!("{unavailable} verifies unavailable across the terminations");
    let deadline = Instant::now() + Duration::from_secs(10);
    for worker in &mut machine.workers {
        loop {
            let revoked = worker.verify(14);
            let valid = worker.verify(19);
            if revoked == "rejected Revoked" && valid == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "{revoked} / {valid}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[path = "support/proxy.rs"]
mod proxy;
use proxy::Proxy;

#[test]
fn a_partitioned_machine_stops_accepting_after_the_bound_and_resumes() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, ids) = generate(&writer, 10);
    let port = db
        .url
        .split('/')
        .nth(2)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let proxy = Proxy::start(port.parse().unwrap());
    let through = db
        .url
        .replace(&format!(":{port}/"), &format!(":{}/", proxy.port));
    for policy in ["ask", "refuse"] {
        let mut machine = Machine::start(
            &format!("cut_{policy}"),
            &through,
            3,
            &secrets,
            &format!("&apikeys_not_current={policy}"),
        );
        machine.wait_all_ok(9);
        let offset = if policy == "ask" { 0 } else { 4 };
        let (results, revoked_at, cut_at) = std::thread::scope(|scope| {
            let mut watchers: Vec<&mut Worker> = machine.workers.iter_mut().collect();
            for worker in watchers.iter_mut() {
                worker.send("watch 2500");
            }
            let cutting = scope.spawn(|| {
                let mut at = vec![None; secrets.len()];
                std::thread::sleep(Duration::from_millis(400));
                proxy.partition();
                let cut_at = boot_nanos();
                revoke_spaced(
                    &writer,
                    &ids,
                    offset..offset + 4,
                    Duration::from_millis(100),
                    &mut at,
                );
                std::thread::sleep(Duration::from_millis(1200));
                proxy.heal();
                (at, cut_at)
            });
            let results: Vec<Watched> = watchers
                .iter_mut()
                .map(|w| w.watched(secrets.len()))
                .collect();
            let (at, cut_at) = cutting.join().unwrap();
            (results, at, cut_at)
        });
        assert_bound(&results, &revoked_at);
        // Every accept of any key during the cut started within L of it:
        // the machine cannot confirm anything after the cut.
        let bound = BOUND.as_nanos() as u64;
        let mut unavailable = 0;
        for watched in &results {
            for key in &watched.per_key {
                unavailable += key[3];
            }
        }
        let last_valid_accept = results.iter().map(|w| w.per_key[9][0]).max().unwrap();
        println!(
            "{policy}: {unavailable} verifies unavailable during the cut; last accept of a valid key {:.0} ms after the cut (served again after the heal)",
            (last_valid_accept as f64 - cut_at as f64) / 1e6
        );
        assert!(
            unavailable > 0,
            "the cut outlasted L: some verifies must fail"
        );
        let _ = bound;
        let deadline = Instant::now() + Duration::from_secs(15);
        let healed = Instant::now();
        for worker in &mut machine.workers {
            loop {
                let revoked = worker.verify(offset);
                let valid = worker.verify(9);
                if revoked == "rejected Revoked" && valid == "ok" {
                    break;
                }
                assert!(revoked != "ok", "a revoked key accepted after the heal");
                assert!(Instant::now() < deadline, "{revoked} / {valid}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        println!(
            "{policy}: every worker served again {:?} after checking began",
            healed.elapsed()
        );
    }
}

#[test]
fn a_process_serves_its_own_writes_before_the_feeder_brings_them() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, _) = generate(&writer, 1);
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // A long bound: the index stays current while its feeder is stopped.
    let url = format!(
        "{}?application_name=own&apikeys_local={}&apikeys_bound_ms=20000",
        db.url,
        dir.path().display()
    );
    let mut feeder = Worker::start(&url, &secrets);
    assert_eq!(feeder.verify(0), "ok");
    assert_eq!(feeder_of(dir.path()), Some(feeder.pid()));
    // SAFETY: stops (then resumes) a child of this test.
    assert_eq!(unsafe { libc::kill(feeder.pid() as i32, libc::SIGSTOP) }, 0);
    let store = KeyStore::open(
        &url,
        StoreOptions::new()
            .pepper("machine pepper")
            .flush_interval(Duration::ZERO),
    )
    .unwrap();
    // More keys than the machine's first table takes: the rest wait for a
    // feeder that does not run. This process accepts every one of them.
    let keys: Vec<NewKey> = (0..1500).map(|i| NewKey::new(format!("own {i}"))).collect();
    let generated = store.generate_batch(&keys).unwrap();
    for key in &generated {
        assert!(
            store.verify(key.secret.expose_secret()).is_ok(),
            "a key this process just generated is accepted"
        );
    }
    // And refuses what it revokes, published or not.
    for key in [&generated[0], &generated[1499]] {
        assert!(store.revoke(key.id()).unwrap());
        assert!(matches!(
            store.verify(key.secret.expose_secret()),
            Err(VerifyError::Rejected(apikeys::Rejection::Revoked))
        ));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(feeder.pid() as i32, libc::SIGCONT) }, 0);
    // Once fed, the other processes of the machine see them too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = generated[1498].secret.expose_secret().to_string();
    let mut other = Worker::start(&url, &[last]);
    while other.verify(0) != "ok" {
        assert!(
            Instant::now() < deadline,
            "the feeder never brought the keys"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(feeder);
}

#[test]
fn a_feeder_that_closes_its_store_writes_the_usage_it_was_handed() {
    let db = Database::new("machine");
    let writer = KeyStore::open(&db.url, writer_options()).unwrap();
    let (secrets, ids) = generate(&writer, 1);
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let url = format!(
            "{}?application_name=relay{round}&apikeys_local={}&apikeys_bound_ms={}",
            db.url,
            dir.path().display(),
            BOUND.as_millis()
        );
        let before = writer.get(&ids[0]).unwrap().use_count;
        let mut feeder = Worker::start(&url, &secrets);
        assert_eq!(feeder.verify(0), "ok");
        assert_eq!(feeder_of(dir.path()), Some(feeder.pid()));
        let mut other = Worker::start(&url, &secrets);
        let watched = watch(&mut [&mut other], 500, 1);
        // The feeder leaves at once, holding what the other handed it
        // since its last write; the other stays (its later flushes write
        // through its own connection once the feeder's socket is gone).
        feeder.quit();
        let expected = before + 1 + watched[0].per_key[0][1];
        let deadline = Instant::now() + Duration::from_secs(20);
        while writer.get(&ids[0]).unwrap().use_count != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            writer.get(&ids[0]).unwrap().use_count,
            expected,
            "round {round}: every use counted once"
        );
        other.quit();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(writer.get(&ids[0]).unwrap().use_count, expected);
    }
}
