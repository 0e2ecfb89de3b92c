//! The in-memory backend: a store held in this process's memory
//! ([`MemoryStore`]), for test suites and for fuzzing, where a durable
//! commit per write costs more than everything else the test does.
//!
//! It keeps exactly what the redb backend keeps (records under key numbers
//! handed out in order, a digest index, usage apart from records, the event
//! log) and answers every [`Storage`] call as the redb backend does, all or
//! nothing per call; only durability is missing: the contents live as long
//! as a [`MemoryStore`] value (or a handle opened on one) does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::{fingerprints_match, Digest};
use crate::key::id::{id_number, stamp_number};
use crate::legacy::{Source, Sources};
use crate::record::{Event, EventKind, KeyRecord, StoredState, Usage};
use crate::state::KeyState;
use crate::storage::{
    created_events, events_about, link_rotation, repeated_digest, ChangeFn, Changed, FiledHandle,
    ImportedKey, NewDigests, Storage, Target, UsageDelta,
};

/// A key store's contents kept in memory instead of a file: for test suites
/// (a fresh store per test, nothing to clean up, no fsync per write).
///
/// Open it with [`StoreOptions::in_memory`](crate::StoreOptions::in_memory).
/// Clones share the same contents, which live until the last clone and the
/// last handle opened on them are dropped. As with a file, handles of one
/// in-memory store are either one exclusive handle or any number of shared
/// ones (each verifying through the shared index file, as processes do).
/// Nothing is durable.
///
/// ```
/// use apikeys::{KeyStore, MemoryStore, StoreOptions};
///
/// # fn main() -> Result<(), apikeys::Error> {
/// let memory = MemoryStore::new();
/// let store = KeyStore::open("unused-in-exclusive-mode", StoreOptions::new().in_memory(&memory))?;
/// let key = store.generate(&apikeys::NewKey::new("test"))?;
/// assert!(store.verify(key.secret.expose_secret()).is_ok());
/// store.close()?;
/// // The contents outlive the handle while `memory` lives.
/// let again = KeyStore::open("unused-in-exclusive-mode", StoreOptions::new().in_memory(&memory))?;
/// assert!(again.verify(key.secret.expose_secret()).is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A number for these contents, drawn once: what stands for a file's
    /// device and inode in the shared index's header, so that the index of
    /// one in-memory store is never taken for another's.
    pub(crate) fn identity(&self) -> u64 {
        self.shared.identity
    }
}

struct Shared {
    contents: Mutex<Contents>,
    holders: Mutex<Holders>,
    identity: u64,
}

impl Default for Shared {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        // A failed generator leaves a fixed number: identities then only
        // tell this store from files (the index also keeps the fingerprint).
        let _ = rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Shared {
            contents: Mutex::new(Contents::default()),
            holders: Mutex::new(Holders::default()),
            identity: u64::from_le_bytes(bytes),
        }
    }
}

/// Who has the contents open: as with a file, one exclusive handle or
/// shared ones.
#[derive(Default)]
struct Holders {
    exclusive: bool,
    shared: usize,
}

#[derive(Default)]
struct Contents {
    /// Set by the first open: the pepper's fingerprint, as a file keeps it.
    fingerprint: Option<[u8; 32]>,
    records: BTreeMap<u32, KeyRecord>,
    /// Digest to key number.
    digests: HashMap<[u8; 32], u32>,
    usage: HashMap<u32, Usage>,
    /// The log; an event's sequence is its position from 1.
    events: Vec<Event>,
    /// Imported keys: handle in their source (`crate::legacy::handle`) to
    /// key number, never removed (an import run again skips them).
    handles: HashMap<Vec<u8>, u32>,
}

impl Contents {
    fn next_number(&self) -> u64 {
        self.records
            .last_key_value()
            .map_or(1, |(n, _)| u64::from(*n) + 1)
    }

    fn number_of(&self, digest: &[u8; 32]) -> Option<u32> {
        let number = *self.digests.get(digest)?;
        let record = self.records.get(&number)?;
        // The map found it by value; the record's digest is compared in
        // constant time, as the redb backend compares candidates.
        bool::from(record.digest.ct_eq(digest)).then_some(number)
    }

    fn number_by_id(&self, id: &str) -> Option<u32> {
        let number = id_number(id)?;
        let record = self.records.get(&number)?;
        let same =
            record.id.len() == id.len() && bool::from(record.id.as_bytes().ct_eq(id.as_bytes()));
        same.then_some(number)
    }

    fn append(&mut self, at: Timestamp, events: Vec<(String, EventKind)>) {
        for (key_id, kind) in events {
            let sequence = self.events.len() as u64 + 1;
            self.events.push(Event {
                sequence,
                at,
                key_id,
                kind,
            });
        }
    }

    /// Files new records, all or none: refused before anything is written
    /// when a number is taken or a digest is already stored or repeats
    /// within the batch (a map lookup per key: `KnownNew` changes nothing).
    fn file(&mut self, records: &[KeyRecord]) -> Result<(), Error> {
        let mut numbers = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let number = id_number(&record.id)
                .ok_or_else(|| Error::Storage("a new key was not numbered".into()))?;
            if self.records.contains_key(&number) || numbers.contains(&number) {
                return Err(Error::Corrupted(format!("key number {number} is taken")));
            }
            if self.number_of(&record.digest).is_some()
                || records[..i].iter().any(|r| r.digest == record.digest)
            {
                return Err(repeated_digest());
            }
            numbers.push(number);
        }
        for (record, number) in records.iter().zip(numbers) {
            self.digests.insert(record.digest, number);
            self.records.insert(number, record.clone());
        }
        Ok(())
    }
}

/// Hands out key numbers from `next`, writing them into ids.
fn assign(next: &mut u64, record: &mut KeyRecord) -> Result<(), Error> {
    let number = u32::try_from(*next)
        .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))?;
    record.id = stamp_number(&record.id, number)?;
    *next += 1;
    Ok(())
}

/// One handle's access to a [`MemoryStore`]; releases its hold on drop.
pub(crate) struct MemoryStorage {
    shared: Arc<Shared>,
    exclusive: bool,
}

impl MemoryStorage {
    /// Opens the contents, checking the pepper `fingerprint` (a new store
    /// takes it) and that no handle of the other kind has them open.
    pub(crate) fn open(
        memory: &MemoryStore,
        shared: bool,
        fingerprint: &[u8; 32],
        path: &std::path::Path,
    ) -> Result<Self, Error> {
        let mut holders = memory
            .shared
            .holders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if holders.exclusive || (!shared && holders.shared > 0) {
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        }
        {
            let mut contents = memory
                .shared
                .contents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &contents.fingerprint {
                Some(stored) if !fingerprints_match(stored, fingerprint) => {
                    return Err(Error::WrongPepper)
                }
                Some(_) => {}
                None => contents.fingerprint = Some(*fingerprint),
            }
        }
        if shared {
            holders.shared += 1;
        } else {
            holders.exclusive = true;
        }
        Ok(MemoryStorage {
            shared: memory.shared.clone(),
            exclusive: !shared,
        })
    }

    fn contents(&self) -> MutexGuard<'_, Contents> {
        self.shared
            .contents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for MemoryStorage {
    fn drop(&mut self) {
        let mut holders = self
            .shared
            .holders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.exclusive {
            holders.exclusive = false;
        } else {
            holders.shared = holders.shared.saturating_sub(1);
        }
    }
}

impl Storage for MemoryStorage {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        _digests: NewDigests,
    ) -> Result<(), Error> {
        let mut contents = self.contents();
        let mut next = contents.next_number();
        let mut numbered = records.to_vec();
        for record in numbered.iter_mut() {
            assign(&mut next, record)?;
        }
        contents.file(&numbered)?;
        let events = created_events(&numbered[..]);
        contents.append(at, events);
        records.clone_from_slice(&numbered);
        Ok(())
    }

    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        let mut contents = self.contents();
        let number = match target {
            Target::Id(id) => contents
                .number_by_id(id)
                .ok_or_else(|| Error::UnknownKey(id.to_string()))?,
            Target::Digest(digest) => contents
                .number_of(&digest.to_bytes())
                .ok_or_else(|| Error::UnknownKey("(the presented key)".into()))?,
        };
        let mut record = contents.records[&number].clone();
        let outcome = change(&mut record)?;
        if !outcome.write {
            return Ok(Changed {
                record,
                changed: false,
                successor: None,
            });
        }
        let mut events = events_about(&record.id, outcome.events);
        let mut successor = outcome.successor;
        if let Some(new) = successor.as_mut() {
            assign(&mut contents.next_number(), new)?;
            link_rotation(&mut record, new, &mut events);
            // The successor first: a refusal leaves everything as it was.
            contents.file(std::slice::from_ref(new))?;
        }
        contents.records.insert(number, record.clone());
        contents.append(at, events);
        Ok(Changed {
            record,
            changed: true,
            successor,
        })
    }

    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        let contents = self.contents();
        Ok(contents
            .number_of(&digest.to_bytes())
            .map(|number| contents.records[&number].clone()))
    }

    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        let contents = self.contents();
        Ok(match contents.number_of(&digest.to_bytes()) {
            Some(found) if Some(found) == id_number(id) => Some(contents.records[&found].state()),
            _ => None,
        })
    }

    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        let contents = self.contents();
        Ok(contents.number_by_id(id).map(|number| {
            let usage = contents.usage.get(&number).copied().unwrap_or_default();
            (contents.records[&number].clone(), usage)
        }))
    }

    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        // A copy, so that `visit` may call back into the store.
        let all: Vec<(KeyRecord, Usage)> = {
            let contents = self.contents();
            contents
                .records
                .iter()
                .map(|(number, record)| {
                    let usage = contents.usage.get(number).copied().unwrap_or_default();
                    (record.clone(), usage)
                })
                .collect()
        };
        for (record, usage) in all {
            visit(record, usage);
        }
        Ok(())
    }

    fn key_count(&self) -> Result<u64, Error> {
        Ok(self.contents().records.len() as u64)
    }

    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        let states: Vec<StoredState> = self
            .contents()
            .records
            .values()
            .map(|record| StoredState {
                digest: record.digest,
                expires_at: record.expires_at,
                revoked: record.revoked_at.is_some(),
            })
            .collect();
        states.into_iter().for_each(visit);
        Ok(())
    }

    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        let mut contents = self.contents();
        let mut events = Vec::new();
        for delta in deltas {
            // As in the redb backend: usage of a key not stored is skipped.
            let Some(number) = id_number(delta.id) else {
                continue;
            };
            if !contents.records.contains_key(&number) {
                continue;
            }
            contents
                .usage
                .entry(number)
                .or_default()
                .merge(&delta.usage);
            events.extend(
                delta
                    .events
                    .iter()
                    .map(|kind| (delta.id.to_string(), kind.clone())),
            );
        }
        contents.append(at, events);
        Ok(())
    }

    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        let mut contents = self.contents();
        let records: Vec<KeyRecord> = keys.iter().map(|(record, _)| record.clone()).collect();
        // Sequence numbers are positions in the log: the imported events
        // must continue it without a gap, or they could not be found again.
        let first = contents.events.len() as u64 + 1;
        for (expected, event) in (first..).zip(events) {
            if event.sequence != expected {
                return Err(Error::Storage(format!(
                    "event {} does not continue the in-memory log (expected {expected})",
                    event.sequence
                )));
            }
        }
        // Each handle's key among those moved, no handle twice: checked
        // before anything is written.
        let moved: HashSet<&str> = records.iter().map(|record| record.id.as_str()).collect();
        let mut numbers = HashMap::with_capacity(handles.len());
        for filed in handles {
            let number = id_number(&filed.id)
                .filter(|_| moved.contains(filed.id.as_str()))
                .ok_or_else(|| {
                    Error::Storage(format!(
                        "a handle is filed under key {}, which is not moved",
                        filed.id
                    ))
                })?;
            if numbers.insert(filed.handle.clone(), number).is_some() {
                return Err(Error::Storage("a handle is moved twice".into()));
            }
        }
        contents.file(&records)?;
        for (record, figures) in keys {
            if let Some(number) = id_number(&record.id) {
                contents.usage.insert(number, *figures);
            }
        }
        contents.events.extend_from_slice(events);
        contents.handles.extend(numbers);
        Ok(())
    }

    // Moving in: as the redb backend's `legacy` table.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        let mut contents = self.contents();
        let mut next = contents.next_number();
        let mut records = Vec::with_capacity(keys.len());
        let mut handles = Vec::with_capacity(keys.len());
        let mut uses = Vec::new();
        for key in keys {
            if contents.handles.contains_key(&key.handle) || handles.contains(&key.handle) {
                continue;
            }
            let mut record = key.record;
            assign(&mut next, &mut record)?;
            if let (Some(last_used), Some(number)) = (key.last_used, id_number(&record.id)) {
                uses.push((number, last_used));
            }
            handles.push(key.handle);
            records.push(record);
        }
        contents.file(&records)?;
        for (handle, record) in handles.into_iter().zip(&records) {
            if let Some(number) = id_number(&record.id) {
                contents.handles.insert(handle, number);
            }
        }
        for (number, last_used) in uses {
            contents.usage.entry(number).or_default().last_used = Some(last_used);
        }
        let events = crate::storage::imported_events(&records);
        contents.append(at, events);
        Ok(records)
    }

    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        let contents = self.contents();
        Ok(handles
            .iter()
            .map(|handle| contents.handles.contains_key(*handle))
            .collect())
    }

    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        let contents = self.contents();
        Ok(contents
            .handles
            .get(handle)
            .and_then(|number| contents.records.get(number))
            .cloned())
    }

    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        let mut contents = self.contents();
        let Some(number) = contents.number_by_id(id) else {
            return Ok(None);
        };
        let mut record = contents.records[&number].clone();
        if !crate::storage::awaits_redigest(&record, from) {
            // Another verify re-digested it first.
            return Ok(None);
        }
        if contents.number_of(&to.to_bytes()).is_some() {
            return Err(repeated_digest());
        }
        contents.digests.remove(&record.digest);
        crate::storage::redigested(&mut record, to);
        contents.digests.insert(record.digest, number);
        contents.records.insert(number, record.clone());
        contents.append(at, vec![(record.id.clone(), EventKind::Redigested)]);
        Ok(Some(record))
    }

    fn legacy_sources(&self) -> Result<Sources, Error> {
        let contents = self.contents();
        Ok(Source::ALL
            .into_iter()
            .filter(|source| {
                contents
                    .handles
                    .keys()
                    .any(|handle| handle.first() == Some(&source.tag()))
            })
            .fold(Sources::default(), Sources::with))
    }

    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        let contents = self.contents();
        Ok(contents
            .handles
            .iter()
            .filter_map(|(handle, number)| {
                let record = contents.records.get(number)?;
                Some(FiledHandle {
                    handle: handle.clone(),
                    id: record.id.clone(),
                })
            })
            .collect())
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        let contents = self.contents();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(contents
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }
}
