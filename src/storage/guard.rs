//! [`PanicGuard`]: a [`Storage`] that turns a panic of the storage engine
//! into [`Error::Corrupted`], so that no panic reaches the host.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{ChangeFn, Changed, FiledHandle, ImportedKey, NewDigests, Storage, Target, UsageDelta};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::legacy::Sources;
use crate::record::{Event, KeyRecord, StoredState, Usage};
use crate::state::KeyState;

/// Runs a storage call, turning a panic of the storage engine into
/// [`Error::Corrupted`]. redb trusts the pages it reads: a damaged file can
/// make it index out of bounds on any read or write, not only at open, and
/// that must reach the host as an error, never as a panic.
fn no_panic<T>(call: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        Err(Error::Corrupted(
            "the storage engine failed on a damaged page of the file".into(),
        ))
    })
}

/// A [`Storage`] whose every call runs under [`no_panic`].
pub(crate) struct PanicGuard<S>(pub(crate) S);

impl<S: Storage> Storage for PanicGuard<S> {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error> {
        no_panic(|| self.0.insert(records, at, digests))
    }
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        no_panic(|| self.0.change(target, at, change))
    }
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        no_panic(|| self.0.by_digest(digest))
    }
    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        no_panic(|| self.0.key_state(digest, id))
    }
    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        no_panic(|| self.0.by_id(id))
    }
    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        no_panic(|| self.0.scan(visit))
    }
    fn key_count(&self) -> Result<u64, Error> {
        no_panic(|| self.0.key_count())
    }
    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        no_panic(|| self.0.scan_states(visit))
    }
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        no_panic(|| self.0.add_usage(deltas, at))
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        no_panic(|| self.0.events(after, limit))
    }
    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        no_panic(|| self.0.import(keys, events, handles))
    }

    // Moving in.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        no_panic(|| self.0.import_legacy(keys, at))
    }
    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        no_panic(|| self.0.handles_known(handles))
    }
    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        no_panic(|| self.0.by_handle(handle))
    }
    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        no_panic(|| self.0.redigest(id, from, to, at))
    }
    fn legacy_sources(&self) -> Result<Sources, Error> {
        no_panic(|| self.0.legacy_sources())
    }
    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        no_panic(|| self.0.legacy_handles())
    }
}
