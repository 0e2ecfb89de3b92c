//! Shared mode's read path: a key's state from the shared index file
//! (`crate::shared_index`) or, for a key being written or an index in
//! doubt, from the latest commit of the store file; its details (which
//! never change) read once per process and kept.

use std::sync::{Arc, PoisonError};

use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::KeyRecord;
use crate::storage::Storage;

use crate::store::info::Details;
use crate::store::Inner;

/// Most keys whose details a shared-mode process keeps (about 200 bytes
/// each); past it the cache starts over.
pub(in crate::store) const SHARED_DETAILS_MAX: usize = 65_536;

impl Inner {
    /// Shared mode: the details of a key this process has seen, if it has.
    pub(in crate::store) fn known_details(&self, digest: &Digest) -> Option<Arc<Details>> {
        let same = |details: &Arc<Details>| details.digest == *digest;
        self.shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(digest.table_hash(), same)
            .cloned()
    }

    /// Shared mode: keeps a key's details for this process's next verifies.
    pub(in crate::store) fn remember(&self, record: KeyRecord) -> Arc<Details> {
        let details = Arc::new(Details::from_record(record));
        let digest = details.digest;
        let same = |known: &Arc<Details>| known.digest == digest;
        let mut cache = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        // Bounded: a process that sees very many keys starts over. Counts
        // in dropped details stay on the dirty list until flushed.
        if cache.len() >= SHARED_DETAILS_MAX {
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

    /// Shared mode, for a key the shared index holds: its details, read
    /// from the store file once per process. A key's name, env, owner,
    /// scopes and number never change.
    pub(in crate::store) fn shared_details(
        &self,
        digest: &Digest,
    ) -> Result<Arc<Details>, VerifyError> {
        if let Some(details) = self.known_details(digest) {
            return Ok(details);
        }
        let record = self.storage.by_digest(digest)?.ok_or(Rejection::NotFound)?;
        Ok(self.remember(record))
    }

    /// Shared mode without a usable index entry: the key with this digest
    /// and its state word as of the latest commit, read from the store file
    /// (one get of its `digests` row once its details are known).
    pub(in crate::store) fn shared_lookup(
        &self,
        digest: &Digest,
    ) -> Result<(Arc<Details>, i64), VerifyError> {
        if let Some(details) = self.known_details(digest) {
            let state = self
                .storage
                .key_state(digest, details.number)?
                .ok_or_else(|| Error::Corrupted("a stored key has no digest row".into()))?;
            return Ok((details, state));
        }
        // First use here (or not a key): the record, whose state is as
        // fresh as the row's.
        let record = self.storage.by_digest(digest)?.ok_or(Rejection::NotFound)?;
        let state = record.state_word();
        Ok((self.remember(record), state))
    }
}
