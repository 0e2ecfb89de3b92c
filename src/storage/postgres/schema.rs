//! The schema, created and versioned by the library (`docs/postgres.md`):
//! created in one transaction under an advisory lock, so that processes
//! opening a new database at once do not race; the format version and the
//! pepper fingerprint checked on every open; a database of an earlier
//! version upgraded in place, in one transaction under the same lock.

use postgres::{Client, Transaction};

use crate::error::Error;
use crate::key::digest::fingerprints_match;

/// The schema's version, in `apikeys_meta`. Opening a database with a later
/// one is [`Error::UnsupportedVersion`]; an earlier one is upgraded by
/// [`UPGRADES`]. Version 1 had no `apikeys_legacy`.
pub(super) const SCHEMA_VERSION: u32 = 2;

/// What takes a database of version `i + 1` to `i + 2`.
const UPGRADES: [&str; SCHEMA_VERSION as usize - 1] = [LEGACY];

/// Imported keys (moving in): each filed under its handle in its source
/// (`crate::legacy::handle`). Rows are never removed, so that an import run
/// again finds every key it imported, re-digested or not.
const LEGACY: &str = "
CREATE TABLE IF NOT EXISTS apikeys_legacy (
    handle bytea PRIMARY KEY,
    id text NOT NULL REFERENCES apikeys_keys (id)
);
";

/// The advisory lock taken while the schema is checked or created.
const SCHEMA_LOCK: i64 = 0x6170_696b_6579_7301;

/// The channel writers notify at commit; only a wake-up for the feed.
pub(crate) const CHANNEL: &str = "apikeys_feed";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS apikeys_meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
-- Key numbers, written into ids as the redb backend writes its own, so that
-- ids sort by creation and a store moves between backends unchanged.
CREATE SEQUENCE IF NOT EXISTS apikeys_key_number MINVALUE 1 MAXVALUE 4294967295;
CREATE TABLE IF NOT EXISTS apikeys_keys (
    id text PRIMARY KEY,
    digest bytea NOT NULL UNIQUE,
    -- The key's state word: unix seconds of expiry, i64::MAX never, i64::MIN revoked.
    state bigint NOT NULL,
    -- The versioned record (name, scopes, links...); never a key.
    record bytea NOT NULL,
    -- The feed version of the transaction that last wrote the key.
    version bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS apikeys_keys_version ON apikeys_keys (version);
CREATE TABLE IF NOT EXISTS apikeys_usage (
    id text PRIMARY KEY REFERENCES apikeys_keys (id),
    use_count bigint NOT NULL DEFAULT 0,
    last_used bigint,
    rejected_count bigint NOT NULL DEFAULT 0,
    last_rejected bigint
);
CREATE TABLE IF NOT EXISTS apikeys_events (
    sequence bigint PRIMARY KEY,
    at bigint NOT NULL,
    key_id text NOT NULL,
    event bytea NOT NULL
);
-- The change feed: one row, updated first in every transaction that changes
-- keys or appends events. Its row lock orders those transactions: versions
-- and event sequences commit in the order they are handed out.
CREATE TABLE IF NOT EXISTS apikeys_feed (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL,
    last_event bigint NOT NULL
);
INSERT INTO apikeys_feed (one, version, last_event) VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
";

/// The schema's version in `apikeys_meta`, if it has one.
fn stored_version(txn: &mut Transaction<'_>) -> Result<Option<u32>, Error> {
    let Some(row) = txn.query_opt("SELECT value FROM apikeys_meta WHERE name = 'version'", &[])?
    else {
        return Ok(None);
    };
    let value: &[u8] = row.get(0);
    <[u8; 4]>::try_from(value)
        .map(|bytes| Some(u32::from_le_bytes(bytes)))
        .map_err(|_| Error::Corrupted("the schema version is unreadable".into()))
}

/// Upgrades a database of an earlier version in place, in the open's
/// transaction: under the schema lock, so that of several processes opening
/// it at once one upgrades and the others find it done.
fn upgrade(txn: &mut Transaction<'_>) -> Result<(), Error> {
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    // Read again under the lock: another process may have upgraded it.
    let from = stored_version(txn)?.unwrap_or(SCHEMA_VERSION);
    if from > SCHEMA_VERSION {
        return Err(Error::UnsupportedVersion(from));
    }
    let steps = UPGRADES
        .get(from.saturating_sub(1) as usize..)
        .unwrap_or(&[]);
    for (to, step) in (from + 1..).zip(steps) {
        txn.batch_execute(step)
            .map_err(|error| match Error::from(error) {
                // Most likely a role that may use the tables but not create any.
                Error::Storage(message) => Error::Storage(format!(
                    "upgrading the schema from version {from} to {to}: {message} (open the \
                 store once as a role that may create tables, such as its owner)"
                )),
                other => other,
            })?;
    }
    txn.execute(
        "UPDATE apikeys_meta SET value = $1 WHERE name = 'version'",
        &[&SCHEMA_VERSION.to_le_bytes().as_slice()],
    )?;
    Ok(())
}

/// Creates the schema if the database has none, then checks its version and
/// the pepper's fingerprint.
pub(super) fn check_or_create(client: &mut Client, fingerprint: &[u8; 32]) -> Result<(), Error> {
    let mut txn = client.transaction()?;
    // Created only when missing: a role that may use the tables but not
    // create any (the usual for a service) opens an existing store.
    let exists: bool = txn
        .query_one("SELECT to_regclass('apikeys_meta') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
        txn.batch_execute(CREATE)?;
        txn.batch_execute(LEGACY)?;
    }
    let version = stored_version(&mut txn)?;
    let stored_fingerprint: Option<Vec<u8>> = txn
        .query_opt(
            "SELECT value FROM apikeys_meta WHERE name = 'fingerprint'",
            &[],
        )?
        .map(|row| row.get(0));
    match (version, stored_fingerprint) {
        (None, None) => {
            txn.execute(
                "INSERT INTO apikeys_meta (name, value) VALUES ('version', $1), ('fingerprint', $2)",
                &[&SCHEMA_VERSION.to_le_bytes().as_slice(), &fingerprint.as_slice()],
            )?;
        }
        (Some(version), Some(stored)) => {
            if version > SCHEMA_VERSION {
                return Err(Error::UnsupportedVersion(version));
            }
            if version == 0 {
                return Err(Error::Corrupted("the schema version is 0".into()));
            }
            if !fingerprints_match(&stored, fingerprint) {
                return Err(Error::WrongPepper);
            }
            if version < SCHEMA_VERSION {
                upgrade(&mut txn)?;
            }
        }
        _ => {
            return Err(Error::Corrupted(
                "the database's apikeys_meta table is incomplete".into(),
            ))
        }
    }
    txn.commit()?;
    Ok(())
}
