//! Verify: parse, digest, find the key through the mode's lookup, decide on
//! its state and scope, count the use off the verify path.

use crate::error::VerifyError;
use crate::key;

use super::import::decide;
use super::info::VerifiedKey;
use super::KeyStore;

impl KeyStore {
    /// Verifies a presented key.
    ///
    /// Malformed keys are rejected before any storage access. A revoked or
    /// expired key is rejected and its use is counted and logged as
    /// suspicious. Never waits on a disk write.
    pub fn verify(&self, key: &str) -> Result<VerifiedKey<'_>, VerifyError> {
        self.verify_inner(key, None)
    }

    /// Verifies a presented key and that it grants `scope`.
    pub fn verify_with_scope(
        &self,
        key: &str,
        scope: &str,
    ) -> Result<VerifiedKey<'_>, VerifyError> {
        self.verify_inner(key, Some(scope))
    }

    fn verify_inner(&self, key: &str, scope: Option<&str>) -> Result<VerifiedKey<'_>, VerifyError> {
        let inner = self.inner()?;
        if key::parse(key).is_none() {
            // Malformed, unless the store holds keys imported from a
            // source whose keys look like this (`import`).
            return self.verify_legacy(inner, key, scope);
        }
        let started = inner.lookup.started();
        let digest = inner.hasher.digest(key);
        let now = inner.clock.now();
        decide(inner.lookup.find(inner, &digest, now, started)?, scope)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use std::path::Path;

    use crate::clock::Timestamp;
    use crate::error::{Error, Rejection};
    use crate::key::digest::{Digest, Hasher};
    use crate::record::{Event, KeyRecord, StoredState, Usage};
    use crate::state::KeyState;
    use crate::storage::redb::RedbStorage;
    use crate::storage::{ChangeFn, Changed, NewDigests, Storage, Target, UsageDelta};
    use crate::store::lookup::read_through::ReadThrough;
    use crate::store::{NewKey, StoreOptions};

    /// Counts the reads that verify can make, over a real redb file.
    struct CountingStorage {
        real: RedbStorage,
        reads: Arc<AtomicUsize>,
    }

    impl Storage for CountingStorage {
        fn insert(
            &self,
            records: &mut [KeyRecord],
            at: Timestamp,
            digests: NewDigests,
        ) -> Result<(), Error> {
            self.real.insert(records, at, digests)
        }
        fn change(
            &self,
            target: Target<'_>,
            at: Timestamp,
            change: &mut ChangeFn<'_>,
        ) -> Result<Changed, Error> {
            self.real.change(target, at, change)
        }
        fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.by_digest(digest)
        }
        fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.key_state(digest, id)
        }
        fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.by_id(id)
        }
        fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.scan(visit)
        }
        fn key_count(&self) -> Result<u64, Error> {
            self.real.key_count()
        }
        fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.scan_states(visit)
        }
        fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
            self.real.add_usage(deltas, at)
        }
        fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
            self.real.events(after, limit)
        }
        fn import(
            &self,
            keys: &[(KeyRecord, Usage)],
            events: &[Event],
            handles: &[crate::storage::FiledHandle],
        ) -> Result<(), Error> {
            self.real.import(keys, events, handles)
        }
        fn import_legacy(
            &self,
            keys: Vec<crate::storage::ImportedKey>,
            at: Timestamp,
        ) -> Result<Vec<KeyRecord>, Error> {
            self.real.import_legacy(keys, at)
        }
        fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.handles_known(handles)
        }
        fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.real.by_handle(handle)
        }
        fn redigest(
            &self,
            id: &str,
            from: &Digest,
            to: &Digest,
            at: Timestamp,
        ) -> Result<Option<KeyRecord>, Error> {
            self.real.redigest(id, from, to, at)
        }
        fn legacy_sources(&self) -> Result<crate::legacy::Sources, Error> {
            // Which sources a store holds is not a key's read (see
            // `KeyStore::legacy_sources`): not counted.
            self.real.legacy_sources()
        }
        fn legacy_handles(&self) -> Result<Vec<crate::storage::FiledHandle>, Error> {
            self.real.legacy_handles()
        }
    }

    fn counted_shared_store(dir: &Path) -> (KeyStore, Arc<AtomicUsize>) {
        let path = dir.join("counted.redb");
        let hasher = Hasher::new(b"");
        crate::ownership::create_store_file(&path, 0o600).unwrap();
        let real = RedbStorage::open(&path, true, &hasher.fingerprint()).unwrap();
        let reads = Arc::new(AtomicUsize::new(0));
        let storage = CountingStorage {
            real,
            reads: reads.clone(),
        };
        let options = StoreOptions::new().shared();
        // Without a shared index: every verify that gets past parsing reads.
        let lookup = Box::new(ReadThrough::default());
        let store =
            KeyStore::with_storage(path, Box::new(storage), lookup, None, hasher, options).unwrap();
        (store, reads)
    }

    #[test]
    fn malformed_keys_are_rejected_without_a_storage_read() {
        let dir = tempfile::tempdir().unwrap();
        let (store, reads) = counted_shared_store(dir.path());
        let key = store.generate(&NewKey::new("k")).unwrap();
        let secret = key.secret.expose_secret();
        let mut mutants = vec![
            String::new(),
            format!("{secret}x"),
            secret[..secret.len() - 1].to_string(),
        ];
        for (at, original) in secret.char_indices() {
            for replacement in ['a', 'Z', '0', '_'] {
                if replacement != original {
                    let mut mutant = secret.to_string();
                    mutant.replace_range(at..at + 1, &replacement.to_string());
                    mutants.push(mutant);
                }
            }
        }
        let before = reads.load(Ordering::SeqCst);
        for mutant in &mutants {
            match store.verify(mutant) {
                Err(VerifyError::Rejected(Rejection::Malformed)) => {}
                other => panic!("{mutant:?} gave {other:?}"),
            }
        }
        assert_eq!(
            reads.load(Ordering::SeqCst),
            before,
            "a malformed key reached storage"
        );
        assert!(store.verify(secret).is_ok());
        assert_eq!(
            reads.load(Ordering::SeqCst),
            before + 1,
            "a key's first verify reads its record once"
        );
        assert!(store.verify(secret).is_ok());
        assert_eq!(
            reads.load(Ordering::SeqCst),
            before + 2,
            "a later verify reads the key's state once"
        );
    }

    #[test]
    fn a_native_key_never_takes_the_legacy_path_and_a_legacy_miss_costs_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let (store, reads) = counted_shared_store(dir.path());
        let key = store.generate(&NewKey::new("k")).unwrap();
        let secret = key.secret.expose_secret();
        assert!(store.verify(secret).is_ok());
        // Unkey's keys can be any string: every non-native string is a candidate.
        let hash = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            <sha2::Sha256 as sha2::Digest>::digest(b"sk_live"),
        );
        let rows = format!("{{\"hash\":\"{hash}\"}}\n");
        let report = store
            .import(crate::Source::Unkey, rows.as_bytes(), &Default::default())
            .unwrap();
        assert_eq!(report.imported, 1);
        let before = reads.load(Ordering::SeqCst);
        assert!(store.verify(secret).is_ok());
        assert_eq!(
            reads.load(Ordering::SeqCst),
            before + 1,
            "a native key reads its state only"
        );
        // Not native, not imported: its keyed digest (one read here, where
        // there is no shared index), then one read by its handle, no more.
        let before = reads.load(Ordering::SeqCst);
        assert!(matches!(
            store.verify("sk_random_guess"),
            Err(VerifyError::Rejected(Rejection::NotFound))
        ));
        assert_eq!(reads.load(Ordering::SeqCst), before + 2);
    }
}
