//! Read-through lookup: every verify reads the key's state from the latest
//! commit of the store file (one get of its digest row once its details are
//! known); the details, which never change, are read once per process and
//! kept: the first [`DETAILS_MAX`] keys pinned for as long as the lookup
//! lives ([`Pinned`], found without a lock), later ones in a cache of as many
//! that starts over when full. What shared mode falls back to, where fleet
//! mode keeps its details, and the whole strategy of a shared store without
//! its index.

use std::sync::{Arc, MutexGuard, PoisonError, RwLock};

use hashbrown::HashTable;

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::{KeyState, Status};
use crate::storage::{NewDigests, Storage};
use crate::usage::PendingUsage;

use super::pinned::{Hot, Pinned};
use super::{Found, KeyLookup};
use crate::store::info::{Details, Held, VerifiedKey};
use crate::store::Inner;

/// Most keys whose details a process pins (about 300 bytes each), and most
/// it keeps past those in a cache that starts over when full.
const DETAILS_MAX: usize = 65_536;

/// A key's details as this process holds them.
pub(in crate::store) enum Known<'a> {
    /// Pinned: lent for as long as the lookup lives, accepted uses counted
    /// beside the digest.
    Pinned(&'a Hot),
    /// Counted in the details' own cell: a key past the pinned ones, or
    /// one held elsewhere (a fleet process's replica or own writes).
    Counted(Arc<Details>),
}

impl Known<'_> {
    fn details(&self) -> &Details {
        match self {
            Known::Pinned(hot) => &hot.details,
            Known::Counted(details) => details,
        }
    }
}

/// The details of keys this process verified, by digest, with their usage
/// counters.
pub(in crate::store) struct ReadThrough {
    pinned: Pinned,
    /// Past the pinned keys.
    details: RwLock<HashTable<Arc<Details>>>,
}

impl Default for ReadThrough {
    fn default() -> Self {
        ReadThrough {
            pinned: Pinned::new(DETAILS_MAX),
            details: RwLock::default(),
        }
    }
}

impl ReadThrough {
    /// The details of a key this process has seen, if it has.
    fn known_details(&self, digest: &Digest) -> Option<Known<'_>> {
        if let Some(hot) = self.pinned.get(digest) {
            return Some(Known::Pinned(hot));
        }
        let same = |details: &Arc<Details>| details.digest == *digest;
        self.details
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(digest.table_hash(), same)
            .map(|details| Known::Counted(details.clone()))
    }

    /// Keeps a key's details for this process's next verifies.
    fn remember(&self, record: KeyRecord) -> Known<'_> {
        let details = Arc::new(Details::from_record(record));
        if let Some(hot) = self.pinned.pin(details.clone()) {
            return Known::Pinned(hot);
        }
        let digest = details.digest;
        let same = |known: &Arc<Details>| known.digest == digest;
        let mut cache = self.details.write().unwrap_or_else(PoisonError::into_inner);
        // Bounded: a process that sees very many keys starts over. Counts
        // in dropped details stay on the dirty list until flushed.
        if cache.len() >= DETAILS_MAX {
            cache.clear();
        }
        match cache.find(digest.table_hash(), same) {
            Some(known) => Known::Counted(known.clone()),
            None => {
                cache.insert_unique(digest.table_hash(), details.clone(), |details| {
                    details.digest.table_hash()
                });
                Known::Counted(details)
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
    ) -> Result<Known<'_>, VerifyError> {
        if let Some(known) = self.known_details(digest) {
            return Ok(known);
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
    ) -> Result<(Known<'_>, KeyState), VerifyError> {
        if let Some(known) = self.known_details(digest) {
            let state = store
                .storage
                .key_state(digest, &known.details().id)?
                .ok_or_else(|| Error::Corrupted("a stored key has no digest row".into()))?;
            return Ok((known, state));
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
    pub(super) fn serve<'a>(
        store: &Inner,
        known: Known<'a>,
        state: KeyState,
        now: Timestamp,
    ) -> Found<'a> {
        let outcome = state.status(now);
        let details = match known {
            Known::Pinned(hot) => {
                // As in exclusive mode: an accepted use is counted beside
                // the digest, and the details are touched only by the
                // first use after a flush.
                let listed = store.track_usage
                    && match outcome {
                        Status::Active => hot.uses.count(now) && hot.details.usage.mark_dirty(),
                        rejected => hot.details.usage.record(rejected, now),
                    };
                if listed {
                    store.count_later(hot.details.clone());
                }
                Held::Indexed(&hot.details)
            }
            Known::Counted(details) => {
                if store.track_usage && details.usage.record(outcome, now) {
                    store.count_later(details.clone());
                }
                Held::Owned(details)
            }
        };
        let verified = VerifiedKey {
            expires_at: state.expires_at(),
            details,
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
        _started: u64,
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
        match self.known_details(digest) {
            Some(Known::Pinned(hot)) => {
                let mut usage = hot.uses.peek();
                usage.merge(&hot.details.usage.peek());
                usage
            }
            Some(Known::Counted(details)) => details.usage.peek(),
            None => Usage::default(),
        }
    }

    fn take_uses(&self, details: &Details, pending: &mut PendingUsage) {
        // A pinned key's accepted uses, counted beside its digest; the
        // details of another source (a fleet replica's) count in their cell.
        if let Some(hot) = self.pinned.get(&details.digest) {
            if core::ptr::eq(&*hot.details, details) {
                let (uses, last_used) = hot.uses.take();
                pending.usage.use_count += uses;
                pending.usage.last_used = pending.usage.last_used.max(last_used);
            }
        }
    }
}
