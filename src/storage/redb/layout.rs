//! The redb file's layout: its tables, the format version, and how a file is
//! checked, created or upgraded at open. The layout and its history are in
//! `docs/storage-redb.md`.

use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};

use crate::error::Error;
use crate::key::digest::fingerprints_match;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const RECORDS: TableDefinition<u32, &[u8]> = TableDefinition::new("records");
pub(super) const DIGESTS: TableDefinition<u64, i64> = TableDefinition::new("digests");
pub(super) const RECENT: TableDefinition<u64, i64> = TableDefinition::new("digests_recent");
pub(super) const FRESH: TableDefinition<u64, i64> = TableDefinition::new("digests_fresh");
/// The digest index's tables, oldest rows first: the order lookups read them
/// in (most keys of a store are old).
pub(super) const DIGEST_TABLES: [TableDefinition<u64, i64>; 3] = [DIGESTS, RECENT, FRESH];
pub(super) const USAGE: TableDefinition<u32, &[u8]> = TableDefinition::new("usage");
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Version of the table layout; a store with another one is refused (no
/// file of version 1, the layout keyed by digest, was ever released).
pub(super) const FORMAT_VERSION: u32 = 5;

/// The oldest layout this library still opens, upgrading it in place:
/// formats 3 and 4 lack only digest tables that start empty
/// (`digests_fresh`, `digests_recent`).
pub(super) const FORMAT_UPGRADABLE: u32 = 3;
pub(super) const META_FORMAT: &str = "format_version";
pub(super) const META_FINGERPRINT: &str = "pepper_fingerprint";

/// Checks the format and pepper of an opened file, creates every table of a
/// new one, and upgrades the formats this library still opens.
pub(super) fn check_or_initialize(db: &Database, fingerprint: &[u8; 32]) -> Result<(), Error> {
    // Usually the store exists: check it with a read transaction.
    {
        let txn = db.begin_read()?;
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
    let txn = db.begin_write()?;
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
