//! In-memory stores (`StoreOptions::in_memory`): the same answers as a file,
//! nothing written to disk in exclusive mode, several shared handles kept
//! coherent through the shared index, the pepper and the modes checked.

use apikeys::{Error, KeyStore, MemoryStore, Mode, NewKey, Rejection, StoreOptions, VerifyError};

fn rejected(store: &KeyStore, secret: &str) -> Option<Rejection> {
    match store.verify(secret) {
        Ok(_) => None,
        Err(VerifyError::Rejected(rejection)) => Some(rejection),
        Err(other) => panic!("verify failed: {other}"),
    }
}

#[test]
fn an_exclusive_in_memory_store_writes_nothing_and_keeps_its_keys_while_the_memory_store_lives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let memory = MemoryStore::new();
    let store = KeyStore::open(&path, StoreOptions::new().in_memory(&memory)).unwrap();
    let kept = store.generate(&NewKey::new("kept").scope("a:*")).unwrap();
    let revoked = store.generate(&NewKey::new("revoked")).unwrap();
    assert!(store.revoke(revoked.id()).unwrap());
    let rotated = store
        .rotate(kept.id(), std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(rotated.info.rotated_from.as_deref(), Some(kept.id()));
    store.verify(kept.secret.expose_secret()).unwrap();
    store.close().unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a file was written"
    );

    let again = KeyStore::open(&path, StoreOptions::new().in_memory(&memory)).unwrap();
    let verified = again.verify(kept.secret.expose_secret()).unwrap();
    assert_eq!(verified.name(), "kept");
    assert_eq!(
        rejected(&again, revoked.secret.expose_secret()),
        Some(Rejection::Revoked)
    );
    again.verify(rotated.secret.expose_secret()).unwrap();
    again.flush().unwrap();
    let listed = again.list(&apikeys::ListFilter::default()).unwrap();
    assert_eq!(listed.len(), 3);
    let kept_info = listed.iter().find(|k| k.id == kept.id()).unwrap();
    assert_eq!(kept_info.use_count, 2, "uses from both handles add up");
    let events = again.events(0, usize::MAX).unwrap();
    assert!(events
        .windows(2)
        .all(|w| w[0].sequence + 1 == w[1].sequence));
    assert_eq!(events[0].sequence, 1);

    // Another MemoryStore is another, empty store.
    let other = KeyStore::open(&path, StoreOptions::new().in_memory(&MemoryStore::new())).unwrap();
    assert_eq!(
        rejected(&other, kept.secret.expose_secret()),
        Some(Rejection::NotFound)
    );
}

#[test]
fn shared_in_memory_handles_see_each_others_writes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let memory = MemoryStore::new();
    let options = || StoreOptions::new().shared().in_memory(&memory);
    let first = KeyStore::open(&path, options()).unwrap();
    let second = KeyStore::open(&path, options()).unwrap();
    assert_eq!(second.mode(), Mode::Shared);
    let key = first.generate(&NewKey::new("one")).unwrap();
    let secret = key.secret.expose_secret();
    assert_eq!(second.verify(secret).unwrap().id(), key.id());
    assert!(second.revoke(key.id()).unwrap());
    assert_eq!(rejected(&first, secret), Some(Rejection::Revoked));
    // Only the index is on disk, beside the path.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keys.redb.index"]);
    drop((first, second));

    // The index left on disk belongs to that memory store: another one at
    // the same path rebuilds it and does not find the key.
    let fresh = MemoryStore::new();
    let other = KeyStore::open(&path, StoreOptions::new().shared().in_memory(&fresh)).unwrap();
    assert_eq!(rejected(&other, secret), Some(Rejection::NotFound));
}

#[test]
fn in_memory_stores_check_the_pepper_the_modes_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let memory = MemoryStore::new();
    let peppered = || StoreOptions::new().pepper("one").in_memory(&memory);
    drop(KeyStore::open(&path, peppered()).unwrap());
    assert!(matches!(
        KeyStore::open(&path, StoreOptions::new().pepper("two").in_memory(&memory)),
        Err(Error::WrongPepper)
    ));

    let exclusive = KeyStore::open(&path, peppered()).unwrap();
    assert!(matches!(
        KeyStore::open(&path, peppered()),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        KeyStore::open(&path, peppered().shared()),
        Err(Error::Locked { .. })
    ));
    drop(exclusive);
    let shared = KeyStore::open(&path, peppered().shared()).unwrap();
    assert!(matches!(
        KeyStore::open(&path, peppered()),
        Err(Error::Locked { .. })
    ));
    drop(shared);

    // A store file at the path: its index is not an in-memory store's to take.
    let file = dir.path().join("real.redb");
    drop(KeyStore::open(&file, StoreOptions::new().shared()).unwrap());
    assert!(matches!(
        KeyStore::open(&file, StoreOptions::new().shared().in_memory(&memory)),
        Err(Error::InvalidArgument(_))
    ));
}
