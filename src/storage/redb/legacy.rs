//! Imported keys in the redb file: the `legacy` table files each under its
//! handle in its source (`crate::legacy::handle`: a source tag byte, then its
//! id there) the key's number. Rows are never removed, so that an import run
//! again finds every key it imported, re-digested or not. The table is
//! created by the first import; a store without it has no imported key.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::digests::{digest_row, find_by_digest, insert_records, open_levels};
use super::layout::{RECORDS, USAGE};
use super::numbering::Numbers;
use super::{append_events, find_by_id, RedbStorage};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::key::id::id_number;
use crate::legacy::{Source, Sources};
use crate::record::{EventKind, KeyRecord, Usage};
use crate::storage::{repeated_digest, FiledHandle, ImportedKey, NewDigests};

/// Handle -> key number.
pub(super) const LEGACY: TableDefinition<&[u8], u32> = TableDefinition::new("legacy");

impl RedbStorage {
    pub(super) fn import_keys(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.write(|txn| {
            let mut numbers = Numbers::new(&txn.open_table(RECORDS)?)?;
            let mut records = Vec::with_capacity(keys.len());
            let mut uses = Vec::new();
            {
                let mut handles = txn.open_table(LEGACY)?;
                for key in keys {
                    let mut record = key.record;
                    let number = numbers.peek()?;
                    // One B-tree operation per key: the insert tells whether
                    // an earlier run (or an earlier row) imported it, which
                    // is then put back and skipped.
                    let earlier = handles
                        .insert(key.handle.as_slice(), number)?
                        .map(|earlier| earlier.value());
                    if let Some(earlier) = earlier {
                        handles.insert(key.handle.as_slice(), earlier)?;
                        continue;
                    }
                    numbers.assign(&mut record)?;
                    if id_number(&record.id) != Some(number) {
                        return Err(Error::Storage("an imported key was misnumbered".into()));
                    }
                    if let Some(last_used) = key.last_used {
                        uses.push((number, last_used));
                    }
                    records.push(record);
                }
            }
            // Placeholder digests are 256 random bits: no repeat to look for.
            insert_records(txn, &records, NewDigests::KnownNew, self.levels)?;
            {
                let mut usage = txn.open_table(USAGE)?;
                for (number, last_used) in uses {
                    let figures = Usage {
                        last_used: Some(last_used),
                        ..Usage::default()
                    };
                    usage.insert(number, figures.encode().as_slice())?;
                }
            }
            let events = crate::storage::imported_events(&records);
            append_events(txn, at, events)?;
            Ok(records)
        })
    }

    pub(super) fn known_handles(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(LEGACY) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(vec![false; handles.len()]),
            Err(error) => return Err(error.into()),
        };
        handles
            .iter()
            .map(|handle| Ok(table.get(*handle)?.is_some()))
            .collect()
    }

    pub(super) fn record_by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        let txn = self.db.begin_read()?;
        let number = match txn.open_table(LEGACY) {
            Ok(table) => match table.get(handle)? {
                Some(number) => number.value(),
                None => return Ok(None),
            },
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        match txn.open_table(RECORDS)?.get(number)? {
            Some(bytes) => Ok(Some(KeyRecord::decode(bytes.value())?)),
            None => Err(missing_key(number)),
        }
    }

    pub(super) fn move_to_digest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        self.write(|txn| {
            let Some((number, mut record)) = find_by_id(&txn.open_table(RECORDS)?, id)? else {
                return Ok(None);
            };
            if !crate::storage::awaits_redigest(&record, from) {
                // Another verify re-digested it first.
                return Ok(None);
            }
            if find_by_digest(&open_levels(txn)?, &txn.open_table(RECORDS)?, to)?.is_some() {
                return Err(repeated_digest());
            }
            let old_row = digest_row(&record.digest, number);
            crate::storage::redigested(&mut record, to);
            // The new row goes in the table of the old one: levels hold keys
            // by number, and the number stays.
            let mut moved = false;
            for mut table in open_levels(txn)? {
                if table.remove(old_row)?.is_some() {
                    table.insert(digest_row(&record.digest, number), record.state().word())?;
                    moved = true;
                    break;
                }
            }
            if !moved {
                return Err(Error::Corrupted("a stored key has no digest row".into()));
            }
            txn.open_table(RECORDS)?
                .insert(number, record.encode().as_slice())?;
            append_events(txn, at, vec![(record.id.clone(), EventKind::Redigested)])?;
            Ok(Some(record))
        })
    }

    pub(super) fn handles(&self) -> Result<Vec<FiledHandle>, Error> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(LEGACY) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let records = txn.open_table(RECORDS)?;
        let mut handles = Vec::new();
        for entry in table.iter()? {
            let (handle, number) = entry?;
            let record = match records.get(number.value())? {
                Some(bytes) => KeyRecord::decode(bytes.value())?,
                None => return Err(missing_key(number.value())),
            };
            handles.push(FiledHandle {
                handle: handle.value().to_vec(),
                id: record.id,
            });
        }
        Ok(handles)
    }

    pub(super) fn sources(&self) -> Result<Sources, Error> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(LEGACY) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Sources::default()),
            Err(error) => return Err(error.into()),
        };
        let mut sources = Sources::default();
        for source in Source::ALL {
            let (from, to) = ([source.tag()], [source.tag() + 1]);
            if table
                .range(from.as_slice()..to.as_slice())?
                .next()
                .is_some()
            {
                sources = sources.with(source);
            }
        }
        Ok(sources)
    }
}

fn missing_key(number: u32) -> Error {
    Error::Corrupted(format!(
        "an imported key's handle points to missing key {number}"
    ))
}

/// Files the handles of a store being moved in ([`Storage::import`]), each
/// under the number of its key, which must be in the file already.
///
/// [`Storage::import`]: crate::storage::Storage::import
pub(super) fn file_handles(txn: &WriteTransaction, handles: &[FiledHandle]) -> Result<(), Error> {
    if handles.is_empty() {
        return Ok(());
    }
    let records = txn.open_table(RECORDS)?;
    let mut table = txn.open_table(LEGACY)?;
    for filed in handles {
        let Some((number, _)) = find_by_id(&records, &filed.id)? else {
            return Err(Error::Storage(format!(
                "a handle is filed under key {}, which is not moved",
                filed.id
            )));
        };
        if table.insert(filed.handle.as_slice(), number)?.is_some() {
            return Err(Error::Storage("a handle is moved twice".into()));
        }
    }
    Ok(())
}
