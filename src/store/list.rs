//! Reading keys back: one by id, a filtered listing, the event log, each
//! with the usage this process counted and has not flushed yet.

use crate::error::Error;
use crate::key::digest::Digest;
use crate::record::{Event, KeyRecord, Usage};
use crate::storage::Storage;

use super::info::{KeyInfo, ListFilter};
use super::{Inner, KeyStore};

impl KeyStore {
    /// One key by id, with usage counted so far (flushed or not).
    pub fn get(&self, id: &str) -> Result<KeyInfo, Error> {
        let inner = self.inner()?;
        let (record, mut usage) = inner
            .storage
            .by_id(id)?
            .ok_or_else(|| Error::UnknownKey(id.to_string()))?;
        usage.merge(&inner.pending_usage(&record));
        Ok(KeyInfo::new(record, usage, inner.clock.now()))
    }

    /// Keys matching `filter`, oldest first, with usage counted so far.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<KeyInfo>, Error> {
        let inner = self.inner()?;
        let now = inner.clock.now();
        let mut keys = Vec::new();
        inner.storage.scan(&mut |record, mut usage| {
            usage.merge(&inner.pending_usage(&record));
            let info = KeyInfo::new(record, usage, now);
            if filter.keeps(&info) {
                keys.push(info);
            }
        })?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    /// Events after sequence number `after` (0: from the start), at most `limit`.
    pub fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        self.inner()?.storage.events(after, limit)
    }
}

impl Inner {
    /// Usage counted in this process and not yet flushed.
    pub(super) fn pending_usage(&self, record: &KeyRecord) -> Usage {
        self.lookup
            .pending_usage(&Digest::from_bytes(record.digest))
    }
}
