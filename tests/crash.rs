//! Crash consistency: a child process generates, revokes and rotates keys
//! in a loop, acknowledging each operation over a pipe only after the call
//! returned; the parent kills it with SIGKILL at a random moment, reopens
//! the store and checks that it opens, that every acknowledged key verifies
//! unless revoked, that every acknowledged revocation holds, and that
//! nothing revoked comes back. Then again, on the same file.
//!
//! `CRASH_KILLS` sets the number of kills per mode (default 50);
//! `TEST_SEED` replays a run.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use apikeys::{KeyStore, ListFilter, Mode, NewKey, Rejection, Status, StoreOptions, VerifyError};
use support::{below, child_store, role, send, spawn_role, Messages};

/// Rotation grace long enough that no rotated key expires during the test.
const GRACE: Duration = Duration::from_secs(400 * 86_400);

/// The child: loops over random operations on the store until killed.
/// Protocol (one line each): `ready`; `intent <op> <id>` before a call that
/// changes an existing key; then, once it returned, `generated <id> <secret>`,
/// `revoked <id>`, `rotated <old id> <new id> <new secret>`.
#[test]
fn crash_child_entry_point() {
    // Run by the parent tests below as a child process; alone it does nothing.
    let Some(role) = role() else { return };
    let mode = if role == "crash-shared" {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let store = KeyStore::open(child_store(), StoreOptions::new().mode(mode)).expect("child opens");
    // Keys this child may revoke or rotate: the live ones already there.
    let mut live: Vec<(String, Option<String>)> = store
        .list(&ListFilter {
            status: apikeys::StatusFilter::Only(Status::Active),
            ..ListFilter::default()
        })
        .expect("list")
        .into_iter()
        // A key rotated once is left alone: its successor is the one to rotate.
        .filter(|info| info.rotated_to.is_none())
        .map(|info| (info.id, None))
        .collect();
    let mut rng = support::seeded_rng("crash child");
    send("ready");
    loop {
        let roll = below(&mut rng, 10);
        if live.is_empty() || roll < 5 {
            let key = store
                .generate(&NewKey::new("crash").env("prod").scope("contacts:read"))
                .expect("generate");
            send(&format!(
                "generated {} {}",
                key.id(),
                key.secret.expose_secret()
            ));
            live.push((
                key.id().to_string(),
                Some(key.secret.expose_secret().to_string()),
            ));
            continue;
        }
        let at = below(&mut rng, live.len() as u64) as usize;
        let (id, secret) = live[at].clone();
        match roll {
            5..=6 => {
                send(&format!("intent revoke {id}"));
                store.revoke(&id).expect("revoke");
                send(&format!("revoked {id}"));
                live.swap_remove(at);
            }
            7 if secret.is_some() => {
                send(&format!("intent revoke {id}"));
                store
                    .revoke_key(secret.as_deref().unwrap_or_default())
                    .expect("revoke by key");
                send(&format!("revoked {id}"));
                live.swap_remove(at);
            }
            _ => {
                send(&format!("intent rotate {id}"));
                let new = store.rotate(&id, GRACE).expect("rotate");
                send(&format!(
                    "rotated {id} {} {}",
                    new.id(),
                    new.secret.expose_secret()
                ));
                // The old key stays valid through the grace; rotate only the new one from now.
                live.swap_remove(at);
                live.push((
                    new.id().to_string(),
                    Some(new.secret.expose_secret().to_string()),
                ));
            }
        }
    }
}

/// What the parent knows from acknowledgements, across all kills.
#[derive(Default)]
struct Acknowledged {
    /// Every acknowledged key: id -> secret.
    keys: HashMap<String, String>,
    /// Acknowledged revocations.
    revoked: HashSet<String>,
    /// Keys seen revoked after a reopen, acknowledged or not: they must stay so.
    seen_revoked: HashSet<String>,
    /// Acknowledged rotations: old id -> new id.
    rotated: HashMap<String, String>,
}

struct Tally {
    kills: usize,
    operations: usize,
    keys_checked: usize,
}

fn read_until_killed(
    messages: &mut Messages,
    acknowledged: &mut Acknowledged,
) -> (usize, Option<String>) {
    let mut operations = 0;
    let mut in_flight = None;
    while let Some(message) = messages.next() {
        let parts: Vec<&str> = message.split(' ').collect();
        match parts.as_slice() {
            ["intent", _, id] => in_flight = Some(id.to_string()),
            ["generated", id, secret] => {
                acknowledged.keys.insert(id.to_string(), secret.to_string());
                operations += 1;
            }
            ["revoked", id] => {
                acknowledged.revoked.insert(id.to_string());
                in_flight = None;
                operations += 1;
            }
            ["rotated", old, new, secret] => {
                acknowledged
                    .keys
                    .insert(new.to_string(), secret.to_string());
                acknowledged
                    .rotated
                    .insert(old.to_string(), new.to_string());
                in_flight = None;
                operations += 1;
            }
            other => panic!("unexpected message from the child: {other:?}"),
        }
    }
    (operations, in_flight)
}

/// Checks the reopened store against everything acknowledged so far.
/// `in_flight` is the key whose revocation was under way at the kill: it
/// may or may not be revoked.
fn check_store(
    store: &KeyStore,
    acknowledged: &mut Acknowledged,
    in_flight: Option<&str>,
) -> usize {
    let listed: HashMap<String, apikeys::KeyInfo> = store
        .list(&ListFilter::default())
        .expect("list after the kill")
        .into_iter()
        .map(|info| (info.id.clone(), info))
        .collect();
    for (id, secret) in &acknowledged.keys {
        let info = listed
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged key {id} was lost"));
        let outcome = store.verify(secret);
        let must_be_revoked =
            acknowledged.revoked.contains(id) || acknowledged.seen_revoked.contains(id);
        match outcome {
            Ok(verified) => {
                assert!(
                    !must_be_revoked,
                    "revoked key {id} verifies again after a crash"
                );
                assert_eq!(verified.id(), id);
                assert_eq!(info.status, Status::Active);
            }
            Err(VerifyError::Rejected(Rejection::Revoked)) => {
                assert!(
                    must_be_revoked || in_flight == Some(id.as_str()),
                    "key {id} is revoked, but no revocation of it was acknowledged or under way"
                );
                assert_eq!(info.status, Status::Revoked);
                acknowledged.seen_revoked.insert(id.clone());
            }
            Err(other) => panic!("acknowledged key {id}: {other:?}"),
        }
    }
    for (old, new) in &acknowledged.rotated {
        // No key is rotated twice (children skip keys with a successor), so
        // the link names the acknowledged successor.
        assert_eq!(
            listed[old].rotated_to.as_deref(),
            Some(new.as_str()),
            "rotation of {old} lost"
        );
        assert_eq!(listed[new].rotated_from.as_deref(), Some(old.as_str()));
    }
    // The event log is readable and records every acknowledged revocation.
    let events = store.events(0, usize::MAX).expect("events after the kill");
    let revoked_in_log: HashSet<&str> = events
        .iter()
        .filter(|event| event.kind == apikeys::EventKind::Revoked)
        .map(|event| event.key_id.as_str())
        .collect();
    for id in &acknowledged.revoked {
        assert!(
            revoked_in_log.contains(id.as_str()),
            "revocation of {id} missing from the log"
        );
    }
    acknowledged.keys.len()
}

fn kill_and_check(mode: Mode) -> Tally {
    let kills = support::count_from_env("CRASH_KILLS", 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let role = if mode == Mode::Shared {
        "crash-shared"
    } else {
        "crash-exclusive"
    };
    let mut rng = support::seeded_rng(role);
    let mut acknowledged = Acknowledged::default();
    let mut tally = Tally {
        kills: 0,
        operations: 0,
        keys_checked: 0,
    };
    // In shared mode the parent also keeps a handle open through every kill:
    // a peer dying mid-commit must not disturb it.
    let bystander = (mode == Mode::Shared)
        .then(|| KeyStore::open(&path, StoreOptions::new().shared()).expect("bystander opens"));
    for _ in 0..kills {
        let mut child = spawn_role("crash_child_entry_point", role, &path, &[]);
        let mut messages = Messages::new(&mut child);
        let ready = messages.expect();
        assert_eq!(ready, "ready");
        // A random moment within the child's busy loop (each operation is
        // one fsync'd commit, a few milliseconds on a disk).
        std::thread::sleep(Duration::from_micros(below(&mut rng, 100_000)));
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped yet (wait() comes after), so the pid cannot be reused.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(sent, 0, "kill failed");
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "the child was supposed to die: {status:?}"
        );
        let (operations, in_flight) = read_until_killed(&mut messages, &mut acknowledged);
        tally.kills += 1;
        tally.operations += operations;

        let store = KeyStore::open(&path, StoreOptions::new().mode(mode))
            .expect("the store opens after a kill");
        tally.keys_checked += check_store(&store, &mut acknowledged, in_flight.as_deref());
        store.close().expect("close");
        if let Some(bystander) = &bystander {
            tally.keys_checked += check_store(bystander, &mut acknowledged, in_flight.as_deref());
        }
    }
    assert!(tally.operations > 0, "the child never got to work");
    eprintln!(
        "{mode:?}: {} kills survived, {} acknowledged operations, {} key checks, {} keys, {} revoked, nothing lost",
        tally.kills,
        tally.operations,
        tally.keys_checked,
        acknowledged.keys.len(),
        acknowledged.seen_revoked.len()
    );
    tally
}

#[test]
fn killed_writer_loses_nothing_acknowledged_exclusive() {
    if role().is_some() {
        return;
    }
    let tally = kill_and_check(Mode::Exclusive);
    assert_eq!(tally.kills, support::count_from_env("CRASH_KILLS", 50));
}

#[test]
fn killed_writer_loses_nothing_acknowledged_shared() {
    if role().is_some() {
        return;
    }
    let tally = kill_and_check(Mode::Shared);
    assert_eq!(tally.kills, support::count_from_env("CRASH_KILLS", 50));
}
