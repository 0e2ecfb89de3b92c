//! The storage interface the key store is written against, and its redb
//! implementation.
//!
//! The interface is narrow on purpose (insert, change one key, look up, scan,
//! add usage, read events) so that a server-backed store such as PostgreSQL
//! can implement it for fleets of machines.
//!
//! redb layout (format version 5):
//!
//! | table     | key                          | value                              |
//! |-----------|------------------------------|------------------------------------|
//! | `meta`    | name                         | format version, pepper fingerprint |
//! | `records` | key number (`u32`)           | encoded [`KeyRecord`]              |
//! | `digests` | first 4 bytes of the digest, key number (`u64`) | the key's state word (`i64`) |
//! | `digests_recent` | the same, for recent keys (large stores) | the same          |
//! | `digests_fresh` | the same, for the newest keys | the same                     |
//! | `usage`   | key number                   | encoded [`Usage`]                  |
//! | `events`  | sequence number              | encoded [`Event`]                  |
//!
//! Why this shape: a durable commit costs what it dirties, and a B-tree
//! keyed by random values dirties one 4 KiB leaf per inserted row once the
//! table is larger than the batch. Format 1 filed each new key in two such
//! tables (records by digest, ~170-byte rows; the id index) and wrote about
//! 8 MB per batch of 1000 keys into a 100k-key store. Now records are keyed
//! by a number the store hands out in order, so new records are appended;
//! the only tables keyed by random values are the digest index's, whose
//! rows are 16 bytes. Format 3 put the key's state word in its digest row
//! (written with the record, in the same commit), so that a shared-mode
//! verify of a key whose details the process holds is one `get` of that
//! row.
//!
//! Format 4 split the digest index in two, as a log-structured tree does.
//! New rows go to `digests_fresh`, which never holds more than 16,384 rows
//! ([`Levels`]): a batch rewrites at most its few dozen leaves instead of
//! most of `digests`' (a batch of 1000 into a 100k-key store rewrote about
//! 400 of them, into a 1M-key store about 1000). The commit that passes the
//! limit moves every fresh row on in key order. Format 5 adds a middle
//! level for large stores: once `digests` holds more than 262,144 rows,
//! fresh rows move into `digests_recent`, and only when that passes 262,144
//! rows do they all move into `digests`. Each move rewrites the leaves of
//! the table it fills; without the middle level a 1M-key store rewrote its
//! whole `digests` (about 12,000 leaves, 135-200 ms) every 16,384 new keys.
//! A lookup reads `digests`, then `digests_recent`, then `digests_fresh`; a
//! key's row is in exactly one of them, older keys in earlier tables.
//!
//! A key's number is the first [`NUMBER_CHARS`] characters of its public id
//! (base62, so ids sort by creation), followed by random characters: `by_id`
//! needs no index either. A `digests` row is the digest's first 4 bytes
//! followed by the key number: keys sharing a prefix (one pair per 2^32
//! pairs) are all found by one range read, and each candidate's full digest,
//! in its record, is compared in constant time.

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle, WriteTransaction,
};

use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::digest::{fingerprints_match, Digest};
use crate::error::Error;
use crate::format::ALPHABET;
use crate::record::{Event, EventKind, KeyRecord, KeyState, Usage};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RECORDS: TableDefinition<u32, &[u8]> = TableDefinition::new("records");
const DIGESTS: TableDefinition<u64, i64> = TableDefinition::new("digests");
const RECENT: TableDefinition<u64, i64> = TableDefinition::new("digests_recent");
const FRESH: TableDefinition<u64, i64> = TableDefinition::new("digests_fresh");
/// The digest index's tables, oldest rows first: the order lookups read them
/// in (most keys of a store are old).
const DIGEST_TABLES: [TableDefinition<u64, i64>; 3] = [DIGESTS, RECENT, FRESH];
const USAGE: TableDefinition<u32, &[u8]> = TableDefinition::new("usage");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// How many leading characters of a key id hold the key's number: six base62
/// digits hold every `u32`. The id's other characters stay random.
pub(crate) const NUMBER_CHARS: usize = 6;

/// redb page cache of an exclusive-mode store.
const EXCLUSIVE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Version of the table layout; a store with another one is refused (no
/// file of version 1, the layout keyed by digest, was ever released).
const FORMAT_VERSION: u32 = 5;

/// The oldest layout this library still opens, upgrading it in place:
/// formats 3 and 4 lack only digest tables that start empty
/// (`digests_fresh`, `digests_recent`).
const FORMAT_UPGRADABLE: u32 = 3;

/// When the digest index's rows move from one table to the next.
#[derive(Debug, Clone, Copy)]
struct Levels {
    /// Most rows `digests_fresh` holds: the commit that passes it moves them
    /// all on. Inserting into a table of this size rewrites at most 66
    /// leaves however large the store.
    fresh_max: u64,
    /// Most rows `digests_recent` holds: the commit that passes it moves
    /// them all into `digests`. While `digests` holds no more than this,
    /// fresh rows move straight into it and `digests_recent` stays empty.
    recent_max: u64,
}

impl Levels {
    /// Each table 16 times the one before: a fresh move rewrites at most
    /// `digests_recent` (262,144 rows, about 3,000 leaves), and `digests`,
    /// the size of the store, is rewritten once per 262,144 new keys rather
    /// than once per 16,384.
    const DEFAULT: Levels = Levels {
        fresh_max: 16_384,
        recent_max: 262_144,
    };
}
const META_FORMAT: &str = "format_version";
const META_FINGERPRINT: &str = "pepper_fingerprint";

/// Who makes sure that no new key's digest is already stored. 154 random
/// bits make a repeat a broken generator, not bad luck: it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepeatCheck {
    /// The storage, in the insert's transaction: one lookup per key.
    InStorage,
    /// The caller, which holds every stored digest in memory and lets no
    /// other key in between its check and this insert (exclusive mode).
    DoneByCaller,
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

/// Gives a new record its number (written into its id).
pub(crate) type Numbering<'a> = dyn FnMut(&mut KeyRecord) -> Result<(), Error> + 'a;

/// What [`Storage::change`] runs on the record it read.
pub(crate) type ChangeFn<'a> =
    dyn FnMut(&mut KeyRecord, &mut Numbering<'_>) -> Result<Change, Error> + 'a;

/// Pending usage of one key, with the events it produces.
pub(crate) struct UsageDelta<'a> {
    pub(crate) id: &'a str,
    pub(crate) usage: Usage,
    pub(crate) events: Vec<EventKind>,
}

/// The storage operations the key store needs.
pub(crate) trait Storage: Send + Sync {
    /// Inserts new keys and their `Created` events, durably, all or none.
    /// Each record's id must come from [`new_id`](crate::store): the store
    /// writes the key's number over its first [`NUMBER_CHARS`] characters.
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        check: RepeatCheck,
    ) -> Result<(), Error>;
    /// Reads one key, lets `change` modify it, writes the result durably.
    /// `change` numbers any key it creates with the function it is given,
    /// before it uses that key's id.
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error>;
    /// The record with this digest, read from the latest commit.
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error>;
    /// The state word ([`state_word`](crate::record::state_word)) of key number `number`, whose digest
    /// is `digest`, as of the latest commit: what a shared-mode verify reads
    /// for a key whose details it already holds. `None` if there is no such
    /// key.
    fn key_state(&self, digest: &Digest, number: u32) -> Result<Option<i64>, Error> {
        Ok(self
            .by_digest(digest)?
            .filter(|record| id_number(&record.id) == Some(number))
            .map(|record| record.state_word()))
    }
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
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        check: RepeatCheck,
    ) -> Result<(), Error> {
        no_panic(|| self.0.insert(records, at, check))
    }
    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        no_panic(|| self.0.change(target, at, change))
    }
    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        no_panic(|| self.0.by_digest(digest))
    }
    fn key_state(&self, digest: &Digest, number: u32) -> Result<Option<i64>, Error> {
        no_panic(|| self.0.key_state(digest, number))
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
    levels: Levels,
}

impl RedbStorage {
    /// Opens or creates the store file, checking format and pepper.
    /// A missing file is created owner-only first ([`crate::KeyStore::open`]
    /// creates it with the mode asked for before this): redb would create it
    /// with the umask's mode.
    pub(crate) fn open(path: &Path, shared: bool, fingerprint: &[u8; 32]) -> Result<Self, Error> {
        crate::ownership::create_store_file(path, crate::ownership::OWNER_ONLY)?;
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
        let storage = RedbStorage {
            db,
            levels: Levels::DEFAULT,
        };
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
                Ok(meta) => {
                    if check_meta(&meta, fingerprint)? == FORMAT_VERSION {
                        return Ok(());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // A new file: create every table in one commit, so that another
        // process sees all of them or none. It may have won the race. Or a
        // store of the previous format, upgraded the same way.
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(META_FORMAT)?.is_some() {
                if check_meta(&meta, fingerprint)? < FORMAT_VERSION {
                    // Formats 3 and 4: the digest tables they lack, empty.
                    for table in DIGEST_TABLES {
                        txn.open_table(table)?;
                    }
                    meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())?;
                }
                drop(meta);
                txn.commit()?;
                return Ok(());
            }
            if !table_names(&txn)?.is_empty() {
                return Err(Error::Corrupted(
                    "a redb file of another application".into(),
                ));
            }
            meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())?;
            meta.insert(META_FINGERPRINT, fingerprint.as_slice())?;
            txn.open_table(RECORDS)?;
            for table in DIGEST_TABLES {
                txn.open_table(table)?;
            }
            txn.open_table(USAGE)?;
            txn.open_table(EVENTS)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Visits the states of the records numbered `from..=to`.
    fn scan_state_range(
        &self,
        from: u32,
        to: u32,
        visit: &(dyn Fn(KeyState) + Sync),
    ) -> Result<(), Error> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        for entry in records.range(from..=to)? {
            let (_, bytes) = entry?;
            visit(KeyState::decode(bytes.value())?);
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

/// Checks a store's format and pepper; returns its format version, this
/// library's or the one it upgrades.
fn check_meta(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    fingerprint: &[u8; 32],
) -> Result<u32, Error> {
    let version = meta
        .get(META_FORMAT)?
        .ok_or_else(|| Error::Corrupted("no format version".into()))?;
    let version = <[u8; 4]>::try_from(version.value())
        .map(u32::from_le_bytes)
        .map_err(|_| Error::Corrupted("bad format version".into()))?;
    if version > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    if version < FORMAT_UPGRADABLE {
        return Err(Error::Corrupted(format!(
            "format version {version} is a pre-release layout this library cannot read"
        )));
    }
    let stored = meta
        .get(META_FINGERPRINT)?
        .ok_or_else(|| Error::Corrupted("no pepper fingerprint".into()))?;
    if !fingerprints_match(stored.value(), fingerprint) {
        return Err(Error::WrongPepper);
    }
    Ok(version)
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
        DatabaseError::Storage(redb::StorageError::Io(error)) => {
            crate::ownership::io_error(error, path)
        }
        DatabaseError::Storage(error) => error.into(),
        other => Error::Storage(other.to_string()),
    }
}

fn decode_usage(bytes: Option<redb::AccessGuard<'_, &'static [u8]>>) -> Result<Usage, Error> {
    match bytes {
        Some(bytes) => Usage::decode(bytes.value()),
        None => Ok(Usage::default()),
    }
}

/// The `digests` rows of the keys whose digest starts like this one.
fn digest_rows(digest: &[u8; 32]) -> core::ops::RangeInclusive<u64> {
    let prefix = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    (prefix << 32)..=(prefix << 32 | u64::from(u32::MAX))
}

/// The `digests` row of a key.
fn digest_row(digest: &[u8; 32], number: u32) -> u64 {
    digest_rows(digest).start() | u64::from(number)
}

/// Writes `number` in base62 over the first [`NUMBER_CHARS`] characters of
/// `id`, most significant digit first, so that ids sort by number.
fn stamp_number(id: &str, number: u32) -> Result<String, Error> {
    let mut bytes = id.as_bytes().to_vec();
    if bytes.len() <= NUMBER_CHARS || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Error::Storage("a new key has no valid id".into()));
    }
    let mut value = number;
    for slot in bytes[..NUMBER_CHARS].iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    // Base62 characters are ASCII.
    String::from_utf8(bytes).map_err(|_| Error::Storage("a new key has no valid id".into()))
}

/// The number in an id, or `None` when the id cannot be one of this store's.
pub(crate) fn id_number(id: &str) -> Option<u32> {
    let bytes = id.as_bytes();
    // The alphabet is exactly the ASCII alphanumerics.
    if bytes.len() != crate::store::ID_LEN || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in &bytes[..NUMBER_CHARS] {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            _ => byte - b'a' + 36,
        };
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

/// Whether the record is the one with this id (ids are public, but the
/// comparison costs nothing in constant time).
fn has_id(record: &KeyRecord, id: &str) -> bool {
    record.id.len() == id.len() && bool::from(record.id.as_bytes().ct_eq(id.as_bytes()))
}

/// The record with this digest, if any, in the tables of one transaction:
/// its row is in one of the digest tables (`levels`, [`DIGEST_TABLES`]).
fn find_by_digest<D: ReadableTable<u64, i64>>(
    levels: &[D],
    records: &impl ReadableTable<u32, &'static [u8]>,
    digest: &Digest,
) -> Result<Option<(u32, KeyRecord)>, Error> {
    let rows = digest_rows(&digest.to_bytes());
    for table in levels {
        for row in table.range(rows.clone())? {
            // The low 32 bits of a row are the key number.
            let number = row?.0.value() as u32;
            let record = match records.get(number)? {
                Some(bytes) => KeyRecord::decode(bytes.value())?,
                None => {
                    return Err(Error::Corrupted(format!(
                        "digest index points to missing key {number}"
                    )))
                }
            };
            // Otherwise another key with the same prefix: try the next.
            if Digest::from_bytes(record.digest) == *digest {
                return Ok(Some((number, record)));
            }
        }
    }
    Ok(None)
}

/// The record with this id, if any.
fn find_by_id(
    records: &impl ReadableTable<u32, &'static [u8]>,
    id: &str,
) -> Result<Option<(u32, KeyRecord)>, Error> {
    let Some(number) = id_number(id) else {
        return Ok(None);
    };
    let record = match records.get(number)? {
        Some(bytes) => KeyRecord::decode(bytes.value())?,
        None => return Ok(None),
    };
    Ok(has_id(&record, id).then_some((number, record)))
}

/// Hands out key numbers in a write transaction: one more than the highest
/// stored.
struct Numbers {
    next: u64,
}

impl Numbers {
    fn new(records: &impl ReadableTable<u32, &'static [u8]>) -> Result<Numbers, Error> {
        let next = match records.last()? {
            Some((last, _)) => u64::from(last.value()) + 1,
            None => 1,
        };
        Ok(Numbers { next })
    }

    /// Numbers `record`, writing the number into its id.
    fn assign(&mut self, record: &mut KeyRecord) -> Result<(), Error> {
        let number = u32::try_from(self.next)
            .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))?;
        record.id = stamp_number(&record.id, number)?;
        self.next += 1;
        Ok(())
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

/// The digest tables of a write transaction, in [`DIGEST_TABLES`] order.
fn open_levels(txn: &WriteTransaction) -> Result<[redb::Table<'_, u64, i64>; 3], Error> {
    Ok([
        txn.open_table(DIGEST_TABLES[0])?,
        txn.open_table(DIGEST_TABLES[1])?,
        txn.open_table(DIGEST_TABLES[2])?,
    ])
}

/// Files numbered records: appended to `records`, then their rows into
/// `digests_fresh`, sorted, so that the batch walks that table's leaves in
/// order. When `digests_fresh` passes its limit, its rows move on (see
/// [`settle`]).
fn insert_records(
    txn: &WriteTransaction,
    records: &[KeyRecord],
    check: RepeatCheck,
    levels: Levels,
) -> Result<(), Error> {
    let mut table = txn.open_table(RECORDS)?;
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let number = id_number(&record.id)
            .ok_or_else(|| Error::Storage("a new key was not numbered".into()))?;
        if table.insert(number, record.encode().as_slice())?.is_some() {
            return Err(Error::Corrupted(format!("key number {number} is taken")));
        }
        rows.push((
            digest_row(&record.digest, number),
            record.digest,
            record.state_word(),
        ));
    }
    rows.sort_unstable_by_key(|&(row, _, _)| row);
    let mut tables = open_levels(txn)?;
    for (row, digest, state) in rows {
        // A repeat aborts the transaction. The records of this batch are
        // already in `table`, so a repeat within it is found too.
        if check == RepeatCheck::InStorage
            && find_by_digest(&tables, &table, &Digest::from_bytes(digest))?.is_some()
        {
            return Err(repeated_digest());
        }
        tables[2].insert(row, state)?;
    }
    let rows = |table: &redb::Table<'_, u64, i64>| redb::ReadableTableMetadata::len(table);
    let fresh = rows(&tables[2])?;
    if fresh <= levels.fresh_max {
        return Ok(());
    }
    let counts = [rows(&tables[0])?, rows(&tables[1])?, fresh];
    drop(tables);
    settle(txn, counts, levels)
}

/// Moves the digest rows on once `digests_fresh` has passed its limit, as a
/// log-structured tree does, so that a large table is rewritten once per
/// many keys rather than a random leaf per key. `counts` are the rows of
/// the three tables. While `digests` is small, fresh rows go straight into
/// it; past that they go to `digests_recent`, which moves into `digests`
/// when it passes its own limit.
fn settle(txn: &WriteTransaction, counts: [u64; 3], levels: Levels) -> Result<(), Error> {
    let [digests, recent, fresh] = counts;
    if recent == 0 && digests <= levels.recent_max {
        return move_rows(txn, FRESH, DIGESTS);
    }
    move_rows(txn, FRESH, RECENT)?;
    if recent + fresh > levels.recent_max {
        move_rows(txn, RECENT, DIGESTS)?;
    }
    Ok(())
}

/// Moves every row of `from` into `into`, in key order, and empties `from`
/// (deleting a table frees its pages at once).
fn move_rows(
    txn: &WriteTransaction,
    from: TableDefinition<u64, i64>,
    into: TableDefinition<u64, i64>,
) -> Result<(), Error> {
    let rows = txn
        .open_table(from)?
        .iter()?
        .map(|row| row.map(|(row, state)| (row.value(), state.value())))
        .collect::<Result<Vec<_>, _>>()?;
    txn.delete_table(from)?;
    txn.open_table(from)?;
    let mut into = txn.open_table(into)?;
    for (row, state) in rows {
        into.insert(row, state)?;
    }
    Ok(())
}

/// Writes a key's new state word into its row, in whichever digest table
/// holds it.
fn update_state(txn: &WriteTransaction, row: u64, state: i64) -> Result<(), Error> {
    for mut table in open_levels(txn)? {
        if table.get(row)?.is_some() {
            table.insert(row, state)?;
            return Ok(());
        }
    }
    Err(Error::Corrupted("a stored key has no digest row".into()))
}

impl Storage for RedbStorage {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        check: RepeatCheck,
    ) -> Result<(), Error> {
        self.write(|txn| {
            let mut numbers = Numbers::new(&txn.open_table(RECORDS)?)?;
            for record in records.iter_mut() {
                numbers.assign(record)?;
            }
            insert_records(txn, records, check, self.levels)?;
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
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        self.write(|txn| {
            let (number, mut record, mut numbers) = {
                let records = txn.open_table(RECORDS)?;
                let found = match target {
                    Target::Id(id) => find_by_id(&records, id)?
                        .ok_or_else(|| Error::UnknownKey(id.to_string()))?,
                    Target::Digest(digest) => find_by_digest(&open_levels(txn)?, &records, digest)?
                        .ok_or_else(|| Error::UnknownKey("(the presented key)".into()))?,
                };
                (found.0, found.1, Numbers::new(&records)?)
            };
            let outcome = change(&mut record, &mut |new| numbers.assign(new))?;
            if outcome.write {
                txn.open_table(RECORDS)?
                    .insert(number, record.encode().as_slice())?;
                // The state read by shared-mode verify, in the same commit.
                update_state(txn, digest_row(&record.digest, number), record.state_word())?;
                insert_records(txn, &outcome.created, RepeatCheck::InStorage, self.levels)?;
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
        let levels = [
            txn.open_table(DIGEST_TABLES[0])?,
            txn.open_table(DIGEST_TABLES[1])?,
            txn.open_table(DIGEST_TABLES[2])?,
        ];
        let found = find_by_digest(&levels, &txn.open_table(RECORDS)?, digest)?;
        Ok(found.map(|(_, record)| record))
    }

    fn key_state(&self, digest: &Digest, number: u32) -> Result<Option<i64>, Error> {
        // One get per table, as in any key-value lookup: the row's key is
        // known. Most keys are in `digests`, read first; the newest are in
        // the smaller tables.
        let txn = self.db.begin_read()?;
        let row = digest_row(&digest.to_bytes(), number);
        for table in DIGEST_TABLES {
            if let Some(state) = txn.open_table(table)?.get(row)? {
                return Ok(Some(state.value()));
            }
        }
        Ok(None)
    }

    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        let txn = self.db.begin_read()?;
        let Some((number, record)) = find_by_id(&txn.open_table(RECORDS)?, id)? else {
            return Ok(None);
        };
        let usage = decode_usage(txn.open_table(USAGE)?.get(number)?)?;
        Ok(Some((record, usage)))
    }

    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let usage = txn.open_table(USAGE)?;
        for entry in records.iter()? {
            let (number, bytes) = entry?;
            let record = KeyRecord::decode(bytes.value())?;
            if id_number(&record.id) != Some(number.value()) {
                return Err(Error::Corrupted(format!(
                    "record {} is filed under another number",
                    record.id
                )));
            }
            let figures = decode_usage(usage.get(number.value())?)?;
            visit(record, figures);
        }
        Ok(())
    }

    fn key_count(&self) -> Result<u64, Error> {
        let txn = self.db.begin_read()?;
        Ok(redb::ReadableTableMetadata::len(&txn.open_table(RECORDS)?)?)
    }

    fn scan_states(&self, visit: &(dyn Fn(KeyState) + Sync)) -> Result<(), Error> {
        // Loading a large store is decoding-bound: split the key numbers
        // (dense, from 1) between the cores.
        let last = {
            let txn = self.db.begin_read()?;
            let records = txn.open_table(RECORDS)?;
            let last = records.last()?.map(|(last, _)| last.value());
            match last {
                Some(last) => last,
                None => return Ok(()),
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as u32;
        let share = last / threads + 1;
        let ranges: Vec<(u32, u32)> = (0..threads)
            .map(|i| {
                let from = i.saturating_mul(share);
                let to = if i + 1 == threads {
                    u32::MAX
                } else {
                    from.saturating_add(share - 1)
                };
                (from, to)
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
                let records = txn.open_table(RECORDS)?;
                let mut usage = txn.open_table(USAGE)?;
                for delta in deltas {
                    // A key can only be counted if it exists; usage of a key
                    // unknown here is a bug elsewhere, not worth a failed flush.
                    // Its number is in its id: one lookup, nothing decoded
                    // (a flush may carry thousands of keys).
                    let Some(number) = id_number(delta.id) else {
                        continue;
                    };
                    if records.get(number)?.is_none() {
                        continue;
                    }
                    let mut figures = decode_usage(usage.get(number)?)?;
                    figures.merge(&delta.usage);
                    usage.insert(number, figures.encode().as_slice())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_number_and_sort_by_it() {
        let random = "Zz9aB3xQ7pLm2Kd0";
        let mut previous = String::new();
        for number in [1, 2, 61, 62, 3843, 1 << 20, u32::MAX - 1, u32::MAX] {
            let id = stamp_number(random, number).unwrap();
            assert_eq!(id.len(), crate::store::ID_LEN);
            assert_eq!(&id[NUMBER_CHARS..], &random[NUMBER_CHARS..]);
            assert_eq!(id_number(&id), Some(number));
            assert!(id > previous, "{id} sorts after {previous}");
            previous = id;
        }
        // Not an id of this store: wrong length, characters, number too big.
        assert_eq!(id_number("abc"), None);
        assert_eq!(id_number("0000000000000-00"), None);
        assert_eq!(id_number("zzzzzz0000000000"), None);
        assert!(stamp_number("short", 1).is_err());
    }

    /// Inserts with the check in storage, as shared mode does.
    fn insert(storage: &RedbStorage, records: &mut [KeyRecord], at: i64) -> Result<(), Error> {
        storage.insert(records, Timestamp::from_unix(at), RepeatCheck::InStorage)
    }

    fn record(id: &str, digest: [u8; 32]) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            digest,
            ..crate::record::tests::sample()
        }
    }

    #[test]
    fn keys_sharing_a_digest_prefix_are_told_apart_by_the_full_digest() {
        let dir = tempfile::tempdir().unwrap();
        let storage = RedbStorage::open(&dir.path().join("s.redb"), false, &[1; 32]).unwrap();
        let mut first = [0xAB; 32];
        let mut second = [0xAB; 32];
        let mut absent = [0xAB; 32];
        first[31] = 1;
        second[31] = 2;
        absent[31] = 3;
        let mut records = vec![
            record("aaaaaaaaaaaaaaaa", first),
            record("bbbbbbbbbbbbbbbb", second),
        ];
        insert(&storage, &mut records, 1).unwrap();
        assert_eq!(id_number(&records[0].id), Some(1));
        assert_eq!(id_number(&records[1].id), Some(2));
        for (digest, want) in [(first, &records[0]), (second, &records[1])] {
            let found = storage.by_digest(&Digest::from_bytes(digest)).unwrap();
            assert_eq!(found.as_ref(), Some(want));
            assert_eq!(storage.by_id(&want.id).unwrap().unwrap().0, *want);
        }
        assert!(storage
            .by_digest(&Digest::from_bytes(absent))
            .unwrap()
            .is_none());
        // A repeated digest is refused, and nothing of its batch is kept.
        let mut again = vec![
            record("cccccccccccccccc", absent),
            record("dddddddddddddddd", second),
        ];
        assert!(insert(&storage, &mut again, 2).is_err());
        assert!(storage
            .by_digest(&Digest::from_bytes(absent))
            .unwrap()
            .is_none());
        assert_eq!(storage.key_count().unwrap(), 2);
        // An id whose number exists but whose random part differs is unknown.
        let mut forged = records[0].id.clone().into_bytes();
        forged[15] = if forged[15] == b'x' { b'y' } else { b'x' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(storage.by_id(&forged).unwrap().is_none());
    }

    /// Digests that differ in their first bytes, for `count` keys.
    fn spread_digest(i: u32) -> [u8; 32] {
        let mut digest = [0; 32];
        let mixed = i.wrapping_mul(0x9E37_79B9).to_be_bytes();
        digest[..4].copy_from_slice(&mixed);
        digest[4..8].copy_from_slice(&i.to_be_bytes());
        digest
    }

    /// Rows of `digests`, `digests_recent`, `digests_fresh`.
    fn row_counts(storage: &RedbStorage) -> [u64; 3] {
        let txn = storage.db.begin_read().unwrap();
        DIGEST_TABLES
            .map(|table| redb::ReadableTableMetadata::len(&txn.open_table(table).unwrap()).unwrap())
    }

    /// The key numbers each digest table holds.
    fn numbers_in(storage: &RedbStorage) -> [Vec<u32>; 3] {
        let txn = storage.db.begin_read().unwrap();
        DIGEST_TABLES.map(|table| {
            let table = txn.open_table(table).unwrap();
            let rows = table.iter().unwrap();
            rows.map(|row| row.unwrap().0.value() as u32).collect()
        })
    }

    fn revoke(storage: &RedbStorage, id: &str) {
        let changed = storage
            .change(Target::Id(id), Timestamp::from_unix(9), &mut |record, _| {
                record.revoked_at = Some(Timestamp::from_unix(9));
                Ok(Change {
                    write: true,
                    events: Vec::new(),
                    created: Vec::new(),
                })
            })
            .unwrap();
        assert!(changed.changed);
    }

    /// Inserts `batches` batches of `batch` keys with these levels and checks
    /// after each that no table passes its limit and no row is lost; then
    /// that every key is found and its state read wherever its row is, that
    /// a revocation rewrites the row in its table, and that a repeat of a
    /// digest of any table is refused. Returns the final row counts.
    fn rows_move_through_the_levels(levels: Levels, batch: u32, batches: u32) -> [u64; 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = RedbStorage::open(&dir.path().join("s.redb"), false, &[1; 32]).unwrap();
        storage.levels = levels;
        let mut ids = Vec::new();
        let mut recent_used = false;
        for b in 0..batches {
            let mut records: Vec<_> = (0..batch)
                .map(|i| record("aaaaaaaaaaaaaaaa", spread_digest(b * batch + i)))
                .collect();
            insert(&storage, &mut records, 1).unwrap();
            ids.extend(records.into_iter().map(|r| r.id));
            let [digests, recent, fresh] = row_counts(&storage);
            assert_eq!(digests + recent + fresh, u64::from((b + 1) * batch));
            assert!(fresh <= levels.fresh_max, "fresh holds {fresh} rows");
            assert!(recent <= levels.recent_max, "recent holds {recent} rows");
            // `digests_recent` serves only once `digests` is past its size.
            assert!(recent == 0 || digests > levels.recent_max);
            recent_used |= recent > 0;
            // Levels hold keys by age: every row of a table is older than
            // every row of the tables after it.
            let numbers = numbers_in(&storage);
            let newest = |table: &[u32]| table.iter().max().copied();
            let oldest = |table: &[u32]| table.iter().min().copied();
            assert!(
                newest(&numbers[0])
                    < oldest(&numbers[1])
                        .or(oldest(&numbers[2]))
                        .or(Some(u32::MAX))
            );
            assert!(newest(&numbers[1]) < oldest(&numbers[2]).or(Some(u32::MAX)));
        }
        let numbers = numbers_in(&storage);
        for (i, id) in ids.iter().enumerate() {
            let digest = Digest::from_bytes(spread_digest(i as u32));
            let found = storage.by_digest(&digest).unwrap().unwrap();
            assert_eq!(&found.id, id);
            let number = id_number(id).unwrap();
            assert_eq!(
                storage.key_state(&digest, number).unwrap(),
                Some(found.state_word())
            );
        }
        // A revocation rewrites the row where it is, in each table holding one.
        let counts = row_counts(&storage);
        for table in numbers.iter().filter(|table| !table.is_empty()) {
            let i = ids
                .iter()
                .position(|id| id_number(id) == Some(table[0]))
                .unwrap();
            revoke(&storage, &ids[i]);
            let digest = Digest::from_bytes(spread_digest(i as u32));
            assert_eq!(
                storage.key_state(&digest, table[0]).unwrap(),
                Some(crate::record::REVOKED)
            );
            // A repeated digest is refused whichever table holds the first.
            let mut again = vec![record("bbbbbbbbbbbbbbbb", spread_digest(i as u32))];
            assert!(insert(&storage, &mut again, 2).is_err());
        }
        assert_eq!(row_counts(&storage), counts, "no row added by a revocation");
        assert!(recent_used || counts[0] <= levels.recent_max);
        counts
    }

    #[test]
    fn small_stores_move_fresh_rows_straight_into_digests() {
        // The default levels: 24,576 keys, past the fresh limit but far from
        // the recent one.
        let batch = 4096;
        let batches = Levels::DEFAULT.fresh_max as u32 / batch + 2;
        let [digests, recent, fresh] =
            rows_move_through_the_levels(Levels::DEFAULT, batch, batches);
        assert!(digests >= Levels::DEFAULT.fresh_max && fresh >= u64::from(batch));
        assert_eq!(recent, 0);
    }

    #[test]
    fn large_stores_move_fresh_rows_through_digests_recent() {
        // Small levels, so that every kind of move happens many times.
        let levels = Levels {
            fresh_max: 16,
            recent_max: 64,
        };
        let [digests, recent, fresh] = rows_move_through_the_levels(levels, 5, 90);
        assert!(digests > levels.recent_max && recent > 0 && fresh > 0);
    }

    #[test]
    fn formats_3_and_4_are_upgraded_in_place() {
        for format in [3u32, 4] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.redb");
            let mut records = vec![record("aaaaaaaaaaaaaaaa", spread_digest(1))];
            {
                let storage = RedbStorage::open(&path, false, &[1; 32]).unwrap();
                insert(&storage, &mut records, 1).unwrap();
                // Back to format 4 (no `digests_recent`) or 3 (no
                // `digests_fresh` either): the row in `digests`.
                let txn = storage.db.begin_write().unwrap();
                move_rows(&txn, FRESH, DIGESTS).unwrap();
                txn.delete_table(RECENT).unwrap();
                if format == 3 {
                    txn.delete_table(FRESH).unwrap();
                }
                txn.open_table(META)
                    .unwrap()
                    .insert(META_FORMAT, format.to_le_bytes().as_slice())
                    .unwrap();
                txn.commit().unwrap();
            }
            let storage = RedbStorage::open(&path, true, &[1; 32]).unwrap();
            let txn = storage.db.begin_read().unwrap();
            let version = txn
                .open_table(META)
                .unwrap()
                .get(META_FORMAT)
                .unwrap()
                .unwrap();
            assert_eq!(version.value(), FORMAT_VERSION.to_le_bytes().as_slice());
            drop((version, txn));
            let digest = Digest::from_bytes(spread_digest(1));
            assert_eq!(
                storage.by_digest(&digest).unwrap().as_ref(),
                Some(&records[0])
            );
            let mut more = vec![record("bbbbbbbbbbbbbbbb", spread_digest(2))];
            insert(&storage, &mut more, 2).unwrap();
            assert_eq!(row_counts(&storage), [1, 0, 1], "format {format}");
        }
    }

    #[test]
    fn format_2_and_later_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        for format in [2u32, FORMAT_VERSION + 1] {
            drop(RedbStorage::open(&path, false, &[1; 32]).unwrap());
            {
                let db = Database::create(&path).unwrap();
                let txn = db.begin_write().unwrap();
                txn.open_table(META)
                    .unwrap()
                    .insert(META_FORMAT, format.to_le_bytes().as_slice())
                    .unwrap();
                txn.commit().unwrap();
            }
            let opened = RedbStorage::open(&path, false, &[1; 32]);
            if format == 2 {
                assert!(matches!(opened, Err(Error::Corrupted(_))));
            } else {
                assert!(matches!(opened, Err(Error::UnsupportedVersion(v)) if v == format));
            }
            std::fs::remove_file(&path).unwrap();
        }
    }
}
