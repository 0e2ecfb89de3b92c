//! Shared mode's index (`<store>.index`): processes racing revocations
//! against verifies see no stale accept; a writer killed at any point,
//! and an index file that is damaged, truncated, foreign or missing, never
//! lead to an accept.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apikeys::{KeyStore, NewKey, Rejection, StoreOptions, VerifyError};
use support::{child_store, commands, role, send, spawn_role, Messages};

fn shared() -> StoreOptions {
    StoreOptions::new().shared().flush_interval(Duration::ZERO)
}

/// Opens `path` right after this process closed a handle of the other mode.
/// Other tests of this binary start child processes meanwhile: a child
/// holds a copy of every descriptor from its fork until its exec closes
/// them, and with it the closed handle's lock, for that short while. So a
/// `Locked` answer is tried again, for at most 10 s: a lock that is never
/// released still fails the test.
fn open_after_close(path: &Path, options: impl Fn() -> StoreOptions) -> KeyStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match KeyStore::open(path, options()) {
            Err(apikeys::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened.unwrap(),
        }
    }
}

fn index_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".index");
    PathBuf::from(name)
}

/// A word of a small file mapped by several processes: the revoker says
/// how many revocations have returned, the verifiers read it.
struct SharedCounter {
    map: memmap2::MmapRaw,
}

impl SharedCounter {
    fn open(path: &Path) -> SharedCounter {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        file.set_len(4096).unwrap();
        SharedCounter {
            map: memmap2::MmapOptions::new()
                .len(4096)
                .map_raw(&file)
                .unwrap(),
        }
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: a shared, page-aligned mapping of 4096 bytes, accessed only
        // through this atomic by every process.
        unsafe { &*(self.map.as_ptr() as *const AtomicU64) }
    }
}

fn counter_path(store: &Path) -> PathBuf {
    store.with_extension("progress")
}

fn keys_path(store: &Path) -> PathBuf {
    store.with_extension("keys")
}

/// Child roles. `revoker`: revokes every key in order, publishing after
/// each return how many have returned. `verifier`: until told to stop,
/// reads that count and verifies the last key revoked, which must be
/// refused; answers how many checks it made and how many were accepted.
/// `slow-revoker`: revokes the keys in order, saying each before and after,
/// until it is killed.
#[test]
fn shared_index_child_entry_point() {
    let Some(role) = role() else { return };
    let store_path = child_store();
    let store = KeyStore::open(&store_path, shared()).expect("child opens");
    let keys: Vec<(String, String)> = std::fs::read_to_string(keys_path(&store_path))
        .unwrap()
        .lines()
        .map(|line| {
            let (id, secret) = line.split_once(' ').unwrap();
            (id.to_string(), secret.to_string())
        })
        .collect();
    let counter = SharedCounter::open(&counter_path(&store_path));
    match role.as_str() {
        "revoker" => {
            send("ready");
            for (i, (id, _)) in keys.iter().enumerate() {
                assert!(store.revoke(id).expect("revoke"));
                counter.word().store(i as u64 + 1, Ordering::SeqCst);
            }
            send("done");
        }
        "verifier" => {
            send("ready");
            let (mut checks, mut stale, mut valid_seen) = (0u64, 0u64, 0u64);
            loop {
                let revoked = counter.word().load(Ordering::SeqCst);
                if revoked == keys.len() as u64 {
                    break;
                }
                if revoked > 0 {
                    // Its revocation returned before this verify started.
                    let (_, secret) = &keys[revoked as usize - 1];
                    match store.verify(secret) {
                        Err(VerifyError::Rejected(Rejection::Revoked)) => {}
                        Ok(_) => stale += 1,
                        Err(other) => panic!("verify of a revoked key: {other}"),
                    }
                    checks += 1;
                }
                // A key not revoked yet (or just now): either answer, never an error.
                let (_, next) = &keys[revoked as usize];
                match store.verify(next) {
                    Ok(_) => valid_seen += 1,
                    Err(VerifyError::Rejected(Rejection::Revoked)) => {}
                    Err(other) => panic!("verify of a pending key: {other}"),
                }
                // Leave the revoker a core: it is the one being raced.
                std::thread::sleep(Duration::from_micros(50));
            }
            send(&format!("{checks} {stale} {valid_seen}"));
        }
        "slow-revoker" => {
            send("ready");
            for line in commands() {
                let (id, _) = &keys[line.parse::<usize>().unwrap()];
                send(&format!("revoking {id}"));
                store.revoke(id).expect("revoke");
                send(&format!("revoked {id}"));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn store_with_keys(dir: &Path, count: usize) -> (PathBuf, Vec<(String, String)>) {
    let path = dir.join("keys.redb");
    let store = KeyStore::open(&path, shared()).unwrap();
    let mut keys = Vec::new();
    while keys.len() < count {
        let batch = (count - keys.len()).min(apikeys::MAX_BATCH);
        let made = store
            .generate_batch(&vec![NewKey::new("raced"); batch])
            .unwrap();
        keys.extend(
            made.iter()
                .map(|key| (key.id().to_string(), key.secret.expose_secret().to_string())),
        );
    }
    store.close().unwrap();
    let lines: Vec<String> = keys
        .iter()
        .map(|(id, secret)| format!("{id} {secret}"))
        .collect();
    std::fs::write(keys_path(&path), lines.join("\n")).unwrap();
    SharedCounter::open(&counter_path(&path));
    (path, keys)
}

#[test]
fn revocations_raced_against_verifies_in_other_processes_are_never_accepted_after_they_return() {
    let revocations = support::count_from_env("RACE_REVOCATIONS", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let (path, _keys) = store_with_keys(dir.path(), revocations + 1);
    let entry = "shared_index_child_entry_point";
    let mut verifiers: Vec<_> = (0..2)
        .map(|_| {
            let mut child = spawn_role(entry, "verifier", &path, &[]);
            let mut messages = Messages::new(&mut child);
            assert_eq!(messages.expect(), "ready");
            (child, messages)
        })
        .collect();
    let mut revoker = spawn_role(entry, "revoker", &path, &[]);
    let mut revoker_messages = Messages::new(&mut revoker);
    assert_eq!(revoker_messages.expect(), "ready");
    assert_eq!(revoker_messages.expect(), "done");
    assert!(revoker.wait().unwrap().success());
    // The revoker stops at `revocations` of the `revocations + 1` keys...
    let counter = SharedCounter::open(&counter_path(&path));
    assert_eq!(
        counter.word().load(Ordering::SeqCst),
        revocations as u64 + 1
    );
    let (mut checks, mut valid_seen) = (0, 0);
    for (child, messages) in &mut verifiers {
        let report = messages.expect();
        let numbers: Vec<u64> = report.split(' ').map(|n| n.parse().unwrap()).collect();
        assert_eq!(
            numbers[1], 0,
            "stale accepts after a returned revocation: {report}"
        );
        checks += numbers[0];
        valid_seen += numbers[2];
        assert!(child.wait().unwrap().success());
    }
    eprintln!("{checks} checks of a just-revoked key, {valid_seen} accepts of the next one");
    // The race was real: verifiers ran while revocations were landing.
    assert!(checks >= revocations as u64 / 4, "only {checks} checks");
    assert!(valid_seen > 0);
}

#[test]
fn a_writer_killed_anywhere_in_a_revocation_never_leaves_a_committed_revocation_accepted() {
    let kills = support::count_from_env("INDEX_KILLS", 12);
    let dir = tempfile::tempdir().unwrap();
    let (path, keys) = store_with_keys(dir.path(), kills * 4);
    // This process keeps its handle (and its mapping of the index) across
    // every kill, as a running worker would.
    let watcher = KeyStore::open(&path, shared()).unwrap();
    let mut rng = support::seeded_rng("kills");
    let mut next = 0;
    for _ in 0..kills {
        let mut child = spawn_role("shared_index_child_entry_point", "slow-revoker", &path, &[]);
        let mut messages = Messages::new(&mut child);
        assert_eq!(messages.expect(), "ready");
        let stdin = child.stdin.as_mut().unwrap();
        for _ in 0..3 {
            support::tell(stdin, &next.to_string());
            next += 1;
        }
        // Kill it after 0-2 acknowledged revocations, at a random moment
        // inside the next one.
        let acknowledged = support::below(&mut rng, 3);
        let mut seen = 0;
        while seen < acknowledged * 2 + 1 {
            messages.expect();
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(support::below(&mut rng, 3000)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the store file says is the truth; the index must agree
        // wherever it answers.
        for (id, secret) in &keys[..next] {
            let committed = watcher.get(id).unwrap().revoked_at.is_some();
            match watcher.verify(secret) {
                Ok(_) => assert!(
                    !committed,
                    "{id}: revoked in the file, accepted by the index"
                ),
                Err(VerifyError::Rejected(Rejection::Revoked)) => {
                    assert!(committed, "{id}: refused, not revoked in the file")
                }
                Err(other) => panic!("{id}: {other}"),
            }
        }
    }
    // A new process after all that: the index it opens agrees too.
    drop(watcher);
    let fresh = KeyStore::open(&path, shared()).unwrap();
    for (id, secret) in &keys {
        let committed = fresh.get(id).unwrap().revoked_at.is_some();
        assert_eq!(fresh.verify(secret).is_ok(), !committed, "{id}");
    }
}

/// A store with an active and a revoked key, closed, and its index.
fn store_with_two_keys(dir: &Path) -> (PathBuf, String, String) {
    let path = dir.join("keys.redb");
    let store = KeyStore::open(&path, shared()).unwrap();
    let active = store.generate(&NewKey::new("active")).unwrap();
    let revoked = store.generate(&NewKey::new("revoked")).unwrap();
    store.revoke(revoked.id()).unwrap();
    store.close().unwrap();
    assert!(index_of(&path).exists());
    (
        path,
        active.secret.expose_secret().to_string(),
        revoked.secret.expose_secret().to_string(),
    )
}

fn assert_answers(store: &KeyStore, active: &str, revoked: &str) {
    assert!(store.verify(active).is_ok(), "the active key is refused");
    assert!(matches!(
        store.verify(revoked),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
}

#[test]
fn a_damaged_index_reads_the_store_file_and_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, active, revoked) = store_with_two_keys(dir.path());
    let open = KeyStore::open(&path, shared()).unwrap();
    assert_answers(&open, &active, &revoked);
    // Flip one byte in every word of every used entry after the header:
    // states, digests and check words alike.
    let mut bytes = std::fs::read(index_of(&path)).unwrap();
    for entry in bytes[4096..].chunks_mut(64) {
        if entry.iter().any(|&b| b != 0) {
            for word in entry.chunks_mut(8).skip(1) {
                word[0] ^= 0x5a;
            }
        }
    }
    std::fs::write(index_of(&path), &bytes).unwrap();
    // The handle that had it mapped, and a new one, answer from the file.
    assert_answers(&open, &active, &revoked);
    let again = KeyStore::open(&path, shared()).unwrap();
    assert_answers(&again, &active, &revoked);
    drop((open, again));
    // The damage was noticed: the next open rebuilt the table.
    KeyStore::open(&path, shared()).unwrap().close().unwrap();
    let rebuilt = std::fs::read(index_of(&path)).unwrap();
    assert_ne!(rebuilt[4096..], bytes[4096..], "the damaged table was kept");
}

#[test]
fn a_revoked_state_overwritten_as_active_is_caught_by_the_entry_check() {
    let dir = tempfile::tempdir().unwrap();
    let (path, active, revoked) = store_with_two_keys(dir.path());
    // Write the never-expires state word over every entry's state: the
    // revoked key now *reads* active unless its check word is verified.
    let mut bytes = std::fs::read(index_of(&path)).unwrap();
    for entry in bytes[4096..].chunks_mut(64) {
        if entry.iter().any(|&b| b != 0) {
            entry[8..16].copy_from_slice(&i64::MAX.to_le_bytes());
        }
    }
    std::fs::write(index_of(&path), &bytes).unwrap();
    let store = KeyStore::open(&path, shared()).unwrap();
    assert_answers(&store, &active, &revoked);
}

#[test]
fn a_truncated_foreign_or_missing_index_is_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, active, revoked) = store_with_two_keys(dir.path());
    let index = index_of(&path);

    for length in [0, 100, 4096, 5000] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&index)
            .unwrap();
        file.set_len(length).unwrap();
        drop(file);
        let store = KeyStore::open(&path, shared()).unwrap();
        assert_answers(&store, &active, &revoked);
    }

    // Another store's index, with the same keys' slots free: copied over.
    let other = tempfile::tempdir().unwrap();
    let (other_path, other_active, _) = store_with_two_keys(other.path());
    std::fs::copy(index_of(&other_path), &index).unwrap();
    let store = KeyStore::open(&path, shared()).unwrap();
    assert_answers(&store, &active, &revoked);
    assert!(matches!(
        store.verify(&other_active),
        Err(VerifyError::Rejected(Rejection::NotFound))
    ));
    drop(store);

    // Missing.
    std::fs::remove_file(&index).unwrap();
    let store = KeyStore::open(&path, shared()).unwrap();
    assert_answers(&store, &active, &revoked);
}

#[test]
fn an_exclusive_writer_invalidates_the_index_and_shared_processes_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, active, revoked) = store_with_two_keys(dir.path());
    let exclusive = open_after_close(&path, || StoreOptions::new().flush_interval(Duration::ZERO));
    let header = std::fs::read(index_of(&path)).unwrap();
    assert_eq!(
        header[..8],
        [0; 8],
        "exclusive mode must not leave a valid index behind"
    );
    let id = exclusive.verify(&active).unwrap().id().to_string();
    exclusive.revoke(&id).unwrap();
    let later = exclusive.generate(&NewKey::new("later")).unwrap();
    exclusive.close().unwrap();
    let store = open_after_close(&path, shared);
    assert!(matches!(
        store.verify(&active),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
    assert!(matches!(
        store.verify(&revoked),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
    assert!(store.verify(later.secret.expose_secret()).is_ok());
}

#[test]
fn keys_generated_past_the_table_size_are_found_by_every_process() {
    // The first table holds 512 keys before it grows: write past it from
    // one handle while another keeps its older mapping.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let writer = KeyStore::open(&path, shared()).unwrap();
    let reader = KeyStore::open(&path, shared()).unwrap();
    let mut secrets = Vec::new();
    for round in 0..6 {
        let made = writer
            .generate_batch(&vec![NewKey::new(format!("round {round}")); 300])
            .unwrap();
        secrets.extend(
            made.iter()
                .map(|key| key.secret.expose_secret().to_string()),
        );
        for secret in &secrets {
            assert!(reader.verify(secret).is_ok());
        }
    }
    let last = writer
        .verify(&secrets[secrets.len() - 1])
        .unwrap()
        .id()
        .to_string();
    writer.revoke(&last).unwrap();
    assert!(matches!(
        reader.verify(&secrets[secrets.len() - 1]),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
    let unknown = {
        let other = tempfile::tempdir().unwrap();
        let store = KeyStore::open(other.path().join("k.redb"), shared()).unwrap();
        store
            .generate(&NewKey::new("elsewhere"))
            .unwrap()
            .secret
            .expose_secret()
            .to_string()
    };
    assert!(matches!(
        reader.verify(&unknown),
        Err(VerifyError::Rejected(Rejection::NotFound))
    ));
}
