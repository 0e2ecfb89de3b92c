//! Read-through lookup: every verify reads the key's state from the latest
//! commit of the store file (one get of its digest row once its details are
//! known); the details, which never change, are read once per process and
//! kept (at most [`DETAILS_MAX`] keys, then the cache starts over). What
//! shared mode falls back to, and the whole strategy of a shared store
//! without its index.

use std::sync::{Arc, MutexGuard, PoisonError, RwLock};

use hashbrown::HashTable;

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::KeyState;
use crate::storage::{NewDigests, Storage};
use crate::usage::PendingUsage;

use super::{Found, KeyLookup};
use crate::store::info::{Details, Held, VerifiedKey};
use crate::store::Inner;

/// Most keys whose details a shared-mode process keeps (about 200 bytes
/// each); past it the cache starts over.
const DETAILS_MAX: usize = 65_536;

/// The details of keys this process verified, by digest, with their usage
/// counters.
#[derive(Default)]
pub(in crate::store) struct ReadThrough {
    details: RwLock<HashTable<Arc<Details>>>,
}

impl ReadThrough {
    /// The details of a key this process has seen, if it has.
    fn known_details(&self, digest: &Digest) -> Option<Arc<Details>> {
        let same = |details: &Arc<Details>| details.digest == *digest;
        self.details
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(digest.table_hash(), same)
            .cloned()
    }

    /// Keeps a key's details for this process's next verifies.
    fn remember(&self, record: KeyRecord) -> Arc<Details> {
        let details = Arc::new(Details::from_record(record));
        let digest = details.digest;
        let same = |known: &Arc<Details>| known.digest == digest;
        let mut cache = self.details.write().unwrap_or_else(PoisonError::into_inner);
        // Bounded: a process that sees very many keys starts over. Counts
        // in dropped details stay on the dirty list until flushed.
        if cache.len() >= DETAILS_MAX {
            cache.clear();
        }
        match cache.find(digest.table_hash(), same) {
            Some(known) => known.clone(),
            None => {
                cache.insert_unique(digest.table_hash(), details.clone(), |details| {
                    details.digest.table_hash()
                });
                details
            }
        }
    }

    /// For a key whose state is known from elsewhere (the shared index):
    /// its details, read from the store file once per process. A key's
    /// name, env, owner, scopes and number never change.
    pub(super) fn details_of(
        &self,
        store: &Inner,
        digest: &Digest,
    ) -> Result<Arc<Details>, VerifyError> {
        if let Some(details) = self.known_details(digest) {
            return Ok(details);
        }
        let record = store
            .storage
            .by_digest(digest)?
            .ok_or(Rejection::NotFound)?;
        Ok(self.remember(record))
    }

    /// The key with this digest and its state as of the latest
    /// commit, read from the store file (one get of its `digests` row once
    /// its details are known).
    pub(super) fn state_of(
        &self,
        store: &Inner,
        digest: &Digest,
    ) -> Result<(Arc<Details>, KeyState), VerifyError> {
        if let Some(details) = self.known_details(digest) {
            let state = store
                .storage
                .key_state(digest, &details.id)?
                .ok_or_else(|| Error::Corrupted("a stored key has no digest row".into()))?;
            return Ok((details, state));
        }
        // First use here (or not a key): the record, whose state is as
        // fresh as the row's.
        let record = store
            .storage
            .by_digest(digest)?
            .ok_or(Rejection::NotFound)?;
        let state = record.state();
        Ok((self.remember(record), state))
    }

    /// A key found in `state`: how it stands at `now`, its use
    /// counted when `store` tracks usage.
    pub(super) fn serve(
        store: &Inner,
        details: Arc<Details>,
        state: KeyState,
        now: Timestamp,
    ) -> Found<'static> {
        let outcome = state.status(now);
        if store.track_usage && details.usage.record(outcome, now) {
            store.count_later(details.clone());
        }
        let verified = VerifiedKey {
            expires_at: state.expires_at(),
            details: Held::Owned(details),
        };
        (verified, outcome)
    }
}

impl KeyLookup for ReadThrough {
    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<Found<'store>, VerifyError> {
        let (details, state) = self.state_of(store, digest)?;
        Ok(Self::serve(store, details, state, now))
    }

    fn admit(
        &self,
        _records: &[KeyRecord],
    ) -> Result<(NewDigests, Option<MutexGuard<'_, ()>>), Error> {
        // Other processes insert too: only the storage sees every key.
        Ok((NewDigests::Unchecked, None))
    }

    fn hold_new_keys(&self) -> Option<MutexGuard<'_, ()>> {
        None
    }

    fn committed(&self, _record: &KeyRecord) {
        // States are read from the file; details never change.
    }

    fn pending_usage(&self, digest: &Digest) -> Usage {
        self.details
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(digest.table_hash(), |details| details.digest == *digest)
            .map(|details| details.usage.peek())
            .unwrap_or_default()
    }

    fn take_uses(&self, _details: &Details, _pending: &mut PendingUsage) {
        // Every count is in the key's cell.
    }
}
