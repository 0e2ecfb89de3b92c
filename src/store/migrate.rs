//! Moving a store: every key (id, digest, record, usage) and every event of
//! one store copied into another, empty, store with the same pepper, such
//! as a redb file into PostgreSQL and back (`apikeys migrate`).

use crate::error::Error;
use crate::key::digest::fingerprints_match;
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
    /// all or nothing. Keys keep their ids, events their numbers.
    ///
    /// A store holding imported keys still on their source's digest (see
    /// `import`; their first verify has not re-digested them) is refused:
    /// the handles they are found by stay behind. Revoke them, or let their
    /// clients' next requests re-digest them, then copy.
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
        let on_legacy = keys
            .iter()
            .filter(|(record, _)| {
                record.revoked_at.is_none()
                    && record
                        .origin
                        .as_ref()
                        .is_some_and(|origin| origin.legacy_digest.is_some())
            })
            .count();
        if on_legacy > 0 {
            return Err(Error::InvalidArgument(format!(
                "{on_legacy} imported keys are still on their source's digest: a copy would \
                 leave the handles they are found by behind (revoke them, or copy once their \
                 first verify has re-digested them)"
            )));
        }
        let mut events: Vec<Event> = Vec::new();
        loop {
            let after = events.last().map_or(0, |event| event.sequence);
            let page = source.storage.events(after, EVENT_PAGE)?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        target.storage.import(&keys, &events)?;
        for (record, _) in &keys {
            target.cache(record);
        }
        Ok(Copied {
            keys: keys.len() as u64,
            events: events.len() as u64,
        })
    }
}
