//! [`LazyStorage`]: a store file opened on first use, or by a thread in the
//! background, rather than at [`KeyStore::open`](crate::KeyStore::open).
//!
//! Why: in shared mode a worker whose shared index is valid for the store
//! verifies from the index, and redb's multi-process open is the slow part
//! of a worker's start (it takes and writes the file header under a lock
//! that every opening process queues on: seconds for 16 workers starting at
//! once on a 1M-key store). The index's header keeps the store's pepper
//! fingerprint, so a wrong pepper is still refused at open: a header that
//! does not match makes the index rebuild from the store, which opens it at
//! once and returns its error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::legacy::Sources;
use crate::record::{Event, KeyRecord, StoredState, Usage};
use crate::state::KeyState;
use crate::storage::{
    ChangeFn, Changed, FiledHandle, ImportedKey, NewDigests, Storage, Target, UsageDelta,
};

struct Opening {
    path: PathBuf,
    fingerprint: [u8; 32],
    opened: OnceLock<Box<dyn Storage>>,
    /// Held while opening, so that one caller opens and the others wait;
    /// a failed open is tried again by the next caller.
    opening: Mutex<()>,
}

impl Opening {
    fn get(&self) -> Result<&dyn Storage, Error> {
        if let Some(storage) = self.opened.get() {
            return Ok(&**storage);
        }
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(storage) = self.opened.get() {
            return Ok(&**storage);
        }
        let storage = super::open(&self.path, true, &self.fingerprint)?;
        Ok(&**self.opened.get_or_init(|| storage))
    }
}

/// A shared-mode store file, opened by the first call that needs it.
pub(crate) struct LazyStorage {
    opening: Arc<Opening>,
    /// The thread of [`open_in_background`](Self::open_in_background),
    /// joined on drop so that a closed handle leaves no file open behind it.
    background: Mutex<Option<crate::background::Background>>,
}

impl LazyStorage {
    /// Nothing is opened yet: the first call of the [`Storage`] interface
    /// opens `path` in shared mode (checking format and pepper).
    pub(crate) fn new(path: &Path, fingerprint: &[u8; 32]) -> Self {
        LazyStorage {
            opening: Arc::new(Opening {
                path: path.to_path_buf(),
                fingerprint: *fingerprint,
                opened: OnceLock::new(),
                opening: Mutex::new(()),
            }),
            background: Mutex::new(None),
        }
    }

    /// Whether the file is open already.
    pub(crate) fn is_open(&self) -> bool {
        self.opening.opened.get().is_some()
    }

    /// Opens the file in a thread of its own, off the caller's path; a
    /// failure there is left for the first call that needs the file, which
    /// tries again and reports it. Without a thread (the system refused
    /// one), the file opens at first use.
    pub(crate) fn open_in_background(&self) {
        if self.is_open() {
            return;
        }
        let opening = self.opening.clone();
        let thread = crate::background::spawn("apikeys-open", move |_| {
            let _ = opening.get();
        });
        if let Ok(thread) = thread {
            *self
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(thread);
        }
    }
}

impl Drop for LazyStorage {
    fn drop(&mut self) {
        let thread = self
            .background
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            thread.join();
        }
    }
}

impl Storage for LazyStorage {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error> {
        self.opening.get()?.insert(records, at, digests)
    }
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        self.opening.get()?.change(target, at, change)
    }
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        self.opening.get()?.by_digest(digest)
    }
    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        self.opening.get()?.key_state(digest, id)
    }
    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        self.opening.get()?.by_id(id)
    }
    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        self.opening.get()?.scan(visit)
    }
    fn key_count(&self) -> Result<u64, Error> {
        self.opening.get()?.key_count()
    }
    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        self.opening.get()?.scan_states(visit)
    }
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        self.opening.get()?.add_usage(deltas, at)
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        self.opening.get()?.events(after, limit)
    }
    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        self.opening.get()?.import(keys, events, handles)
    }

    // Moving in.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.opening.get()?.import_legacy(keys, at)
    }
    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        self.opening.get()?.handles_known(handles)
    }
    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        self.opening.get()?.by_handle(handle)
    }
    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        self.opening.get()?.redigest(id, from, to, at)
    }
    fn legacy_sources(&self) -> Result<Sources, Error> {
        self.opening.get()?.legacy_sources()
    }
    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        self.opening.get()?.legacy_handles()
    }
}
