//! Moving a store: every key (id, digest, record, usage) and every event of
//! one store copied into another, empty, store with the same pepper, such
//! as a redb file into PostgreSQL and back (`apikeys migrate`).

use crate::error::Error;
use crate::key::digest::fingerprints_match;
use crate::legacy::Sources;
use crate::record::{Event, KeyRecord, Usage};

use super::KeyStore;

/// What [`KeyStore::copy_to`] moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Keys copied, with their usage.
    pub keys: u64,
    /// Events copied, with their sequence numbers.
    pub events: u64,
}

/// Events read per call while copying.
const EVENT_PAGE: usize = 10_000;

impl KeyStore {
    /// Copies every key and event of this store into `destination`, which
    /// must hold none and have been opened with the same pepper (the keys'
    /// digests are copied, not recomputed: no key is needed). Usage counted
    /// here is flushed first. One durable transaction in the destination:
    /// all or nothing. Keys keep their ids, events their numbers, and keys
    /// imported from other key stores (see `import`) their origin and the
    /// handle they are found by: one still on its source's digest verifies
    /// in the copy as it did here, one re-digested as a native key does.
    pub fn copy_to(&self, destination: &KeyStore) -> Result<Copied, Error> {
        let source = self.inner()?;
        let target = destination.inner()?;
        if !fingerprints_match(&source.hasher.fingerprint(), &target.hasher.fingerprint()) {
            return Err(Error::WrongPepper);
        }
        if target.storage.key_count()? != 0 || !target.storage.events(0, 1)?.is_empty() {
            return Err(Error::InvalidArgument(
                "the destination store is not empty".into(),
            ));
        }
        self.flush()?;
        let mut keys: Vec<(KeyRecord, Usage)> = Vec::new();
        source
            .storage
            .scan(&mut |record, usage| keys.push((record, usage)))?;
        // Imported keys are found by their handle in their source, and a
        // string of their shape is looked at only in a store that holds
        // such handles: they move with the keys.
        let handles = source.storage.legacy_handles()?;
        let mut events: Vec<Event> = Vec::new();
        loop {
            let after = events.last().map_or(0, |event| event.sequence);
            let page = source.storage.events(after, EVENT_PAGE)?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        target.storage.import(&keys, &events, &handles)?;
        let mut sources = Sources::default();
        for (record, _) in &keys {
            target.cache(record);
            if let Some(origin) = &record.origin {
                sources = sources.with(origin.source);
            }
        }
        target.legacy.add(sources);
        Ok(Copied {
            keys: keys.len() as u64,
            events: events.len() as u64,
        })
    }
}
