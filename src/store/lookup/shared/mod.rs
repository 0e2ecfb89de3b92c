//! Shared mode's lookup: a key's state from the shared index file that every
//! process maps ([`index`], `docs/shared-index.md`) and, for a
//! key being written or an index in doubt, from the latest commit of the
//! store file ([`ReadThrough`], which also keeps the keys' details).

use std::sync::{Arc, MutexGuard};

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::KeyState;
use crate::storage::NewDigests;
use crate::usage::PendingUsage;

pub(in crate::store) mod index;

use index::{Lookup, SharedIndex};

use super::read_through::ReadThrough;
use super::{Found, KeyLookup};
use crate::store::info::Details;
use crate::store::Inner;

/// The shared index, with the read-through path it falls back to.
pub(in crate::store) struct SharedLookup {
    index: Arc<SharedIndex>,
    through: ReadThrough,
}

impl SharedLookup {
    pub(in crate::store) fn new(index: Arc<SharedIndex>) -> Self {
        SharedLookup {
            index,
            through: ReadThrough::default(),
        }
    }
}

impl KeyLookup for SharedLookup {
    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
        _started: u64,
    ) -> Result<Found<'store>, VerifyError> {
        let (details, state) = match self.index.lookup(digest) {
            Lookup::Absent => return Err(Rejection::NotFound.into()),
            Lookup::Found(word) => (
                self.through.details_of(store, digest)?,
                KeyState::from_word(word),
            ),
            // Being written, or an index in doubt: the store file.
            Lookup::Unsure => self.through.state_of(store, digest)?,
        };
        Ok(ReadThrough::serve(store, details, state, now))
    }

    fn admit(
        &self,
        records: &[KeyRecord],
    ) -> Result<(NewDigests, Option<MutexGuard<'_, ()>>), Error> {
        self.through.admit(records)
    }

    fn hold_new_keys(&self) -> Option<MutexGuard<'_, ()>> {
        self.through.hold_new_keys()
    }

    fn committed(&self, record: &KeyRecord) {
        // The shared index is written around the commit, by `Indexed`.
        self.through.committed(record)
    }

    fn pending_usage(&self, digest: &Digest) -> Usage {
        self.through.pending_usage(digest)
    }

    fn take_uses(&self, details: &Details, pending: &mut PendingUsage) {
        self.through.take_uses(details, pending)
    }
}
