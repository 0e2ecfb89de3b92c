//! The key lifecycle through the Rust API: generate, verify, revoke, rotate,
//! list, usage and events, across close and reopen, in both modes and, with
//! the feature `postgres-tests` (and `PG_URL`), on PostgreSQL too: the tests
//! that run in both modes run a third time with each store file replaced by
//! a database of its own.

use std::path::Path;
use std::time::Duration;

use apikeys::{
    Error, EventKind, KeyStore, ListFilter, ManualClock, Mode, NewKey, Rejection, Status,
    StatusFilter, StoreOptions, Timestamp, VerifyError,
};

const START: Timestamp = Timestamp::from_unix(1_735_689_600); // 2025-01-01T00:00:00Z
const DAY: Duration = Duration::from_secs(86_400);

fn options(mode: Mode, clock: &ManualClock) -> StoreOptions {
    StoreOptions::new()
        .mode(mode)
        .clock(clock.clone())
        .flush_interval(Duration::ZERO)
}

fn open(path: &Path, mode: Mode, clock: &ManualClock) -> KeyStore {
    #[cfg(feature = "postgres-tests")]
    if let Some(url) = on_postgres::database_for(path) {
        return KeyStore::open(url, options(mode, clock)).unwrap();
    }
    KeyStore::open(path, options(mode, clock)).unwrap()
}

/// The PostgreSQL run: a database per store path, made on first use.
#[cfg(feature = "postgres-tests")]
mod on_postgres {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    thread_local! {
        pub(super) static ACTIVE: Cell<bool> = const { Cell::new(false) };
        static DATABASES: RefCell<HashMap<PathBuf, String>> = RefCell::new(HashMap::new());
    }

    pub(super) fn database_for(path: &Path) -> Option<String> {
        if !ACTIVE.with(Cell::get) {
            return None;
        }
        let server =
            std::env::var("PG_URL").expect("PG_URL is not set: the PostgreSQL run needs a server");
        Some(DATABASES.with(|databases| {
            let mut databases = databases.borrow_mut();
            let count = databases.len();
            databases
                .entry(path.to_path_buf())
                .or_insert_with(|| {
                    let name = format!(
                        "apikeys_lifecycle_{}_{count}_{}",
                        std::process::id(),
                        thread_id()
                    );
                    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                        .unwrap();
                    admin
                        .batch_execute(&format!("CREATE DATABASE {name}"))
                        .unwrap();
                    format!("{}/{name}", server.rsplit_once('/').unwrap().0)
                })
                .clone()
        }))
    }

    fn thread_id() -> String {
        format!("{:?}", std::thread::current().id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    }
}

fn rejection<T: std::fmt::Debug>(result: Result<T, VerifyError>) -> Rejection {
    match result {
        Err(VerifyError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn both_modes(test: impl Fn(Mode)) {
    test(Mode::Exclusive);
    test(Mode::Shared);
    #[cfg(feature = "postgres-tests")]
    {
        on_postgres::ACTIVE.with(|active| active.set(true));
        test(Mode::Shared);
        on_postgres::ACTIVE.with(|active| active.set(false));
    }
}

#[test]
fn keys_revocations_and_usage_survive_close_and_reopen() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        let clock = ManualClock::new(START);
        let store = open(&path, mode, &clock);
        let production = store
            .generate(&NewKey::new("Production").env("prod").scope("*"))
            .unwrap();
        let dev = store
            .generate(&NewKey::new("Dev/Test").env("dev").scope("contacts:read"))
            .unwrap();
        assert!(production
            .secret
            .expose_secret()
            .starts_with("flz_sk_prod_"));
        assert!(dev.secret.expose_secret().starts_with("flz_sk_dev_"));

        clock.advance(DAY);
        for _ in 0..3 {
            store.verify(production.secret.expose_secret()).unwrap();
        }
        store.verify(dev.secret.expose_secret()).unwrap();
        assert!(store.revoke(dev.id()).unwrap());
        store.close().unwrap();

        let store = open(&path, mode, &clock);
        let verified = store.verify(production.secret.expose_secret()).unwrap();
        assert_eq!(verified.id(), production.id());
        assert_eq!(verified.name(), "Production");
        assert_eq!(verified.env(), Some("prod"));
        assert_eq!(
            rejection(store.verify(dev.secret.expose_secret())),
            Rejection::Revoked
        );
        store.close().unwrap();

        let store = open(&path, mode, &clock);
        let listed = store.list(&ListFilter::default()).unwrap();
        assert_eq!(listed.len(), 2);
        let production_info = listed.iter().find(|k| k.id == production.id()).unwrap();
        assert_eq!(production_info.use_count, 4);
        assert_eq!(production_info.last_used, Some(START.after(DAY)));
        assert_eq!(production_info.created_at, START);
        assert_eq!(production_info.status, Status::Active);
        assert_eq!(production_info.hint, production.secret.hint());
        let dev_info = listed.iter().find(|k| k.id == dev.id()).unwrap();
        assert_eq!(dev_info.status, Status::Revoked);
        assert_eq!(dev_info.revoked_at, Some(START.after(DAY)));
        assert_eq!((dev_info.use_count, dev_info.rejected_count), (1, 1));
        store.close().unwrap();
    });
}

#[test]
fn revocation_is_immediate_idempotent_and_irreversible() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let store = open(&dir.path().join("k.redb"), mode, &clock);
        let key = store.generate(&NewKey::new("k")).unwrap();
        let secret = key.secret.expose_secret();
        assert!(store.verify(secret).is_ok());
        assert!(store.revoke(key.id()).unwrap(), "first revoke revokes");
        assert!(
            !store.revoke(key.id()).unwrap(),
            "second revoke changes nothing"
        );
        assert!(!store.revoke_key(secret).unwrap());
        assert_eq!(rejection(store.verify(secret)), Rejection::Revoked);
        assert!(matches!(
            store.rotate(key.id(), DAY),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(rejection(store.verify(secret)), Rejection::Revoked);
        let revoked_events = store
            .events(0, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::Revoked)
            .count();
        assert_eq!(revoked_events, 1);
    });
}

#[test]
fn revoking_by_the_key_itself_answers_a_leak() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let store = open(&dir.path().join("k.redb"), mode, &clock);
        let leaked = store.generate(&NewKey::new("leaked")).unwrap();
        let other = store.generate(&NewKey::new("other")).unwrap();
        assert!(store.revoke_key(leaked.secret.expose_secret()).unwrap());
        assert_eq!(
            rejection(store.verify(leaked.secret.expose_secret())),
            Rejection::Revoked
        );
        assert!(store.verify(other.secret.expose_secret()).is_ok());
        assert!(matches!(
            store.revoke_key("flz_sk_short"),
            Err(Error::InvalidArgument(_))
        ));
        let unknown = apikeys::generate_with(&mut rand_chacha_rng(), "flz", None).unwrap();
        assert!(matches!(
            store.revoke_key(unknown.expose_secret()),
            Err(Error::UnknownKey(_))
        ));
        assert!(matches!(
            store.revoke("no-such-id"),
            Err(Error::UnknownKey(_))
        ));
        // Messages echo caller input only in part: a 1 MiB id is not a 1 MiB message.
        let huge = "x".repeat(1 << 20);
        let error = store.revoke(&huge).unwrap_err();
        assert!(matches!(error, Error::UnknownKey(_)));
        assert!(
            error.to_string().len() < 200,
            "{} bytes",
            error.to_string().len()
        );
        let error = store
            .generate(&NewKey::new("k").scope(huge.as_str()))
            .unwrap_err();
        assert!(
            error.to_string().len() < 300,
            "{} bytes",
            error.to_string().len()
        );
    });
}

fn rand_chacha_rng() -> rand_chacha::ChaCha8Rng {
    use rand_chacha::rand_core::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(99)
}

#[test]
fn verify_tells_each_rejection_apart() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let store = open(&dir.path().join("k.redb"), mode, &clock);
        let key = store
            .generate(&NewKey::new("k").scope("contacts:read").expires_in(DAY))
            .unwrap();
        let secret = key.secret.expose_secret();
        assert_eq!(rejection(store.verify("")), Rejection::Malformed);
        assert_eq!(
            rejection(store.verify("flz_sk_abc123")),
            Rejection::Malformed
        );
        let unknown = apikeys::generate_with(&mut rand_chacha_rng(), "flz", None).unwrap();
        assert_eq!(
            rejection(store.verify(unknown.expose_secret())),
            Rejection::NotFound
        );
        assert_eq!(
            rejection(store.verify_with_scope(secret, "contacts:write")),
            Rejection::InsufficientScope
        );
        assert!(store.verify_with_scope(secret, "contacts:read").is_ok());
        clock.advance(DAY - Duration::from_secs(1));
        assert!(store.verify(secret).is_ok(), "valid until its expiry");
        clock.advance(Duration::from_secs(1));
        assert_eq!(rejection(store.verify(secret)), Rejection::Expired);
        store.flush().unwrap();
        let info = store.get(key.id()).unwrap();
        assert_eq!(info.status, Status::Expired);
        assert_eq!(info.rejected_count, 1);
        let expired_use = store
            .events(0, 100)
            .unwrap()
            .into_iter()
            .any(|e| e.key_id == key.id() && e.kind == EventKind::ExpiredKeyUsed { count: 1 });
        assert!(expired_use, "use of an expired key is logged");
    });
}

#[test]
fn scope_wildcards() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let store = open(&dir.path().join("k.redb"), Mode::Exclusive, &clock);
    let all = store.generate(&NewKey::new("all").scope("*")).unwrap();
    let contacts = store
        .generate(&NewKey::new("contacts").scope("contacts:*"))
        .unwrap();
    let read = store
        .generate(&NewKey::new("read").scopes(["contacts:read", "lists:read"]))
        .unwrap();
    let none = store.generate(&NewKey::new("none")).unwrap();
    let cases = [
        (&all, "contacts:write", true),
        (&all, "billing:read", true),
        (&contacts, "contacts:write", true),
        (&contacts, "contacts:notes:read", true),
        (&contacts, "lists:read", false),
        (&read, "lists:read", true),
        (&read, "contacts:write", false),
        (&none, "contacts:read", false),
    ];
    for (key, scope, granted) in cases {
        let result = store.verify_with_scope(key.secret.expose_secret(), scope);
        assert_eq!(result.is_ok(), granted, "{} {scope}", key.info.name);
        if !granted {
            assert_eq!(rejection(result), Rejection::InsufficientScope);
        }
    }
    assert!(
        store.verify(none.secret.expose_secret()).is_ok(),
        "no scope is still a valid key"
    );
}

#[test]
fn rotation_grace_is_capped_by_the_old_expiry() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.redb");
        let clock = ManualClock::new(START);
        let store = open(&path, mode, &clock);
        let old = store
            .generate(
                &NewKey::new("Production")
                    .env("prod")
                    .scopes(["contacts:*", "lists:read"])
                    .owner("acct_42")
                    .metadata(r#"{"plan":"pro"}"#)
                    .expires_in(30 * DAY),
            )
            .unwrap();
        let new = store.rotate(old.id(), DAY).unwrap();
        assert_ne!(new.secret.expose_secret(), old.secret.expose_secret());
        assert!(new.secret.expose_secret().starts_with("flz_sk_prod_"));
        assert_eq!(new.info.name, "Production");
        assert_eq!(new.info.scopes, ["contacts:*", "lists:read"]);
        assert_eq!(new.info.owner.as_deref(), Some("acct_42"));
        assert_eq!(new.info.metadata.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(
            new.info.expires_at,
            Some(START.after(30 * DAY)),
            "successor inherits expiry"
        );
        assert_eq!(new.info.rotated_from.as_deref(), Some(old.id()));

        // Both work during the grace period; the old one stops after it.
        assert!(store.verify(old.secret.expose_secret()).is_ok());
        assert!(store.verify(new.secret.expose_secret()).is_ok());
        clock.advance(DAY);
        assert_eq!(
            rejection(store.verify(old.secret.expose_secret())),
            Rejection::Expired
        );
        assert!(store.verify(new.secret.expose_secret()).is_ok());

        let events = store.events(0, 100).unwrap();
        assert!(events.iter().any(|e| e.key_id == old.id()
            && e.kind
                == EventKind::Rotated {
                    successor: new.id().to_string()
                }));
        assert!(events
            .iter()
            .any(|e| e.key_id == new.id() && e.kind == EventKind::Created));

        // A grace longer than the remaining life is capped at the expiry.
        let capped = store.rotate(new.id(), 365 * DAY).unwrap();
        let new_info = store.get(new.id()).unwrap();
        assert_eq!(new_info.expires_at, Some(START.after(30 * DAY)));
        assert_eq!(new_info.rotated_to.as_deref(), Some(capped.id()));
        store.close().unwrap();

        let store = open(&path, mode, &clock);
        assert_eq!(
            rejection(store.verify(old.secret.expose_secret())),
            Rejection::Expired
        );
        assert!(store.verify(capped.secret.expose_secret()).is_ok());
        clock.advance(29 * DAY);
        assert_eq!(
            rejection(store.verify(capped.secret.expose_secret())),
            Rejection::Expired
        );
    });
}

#[test]
fn list_filters_by_status_unused_since_and_owner() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let store = open(&dir.path().join("k.redb"), Mode::Exclusive, &clock);
    let used = store.generate(&NewKey::new("used").owner("a")).unwrap();
    let idle = store.generate(&NewKey::new("idle").owner("b")).unwrap();
    let revoked = store.generate(&NewKey::new("revoked").owner("a")).unwrap();
    let expiring = store
        .generate(&NewKey::new("expiring").expires_in(DAY))
        .unwrap();
    store.revoke(revoked.id()).unwrap();
    clock.advance(40 * DAY);
    store.verify(used.secret.expose_secret()).unwrap();
    let fresh = store.generate(&NewKey::new("fresh")).unwrap();

    // Keys created in the same second list in id order: compare as sets.
    let names = |filter: ListFilter| -> Vec<String> {
        let mut names: Vec<String> = store
            .list(&filter)
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
        names.sort();
        names
    };
    let only = |status| ListFilter {
        status: StatusFilter::Only(status),
        ..ListFilter::default()
    };
    assert_eq!(
        names(ListFilter::default()),
        ["expiring", "fresh", "idle", "revoked", "used"]
    );
    assert_eq!(names(only(Status::Active)), ["fresh", "idle", "used"]);
    assert_eq!(names(only(Status::Revoked)), ["revoked"]);
    assert_eq!(names(only(Status::Expired)), ["expiring"]);
    let unused_30_days = ListFilter {
        status: StatusFilter::Only(Status::Active),
        unused_since: Some(clock_now(&clock).before(30 * DAY)),
        ..ListFilter::default()
    };
    assert_eq!(
        names(unused_30_days),
        ["idle"],
        "used recently and created recently are not unused"
    );
    let owner_a = ListFilter {
        owner: Some("a".into()),
        ..ListFilter::default()
    };
    assert_eq!(names(owner_a), ["revoked", "used"]);
    let _ = (idle, expiring, fresh);
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    use apikeys::Clock;
    clock.now()
}

#[test]
fn batch_generation_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let store = open(&dir.path().join("k.redb"), Mode::Exclusive, &clock);
    let requests: Vec<NewKey> = (0..100)
        .map(|i| NewKey::new(format!("key {i}")).env("stag"))
        .collect();
    let keys = store.generate_batch(&requests).unwrap();
    assert_eq!(keys.len(), 100);
    for key in &keys {
        assert!(store.verify(key.secret.expose_secret()).is_ok());
    }
    let mut bad = requests.clone();
    bad.push(NewKey::new(""));
    assert!(matches!(
        store.generate_batch(&bad),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        store.list(&ListFilter::default()).unwrap().len(),
        100,
        "nothing of a refused batch is kept"
    );
}

#[test]
fn generate_refuses_bad_requests_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let store = open(&dir.path().join("k.redb"), Mode::Exclusive, &clock);
    let bad = [
        NewKey::new(""),
        NewKey::new("   "),
        NewKey::new("x".repeat(129)),
        NewKey::new("tab\there"),
        NewKey::new("nul\0"),
        NewKey::new("k").env("PROD"),
        NewKey::new("k").env("toolongenv"),
        NewKey::new("k").env(""),
        NewKey::new("k").scope(""),
        NewKey::new("k").scope("contacts read"),
        NewKey::new("k").scope("con*"),
        NewKey::new("k").scopes((0..65).map(|i| format!("s{i}"))),
        NewKey::new("k").owner(""),
        NewKey::new("k").metadata("m".repeat(4097)),
        NewKey::new("k").expires_at(START),
        NewKey::new("k").expires_in(Duration::ZERO),
    ];
    for request in &bad {
        match store.generate(request) {
            Err(Error::InvalidArgument(reason)) => assert!(!reason.is_empty()),
            other => panic!("{request:?} gave {other:?}"),
        }
    }
    assert!(store.list(&ListFilter::default()).unwrap().is_empty());
    let unicode = store
        .generate(&NewKey::new("Clé de développement ✓"))
        .unwrap();
    assert_eq!(unicode.info.name, "Clé de développement ✓");
}

#[test]
fn usage_is_counted_without_a_flush_and_written_by_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let clock = ManualClock::new(START);
    let store = open(&path, Mode::Exclusive, &clock);
    let key = store.generate(&NewKey::new("k")).unwrap();
    for _ in 0..10 {
        store.verify(key.secret.expose_secret()).unwrap();
    }
    assert_eq!(
        store.get(key.id()).unwrap().use_count,
        10,
        "pending uses are listed"
    );
    drop(store); // dropping flushes too
    let store = open(&path, Mode::Exclusive, &clock);
    assert_eq!(store.get(key.id()).unwrap().use_count, 10);
    let untracked = KeyStore::open(&path, options(Mode::Exclusive, &clock).track_usage(false));
    assert!(
        matches!(untracked, Err(Error::Locked { .. })),
        "one exclusive owner per file"
    );
    store.close().unwrap();
    let untracked =
        KeyStore::open(&path, options(Mode::Exclusive, &clock).track_usage(false)).unwrap();
    untracked.verify(key.secret.expose_secret()).unwrap();
    untracked.close().unwrap();
    let store = open(&path, Mode::Shared, &clock);
    assert_eq!(
        store.get(key.id()).unwrap().use_count,
        10,
        "usage off counts nothing"
    );
}

#[test]
fn secrets_are_redacted_when_printed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let store = open(&dir.path().join("k.redb"), Mode::Exclusive, &clock);
    let key = store.generate(&NewKey::new("k").env("prod")).unwrap();
    let body = &key.secret.expose_secret()["flz_sk_prod_".len()..];
    for printed in [
        format!("{key:?}"),
        format!("{}", key.secret),
        format!("{:?}", key.secret),
    ] {
        assert!(!printed.contains(body), "{printed}");
        assert!(!printed.contains(&body[..8]), "{printed}");
    }
}

#[test]
fn a_verified_key_outlives_its_store_once_owned() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let path = dir.path().join("keys.redb");
        let owned = {
            let store = open(&path, mode, &clock);
            let key = store
                .generate(&NewKey::new("Production").env("prod").scopes(["contacts:*"]))
                .unwrap();
            let verified = store.verify(key.secret.expose_secret()).unwrap();
            assert_eq!(verified.name(), "Production");
            let owned = verified.clone().into_owned();
            drop(verified);
            store.close().unwrap();
            (owned, key.id().to_string())
        };
        let (verified, id) = owned;
        assert_eq!(verified.id(), id);
        assert_eq!(
            (verified.name(), verified.env(), verified.scopes()),
            ("Production", Some("prod"), &["contacts:*".to_string()][..])
        );
        assert!(verified.has_scope("contacts:read"));
        assert!(!verified.has_scope("billing:read"));
    });
}

/// Past 16,384 new keys the digest index moves its newest rows into its
/// large table: keys from before and after the move verify, and revoke, in
/// both modes and across reopening.
#[test]
fn keys_verify_and_revoke_across_the_digest_index_move() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let clock = ManualClock::new(START);
    let store = open(&path, Mode::Exclusive, &clock);
    let requests: Vec<NewKey> = (0..apikeys::MAX_BATCH)
        .map(|i| NewKey::new(format!("key {i}")))
        .collect();
    let mut keys = Vec::new();
    for _ in 0..2 {
        keys.extend(store.generate_batch(&requests).unwrap());
    }
    store.close().unwrap();
    // The first key's row was moved, the last one's is fresh.
    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
    for mode in [Mode::Shared, Mode::Exclusive] {
        let store = open(&path, mode, &clock);
        for key in keys.iter().step_by(997).chain([first, last]) {
            let verified = store.verify(key.secret.expose_secret()).unwrap();
            assert_eq!(verified.id(), key.info.id);
        }
        store.close().unwrap();
    }
    let store = open(&path, Mode::Shared, &clock);
    let other = open(&path, Mode::Shared, &clock);
    for key in [first, last] {
        other.verify(key.secret.expose_secret()).unwrap();
        assert!(store.revoke(&key.info.id).unwrap());
        assert_eq!(
            rejection(other.verify(key.secret.expose_secret())),
            Rejection::Revoked
        );
    }
    drop((store, other));
    let store = open(&path, Mode::Exclusive, &clock);
    for key in [first, last] {
        assert_eq!(
            rejection(store.verify(key.secret.expose_secret())),
            Rejection::Revoked
        );
    }
    store.verify(keys[1].secret.expose_secret()).unwrap();
}
