//! Moving in on PostgreSQL (feature `postgres-tests`, the server in `PG_URL`
//! as for tests/postgres.rs): keys of Laravel Sanctum, djangorestframework-
//! api-key and Unkey imported into a database store, verified on several
//! "machines" (store handles with their own machine index or replica)
//! before and after their re-digest, imports run twice or failing halfway,
//! stores with imported keys moved between a file and PostgreSQL both ways,
//! an outage while imported keys are verified, and a database of schema
//! version 1 upgraded in place.

use std::path::Path;
use std::time::{Duration, Instant};

use apikeys::{
    Error, ImportOptions, KeyStore, ListFilter, LocalDir, NewKey, NotCurrent, Rejection, Source,
    StoreOptions, VerifyError,
};
use postgres::Client;

#[path = "support/exports.rs"]
mod exports;
use exports::*;

#[path = "support/proxy.rs"]
mod proxy;
use proxy::Proxy;

#[path = "support/database.rs"]
mod database;
use database::{admin, suffix, Database};

impl Database {
    /// One number from the database.
    fn count(&self, query: &str) -> i64 {
        self.client().query_one(query, &[]).unwrap().get(0)
    }
}

const BOUND: Duration = Duration::from_millis(200);

fn options() -> StoreOptions {
    StoreOptions::new()
        .pepper("fleet pepper")
        .flush_interval(Duration::ZERO)
        .revocation_bound(BOUND)
}

/// A "machine" with its own machine-local directory: its own feeder and
/// machine index.
fn machine(url: &str, local: &Path) -> KeyStore {
    KeyStore::open(url, options().local_dir(LocalDir::At(local.to_path_buf()))).unwrap()
}

/// A "machine" whose process follows the feed itself (its own replica).
fn process(url: &str) -> KeyStore {
    KeyStore::open(url, options().local_dir(LocalDir::PerProcess)).unwrap()
}

fn rejection<T: std::fmt::Debug>(result: Result<T, VerifyError>) -> Rejection {
    match result {
        Err(VerifyError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn unavailable<T: std::fmt::Debug>(result: &Result<T, VerifyError>) -> bool {
    matches!(
        result,
        Err(VerifyError::Failed(Error::DatabaseUnavailable(_)))
    )
}

/// Verifies `key` on `store`, waiting while it is malformed there: a handle
/// opened before an import learns of the source within a second.
fn verify_once_known(store: &KeyStore, key: &str) -> Result<String, VerifyError> {
    let started = Instant::now();
    loop {
        match store.verify(key) {
            Err(VerifyError::Rejected(Rejection::Malformed))
                if started.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result.map(|verified| verified.id().to_string()),
        }
    }
}

fn legacy_digest(store: &KeyStore, id: &str) -> Option<&'static str> {
    store.get(id).unwrap().legacy_digest
}

fn kinds(store: &KeyStore, kind: &str) -> usize {
    store
        .events(0, 10_000)
        .unwrap()
        .iter()
        .filter(|event| event.kind.as_str() == kind)
        .count()
}

/// A Sanctum table with the ids in `ids`, and the keys their clients hold.
fn sanctum_rows(ids: std::ops::Range<u32>) -> (String, Vec<String>) {
    let mut csv = String::from("id,name,token\n");
    let mut keys = Vec::new();
    for id in ids {
        let token = sanctum_token(id);
        csv.push_str(&format!("{id},Token {id},{}\n", sha256_hex(&token)));
        keys.push(format!("{id}|{token}"));
    }
    (csv, keys)
}

fn import(store: &KeyStore, source: Source, file: &str) -> apikeys::ImportReport {
    store
        .import(source, file.as_bytes(), &ImportOptions::new())
        .unwrap()
}

#[test]
fn imported_keys_verify_on_every_machine_before_and_after_their_redigest() {
    let db = Database::new("import");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = machine(&db.url, dir_a.path());
    let b = machine(&db.url, dir_b.path());
    let c = process(&db.url);
    // Imported on A after B and C opened: they learn of the sources by
    // themselves.
    let (sanctum, sanctum_keys) = sanctum_export();
    let (drf3, drf_keys) = drf3_export();
    let (drf2, drf2_key) = drf2_export(1000);
    let (unkey, unkey_keys) = unkey_export();
    for (source, file, count) in [
        (Source::Sanctum, &sanctum, 3),
        (Source::DrfApiKey, &drf3, 2),
        (Source::DrfApiKey, &drf2, 1),
        (Source::Unkey, &unkey, 2),
    ] {
        let report = import(&a, source, file);
        assert_eq!(
            (report.imported, report.committed),
            (count, true),
            "{source:?}: {:?}",
            report.bad_rows
        );
    }
    let native = c.generate(&NewKey::new("native")).unwrap();
    for store in [&a, &b, &c] {
        let listed = store.list(&ListFilter::default()).unwrap();
        assert_eq!(listed.len(), 9);
        assert_eq!(
            listed.iter().filter(|k| k.legacy_digest.is_some()).count(),
            8
        );
    }
    // Each key verified first on one machine (by its handle and its source's
    // digest), then on another, which can only find it by its new digest:
    // the source's digest is gone from the database in the same commit.
    let accepted = [
        (&sanctum_keys[0], &b, &c),
        (&sanctum_keys[1], &c, &a),
        (&drf_keys[0], &a, &b),
        (&drf2_key, &b, &a),
        (&unkey_keys[0], &c, &b),
    ];
    for (key, first, second) in accepted {
        let id = verify_once_known(first, key).unwrap();
        for store in [&a, &b, &c] {
            assert_eq!(legacy_digest(store, &id), None, "{key}: re-digested");
        }
        assert_eq!(verify_once_known(second, key).unwrap(), id);
        assert_eq!(first.verify(key).unwrap().id(), id);
    }
    assert!(b.verify(native.secret.expose_secret()).is_ok());
    for store in [&a, &b, &c] {
        assert_eq!(
            rejection(store.verify(&sanctum_keys[2])),
            Rejection::Expired
        );
        assert_eq!(rejection(store.verify(&drf_keys[1])), Rejection::Revoked);
        assert_eq!(rejection(store.verify(&unkey_keys[1])), Rejection::Revoked);
        let forged = format!("8|{}", sanctum_token(99));
        assert_eq!(rejection(store.verify(&forged)), Rejection::NotFound);
        assert_eq!(
            rejection(store.verify("Unknown1.SecretPartNumber1abcdefghijklmnop")),
            Rejection::NotFound
        );
        // Never re-digested: still on their sources' digests.
        let listed = store.list(&ListFilter::default()).unwrap();
        assert_eq!(
            listed.iter().filter(|k| k.legacy_digest.is_some()).count(),
            3
        );
    }
    assert_eq!(kinds(&a, "imported"), 8);
    assert_eq!(kinds(&a, "redigested"), 5);

    // A revocation reaches every machine within the bound, for a key
    // re-digested and for one still on its source's digest.
    let (late, late_keys) = sanctum_rows(20..21);
    import(&a, Source::Sanctum, &late);
    let late_id = a
        .list(&ListFilter::default())
        .unwrap()
        .into_iter()
        .find(|k| k.source_id.as_deref() == Some("20"))
        .unwrap()
        .id;
    let redigested = a.verify(&sanctum_keys[0]).unwrap().id().to_string();
    a.revoke(&redigested).unwrap();
    a.revoke(&late_id).unwrap();
    std::thread::sleep(BOUND);
    for store in [&b, &c] {
        assert_eq!(
            rejection(store.verify(&sanctum_keys[0])),
            Rejection::Revoked
        );
        assert_eq!(rejection(store.verify(&late_keys[0])), Rejection::Revoked);
    }
    assert_eq!(legacy_digest(&a, &late_id), Some("sha256"));
}

#[test]
fn keys_verified_on_several_machines_at_once_are_redigested_once_and_accepted_by_each() {
    let db = Database::new("import");
    let writer = process(&db.url);
    let (csv, mut keys) = sanctum_rows(1..6);
    import(&writer, Source::Sanctum, &csv);
    // First: a PBKDF2 key, whose first verifies all hash while the first of
    // them to finish re-digests it.
    let (json, pbkdf2_key) = drf2_export(100_000);
    import(&writer, Source::DrfApiKey, &json);
    keys.insert(0, pbkdf2_key);
    // Opened after the import: they know of the sources at once. A budget of
    // reads for unknown keys that these first verifies do not exhaust.
    let url = format!("{}?apikeys_miss_reads=1000", db.url);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let machines = [
        machine(&url, dirs[0].path()),
        machine(&url, dirs[1].path()),
        process(&url),
    ];
    let start = std::sync::Barrier::new(2 * machines.len());
    std::thread::scope(|scope| {
        for store in machines.iter().chain(&machines) {
            let (keys, start) = (&keys, &start);
            scope.spawn(move || {
                start.wait();
                for _ in 0..10 {
                    for key in keys {
                        if let Err(error) = store.verify(key) {
                            panic!("{key}: {error}");
                        }
                    }
                }
            });
        }
    });
    assert_eq!(kinds(&writer, "redigested"), keys.len());
    assert!(writer
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .all(|k| k.legacy_digest.is_none()));
}

#[test]
fn an_import_into_postgresql_is_idempotent_and_all_or_nothing() {
    let db = Database::new("import");
    let a = process(&db.url);
    let b = process(&db.url);
    let feed_version = || db.count("SELECT version FROM apikeys_feed");
    let (csv, keys) = sanctum_export();
    let first = import(&a, Source::Sanctum, &csv);
    assert_eq!((first.imported, first.already_imported), (3, 0));
    // Again, here and on another machine: nothing imported, nothing written.
    let version = feed_version();
    for store in [&a, &b] {
        let again = import(store, Source::Sanctum, &csv);
        assert_eq!((again.imported, again.already_imported), (0, 3));
        assert!(again.committed && again.bad_rows.is_empty());
    }
    assert_eq!(feed_version(), version, "a repeated import commits nothing");
    // Idempotent after a re-digest too.
    verify_once_known(&b, &keys[0]).unwrap();
    let again = import(&b, Source::Sanctum, &csv);
    assert_eq!((again.imported, again.already_imported), (0, 3));
    assert_eq!(db.count("SELECT count(*) FROM apikeys_keys"), 3);
    assert_eq!(db.count("SELECT count(*) FROM apikeys_legacy"), 3);

    // A bad row: nothing of the file is imported.
    let (more, more_keys) = sanctum_rows(30..33);
    let bad = more.replace("Token 31", &"n".repeat(200));
    let report = a
        .import(Source::Sanctum, bad.as_bytes(), &ImportOptions::new())
        .unwrap();
    assert!(!report.committed && report.imported == 0);
    assert_eq!(report.bad_rows.len(), 1);
    assert_eq!(report.bad_rows[0].line, 3);
    let counts = || {
        [
            "SELECT count(*) FROM apikeys_keys",
            "SELECT count(*) FROM apikeys_legacy",
            "SELECT count(*) FROM apikeys_events",
            "SELECT version FROM apikeys_feed",
        ]
        .map(|query| db.count(query))
    };
    let before = counts();

    // The transaction failing at its last row (an injected failure on the
    // handle of Sanctum's id 32): nothing of it is committed.
    db.client()
        .batch_execute(
            r"CREATE FUNCTION apikeys_test_fail() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
              CREATE TRIGGER apikeys_test_fail BEFORE INSERT ON apikeys_legacy
                FOR EACH ROW WHEN (NEW.handle = '\x013332'::bytea)
                EXECUTE FUNCTION apikeys_test_fail();",
        )
        .unwrap();
    let failed = a.import(Source::Sanctum, more.as_bytes(), &ImportOptions::new());
    assert!(
        matches!(&failed, Err(Error::Storage(message)) if message.contains("injected failure")),
        "{failed:?}"
    );
    assert_eq!(counts(), before, "a failed import left rows behind");
    assert_eq!(rejection(b.verify(&more_keys[0])), Rejection::NotFound);
    db.client()
        .batch_execute("DROP TRIGGER apikeys_test_fail ON apikeys_legacy")
        .unwrap();
    // Then the whole file, on the other machine, which verifies it too.
    let report = import(&b, Source::Sanctum, &more);
    assert_eq!((report.imported, report.already_imported), (3, 0));
    for key in &more_keys {
        assert!(verify_once_known(&a, key).is_ok());
    }
    // Skipping bad rows imports the others.
    let (last, last_keys) = sanctum_rows(40..43);
    let report = a
        .import(
            Source::Sanctum,
            last.replace("Token 41", &"n".repeat(200)).as_bytes(),
            &ImportOptions::new().skip_bad_rows(true),
        )
        .unwrap();
    assert_eq!((report.imported, report.bad_rows.len()), (2, 1));
    assert!(verify_once_known(&b, &last_keys[0]).is_ok());
    assert_eq!(
        rejection(verify_once_known(&b, &last_keys[1])),
        Rejection::NotFound
    );
}

#[test]
fn no_imported_key_is_stored_in_the_database() {
    let db = Database::new("import");
    let store = process(&db.url);
    let (sanctum, sanctum_keys) = sanctum_export();
    let (drf, drf_keys) = drf3_export();
    let (unkey, unkey_keys) = unkey_export();
    import(&store, Source::Sanctum, &sanctum);
    import(&store, Source::DrfApiKey, &drf);
    import(&store, Source::Unkey, &unkey);
    for key in [&sanctum_keys[0], &drf_keys[0], &unkey_keys[0]] {
        store.verify(key).unwrap();
    }
    store.flush().unwrap();
    // The secret part of every key (DRF's prefix and Sanctum's id are the
    // handles, public), as text and as bytes, in no column of any table.
    let secrets: Vec<&str> = sanctum_keys
        .iter()
        .map(|k| k.split_once('|').unwrap().1)
        .chain(drf_keys.iter().map(|k| k.split_once('.').unwrap().1))
        .chain(unkey_keys.iter().map(String::as_str))
        .collect();
    let mut client = db.client();
    let tables = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'apikeys_%'",
            &[],
        )
        .unwrap();
    assert_eq!(tables.len(), 6);
    for table in tables {
        let table: String = table.get(0);
        for row in client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .unwrap()
        {
            let text: String = row.get(0);
            for secret in &secrets {
                assert!(!text.contains(secret), "{table} holds a key");
                assert!(
                    !text.contains(&hex::encode(secret.as_bytes())),
                    "{table} holds a key as bytes"
                );
            }
        }
    }
}

#[test]
fn stores_with_imported_keys_move_between_a_file_and_postgresql_both_ways() {
    let listed = |store: &KeyStore| {
        let mut all: Vec<_> = store
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|k| {
                format!(
                    "{} {} {:?} {:?} {:?} {:?} {}",
                    k.id, k.name, k.status, k.origin, k.source_id, k.legacy_digest, k.use_count
                )
            })
            .collect();
        all.sort();
        all
    };
    let dir = tempfile::tempdir().unwrap();
    let (sanctum, sanctum_keys) = sanctum_export();
    let (unkey, unkey_keys) = unkey_export();
    let (drf, drf_keys) = drf3_export();

    // A file into PostgreSQL: one key re-digested before the move, the
    // others still on their sources' digests.
    let file = KeyStore::open(dir.path().join("keys.redb"), options()).unwrap();
    import(&file, Source::Sanctum, &sanctum);
    import(&file, Source::Unkey, &unkey);
    let native = file.generate(&NewKey::new("native")).unwrap();
    let redigested = file.verify(&sanctum_keys[0]).unwrap().id().to_string();
    file.flush().unwrap();
    let db = Database::new("import");
    let server = process(&db.url);
    let copied = file.copy_to(&server).unwrap();
    assert_eq!(copied.keys, 6);
    assert_eq!(listed(&server), listed(&file));
    assert_eq!(db.count("SELECT count(*) FROM apikeys_legacy"), 5);
    // On another machine, opened after the move, and on the copying one.
    let dir_m = tempfile::tempdir().unwrap();
    let other = machine(&db.url, dir_m.path());
    assert_eq!(other.verify(&sanctum_keys[0]).unwrap().id(), redigested);
    let admin = other.verify(&sanctum_keys[1]).unwrap().id().to_string();
    assert_eq!(
        legacy_digest(&server, &admin),
        None,
        "re-digested in PostgreSQL"
    );
    assert!(server.verify(&sanctum_keys[1]).is_ok());
    assert_eq!(rejection(other.verify(&unkey_keys[1])), Rejection::Revoked);
    assert!(other.verify(native.secret.expose_secret()).is_ok());
    assert_eq!(
        import(&other, Source::Sanctum, &sanctum).already_imported,
        3,
        "the handles moved"
    );
    // Imported into PostgreSQL as well, one of those re-digested there.
    import(&server, Source::DrfApiKey, &drf);
    assert!(server.verify(&drf_keys[0]).is_ok());
    server.flush().unwrap();
    other.flush().unwrap();

    // And back into a file, one key still on Unkey's digest since the first
    // file: found by its handle there too, and re-digested.
    let unkey_id = server
        .list(&ListFilter::default())
        .unwrap()
        .into_iter()
        .find(|k| k.source_id.as_deref() == Some("key_1abc"))
        .unwrap()
        .id;
    assert_eq!(legacy_digest(&server, &unkey_id), Some("sha256"));
    let back = KeyStore::open(dir.path().join("back.redb"), options()).unwrap();
    let copied = server.copy_to(&back).unwrap();
    assert_eq!(copied.keys, 8);
    assert_eq!(listed(&back), listed(&server));
    for key in [&sanctum_keys[0], &sanctum_keys[1], &drf_keys[0]] {
        assert!(back.verify(key).is_ok(), "{key}");
    }
    assert_eq!(back.verify(&unkey_keys[0]).unwrap().id(), unkey_id);
    assert_eq!(legacy_digest(&back, &unkey_id), None);
    assert_eq!(rejection(back.verify(&drf_keys[1])), Rejection::Revoked);
    assert_eq!(rejection(back.verify(&sanctum_keys[2])), Rejection::Expired);
    for (source, table, rows) in [
        (Source::Sanctum, &sanctum, 3),
        (Source::Unkey, &unkey, 2),
        (Source::DrfApiKey, &drf, 2),
    ] {
        assert_eq!(import(&back, source, table).already_imported, rows);
    }
    back.close().unwrap();
    // Reopened, the file knows its sources from the handles it holds.
    let back = KeyStore::open(dir.path().join("back.redb"), options()).unwrap();
    assert!(back.verify(&unkey_keys[0]).is_ok());
    assert_eq!(rejection(back.verify(&unkey_keys[1])), Rejection::Revoked);
}

fn port_of(url: &str) -> u16 {
    let authority = url.split('/').nth(2).unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn an_outage_while_imported_keys_are_verified_is_never_an_accept_past_the_bound_nor_a_401() {
    let db = Database::new("import");
    let proxy = Proxy::start(port_of(&db.url));
    let through_proxy = db.url.replace(
        &format!(":{}/", port_of(&db.url)),
        &format!(":{}/", proxy.port),
    );
    let bound = Duration::from_millis(300);
    let writer = process(&db.url);
    let (csv, keys) = sanctum_rows(1..5);
    import(&writer, Source::Sanctum, &csv);
    for (policy, pair) in [
        (NotCurrent::Refuse, &keys[0..2]),
        (NotCurrent::AskDatabase, &keys[2..4]),
    ] {
        let local = tempfile::tempdir().unwrap();
        let machine = KeyStore::open(
            &through_proxy,
            options()
                .revocation_bound(bound)
                .when_not_current(policy)
                .local_dir(LocalDir::At(local.path().to_path_buf())),
        )
        .unwrap();
        // Re-digested here before the cut, then verified by its new digest
        // (a worker reads a key's details once); the other never verified.
        let (redigested, legacy) = (&pair[0], &pair[1]);
        machine.verify(redigested).unwrap();
        machine.verify(redigested).unwrap();
        std::thread::sleep(bound);
        proxy.partition();
        let cut = Instant::now();
        let mut accepted = 0;
        while cut.elapsed() < bound + bound {
            // From memory while current, unavailable after: never a 401.
            let at = cut.elapsed();
            let result = machine.verify(redigested);
            assert!(result.is_ok() || unavailable(&result), "{result:?}");
            if result.is_ok() {
                accepted += 1;
                assert!(at <= bound, "accepted from memory past the bound");
            }
            // Found by its handle in the database only: unavailable. At a
            // pace within the budget of reads for unknown keys, as a real
            // client's retries are.
            let result = machine.verify(legacy);
            assert!(unavailable(&result), "{policy:?}: {result:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..50 {
            assert!(unavailable(&machine.verify(redigested)));
        }
        println!("{policy:?}: {accepted} accepts from memory during the outage, within L");
        proxy.heal();
        let healed = Instant::now();
        let id = loop {
            match machine.verify(legacy) {
                Ok(verified) => break verified.id().to_string(),
                Err(VerifyError::Failed(Error::DatabaseUnavailable(_))) => {}
                Err(other) => panic!("{policy:?}: after the heal: {other}"),
            }
            assert!(healed.elapsed() < Duration::from_secs(20), "never resumed");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(machine.verify(redigested).is_ok());
        assert_eq!(legacy_digest(&writer, &id), None);
    }
}

#[test]
fn strings_of_a_source_s_shape_read_the_database_at_a_bounded_rate() {
    let db = Database::new("import");
    let writer = process(&db.url);
    // Unkey's keys can be any string: every non-native string is a candidate.
    let (unkey, keys) = unkey_export();
    import(&writer, Source::Unkey, &unkey);
    drop(writer);
    std::thread::sleep(Duration::from_millis(300));
    // Index scans of the handles' table, as the server counts them (each
    // backend reports its own when it ends).
    let scans = || {
        let mut client = db.client();
        client
            .query_one(
                "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'apikeys_legacy'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = scans();
    let url = format!("{}?apikeys_miss_reads=20", db.url);
    let machine = KeyStore::open(&url, options().local_dir(LocalDir::PerProcess)).unwrap();
    assert!(machine.verify(&keys[0]).is_ok());
    let flood = 500;
    let started = Instant::now();
    for i in 0..flood {
        assert_eq!(
            rejection(machine.verify(&format!("sk_flood_{i:06}"))),
            Rejection::NotFound
        );
    }
    let took = started.elapsed();
    drop(machine);
    std::thread::sleep(Duration::from_millis(500));
    let read = scans() - before;
    println!("{flood} strings of Unkey's shape in {took:?}: {read} index scans of the handles");
    // A burst of 20 reads, then 20 a second (each string takes one for its
    // keyed digest, one for its handle); the sources' probes at open and
    // once a second; not one read per string.
    let allowed = 20 + (took.as_secs_f64() * 20.0).ceil() as i64 + 3 * (took.as_secs() as i64 + 2);
    assert!(read <= allowed, "{read} reads for {flood} strings");
    assert!(read < flood / 4);
}

#[test]
fn a_version_1_database_is_upgraded_in_place() {
    let role = Role::new();
    let db = Database::new("import");
    // A store as version 1 of the schema left it: without `apikeys_legacy`.
    let before = {
        let store = process(&db.url);
        let keys = store
            .generate_batch(&[NewKey::new("kept"), NewKey::new("revoked")])
            .unwrap();
        store.revoke(keys[1].id()).unwrap();
        store.close().unwrap();
        keys
    };
    let mut client = db.client();
    client.batch_execute("DROP TABLE apikeys_legacy").unwrap();
    client
        .execute(
            "UPDATE apikeys_meta SET value = $1 WHERE name = 'version'",
            &[&1u32.to_le_bytes().as_slice()],
        )
        .unwrap();
    let version = |client: &mut Client| -> Vec<u8> {
        client
            .query_one("SELECT value FROM apikeys_meta WHERE name = 'version'", &[])
            .unwrap()
            .get(0)
    };
    let events = db.count("SELECT count(*) FROM apikeys_events");

    // A role that may use the tables but not create any cannot upgrade it,
    // and says what to do.
    client
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {name};
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {name};",
            name = role.name
        ))
        .unwrap();
    let as_service = db.url.replacen("postgres@", &format!("{}@", role.name), 1);
    let refused = KeyStore::open(&as_service, options().local_dir(LocalDir::PerProcess));
    assert!(
        matches!(&refused, Err(Error::Storage(message))
            if message.contains("from version 1 to 2") && message.contains("may create tables")),
        "{refused:?}"
    );
    assert_eq!(version(&mut client), 1u32.to_le_bytes());

    // Opened by several processes at once: one upgrades, all open.
    let stores: Vec<KeyStore> = std::thread::scope(|scope| {
        let opening: Vec<_> = (0..4).map(|_| scope.spawn(|| process(&db.url))).collect();
        opening.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(version(&mut client), 2u32.to_le_bytes());
    assert_eq!(db.count("SELECT count(*) FROM apikeys_legacy"), 0);
    assert_eq!(db.count("SELECT count(*) FROM apikeys_events"), events);
    for store in &stores {
        assert!(store.verify(before[0].secret.expose_secret()).is_ok());
        assert_eq!(
            rejection(store.verify(before[1].secret.expose_secret())),
            Rejection::Revoked
        );
    }
    let (csv, keys) = sanctum_export();
    assert_eq!(import(&stores[0], Source::Sanctum, &csv).imported, 3);
    assert!(verify_once_known(&stores[1], &keys[0]).is_ok());
    // The new table's privileges are granted like the others'; then the
    // service role opens it and verifies imported keys.
    client
        .batch_execute(&format!(
            "GRANT SELECT, INSERT ON apikeys_legacy TO {}",
            role.name
        ))
        .unwrap();
    let service = KeyStore::open(&as_service, options().local_dir(LocalDir::PerProcess)).unwrap();
    assert!(service.verify(&keys[0]).is_ok());
    assert!(service.verify(&keys[1]).is_ok());
}

/// A login role of the server (trust authentication), dropped at the end.
struct Role {
    name: String,
}

impl Role {
    fn new() -> Role {
        let name = format!("apikeys_service_{}", suffix());
        admin()
            .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
            .unwrap();
        Role { name }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        // After the test's database, which holds its privileges.
        let _ = admin().batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
    }
}
