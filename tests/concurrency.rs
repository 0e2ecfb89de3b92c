//! Concurrency within one process: threads verifying while another revokes,
//! and threads generating and revoking at once, in both modes.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use apikeys::{KeyStore, ListFilter, Mode, NewKey, Rejection, Status, StoreOptions, VerifyError};
use rand_chacha::rand_core::SeedableRng;
use support::below;

const VERIFIERS: usize = 3;

/// Threads verify random keys while one thread revokes them one by one.
/// After `revoke` returns, a flag is set; a verifier that saw the flag set
/// *before* it called verify must get `Revoked`: no verify that starts
/// after a revocation returned accepts the key.
fn no_verify_accepts_a_key_after_its_revoke_returned(mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        KeyStore::open(dir.path().join("keys.redb"), StoreOptions::new().mode(mode)).expect("open");
    let requests: Vec<NewKey> = (0..300).map(|i| NewKey::new(format!("key {i}"))).collect();
    let keys = store.generate_batch(&requests).expect("generate");
    let revoked: Vec<AtomicBool> = keys.iter().map(|_| AtomicBool::new(false)).collect();
    let done = AtomicBool::new(false);
    let checked_after_revoke = AtomicUsize::new(0);
    let verifies = AtomicUsize::new(0);
    let mut seeds = support::seeded_rng("revoke race");

    std::thread::scope(|scope| {
        for _ in 0..VERIFIERS {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(below(&mut seeds, u64::MAX));
            let (store, keys, revoked, done) = (&store, &keys, &revoked, &done);
            let (checked_after_revoke, verifies) = (&checked_after_revoke, &verifies);
            scope.spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let at = below(&mut rng, keys.len() as u64) as usize;
                    let revoke_returned = revoked[at].load(Ordering::SeqCst);
                    let outcome = store.verify(keys[at].secret.expose_secret());
                    verifies.fetch_add(1, Ordering::Relaxed);
                    match outcome {
                        Err(VerifyError::Rejected(Rejection::Revoked)) => {}
                        Ok(_) => assert!(
                            !revoke_returned,
                            "key {at} accepted by a verify that started after its revoke returned"
                        ),
                        Err(other) => panic!("key {at}: {other:?}"),
                    }
                    if revoke_returned {
                        checked_after_revoke.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(below(&mut seeds, u64::MAX));
        for i in (1..order.len()).rev() {
            order.swap(i, below(&mut rng, i as u64 + 1) as usize);
        }
        for at in order {
            assert!(store.revoke(keys[at].id()).expect("revoke"));
            revoked[at].store(true, Ordering::SeqCst);
        }
        done.store(true, Ordering::SeqCst);
    });

    for key in &keys {
        assert!(matches!(
            store.verify(key.secret.expose_secret()),
            Err(VerifyError::Rejected(Rejection::Revoked))
        ));
    }
    let after = checked_after_revoke.load(Ordering::Relaxed);
    assert!(
        after > 0,
        "no verify ran after a revocation: the race was not exercised"
    );
    eprintln!(
        "{mode:?}: {} revocations raced by {} verifies ({after} started after the revoke returned), none accepted",
        keys.len(),
        verifies.load(Ordering::Relaxed)
    );
}

#[test]
fn no_verify_accepts_a_key_after_its_revoke_returned_exclusive() {
    no_verify_accepts_a_key_after_its_revoke_returned(Mode::Exclusive);
}

#[test]
fn no_verify_accepts_a_key_after_its_revoke_returned_shared() {
    no_verify_accepts_a_key_after_its_revoke_returned(Mode::Shared);
}

/// Threads generate keys and revoke some of their own, and all of them race
/// to revoke the same pool of keys. Afterwards nothing is lost: every
/// generated key is listed and verifies unless revoked, every revocation
/// holds, and each pooled key was newly revoked by exactly one thread.
fn threads_generating_and_revoking_lose_nothing(mode: Mode) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    let store = KeyStore::open(&path, StoreOptions::new().mode(mode)).expect("open");
    let pool = store
        .generate_batch(
            &(0..60)
                .map(|i| NewKey::new(format!("pool {i}")))
                .collect::<Vec<_>>(),
        )
        .expect("pool");
    let generated = Mutex::new(Vec::new());
    let newly_revoked_by = Mutex::new(vec![0usize; pool.len()]);
    let mut seeds = support::seeded_rng("generate and revoke race");

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(below(&mut seeds, u64::MAX));
            let (store, pool, generated, newly_revoked_by) =
                (&store, &pool, &generated, &newly_revoked_by);
            scope.spawn(move || {
                let mut order: Vec<usize> = (0..pool.len()).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, below(&mut rng, i as u64 + 1) as usize);
                }
                for i in 0..PER_THREAD {
                    let key = store
                        .generate(&NewKey::new(format!("thread {thread} key {i}")))
                        .expect("generate");
                    let revoke_own = i % 3 == 0;
                    if revoke_own {
                        assert!(store.revoke(key.id()).expect("revoke own"));
                    }
                    let secret = key.secret.expose_secret().to_string();
                    generated.lock().expect("lock").push((
                        key.id().to_string(),
                        secret,
                        revoke_own,
                    ));
                    let target = order[i % order.len()];
                    if store.revoke(pool[target].id()).expect("revoke pooled") {
                        newly_revoked_by.lock().expect("lock")[target] += 1;
                    }
                }
            });
        }
    });

    let generated = generated.into_inner().expect("lock");
    let check = |store: &KeyStore| {
        let listed = store.list(&ListFilter::default()).expect("list");
        assert_eq!(
            listed.len(),
            pool.len() + THREADS * PER_THREAD,
            "a key was lost"
        );
        for (id, secret, revoked) in &generated {
            let outcome = store.verify(secret);
            if *revoked {
                assert!(
                    matches!(outcome, Err(VerifyError::Rejected(Rejection::Revoked))),
                    "{id}"
                );
            } else {
                assert_eq!(outcome.expect("verifies").id(), id);
            }
        }
        for (at, key) in pool.iter().enumerate() {
            let status = listed
                .iter()
                .find(|info| info.id == key.id())
                .expect("pooled")
                .status;
            let revoked_by_some_thread = newly_revoked_by.lock().expect("lock")[at] > 0;
            assert_eq!(
                status == Status::Revoked,
                revoked_by_some_thread,
                "pool key {at}"
            );
        }
    };
    for (at, count) in newly_revoked_by.lock().expect("lock").iter().enumerate() {
        assert!(*count <= 1, "pool key {at} was newly revoked {count} times");
    }
    check(&store);
    store.close().expect("close");
    let store = KeyStore::open(&path, StoreOptions::new().mode(mode)).expect("reopen");
    check(&store);
    eprintln!(
        "{mode:?}: {THREADS} threads, {} generates and {} revoke calls at once, nothing lost",
        THREADS * PER_THREAD,
        THREADS * PER_THREAD + generated.iter().filter(|(_, _, revoked)| *revoked).count()
    );
}

#[test]
fn threads_generating_and_revoking_at_once_lose_nothing_exclusive() {
    threads_generating_and_revoking_lose_nothing(Mode::Exclusive);
}

#[test]
fn threads_generating_and_revoking_at_once_lose_nothing_shared() {
    threads_generating_and_revoking_lose_nothing(Mode::Shared);
}

/// Threads verify a few keys, some of them revoked, while another thread
/// flushes usage over and over: every use is written exactly once. This is
/// the race between counting (in the key's index entry in exclusive mode,
/// in a cell by id in shared mode) and a flush taking the counts.
fn every_use_is_flushed_once_while_verifies_race_flushes(mode: Mode) {
    const ROUNDS: usize = 4_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    let options = || {
        StoreOptions::new()
            .mode(mode)
            .flush_interval(std::time::Duration::ZERO)
    };
    let store = KeyStore::open(&path, options()).expect("open");
    let requests: Vec<NewKey> = (0..8).map(|i| NewKey::new(format!("key {i}"))).collect();
    let keys = store.generate_batch(&requests).expect("generate");
    for key in &keys[6..] {
        store.revoke(key.id()).expect("revoke");
    }
    let done = AtomicBool::new(false);
    let mut seeds = support::seeded_rng("usage race");
    let counts: Vec<Mutex<(u64, u64)>> = keys.iter().map(|_| Mutex::new((0, 0))).collect();

    std::thread::scope(|scope| {
        let verifiers: Vec<_> = (0..VERIFIERS)
            .map(|_| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(below(&mut seeds, u64::MAX));
                let (store, keys, counts) = (&store, &keys, &counts);
                scope.spawn(move || {
                    let mut mine = vec![(0u64, 0u64); keys.len()];
                    for _ in 0..ROUNDS {
                        let at = below(&mut rng, keys.len() as u64) as usize;
                        match store.verify(keys[at].secret.expose_secret()) {
                            Ok(verified) => {
                                assert_eq!(verified.id(), keys[at].id());
                                mine[at].0 += 1;
                            }
                            Err(VerifyError::Rejected(Rejection::Revoked)) => mine[at].1 += 1,
                            Err(other) => panic!("key {at}: {other:?}"),
                        }
                    }
                    for (total, (uses, rejected)) in counts.iter().zip(mine) {
                        let mut total = total.lock().expect("counts");
                        total.0 += uses;
                        total.1 += rejected;
                    }
                })
            })
            .collect();
        let (store, done) = (&store, &done);
        scope.spawn(move || {
            while !done.load(Ordering::SeqCst) {
                store.flush().expect("flush");
                // Listing reads flushed and pending counts at once.
                store.list(&ListFilter::default()).expect("list");
            }
        });
        for verifier in verifiers {
            verifier.join().expect("verifier");
        }
        done.store(true, Ordering::SeqCst);
    });
    store.close().expect("close");

    let store = KeyStore::open(&path, options()).expect("reopen");
    let mut total = 0;
    for (key, counted) in keys.iter().zip(&counts) {
        let (uses, rejected) = *counted.lock().expect("counts");
        let info = store.get(key.id()).expect("get");
        assert_eq!(
            (info.use_count, info.rejected_count),
            (uses, rejected),
            "{}",
            key.id()
        );
        assert_eq!(info.last_used.is_some(), uses > 0);
        total += uses + rejected;
    }
    assert_eq!(total, (VERIFIERS * ROUNDS) as u64);
}

#[test]
fn every_use_is_flushed_once_while_verifies_race_flushes_exclusive() {
    every_use_is_flushed_once_while_verifies_race_flushes(Mode::Exclusive);
}

#[test]
fn every_use_is_flushed_once_while_verifies_race_flushes_shared() {
    every_use_is_flushed_once_while_verifies_race_flushes(Mode::Shared);
}
