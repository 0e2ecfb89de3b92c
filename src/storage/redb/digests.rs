//! The digest index: rows keyed by a digest's first 4 bytes and the key's
//! number, holding the key's state word, spread over three tables by age
//! ([`Levels`] decides when rows move on). A lookup by digest reads them
//! oldest first and compares each candidate's full digest.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::layout::{DIGESTS, DIGEST_TABLES, FRESH, RECENT, RECORDS};
use super::levels::{Level, Levels};
use crate::error::Error;
use crate::key::digest::Digest;
use crate::key::id::id_number;
use crate::record::KeyRecord;
use crate::storage::{repeated_digest, NewDigests};

/// The `digests` rows of the keys whose digest starts like this one.
pub(super) fn digest_rows(digest: &[u8; 32]) -> core::ops::RangeInclusive<u64> {
    let prefix = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    (prefix << 32)..=(prefix << 32 | u64::from(u32::MAX))
}

/// The `digests` row of a key.
pub(super) fn digest_row(digest: &[u8; 32], number: u32) -> u64 {
    digest_rows(digest).start() | u64::from(number)
}

/// The record with this digest, if any, in the tables of one transaction:
/// its row is in one of the digest tables (`levels`, [`DIGEST_TABLES`]).
pub(super) fn find_by_digest<D: ReadableTable<u64, i64>>(
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

/// The digest tables of a write transaction, in [`DIGEST_TABLES`] order.
pub(super) fn open_levels(txn: &WriteTransaction) -> Result<[redb::Table<'_, u64, i64>; 3], Error> {
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
pub(super) fn insert_records(
    txn: &WriteTransaction,
    records: &[KeyRecord],
    digests: NewDigests,
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
            record.state().word(),
        ));
    }
    rows.sort_unstable_by_key(|&(row, _, _)| row);
    let mut tables = open_levels(txn)?;
    for (row, digest, state) in rows {
        // A repeat aborts the transaction. The records of this batch are
        // already in `table`, so a repeat within it is found too.
        if digests == NewDigests::Unchecked
            && find_by_digest(&tables, &table, &Digest::from_bytes(digest))?.is_some()
        {
            return Err(repeated_digest());
        }
        tables[2].insert(row, state)?;
    }
    let rows = |table: &redb::Table<'_, u64, i64>| redb::ReadableTableMetadata::len(table);
    let fresh = rows(&tables[2])?;
    if fresh <= levels.fresh_max {
        // The common case: no move, and no count of the larger tables.
        return Ok(());
    }
    let counts = [rows(&tables[0])?, rows(&tables[1])?, fresh];
    drop(tables);
    settle(txn, counts, levels)
}

/// Makes the moves [`Levels::moves`] asks for, given the rows `counts` of
/// the three tables.
fn settle(txn: &WriteTransaction, counts: [u64; 3], levels: Levels) -> Result<(), Error> {
    for &(from, into) in levels.moves(counts) {
        move_rows(txn, table_of(from), table_of(into))?;
    }
    Ok(())
}

/// The table holding a level's rows.
fn table_of(level: Level) -> TableDefinition<'static, u64, i64> {
    match level {
        Level::Digests => DIGESTS,
        Level::Recent => RECENT,
        Level::Fresh => FRESH,
    }
}

/// Moves every row of `from` into `into`, in key order, and empties `from`
/// (deleting a table frees its pages at once).
pub(super) fn move_rows(
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
pub(super) fn update_state(txn: &WriteTransaction, row: u64, state: i64) -> Result<(), Error> {
    for mut table in open_levels(txn)? {
        if table.get(row)?.is_some() {
            table.insert(row, state)?;
            return Ok(());
        }
    }
    Err(Error::Corrupted("a stored key has no digest row".into()))
}
