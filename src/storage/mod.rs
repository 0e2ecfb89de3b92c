//! The storage interface the key store is written against: one trait,
//! [`Storage`], and the types its operations take and return. Backends are
//! folders below this one ([`redb`], the embedded default) or files
//! ([`memory`], for test suites); [`open`] picks one for a path, and
//! [`open_memory`] opens an in-memory store, so that the store never names
//! a backend.
//!
//! The interface is narrow on purpose (insert, change one key, look up, scan,
//! add usage, read events) so that a server-backed store such as PostgreSQL
//! can implement it for fleets of machines. It has no default methods: every
//! backend implements every operation, so no slow fallback hides behind one.

use std::path::Path;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::legacy::Sources;
use crate::record::{Event, EventKind, KeyRecord, StoredState, Usage};
use crate::state::KeyState;

mod guard;
pub(crate) mod lazy;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod redb;

/// Whether a store "path" is a PostgreSQL URL (`postgres://`, `postgresql://`).
pub(crate) fn is_server_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

pub(crate) use guard::PanicGuard;

/// Opens or creates the store file at `path` with the backend for it (today
/// always redb), checking its format and pepper `fingerprint`; `shared`
/// lets other processes open it at the same time. Every call of the result
/// runs under [`PanicGuard`]: a damaged file is an error, never a panic.
pub(crate) fn open(
    path: &Path,
    shared: bool,
    fingerprint: &[u8; 32],
) -> Result<Box<dyn Storage>, Error> {
    let storage = redb::RedbStorage::open(path, shared, fingerprint)?;
    Ok(Box::new(PanicGuard(storage)))
}

/// Opens an in-memory store's contents ([`memory::MemoryStore`]) as
/// [`open`] opens a file: checking the pepper `fingerprint`, and that no
/// handle of the other mode has them open (`path` names the store in
/// errors). Every call runs under [`PanicGuard`], as for a file.
pub(crate) fn open_memory(
    memory: &memory::MemoryStore,
    path: &Path,
    shared: bool,
    fingerprint: &[u8; 32],
) -> Result<Box<dyn Storage>, Error> {
    let storage = memory::MemoryStorage::open(memory, shared, fingerprint, path)?;
    Ok(Box::new(PanicGuard(storage)))
}

/// What the caller of [`Storage::insert`] knows of the new keys' digests.
/// Every backend refuses a digest that is already stored (154 random bits
/// make a repeat a broken generator, not bad luck); this only says whether
/// the backend may trust that none is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewDigests {
    /// Nothing is known: the backend makes sure.
    Unchecked,
    /// The caller holds every stored digest, found none of these among them
    /// nor twice in the batch, and lets no other insert in between (exclusive
    /// mode's index). A backend that would pay one search per key to refuse
    /// a repeat may skip it (a fifth of a redb batch's time); one that
    /// refuses repeats anyway (a unique index) ignores this.
    KnownNew,
}

/// The error for a new key whose digest is already stored.
pub(crate) fn repeated_digest() -> Error {
    Error::Storage("generated key collides with a stored one".into())
}

/// Which key an operation is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Id(&'a str),
    Digest(&'a Digest),
}

/// What a change to one key did.
#[derive(Debug)]
pub(crate) struct Changed {
    /// The key's record after the change.
    pub(crate) record: KeyRecord,
    /// Whether anything was written (false for a repeated revoke).
    pub(crate) changed: bool,
    /// The successor the change created (a rotation), with its final id.
    pub(crate) successor: Option<KeyRecord>,
}

/// What a change function asks for.
pub(crate) struct Change {
    /// Write the modified record (false: leave everything as it was).
    pub(crate) write: bool,
    /// Events to append about the changed key.
    pub(crate) events: Vec<EventKind>,
    /// A key that succeeds the changed one (a rotation). The backend gives
    /// it its id, links the two (`rotated_to`, `rotated_from`), and appends
    /// the old key's `Rotated` and the successor's `Created` events, all in
    /// the change's transaction.
    pub(crate) successor: Option<KeyRecord>,
}

impl Change {
    /// A change that writes nothing.
    pub(crate) fn none() -> Self {
        Change {
            write: false,
            events: Vec::new(),
            successor: None,
        }
    }

    /// A change that writes the record, with these events about it.
    pub(crate) fn write(events: Vec<EventKind>) -> Self {
        Change {
            write: true,
            events,
            successor: None,
        }
    }
}

/// Links a rotated key and its successor (whose id is final) and adds the
/// rotation's events: the old key's `Rotated`, the successor's `Created`.
pub(crate) fn link_rotation(
    old: &mut KeyRecord,
    successor: &mut KeyRecord,
    events: &mut Vec<(String, EventKind)>,
) {
    successor.rotated_from = Some(old.id.clone());
    old.rotated_to = Some(successor.id.clone());
    events.push((
        old.id.clone(),
        EventKind::Rotated {
            successor: successor.id.clone(),
        },
    ));
    events.push((successor.id.clone(), EventKind::Created));
}

/// The `Created` events of new keys, as every backend's insert appends them.
pub(crate) fn created_events<'a>(
    records: impl IntoIterator<Item = &'a KeyRecord>,
) -> Vec<(String, EventKind)> {
    records
        .into_iter()
        .map(|record| (record.id.clone(), EventKind::Created))
        .collect()
}

/// The `Imported` events of imported keys (those with an origin), as every
/// backend's import appends them.
pub(crate) fn imported_events<'a>(
    records: impl IntoIterator<Item = &'a KeyRecord>,
) -> Vec<(String, EventKind)> {
    records
        .into_iter()
        .filter_map(|record| {
            let source = record.origin.as_ref()?.source;
            Some((record.id.clone(), EventKind::Imported { source }))
        })
        .collect()
}

/// Whether an imported key's record still waits for its re-digest under
/// the placeholder digest `from` (false: another verify re-digested it
/// first), as every backend's `redigest` checks before it writes.
pub(crate) fn awaits_redigest(record: &KeyRecord, from: &Digest) -> bool {
    Digest::from_bytes(record.digest) == *from
        && record
            .origin
            .as_ref()
            .is_some_and(|origin| origin.legacy_digest.is_some())
}

/// The record of a re-digested key: its keyed digest, its source's gone.
pub(crate) fn redigested(record: &mut KeyRecord, to: &Digest) {
    record.digest = to.to_bytes();
    if let Some(origin) = record.origin.as_mut() {
        origin.legacy_digest = None;
    }
}

/// A change's events, each about the changed key `id`.
pub(crate) fn events_about(id: &str, kinds: Vec<EventKind>) -> Vec<(String, EventKind)> {
    kinds
        .into_iter()
        .map(|kind| (id.to_string(), kind))
        .collect()
}

/// What [`Storage::change`] runs on the record it read.
pub(crate) type ChangeFn<'a> = dyn FnMut(&mut KeyRecord) -> Result<Change, Error> + 'a;

/// Pending usage of one key, with the events it produces.
pub(crate) struct UsageDelta<'a> {
    pub(crate) id: &'a str,
    pub(crate) usage: Usage,
    pub(crate) events: Vec<EventKind>,
}

pub(crate) trait Storage: Send + Sync {
    /// Inserts new keys and their `Created` events, durably, all or none;
    /// refuses the batch if a digest is already stored or repeated in it.
    /// Each record's id comes from [`new_id`](crate::key::id::new_id); the
    /// backend may rewrite it (redb writes the key's number into it): the
    /// ids in `records` after the call are the final ones.
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error>;
    /// Reads one key, lets `change` modify it, writes the result (and the
    /// successor it asks for) durably, in one transaction.
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error>;
    /// The record with this digest, read from the latest commit.
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error>;
    /// The state of the key with this digest and id, as of the latest
    /// commit: what a verify reads for a key whose details (id included) it
    /// already holds, so a backend may use either to find it. `None` if there
    /// is no such key.
    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error>;
    /// The record and usage of one key.
    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error>;
    /// Every record with its usage, in no particular order.
    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error>;
    /// How many keys are stored.
    fn key_count(&self) -> Result<u64, Error>;
    /// The state of every key (digest, expiry, revoked), in no particular
    /// order: what the exclusive-mode index loads at open. Implementations
    /// should skip decoding the rest of each record, and may call `visit`
    /// from several threads at once.
    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error>;
    /// Adds usage deltas and their events in one durable transaction.
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error>;
    /// Events after sequence number `after`, at most `limit`.
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error>;
    /// Fills an empty store with keys, their usage and events from another
    /// store, ids and sequence numbers as they are, and the handles of its
    /// imported keys ([`Storage::legacy_handles`]), in one durable
    /// transaction (moving a store between backends). Refuses a repeated
    /// digest, id or handle, and a handle of a key not among `keys`; new
    /// keys and events are numbered after these.
    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error>;

    // Moving in: keys imported from other key stores (`crate::legacy`),
    // each filed under its handle there (see `legacy::handle`).

    /// Inserts imported keys (each record with its origin and a placeholder
    /// digest of 256 random bits, numbered here like [`Storage::insert`]'s)
    /// with their handles, last uses and `Imported` events, durably, all or
    /// none. A key whose handle is already stored is left out: an import run
    /// twice imports nothing the second time. Returns the records inserted.
    fn import_legacy(&self, keys: Vec<ImportedKey>, at: Timestamp)
        -> Result<Vec<KeyRecord>, Error>;
    /// Which of these handles are stored, by position.
    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error>;
    /// The imported key filed under `handle`, as of the latest commit.
    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error>;
    /// Re-digests an imported key: the key `id`, still under its
    /// placeholder digest `from`, moves to `to` and loses its legacy digest,
    /// with a `Redigested` event, in one durable commit. Returns the new
    /// record, or `None` when the key is not (or no longer) under `from`.
    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error>;
    /// Which sources have keys in the store.
    fn legacy_sources(&self) -> Result<Sources, Error>;
    /// Every stored handle with the id of its key, in no particular order:
    /// what moving a store carries besides the records.
    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error>;
}

/// An imported key's handle ([`crate::legacy::handle`]) and the id of the
/// key filed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FiledHandle {
    pub(crate) handle: Vec<u8>,
    pub(crate) id: String,
}

/// An imported key as [`Storage::import_legacy`] takes it.
#[derive(Debug)]
pub(crate) struct ImportedKey {
    /// Its handle in its source ([`crate::legacy::handle`]).
    pub(crate) handle: Vec<u8>,
    pub(crate) record: KeyRecord,
    /// Its last use in its source, if known.
    pub(crate) last_used: Option<Timestamp>,
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error> {
        (**self).insert(records, at, digests)
    }
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        (**self).change(target, at, change)
    }
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        (**self).by_digest(digest)
    }
    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        (**self).key_state(digest, id)
    }
    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        (**self).by_id(id)
    }
    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        (**self).scan(visit)
    }
    fn key_count(&self) -> Result<u64, Error> {
        (**self).key_count()
    }
    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        (**self).scan_states(visit)
    }
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        (**self).add_usage(deltas, at)
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        (**self).events(after, limit)
    }
    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        (**self).import(keys, events, handles)
    }

    // Moving in.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        (**self).import_legacy(keys, at)
    }
    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        (**self).handles_known(handles)
    }
    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        (**self).by_handle(handle)
    }
    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        (**self).redigest(id, from, to, at)
    }
    fn legacy_sources(&self) -> Result<Sources, Error> {
        (**self).legacy_sources()
    }
    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        (**self).legacy_handles()
    }
}
