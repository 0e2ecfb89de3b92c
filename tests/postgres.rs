//! Stores on a real PostgreSQL server (feature `postgres-tests`; the server's
//! URL in `PG_URL`, which `scripts/test` starts and stops with
//! `scripts/lib/postgres.sh`). Without `PG_URL` every test fails: they never
//! pass without a database. Each test works in a database of its own.
//!
//! Several store handles in one test stand for several machines: each has
//! its own connections, its own replica of the keys and its own feed thread.
//! Durations are measured and printed, never asserted, except the bound
//! itself: a revoked key is refused once L has passed since its commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apikeys::{
    Error, EventKind, KeyStore, ListFilter, LocalDir, NewKey, NotCurrent, Rejection, Status,
    StoreOptions, VerifyError,
};
use postgres::Client;

#[path = "support/database.rs"]
mod database;
use database::Database;

fn options() -> StoreOptions {
    StoreOptions::new()
        .pepper("fleet pepper")
        .flush_interval(Duration::ZERO)
        .revocation_bound(Duration::from_millis(200))
}

fn rejection<T: std::fmt::Debug>(result: Result<T, VerifyError>) -> Rejection {
    match result {
        Err(VerifyError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, VerifyError>) -> bool {
    matches!(
        result,
        Err(VerifyError::Failed(Error::DatabaseUnavailable(_)))
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn the_lifecycle_works_on_postgresql_and_survives_reopen() {
    let db = Database::new("test");
    let store = KeyStore::open(&db.url, options()).unwrap();
    let production = store
        .generate(&NewKey::new("Production").env("prod").scope("contacts:*"))
        .unwrap();
    let batch = store
        .generate_batch(&[NewKey::new("a"), NewKey::new("b")])
        .unwrap();
    let secret = production.secret.expose_secret().to_string();
    assert_eq!(store.verify(&secret).unwrap().id(), production.id());
    assert!(store.verify_with_scope(&secret, "contacts:read").is_ok());
    assert_eq!(
        rejection(store.verify_with_scope(&secret, "billing:read")),
        Rejection::InsufficientScope
    );
    assert_eq!(
        rejection(store.verify("flz_sk_prod_0000000000000000000000000000000")),
        Rejection::Malformed
    );
    let rotated = store
        .rotate(production.id(), Duration::from_secs(3600))
        .unwrap();
    assert!(store.verify(rotated.secret.expose_secret()).is_ok());
    assert!(store.verify(&secret).is_ok(), "inside its grace period");
    assert!(store.revoke(batch[0].id()).unwrap());
    assert!(!store.revoke(batch[0].id()).unwrap(), "idempotent");
    assert_eq!(
        rejection(store.verify(batch[0].secret.expose_secret())),
        Rejection::Revoked
    );
    assert!(store.revoke_key(batch[1].secret.expose_secret()).unwrap());
    store.flush().unwrap();
    let path = store.path().to_path_buf();
    store.close().unwrap();

    let store = KeyStore::open(&db.url, options()).unwrap();
    assert_eq!(store.path(), path);
    let old = store.get(production.id()).unwrap();
    // Three accepts and the use refused for its scope.
    assert_eq!(old.use_count, 4);
    assert_eq!(old.rotated_to.as_deref(), Some(rotated.id()));
    assert_eq!(
        store.get(rotated.id()).unwrap().rotated_from.as_deref(),
        Some(production.id())
    );
    assert_eq!(store.get(batch[0].id()).unwrap().rejected_count, 1);
    assert_eq!(
        rejection(store.verify(batch[1].secret.expose_secret())),
        Rejection::Revoked
    );
    assert_eq!(store.list(&ListFilter::default()).unwrap().len(), 4);
    let kinds: Vec<String> = store
        .events(0, 100)
        .unwrap()
        .iter()
        .map(|event| event.kind.as_str().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "created",
            "created",
            "rotated",
            "created",
            "revoked",
            "revoked",
            "revoked_key_used"
        ],
        "events in commit order"
    );
    let sequences: Vec<u64> = store
        .events(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert!(matches!(
        store.events(0, 100).unwrap()[3].kind,
        EventKind::Rotated { .. }
    ));
    assert_eq!(store.get(batch[0].id()).unwrap().status, Status::Revoked);
}

#[test]
fn a_wrong_pepper_or_a_newer_schema_is_refused() {
    let db = Database::new("test");
    drop(KeyStore::open(&db.url, options()).unwrap());
    let refused = KeyStore::open(&db.url, options().pepper("another"));
    assert!(matches!(refused, Err(Error::WrongPepper)), "{refused:?}");
    db.client()
        .execute(
            "UPDATE apikeys_meta SET value = $1 WHERE name = 'version'",
            &[&99u32.to_le_bytes().as_slice()],
        )
        .unwrap();
    let refused = KeyStore::open(&db.url, options());
    assert!(
        matches!(refused, Err(Error::UnsupportedVersion(99))),
        "{refused:?}"
    );
}

#[test]
fn no_key_is_stored_in_the_database() {
    let db = Database::new("test");
    let store = KeyStore::open(&db.url, options()).unwrap();
    let key = store.generate(&NewKey::new("secret holder")).unwrap();
    let secret = key.secret.expose_secret().to_string();
    store.verify(&secret).unwrap();
    store.rotate(key.id(), Duration::from_secs(1)).unwrap();
    store.flush().unwrap();
    // Every table, every column, as text: the key's body appears nowhere.
    let body = &secret[secret.len() - 32..];
    let mut client = db.client();
    for table in [
        "apikeys_meta",
        "apikeys_keys",
        "apikeys_usage",
        "apikeys_events",
        "apikeys_feed",
    ] {
        let rows = client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            assert!(!text.contains(body), "{table} holds the key");
            assert!(
                !text.contains(&hex(body.as_bytes())),
                "{table} holds the key as bytes"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_bigserial_read_skips_a_late_commit_and_the_feed_does_not() {
    let db = Database::new("test");
    let mut setup = db.client();
    setup
        .batch_execute("CREATE TABLE changes (n bigserial PRIMARY KEY, what text)")
        .unwrap();
    // The pitfall: T1 takes number 1, T2 takes 2 and commits first; a reader
    // then sees 2, moves its mark to 2, and never sees 1 once T1 commits.
    let mut first = db.client();
    let mut second = db.client();
    let mut t1 = first.transaction().unwrap();
    t1.execute("INSERT INTO changes (what) VALUES ('revoke A')", &[])
        .unwrap();
    let mut t2 = second.transaction().unwrap();
    t2.execute("INSERT INTO changes (what) VALUES ('revoke B')", &[])
        .unwrap();
    t2.commit().unwrap();
    let mut reader = db.client();
    let seen: Vec<i64> = reader
        .query("SELECT n FROM changes WHERE n > 0 ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seen, [2]);
    t1.commit().unwrap();
    let after_mark: Vec<i64> = reader
        .query("SELECT n FROM changes WHERE n > 2 ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        after_mark.is_empty(),
        "the reader skipped change 1 for good"
    );

    // The feed: the same interleaving through the store's writers. Writer
    // 1 holds the feed row, so writer 2's revocation waits for its commit
    // and cannot be seen before it.
    let store = KeyStore::open(&db.url, options()).unwrap();
    let keys = store
        .generate_batch(&[NewKey::new("A"), NewKey::new("B")])
        .unwrap();
    let mut holder = db.client();
    let mut t1 = holder.transaction().unwrap();
    // Writer 1, by hand, as the library writes: feed row first.
    let version: i64 = t1
        .query_one(
            "UPDATE apikeys_feed SET version = version + 1 RETURNING version",
            &[],
        )
        .unwrap()
        .get(0);
    t1.execute(
        "UPDATE apikeys_keys SET state = $1, version = $2 WHERE id = $3",
        &[&i64::MIN, &version, &keys[0].id()],
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer2 = {
        let (url, id, done) = (db.url.clone(), keys[1].id().to_string(), done.clone());
        std::thread::spawn(move || {
            let other = KeyStore::open(&url, options()).unwrap();
            other.revoke(&id).unwrap();
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "writer 2 waits for writer 1's commit"
    );
    let read_version: i64 = reader
        .query_one("SELECT version FROM apikeys_feed", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        read_version,
        version - 1,
        "no reader sees either change yet"
    );
    t1.commit().unwrap();
    writer2.join().unwrap();
    let changed: Vec<String> = reader
        .query(
            "SELECT id FROM apikeys_keys WHERE version > $1 ORDER BY version",
            &[&read_version],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(changed, [keys[0].id(), keys[1].id()]);
}

#[test]
fn a_revocation_reaches_another_machine_and_its_delay_is_measured() {
    let db = Database::new("test");
    let writer = KeyStore::open(&db.url, options()).unwrap();
    let reader = KeyStore::open(&db.url, options()).unwrap();
    let rounds = 200;
    let keys = writer
        .generate_batch(&vec![NewKey::new("measured"); rounds])
        .unwrap();
    // Every key reaches the other machine too.
    let started = Instant::now();
    for key in &keys {
        while reader.verify(key.secret.expose_secret()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "new keys never arrived"
            );
        }
    }
    let mut delays = Vec::with_capacity(rounds);
    for key in &keys {
        let secret = key.secret.expose_secret();
        reader.verify(secret).unwrap();
        writer.revoke(key.id()).unwrap();
        // Committed: from here on, the other machine must refuse within L.
        let committed = Instant::now();
        loop {
            match reader.verify(secret) {
                Ok(_) => {}
                Err(VerifyError::Rejected(Rejection::Revoked)) => break,
                Err(other) => panic!("unexpected {other}"),
            }
            assert!(
                committed.elapsed() <= Duration::from_millis(200) + Duration::from_millis(50),
                "accepted after the bound"
            );
        }
        delays.push(committed.elapsed());
    }
    delays.sort();
    println!(
        "revocation delay to another handle over {rounds} revocations: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[rounds - 1]
    );
}

#[path = "support/proxy.rs"]
mod proxy;
use proxy::Proxy;

fn port_of(url: &str) -> u16 {
    let authority = url.split('/').nth(2).unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_partitioned_machine_stops_accepting_from_memory_after_the_bound() {
    let db = Database::new("test");
    let proxy = Proxy::start(port_of(&db.url));
    let through_proxy = db.url.replace(
        &format!(":{}/", port_of(&db.url)),
        &format!(":{}/", proxy.port),
    );
    let bound = Duration::from_millis(300);
    let writer = KeyStore::open(&db.url, options()).unwrap();
    let key = writer.generate(&NewKey::new("partitioned")).unwrap();
    let secret = key.secret.expose_secret();
    for (policy, name) in [
        (NotCurrent::Refuse, "refuse"),
        (NotCurrent::AskDatabase, "ask"),
    ] {
        let machine = KeyStore::open(
            &through_proxy,
            options().revocation_bound(bound).when_not_current(policy),
        )
        .unwrap();
        let other = writer.generate(&NewKey::new("other")).unwrap();
        std::thread::sleep(bound);
        machine.verify(other.secret.expose_secret()).unwrap();
        machine.verify(secret).unwrap();
        proxy.partition();
        let cut = Instant::now();
        // The machine cannot hear of this revocation.
        writer.revoke(other.id()).unwrap();
        let committed = Instant::now();
        let mut last_accept = None;
        let stopped_at = loop {
            match machine.verify(other.secret.expose_secret()) {
                Ok(_) => last_accept = Some(committed.elapsed()),
                Err(error) => {
                    assert!(
                        unavailable::<()>(Err(error)),
                        "an outage is not a rejection"
                    );
                    break cut.elapsed();
                }
            }
            assert!(
                cut.elapsed() < Duration::from_secs(10),
                "kept accepting from memory"
            );
        };
        // The bound itself: once L has passed since the commit, never an accept.
        std::thread::sleep(bound.saturating_sub(committed.elapsed()));
        for _ in 0..100 {
            assert!(unavailable(machine.verify(other.secret.expose_secret())));
            assert!(
                unavailable(machine.verify(secret)),
                "an outage is never an accept nor a 401"
            );
        }
        println!(
            "{name}: partitioned machine stopped serving from memory {stopped_at:?} after the cut \
             (bound {bound:?}); last accept of the revoked key {last_accept:?} after its commit"
        );
        proxy.heal();
        let healed = Instant::now();
        loop {
            match machine.verify(other.secret.expose_secret()) {
                Err(VerifyError::Rejected(Rejection::Revoked)) => break,
                Err(VerifyError::Failed(_)) => {}
                Ok(_) => panic!("accepted a key revoked during the partition"),
                Err(other) => panic!("unexpected {other}"),
            }
            assert!(healed.elapsed() < Duration::from_secs(20), "never resumed");
        }
        machine.verify(secret).unwrap();
        println!(
            "{name}: service resumed {:?} after the partition healed",
            healed.elapsed()
        );
    }
}

#[test]
fn a_terminated_feed_connection_reconnects_and_misses_nothing() {
    let db = Database::new("test");
    let writer = KeyStore::open(&db.url, options()).unwrap();
    let reader = KeyStore::open(&db.url, options()).unwrap();
    let key = writer.generate(&NewKey::new("k")).unwrap();
    let mut admin = db.client();
    for _ in 0..5 {
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND query LIKE 'LISTEN%' OR (datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle')",
                &[],
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // The writer's own connection was terminated too: its first call fails
    // as unavailable (never silently) and the next one reconnects.
    let started = Instant::now();
    let mut failures = 0;
    loop {
        match writer.revoke(key.id()) {
            Ok(_) => break,
            Err(Error::DatabaseUnavailable(_)) => failures += 1,
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(failures < 10, "the writer never reconnected");
    }
    loop {
        match reader.verify(key.secret.expose_secret()) {
            Err(VerifyError::Rejected(Rejection::Revoked)) => break,
            Ok(_) | Err(VerifyError::Failed(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the feed never came back"
        );
    }
    println!(
        "revocation seen {:?} after terminated connections",
        started.elapsed()
    );
}

#[test]
fn strict_mode_reads_the_database_and_an_outage_is_unavailable() {
    let db = Database::new("test");
    let proxy = Proxy::start(port_of(&db.url));
    let through_proxy = db.url.replace(
        &format!(":{}/", port_of(&db.url)),
        &format!(":{}/", proxy.port),
    );
    let writer = KeyStore::open(&db.url, options()).unwrap();
    let strict = KeyStore::open(format!("{through_proxy}?apikeys_strict=1"), options()).unwrap();
    let key = writer.generate(&NewKey::new("strict")).unwrap();
    // Strict: a key made elsewhere is known at once, a revocation too.
    strict.verify(key.secret.expose_secret()).unwrap();
    writer.revoke(key.id()).unwrap();
    assert_eq!(
        rejection(strict.verify(key.secret.expose_secret())),
        Rejection::Revoked
    );
    proxy.partition();
    assert!(unavailable(strict.verify(key.secret.expose_secret())));
    let generated = strict.generate(&NewKey::new("during the outage"));
    assert!(
        matches!(generated, Err(Error::DatabaseUnavailable(_))),
        "{generated:?}"
    );
}

#[test]
fn usage_from_several_machines_adds_up() {
    let db = Database::new("test");
    let machines: Vec<KeyStore> = (0..3)
        .map(|_| KeyStore::open(&db.url, options()).unwrap())
        .collect();
    let keys = machines[0]
        .generate_batch(&vec![NewKey::new("shared"); 20])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::thread::scope(|scope| {
        for machine in &machines {
            scope.spawn(|| {
                for round in 0..5 {
                    // Keys in another order on each machine, flushed at once.
                    for key in keys.iter().rev().skip(round % 2) {
                        machine.verify(key.secret.expose_secret()).unwrap();
                    }
                    machine.flush().unwrap();
                }
            });
        }
    });
    let total: u64 = keys
        .iter()
        .map(|key| machines[0].get(key.id()).unwrap().use_count)
        .sum();
    // Per machine: 5 rounds over 20 or 19 keys (3 of 20, 2 of 19).
    assert_eq!(total, 3 * (3 * 20 + 2 * 19));
}

#[test]
fn connections_are_counted_per_process_and_per_machine() {
    let db = Database::new("test");
    let count = |client: &mut Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let mut admin = db.client();
    let local = tempfile::tempdir().unwrap();
    for (mode, dir) in [
        ("per process", LocalDir::PerProcess),
        ("per machine", LocalDir::At(local.path().to_path_buf())),
    ] {
        let stores: Vec<KeyStore> = (0..4)
            .map(|_| KeyStore::open(&db.url, options().local_dir(dir.clone())).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let at_rest = count(&mut admin);
        let key = stores[0].generate(&NewKey::new("load")).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::thread::scope(|scope| {
            for store in &stores {
                scope.spawn(|| {
                    for _ in 0..2000 {
                        store.verify(key.secret.expose_secret()).unwrap();
                    }
                    store.flush().unwrap();
                });
            }
        });
        let under_load = count(&mut admin);
        println!(
            "{mode}: connections for {} store handles: {at_rest} at rest, {under_load} after load",
            stores.len()
        );
        // Call connections open on first use: at rest only feeds remain.
        let expected = if matches!(dir, LocalDir::PerProcess) {
            4
        } else {
            1
        };
        assert_eq!(at_rest, expected, "{mode}: feed connections only");
        drop(stores);
        std::thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn a_store_moves_from_a_file_to_postgresql_and_back_with_usage_and_events() {
    let db = Database::new("test");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.redb");
    let source = KeyStore::open(&file, options()).unwrap();
    let keys = source
        .generate_batch(&[
            NewKey::new("kept"),
            NewKey::new("revoked"),
            NewKey::new("rotated"),
        ])
        .unwrap();
    source.verify(keys[0].secret.expose_secret()).unwrap();
    source.revoke(keys[1].id()).unwrap();
    let _ = source.verify(keys[1].secret.expose_secret());
    let successor = source
        .rotate(keys[2].id(), Duration::from_secs(3600))
        .unwrap();
    source.flush().unwrap();
    let listed = |store: &KeyStore| {
        let mut all = store.list(&ListFilter::default()).unwrap();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.into_iter()
            .map(|info| {
                (
                    info.id,
                    info.status,
                    info.use_count,
                    info.rejected_count,
                    info.rotated_to,
                )
            })
            .collect::<Vec<_>>()
    };
    let before = (listed(&source), source.events(0, 100).unwrap());

    let server = KeyStore::open(&db.url, options()).unwrap();
    let copied = source.copy_to(&server).unwrap();
    assert_eq!((copied.keys, copied.events), (4, before.1.len() as u64));
    assert_eq!((listed(&server), server.events(0, 100).unwrap()), before);
    // Keys keep working with the same pepper, in this handle and in a new one.
    server.verify(keys[0].secret.expose_secret()).unwrap();
    server.verify(successor.secret.expose_secret()).unwrap();
    let other = KeyStore::open(&db.url, options()).unwrap();
    assert_eq!(
        rejection(other.verify(keys[1].secret.expose_secret())),
        Rejection::Revoked
    );
    // New keys and events are numbered after the copied ones.
    let new = server.generate(&NewKey::new("after the move")).unwrap();
    assert!(new.id() > successor.id());
    assert_eq!(
        server.events(0, 100).unwrap().last().unwrap().sequence,
        before.1.len() as u64 + 1
    );
    // Not into a store that holds keys, nor with another pepper.
    assert!(matches!(
        source.copy_to(&server),
        Err(Error::InvalidArgument(_))
    ));

    let back = KeyStore::open(dir.path().join("back.redb"), options()).unwrap();
    server.flush().unwrap();
    server.copy_to(&back).unwrap();
    assert_eq!(listed(&back), listed(&server));
    back.verify(new.secret.expose_secret()).unwrap();
    assert_eq!(back.events(0, 100).unwrap(), server.events(0, 100).unwrap());
    let peppered = KeyStore::open(dir.path().join("p.redb"), options().pepper("another")).unwrap();
    assert!(matches!(server.copy_to(&peppered), Err(Error::WrongPepper)));
}

/// Prints what a verify costs: from a machine's replica, in strict mode (one
/// round trip), and from an exclusive redb store's index, on the same keys.
/// Measured, not asserted (`docs/postgres.md` has the figures).
#[test]
fn verify_costs_are_measured() {
    let db = Database::new("test");
    let dir = tempfile::tempdir().unwrap();
    let fleet = KeyStore::open(&db.url, options()).unwrap();
    let strict = KeyStore::open(&db.url, options().strict(true)).unwrap();
    let file = KeyStore::open(dir.path().join("k.redb"), options()).unwrap();
    let count = 1000;
    let in_fleet = fleet
        .generate_batch(&vec![NewKey::new("m"); count])
        .unwrap();
    let in_file = file.generate_batch(&vec![NewKey::new("m"); count]).unwrap();
    let time = |store: &KeyStore, keys: &[apikeys::GeneratedKey], rounds: usize| {
        let started = Instant::now();
        for round in 0..rounds {
            let key = &keys[round % keys.len()];
            store.verify(key.secret.expose_secret()).unwrap();
        }
        started.elapsed() / rounds as u32
    };
    for _ in 0..2 {
        let replica = time(&fleet, &in_fleet, 200_000);
        let exclusive = time(&file, &in_file, 200_000);
        let database = time(&strict, &in_fleet, 5_000);
        println!(
            "verify: fleet replica {replica:?}, exclusive redb {exclusive:?} ({:.2}x), strict (PostgreSQL per verify) {database:?}",
            replica.as_secs_f64() / exclusive.as_secs_f64()
        );
    }
}

#[test]
fn bad_urls_and_unreachable_servers_are_clear_errors() {
    let db = Database::new("test");
    for (url, what) in [
        (format!("{}?apikeys_bound_ms=soon", db.url), "bad bound"),
        (format!("{}?apikeys_bound_ms=0", db.url), "zero bound"),
        (
            format!("{}?apikeys_not_current=maybe", db.url),
            "bad policy",
        ),
        (format!("{}?apikeys_unknown=1", db.url), "unknown parameter"),
        (
            format!("{}?no_such_option=1", db.url),
            "unknown server option",
        ),
        ("postgres://[::1".to_string(), "unparsable"),
    ] {
        let opened = KeyStore::open(&url, options());
        assert!(
            matches!(opened, Err(Error::InvalidArgument(_))),
            "{what}: {opened:?}"
        );
    }
    // Nothing listens on port 1: unavailable, quickly, and the message has
    // no password.
    let opened = KeyStore::open("postgres://user:hunter2@127.0.0.1:1/db", options());
    match opened {
        Err(Error::DatabaseUnavailable(message)) => assert!(!message.contains("hunter2")),
        other => panic!("expected unavailable, got {other:?}"),
    }
    // A path shown for a URL has no password either.
    let url = db.url.replacen("postgres@", "postgres:unused-password@", 1);
    let store = KeyStore::open(&url, options()).unwrap();
    assert!(!store
        .path()
        .display()
        .to_string()
        .contains("unused-password"));
}

#[test]
fn unknown_well_formed_keys_read_the_database_at_a_bounded_rate() {
    let db = Database::new("test");
    let local = tempfile::tempdir().unwrap();
    let url = format!(
        "{}?apikeys_local={}&apikeys_miss_reads=20",
        db.url,
        local.path().display()
    );
    let machine = KeyStore::open(&url, options()).unwrap();
    let elsewhere = KeyStore::open(&db.url, options().local_dir(LocalDir::PerProcess)).unwrap();
    // Well formed, in no PostgreSQL store: keys of a file store.
    let dir = tempfile::tempdir().unwrap();
    let file = KeyStore::open(dir.path().join("other.redb"), options()).unwrap();
    let strangers: Vec<String> = (0..200)
        .map(|i| {
            let key = file.generate(&NewKey::new(format!("s{i}"))).unwrap();
            key.secret.expose_secret().to_string()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut times = Vec::new();
    for stranger in &strangers {
        let started = Instant::now();
        assert_eq!(rejection(machine.verify(stranger)), Rejection::NotFound);
        times.push(started.elapsed());
    }
    let (asked, refused) = times.split_at(20);
    let mean = |t: &[Duration]| {
        let mut sorted = t.to_vec();
        sorted.sort();
        sorted[sorted.len() / 2]
    };
    println!(
        "unknown well-formed keys (median): the first 20 (the budget, the first opens the connection) {:?}, the next 180 {:?}",
        mean(asked),
        mean(refused)
    );
    // A key made on another machine: accepted here on its first verify,
    // by the feed or by the read.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(60));
        let fresh = elsewhere.generate(&NewKey::new("fresh")).unwrap();
        let started = Instant::now();
        machine.verify(fresh.secret.expose_secret()).unwrap();
        times.push(started.elapsed());
    }
    println!(
        "a key made on another machine, verified here at once: median {:?} of 20",
        mean(&times[200..])
    );
}
