//! The embedded backend: a store in one redb file (ACID, checksummed
//! commits). This file opens it and implements [`Storage`] over it; the
//! other files own one concept each: `layout` (tables, format version,
//! upgrades), `digests` (the digest index), `levels` (when its rows move
//! on), `numbering` (key numbers in ids), `error` (redb's errors as
//! [`Error`]). The file format and its history: `docs/storage-redb.md`.
//!
//! In short: records are filed under a key number the backend hands out in
//! order (so new records are appended); the only tables keyed by random
//! values are the digest index's, rows of 16 bytes holding the key's state
//! word, which a shared-mode verify reads with one `get`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, WriteTransaction};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::key::id::id_number;
use crate::legacy::Sources;
use crate::record::{Event, EventKind, KeyRecord, StoredState, Usage};
use crate::state::KeyState;
use crate::storage::{
    created_events, events_about, link_rotation, ChangeFn, Changed, FiledHandle, ImportedKey,
    NewDigests, Storage, Target, UsageDelta,
};

mod digests;
mod error;
mod layout;
mod legacy;
mod levels;
mod numbering;

use digests::{digest_row, find_by_digest, insert_records, open_levels, update_state};
use error::open_error;
use layout::{DIGEST_TABLES, EVENTS, RECORDS, USAGE};
use levels::Levels;
use numbering::Numbers;

/// redb page cache of an exclusive-mode store.
const EXCLUSIVE_CACHE_BYTES: usize = 16 * 1024 * 1024;

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
            layout::check_or_initialize(&storage.db, fingerprint)
        }))
        .unwrap_or_else(|_| {
            Err(Error::Corrupted(
                "the storage engine could not read the file".into(),
            ))
        })?;
        Ok(storage)
    }

    /// Visits the states of the records numbered `from..=to`.
    fn scan_state_range(
        &self,
        from: u32,
        to: u32,
        visit: &(dyn Fn(StoredState) + Sync),
    ) -> Result<(), Error> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        for entry in records.range(from..=to)? {
            let (_, bytes) = entry?;
            visit(StoredState::decode(bytes.value())?);
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

fn decode_usage(bytes: Option<redb::AccessGuard<'_, &'static [u8]>>) -> Result<Usage, Error> {
    match bytes {
        Some(bytes) => Usage::decode(bytes.value()),
        None => Ok(Usage::default()),
    }
}

/// Whether the record is the one with this id (ids are public, but the
/// comparison costs nothing in constant time).
fn has_id(record: &KeyRecord, id: &str) -> bool {
    record.id.len() == id.len() && bool::from(record.id.as_bytes().ct_eq(id.as_bytes()))
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

impl Storage for RedbStorage {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error> {
        self.write(|txn| {
            let mut numbers = Numbers::new(&txn.open_table(RECORDS)?)?;
            for record in records.iter_mut() {
                numbers.assign(record)?;
            }
            insert_records(txn, records, digests, self.levels)?;
            let events = created_events(&records[..]);
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
            let outcome = change(&mut record)?;
            let mut successor = outcome.successor;
            if outcome.write {
                let mut events = events_about(&record.id, outcome.events);
                if let Some(new) = successor.as_mut() {
                    numbers.assign(new)?;
                    link_rotation(&mut record, new, &mut events);
                }
                txn.open_table(RECORDS)?
                    .insert(number, record.encode().as_slice())?;
                // The state read by shared-mode verify, in the same commit.
                update_state(
                    txn,
                    digest_row(&record.digest, number),
                    record.state().word(),
                )?;
                insert_records(
                    txn,
                    successor.as_slice(),
                    NewDigests::Unchecked,
                    self.levels,
                )?;
                append_events(txn, at, events)?;
            } else {
                successor = None;
            }
            Ok(Changed {
                record,
                changed: outcome.write,
                successor,
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

    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        // One get per table, as in any key-value lookup: the row's key is
        // known from the digest and the number in the id. Most keys are in
        // `digests`, read first; the newest are in the smaller tables.
        let Some(number) = id_number(id) else {
            return Ok(None);
        };
        let txn = self.db.begin_read()?;
        let row = digest_row(&digest.to_bytes(), number);
        for table in DIGEST_TABLES {
            if let Some(state) = txn.open_table(table)?.get(row)? {
                return Ok(Some(KeyState::from_word(state.value())));
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

    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
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

    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        self.write(|txn| {
            // Ids carry their numbers (both backends write them): records
            // are filed under them, and numbering goes on after the highest.
            let records: Vec<KeyRecord> = keys.iter().map(|(record, _)| record.clone()).collect();
            insert_records(txn, &records, NewDigests::Unchecked, self.levels)?;
            let mut usage = txn.open_table(USAGE)?;
            for (record, figures) in keys {
                let number = id_number(&record.id)
                    .ok_or_else(|| Error::Corrupted(format!("id {} has no number", record.id)))?;
                usage.insert(number, figures.encode().as_slice())?;
            }
            let mut table = txn.open_table(EVENTS)?;
            for event in events {
                if table
                    .insert(event.sequence, event.encode().as_slice())?
                    .is_some()
                {
                    return Err(Error::Corrupted(format!(
                        "event {} is already stored",
                        event.sequence
                    )));
                }
            }
            legacy::file_handles(txn, handles)
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

    // Moving in: `legacy.rs`.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.import_keys(keys, at)
    }
    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        self.known_handles(handles)
    }
    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        self.record_by_handle(handle)
    }
    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        self.move_to_digest(id, from, to, at)
    }
    fn legacy_sources(&self) -> Result<Sources, Error> {
        self.sources()
    }
    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        self.handles()
    }
}

#[cfg(test)]
mod tests {
    use super::digests::move_rows;
    use super::layout::{DIGESTS, DIGEST_TABLES, FORMAT_VERSION, FRESH, META, META_FORMAT, RECENT};
    use super::levels::Levels;
    use super::*;
    use crate::storage::Change;

    /// Inserts with the check in storage, as shared mode does.
    fn insert(storage: &RedbStorage, records: &mut [KeyRecord], at: i64) -> Result<(), Error> {
        storage.insert(records, Timestamp::from_unix(at), NewDigests::Unchecked)
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

    #[test]
    fn a_moved_store_s_handles_must_name_moved_keys_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = RedbStorage::open(&dir.path().join("s.redb"), false, &[1; 32]).unwrap();
        let contents = crate::storage::memory::MemoryStore::new();
        let memory =
            crate::storage::memory::MemoryStorage::open(&contents, false, &[1; 32], dir.path())
                .unwrap();
        let key = record(
            &crate::key::id::stamp_number("aaaaaaaaaaaaaaaa", 7).unwrap(),
            [7; 32],
        );
        let keys = [(key.clone(), Usage::default())];
        let filed = |id: &str| FiledHandle {
            handle: vec![1, b'7'],
            id: id.into(),
        };
        for storage in [&file as &dyn Storage, &memory] {
            // A handle of a key not moved, or twice: refused, nothing written.
            assert!(storage.import(&keys, &[], &[filed("nothing")]).is_err());
            assert!(storage
                .import(&keys, &[], &[filed(&key.id), filed(&key.id)])
                .is_err());
            assert_eq!(storage.key_count().unwrap(), 0);
            storage.import(&keys, &[], &[filed(&key.id)]).unwrap();
            assert_eq!(storage.legacy_handles().unwrap(), [filed(&key.id)]);
            assert_eq!(storage.by_handle(&[1, b'7']).unwrap(), Some(key.clone()));
            assert!(storage
                .legacy_sources()
                .unwrap()
                .has(crate::legacy::Source::Sanctum));
        }
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
            .change(Target::Id(id), Timestamp::from_unix(9), &mut |record| {
                record.revoked_at = Some(Timestamp::from_unix(9));
                Ok(Change::write(Vec::new()))
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
            assert_eq!(storage.key_state(&digest, id).unwrap(), Some(found.state()));
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
                storage.key_state(&digest, &ids[i]).unwrap(),
                Some(KeyState::from_word(crate::state::REVOKED))
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
