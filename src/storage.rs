//! The storage interface the key store is written against, and its redb
//! implementation.
//!
//! The interface is narrow on purpose (insert, change one key, look up, scan,
//! add usage, read events) so that a server-backed store such as PostgreSQL
//! can implement it for fleets of machines.
//!
//! redb layout:
//!
//! | table    | key                | value                           |
//! |----------|--------------------|---------------------------------|
//! | `meta`   | name               | format version, pepper fingerprint |
//! | `keys`   | digest (32 bytes)  | encoded [`KeyRecord`]           |
//! | `ids`    | key id             | digest                          |
//! | `usage`  | key id             | encoded [`Usage`]               |
//! | `events` | sequence number    | encoded [`Event`]               |
//!
//! Records are keyed by digest because verify looks them up by digest: one
//! `get` per verification.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle, WriteTransaction,
};

use crate::clock::Timestamp;
use crate::digest::{fingerprints_match, Digest};
use crate::error::Error;
use crate::record::{Event, EventKind, KeyRecord, KeyState, Usage};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const KEYS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("keys");
const IDS: TableDefinition<&str, &[u8; 32]> = TableDefinition::new("ids");
const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// redb page cache of an exclusive-mode store.
const EXCLUSIVE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Version of the table layout; a store with a higher one is refused.
const FORMAT_VERSION: u32 = 1;
const META_FORMAT: &str = "format_version";
const META_FINGERPRINT: &str = "pepper_fingerprint";

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
    /// New keys created by the change (a rotation's successor).
    pub(crate) created: Vec<KeyRecord>,
}

/// What a change function asks for.
pub(crate) struct Change {
    /// Write the modified record (false: leave everything as it was).
    pub(crate) write: bool,
    /// Events to append, about any key.
    pub(crate) events: Vec<(String, EventKind)>,
    /// New keys to insert with it.
    pub(crate) created: Vec<KeyRecord>,
}

/// Pending usage of one key, with the events it produces.
pub(crate) struct UsageDelta<'a> {
    pub(crate) id: &'a str,
    pub(crate) usage: Usage,
    pub(crate) events: Vec<EventKind>,
}

/// The storage operations the key store needs.
pub(crate) trait Storage: Send + Sync {
    /// Inserts new keys and their `Created` events, durably, all or none.
    fn insert(&self, records: &[KeyRecord], at: Timestamp) -> Result<(), Error>;
    /// Reads one key, lets `change` modify it, writes the result durably.
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut dyn FnMut(&mut KeyRecord) -> Result<Change, Error>,
    ) -> Result<Changed, Error>;
    /// The record with this digest, read from the latest commit.
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error>;
    /// The record and usage of one key.
    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error>;
    /// Every record with its usage, in no particular order.
    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error>;
    /// How many keys are stored.
    fn key_count(&self) -> Result<u64, Error> {
        let count = std::sync::atomic::AtomicU64::new(0);
        self.scan_states(&|_| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })?;
        Ok(count.into_inner())
    }
    /// The state of every key (digest, expiry, revoked), in no particular
    /// order: what the exclusive-mode index loads at open. Implementations
    /// can skip decoding the rest of each record, and call `visit` from
    /// several threads at once.
    fn scan_states(&self, visit: &(dyn Fn(KeyState) + Sync)) -> Result<(), Error> {
        self.scan(&mut |record, _| {
            visit(KeyState {
                digest: record.digest,
                expires_at: record.expires_at,
                revoked: record.revoked_at.is_some(),
            })
        })
    }
    /// Adds usage deltas and their events in one durable transaction.
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error>;
    /// Events after sequence number `after`, at most `limit`.
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error>;
}

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
    fn insert(&self, records: &[KeyRecord], at: Timestamp) -> Result<(), Error> {
        no_panic(|| self.0.insert(records, at))
    }
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut dyn FnMut(&mut KeyRecord) -> Result<Change, Error>,
    ) -> Result<Changed, Error> {
        no_panic(|| self.0.change(target, at, change))
    }
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        no_panic(|| self.0.by_digest(digest))
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
    fn scan_states(&self, visit: &(dyn Fn(KeyState) + Sync)) -> Result<(), Error> {
        no_panic(|| self.0.scan_states(visit))
    }
    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        no_panic(|| self.0.add_usage(deltas, at))
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        no_panic(|| self.0.events(after, limit))
    }
}

/// A redb file.
pub(crate) struct RedbStorage {
    db: Database,
}

impl RedbStorage {
    /// Opens or creates the store file, checking format and pepper.
    pub(crate) fn open(path: &Path, shared: bool, fingerprint: &[u8; 32]) -> Result<Self, Error> {
        create_owner_only(path)?;
        let mode = if shared {
            ConcurrencyMode::MultiWriter
        } else {
            ConcurrencyMode::ExclusiveWriter
        };
        // redb may panic on a file it did not write; a foreign or damaged
        // file must be an error, never a crash of the host.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let mut builder = Database::builder();
            builder.set_concurrency_mode(mode);
            if !shared {
                // Exclusive mode verifies from the in-memory index; the page
                // cache only serves writes and listings. redb's default (1 GiB)
                // would keep every page read by the index load at open
                // resident: several hundred bytes per key.
                builder.set_cache_size(EXCLUSIVE_CACHE_BYTES);
            }
            builder.create(path)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(error)) => return Err(open_error(error, path)),
            Err(_) => {
                return Err(Error::Corrupted(
                    "the storage engine could not read the file".into(),
                ))
            }
        };
        let storage = RedbStorage { db };
        catch_unwind(AssertUnwindSafe(|| {
            storage.check_or_initialize(fingerprint)
        }))
        .unwrap_or_else(|_| {
            Err(Error::Corrupted(
                "the storage engine could not read the file".into(),
            ))
        })?;
        Ok(storage)
    }

    fn check_or_initialize(&self, fingerprint: &[u8; 32]) -> Result<(), Error> {
        // Usually the store exists: check it with a read transaction.
        {
            let txn = self.db.begin_read()?;
            match txn.open_table(META) {
                Ok(meta) => return check_meta(&meta, fingerprint),
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // A new file: create every table in one commit, so that another
        // process sees all of them or none. It may have won the race.
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(META_FORMAT)?.is_some() {
                return check_meta(&meta, fingerprint);
            }
            if !table_names(&txn)?.is_empty() {
                return Err(Error::Corrupted(
                    "a redb file of another application".into(),
                ));
            }
            meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())?;
            meta.insert(META_FINGERPRINT, fingerprint.as_slice())?;
            txn.open_table(KEYS)?;
            txn.open_table(IDS)?;
            txn.open_table(USAGE)?;
            txn.open_table(EVENTS)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Visits the states of the records with digests in `from..to`.
    fn scan_state_range(
        &self,
        from: [u8; 32],
        to: Option<[u8; 32]>,
        visit: &(dyn Fn(KeyState) + Sync),
    ) -> Result<(), Error> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let range = match &to {
            Some(to) => keys.range::<&[u8; 32]>(&from..to)?,
            None => keys.range::<&[u8; 32]>(&from..)?,
        };
        for entry in range {
            let (digest, bytes) = entry?;
            let state = KeyState::decode(bytes.value())?;
            if state.digest != *digest.value() {
                return Err(Error::Corrupted(
                    "a record is filed under another digest".into(),
                ));
            }
            visit(state);
        }
        Ok(())
    }

    fn write<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let txn = self.db.begin_write()?;
        let value = body(&txn)?;
        txn.commit()?;
        Ok(value)
    }
}

/// Names of the tables other than `meta`, to tell a foreign redb file.
fn table_names(txn: &WriteTransaction) -> Result<Vec<String>, Error> {
    Ok(txn
        .list_tables()?
        .map(|table| table.name().to_string())
        .filter(|name| name != "meta")
        .collect())
}

fn check_meta(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    fingerprint: &[u8; 32],
) -> Result<(), Error> {
    let version = meta
        .get(META_FORMAT)?
        .ok_or_else(|| Error::Corrupted("no format version".into()))?;
    let version = <[u8; 4]>::try_from(version.value())
        .map(u32::from_le_bytes)
        .map_err(|_| Error::Corrupted("bad format version".into()))?;
    if version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let stored = meta
        .get(META_FINGERPRINT)?
        .ok_or_else(|| Error::Corrupted("no pepper fingerprint".into()))?;
    if !fingerprints_match(stored.value(), fingerprint) {
        return Err(Error::WrongPepper);
    }
    Ok(())
}

fn open_error(error: DatabaseError, path: &Path) -> Error {
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Locked {
            path: path.to_path_buf(),
        },
        DatabaseError::UpgradeRequired(version) => Error::UnsupportedVersion(u32::from(version)),
        DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() == ErrorKind::InvalidData =>
        {
            Error::Corrupted(error.to_string())
        }
        DatabaseError::Storage(error) => error.into(),
        other => Error::Storage(other.to_string()),
    }
}

/// Creates the file readable and writable by its owner only, if it does not
/// exist yet. An existing file keeps its permissions.
fn create_owner_only(path: &Path) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            if path.is_dir() {
                Err(Error::InvalidArgument(format!(
                    "{} is a directory",
                    path.display()
                )))
            } else {
                Ok(())
            }
        }
        Err(error) => Err(Error::Io(error)),
    }
}

fn decode_usage(bytes: Option<redb::AccessGuard<'_, &'static [u8]>>) -> Result<Usage, Error> {
    match bytes {
        Some(bytes) => Usage::decode(bytes.value()),
        None => Ok(Usage::default()),
    }
}

fn append_events(
    txn: &WriteTransaction,
    at: Timestamp,
    events: Vec<(String, EventKind)>,
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(EVENTS)?;
    let mut sequence = match table.last()? {
        Some((last, _)) => last.value(),
        None => 0,
    };
    for (key_id, kind) in events {
        sequence += 1;
        let event = Event {
            sequence,
            at,
            key_id,
            kind,
        };
        table.insert(sequence, event.encode().as_slice())?;
    }
    Ok(())
}

fn insert_records(txn: &WriteTransaction, records: &[KeyRecord]) -> Result<(), Error> {
    let mut keys = txn.open_table(KEYS)?;
    let mut ids = txn.open_table(IDS)?;
    for record in records {
        // 154 random bits and 71-bit ids make a collision a broken
        // generator, not bad luck: refuse rather than overwrite.
        if keys.get(&record.digest)?.is_some() || ids.get(record.id.as_str())?.is_some() {
            return Err(Error::Storage(
                "generated key or id collides with a stored one".into(),
            ));
        }
        keys.insert(&record.digest, record.encode().as_slice())?;
        ids.insert(record.id.as_str(), &record.digest)?;
    }
    Ok(())
}

impl Storage for RedbStorage {
    fn insert(&self, records: &[KeyRecord], at: Timestamp) -> Result<(), Error> {
        self.write(|txn| {
            insert_records(txn, records)?;
            let events = records
                .iter()
                .map(|r| (r.id.clone(), EventKind::Created))
                .collect();
            append_events(txn, at, events)
        })
    }

    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut dyn FnMut(&mut KeyRecord) -> Result<Change, Error>,
    ) -> Result<Changed, Error> {
        self.write(|txn| {
            let (mut record, requested) = {
                let ids = txn.open_table(IDS)?;
                let keys = txn.open_table(KEYS)?;
                let digest = match target {
                    Target::Id(id) => match ids.get(id)? {
                        Some(digest) => *digest.value(),
                        None => return Err(Error::UnknownKey(id.to_string())),
                    },
                    Target::Digest(digest) => digest.to_bytes(),
                };
                let record = match keys.get(&digest)? {
                    Some(bytes) => KeyRecord::decode(bytes.value())?,
                    None => {
                        return Err(match target {
                            Target::Id(id) => {
                                Error::Corrupted(format!("id {id} points to no record"))
                            }
                            Target::Digest(_) => Error::UnknownKey("(the presented key)".into()),
                        })
                    }
                };
                (record, Digest::from_bytes(digest))
            };
            if Digest::from_bytes(record.digest) != requested {
                return Err(Error::Corrupted(format!(
                    "record {} is filed under another digest",
                    record.id
                )));
            }
            let outcome = change(&mut record)?;
            if outcome.write {
                txn.open_table(KEYS)?
                    .insert(&record.digest, record.encode().as_slice())?;
                insert_records(txn, &outcome.created)?;
                append_events(txn, at, outcome.events)?;
            }
            Ok(Changed {
                record,
                changed: outcome.write,
                created: outcome.created,
            })
        })
    }

    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let record = match keys.get(&digest.to_bytes())? {
            Some(bytes) => KeyRecord::decode(bytes.value())?,
            None => return Ok(None),
        };
        if Digest::from_bytes(record.digest) != *digest {
            return Err(Error::Corrupted(format!(
                "record {} is filed under another digest",
                record.id
            )));
        }
        Ok(Some(record))
    }

    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        let txn = self.db.begin_read()?;
        let digest = match txn.open_table(IDS)?.get(id)? {
            Some(digest) => *digest.value(),
            None => return Ok(None),
        };
        let record = match txn.open_table(KEYS)?.get(&digest)? {
            Some(bytes) => KeyRecord::decode(bytes.value())?,
            None => return Err(Error::Corrupted(format!("id {id} points to no record"))),
        };
        let usage = decode_usage(txn.open_table(USAGE)?.get(id)?)?;
        Ok(Some((record, usage)))
    }

    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(KEYS)?;
        let usage = txn.open_table(USAGE)?;
        for entry in keys.iter()? {
            let (digest, bytes) = entry?;
            let record = KeyRecord::decode(bytes.value())?;
            if record.digest != *digest.value() {
                return Err(Error::Corrupted(format!(
                    "record {} is filed under another digest",
                    record.id
                )));
            }
            let figures = decode_usage(usage.get(record.id.as_str())?)?;
            visit(record, figures);
        }
        Ok(())
    }

    fn key_count(&self) -> Result<u64, Error> {
        let txn = self.db.begin_read()?;
        Ok(redb::ReadableTableMetadata::len(&txn.open_table(KEYS)?)?)
    }

    fn scan_states(&self, visit: &(dyn Fn(KeyState) + Sync)) -> Result<(), Error> {
        // Loading a large store is decoding-bound: split the digest space
        // (uniformly random) by first byte between the cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let starts: Vec<u8> = (0..threads).map(|i| (i * 256 / threads) as u8).collect();
        let ranges: Vec<([u8; 32], Option<[u8; 32]>)> = starts
            .iter()
            .enumerate()
            .map(|(i, &first)| {
                let bound = |byte: u8| {
                    let mut digest = [0u8; 32];
                    digest[0] = byte;
                    digest
                };
                (bound(first), starts.get(i + 1).map(|&next| bound(next)))
            })
            .collect();
        std::thread::scope(|scope| {
            let others: Vec<_> = ranges[1..]
                .iter()
                .map(|&(from, to)| scope.spawn(move || self.scan_state_range(from, to, visit)))
                .collect();
            let mut result = self.scan_state_range(ranges[0].0, ranges[0].1, visit);
            for other in others {
                let other = other.join().unwrap_or_else(|_| {
                    Err(Error::Corrupted(
                        "the storage engine could not read the file".into(),
                    ))
                });
                result = result.and(other);
            }
            result
        })
    }

    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        self.write(|txn| {
            let mut events = Vec::new();
            {
                let ids = txn.open_table(IDS)?;
                let mut usage = txn.open_table(USAGE)?;
                for delta in deltas {
                    // A key can only be counted if it exists; usage of a key
                    // unknown here is a bug elsewhere, not worth a failed flush.
                    if ids.get(delta.id)?.is_none() {
                        continue;
                    }
                    let mut figures = decode_usage(usage.get(delta.id)?)?;
                    figures.merge(&delta.usage);
                    usage.insert(delta.id, figures.encode().as_slice())?;
                    events.extend(
                        delta
                            .events
                            .iter()
                            .map(|kind| (delta.id.to_string(), kind.clone())),
                    );
                }
            }
            append_events(txn, at, events)
        })
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut events = Vec::new();
        for entry in table.range(after.saturating_add(1)..)?.take(limit) {
            let (_, bytes) = entry?;
            events.push(Event::decode(bytes.value())?);
        }
        Ok(events)
    }
}
