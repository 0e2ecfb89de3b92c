//! The fleet backend: a store in a PostgreSQL database, the source of truth
//! for every machine (feature `postgres`). This file implements [`Storage`]
//! over one connection; `connect` (URLs, passwords, TLS), `schema` (tables,
//! version, pepper), `feed` (the change feed the machines' replicas follow)
//! and `error` (the client's errors as [`Error`]) own one concept each.
//! The design and the proof of the revocation bound: `docs/postgres.md`.
//!
//! Every transaction that changes keys or appends events first updates the
//! one row of `apikeys_feed`. That row lock orders those transactions, so
//! feed versions and event sequences commit in the order they are handed
//! out: a reader that sees version V has seen every change up to V.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::key::id::stamp_number;
use crate::legacy::{Source, Sources};
use crate::record::{Event, EventKind, KeyRecord, StoredState, Usage};
use crate::state::KeyState;
use crate::storage::{
    created_events, events_about, link_rotation, ChangeFn, Changed, FiledHandle, ImportedKey,
    NewDigests, Storage, Target, UsageDelta,
};

pub(crate) mod connect;
mod error;
pub(crate) mod feed;
mod schema;

pub(crate) use connect::{redacted, split_url, Server};

/// A PostgreSQL database holding one store. One connection, opened by the
/// first call that needs it (verify from memory needs none), again after a
/// failure by the next call, and closed by [`IdleCloser`] once idle; calls
/// from several threads take turns.
pub(crate) struct PgStorage {
    server: Server,
    connection: Arc<Mutex<Option<(Connection, Instant)>>>,
    /// The sources of imported keys, read by open on its connection: the
    /// answer to the first [`Storage::legacy_sources`] (the store's, at
    /// open), which then needs no call connection.
    sources_at_open: Mutex<Option<Sources>>,
}

/// Closes a store's call connection once it has not been used for a while,
/// so that idle workers hold no backend. Held by a thread that outlives no
/// store (a weak reference).
pub(crate) struct IdleCloser(Weak<Mutex<Option<(Connection, Instant)>>>);

impl IdleCloser {
    /// Closes the connection if its last call ended more than `idle` ago;
    /// false once the store is gone. Never waits behind a running call.
    pub(crate) fn close_if_idle(&self, idle: Duration) -> bool {
        let Some(slot) = self.0.upgrade() else {
            return false;
        };
        if let Ok(mut slot) = slot.try_lock() {
            if slot.as_ref().is_some_and(|(_, last)| last.elapsed() > idle) {
                *slot = None;
            }
        }
        true
    }
}

/// A connection with the statements of the verify path prepared once: a
/// query by text costs a second round trip to be prepared each time.
struct Connection {
    client: Client,
    by_digest: Statement,
    key_state: Statement,
    /// An imported key's verify until its re-digest.
    by_handle: Statement,
}

impl Connection {
    fn new(server: &Server) -> Result<Connection, Error> {
        let mut client = server.connect()?;
        let by_digest = client.prepare("SELECT record FROM apikeys_keys WHERE digest = $1")?;
        let key_state = client.prepare("SELECT state FROM apikeys_keys WHERE digest = $1")?;
        let by_handle = client.prepare(
            "SELECT k.record FROM apikeys_legacy l JOIN apikeys_keys k ON k.id = l.id
             WHERE l.handle = $1",
        )?;
        Ok(Connection {
            client,
            by_digest,
            key_state,
            by_handle,
        })
    }
}

impl PgStorage {
    /// Connects, creates the schema if needed, checks version and pepper.
    pub(crate) fn open(server: Server, fingerprint: &[u8; 32]) -> Result<Self, Error> {
        let mut client = server.connect()?;
        schema::check_or_create(&mut client, fingerprint)?;
        let sources = stored_sources(&mut client)?;
        drop(client);
        Ok(PgStorage {
            server,
            connection: Arc::new(Mutex::new(None)),
            sources_at_open: Mutex::new(Some(sources)),
        })
    }

    /// Another handle on the same database, whose schema and pepper `open`
    /// checked: a connection of its own, opened at first use (the machine
    /// feeder's usage writer, `store::lookup::relay`).
    pub(crate) fn another(&self) -> PgStorage {
        PgStorage {
            server: self.server.clone(),
            connection: Arc::new(Mutex::new(None)),
            sources_at_open: Mutex::new(None),
        }
    }

    /// What closes the call connection when idle.
    pub(crate) fn idle_closer(&self) -> IdleCloser {
        IdleCloser(Arc::downgrade(&self.connection))
    }

    /// Runs `body` on the connection, connecting first if there is none. A
    /// connection that failed is dropped, so that the next call reconnects.
    fn with_client<T>(
        &self,
        body: impl FnOnce(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.with_connection(|connection| body(&mut connection.client))
    }

    fn with_connection<T>(
        &self,
        body: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot
            .as_ref()
            .is_none_or(|(connection, _)| connection.client.is_closed())
        {
            *slot = Some((Connection::new(&self.server)?, Instant::now()));
        }
        let (connection, last) = slot
            .as_mut()
            .ok_or_else(|| Error::DatabaseUnavailable("no connection".into()))?;
        let result = body(connection);
        *last = Instant::now();
        if matches!(result, Err(Error::DatabaseUnavailable(_))) || connection.client.is_closed() {
            *slot = None;
        }
        result
    }

    /// A write transaction: takes the feed row (and with it the turn among
    /// writers), runs `body` with the transaction's feed version, wakes the
    /// feed's listeners at commit. Durable when it returns (PostgreSQL's
    /// commit, with the server's `synchronous_commit`).
    fn write<T>(
        &self,
        body: impl FnOnce(&mut Transaction<'_>, i64) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.write_if(|txn, version| Ok((body(txn, version)?, true)))
    }

    /// [`write`](Self::write) whose body says whether to commit (`false`
    /// rolls back, the feed version with it).
    fn write_if<T>(
        &self,
        body: impl FnOnce(&mut Transaction<'_>, i64) -> Result<(T, bool), Error>,
    ) -> Result<T, Error> {
        self.with_client(|client| {
            let mut txn = client.transaction()?;
            let version: i64 = txn
                .query_typed_one(
                    "UPDATE apikeys_feed SET version = version + 1 RETURNING version",
                    &[],
                )?
                .get(0);
            let (value, commit) = body(&mut txn, version)?;
            if commit {
                txn.execute_typed(
                    "SELECT pg_notify($1, '')",
                    &[(&schema::CHANNEL, Type::TEXT)],
                )?;
                txn.commit()?;
            } else {
                txn.rollback()?;
            }
            Ok(value)
        })
    }
}

/// Gives each record a key number from the sequence, written into its id.
fn number_records(txn: &mut Transaction<'_>, records: &mut [&mut KeyRecord]) -> Result<(), Error> {
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let rows = txn.query_typed(
        "SELECT nextval('apikeys_key_number') FROM generate_series(1, $1::int8)",
        &[(&count, Type::INT8)],
    )?;
    for (record, row) in records.iter_mut().zip(rows) {
        let number: i64 = row.get(0);
        let number = u32::try_from(number)
            .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))?;
        record.id = stamp_number(&record.id, number)?;
    }
    Ok(())
}

/// Inserts numbered records with empty usage, at feed `version`.
fn insert_records(
    txn: &mut Transaction<'_>,
    records: &[&KeyRecord],
    version: i64,
) -> Result<(), Error> {
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let digests: Vec<&[u8]> = records.iter().map(|r| r.digest.as_slice()).collect();
    let states: Vec<i64> = records.iter().map(|r| r.state().word()).collect();
    let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode()).collect();
    let inserted = txn.execute_typed(
        "INSERT INTO apikeys_keys (id, digest, state, record, version)
         SELECT id, digest, state, record, $5
         FROM unnest($1::text[], $2::bytea[], $3::int8[], $4::bytea[]) AS t(id, digest, state, record)",
        &[
            (&ids, Type::TEXT_ARRAY),
            (&digests, Type::BYTEA_ARRAY),
            (&states, Type::INT8_ARRAY),
            (&encoded, Type::BYTEA_ARRAY),
            (&version, Type::INT8),
        ],
    );
    inserted.map_err(error::of_digest_write)?;
    txn.execute_typed(
        "INSERT INTO apikeys_usage (id) SELECT unnest($1::text[])",
        &[(&ids, Type::TEXT_ARRAY)],
    )?;
    Ok(())
}

/// Appends events, numbered from the feed row's counter: the row is held
/// by this transaction, so sequences commit in order and a reader paging
/// with `after` never skips one.
fn append_events(
    txn: &mut Transaction<'_>,
    at: Timestamp,
    events: Vec<(String, EventKind)>,
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: i64 = txn
        .query_typed_one(
            "UPDATE apikeys_feed SET last_event = last_event + $1 RETURNING last_event",
            &[(&count, Type::INT8)],
        )?
        .get(0);
    let first = last - count + 1;
    let mut sequences = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut encoded = Vec::with_capacity(events.len());
    for (offset, (key_id, kind)) in events.into_iter().enumerate() {
        let sequence = first + offset as i64;
        let event = Event {
            sequence: sequence as u64,
            at,
            key_id,
            kind,
        };
        encoded.push(event.encode());
        ids.push(event.key_id);
        sequences.push(sequence);
    }
    txn.execute_typed(
        "INSERT INTO apikeys_events (sequence, at, key_id, event)
         SELECT s, $2, k, e FROM unnest($1::int8[], $3::text[], $4::bytea[]) AS t(s, k, e)",
        &[
            (&sequences, Type::INT8_ARRAY),
            (&at.unix(), Type::INT8),
            (&ids, Type::TEXT_ARRAY),
            (&encoded, Type::BYTEA_ARRAY),
        ],
    )?;
    Ok(())
}

/// Files each key `ids[i]` under its handle `handles[i]`.
fn file_handles(txn: &mut Transaction<'_>, handles: &[&[u8]], ids: &[&str]) -> Result<(), Error> {
    txn.execute(
        "INSERT INTO apikeys_legacy (handle, id) SELECT * FROM unnest($1::bytea[], $2::text[])",
        &[&handles, &ids],
    )?;
    Ok(())
}

/// Which of these handles are stored.
fn known_handles(
    client: &mut impl GenericClient,
    handles: &[&[u8]],
) -> Result<HashSet<Vec<u8>>, Error> {
    let rows = client.query(
        "SELECT handle FROM apikeys_legacy WHERE handle = ANY($1)",
        &[&handles],
    )?;
    Ok(rows.iter().map(|row| row.get::<_, Vec<u8>>(0)).collect())
}

/// Which sources have handles stored: one probe of the handles' index per
/// source (any handle that starts with its tag?).
fn stored_sources(client: &mut impl GenericClient) -> Result<Sources, Error> {
    let tags: Vec<i32> = Source::ALL.map(|source| i32::from(source.tag())).to_vec();
    let rows = client.query(
        "SELECT tag FROM unnest($1::int4[]) AS tag WHERE EXISTS (
            SELECT 1 FROM apikeys_legacy WHERE handle >= set_byte('\\x00', 0, tag)
                                           AND handle < set_byte('\\x00', 0, tag + 1))",
        &[&tags],
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let tag: i32 = row.get(0);
            Source::ALL
                .into_iter()
                .find(|source| i32::from(source.tag()) == tag)
        })
        .fold(Sources::default(), Sources::with))
}

fn timestamp(value: Option<i64>) -> Option<Timestamp> {
    value.map(Timestamp::from_unix)
}

/// Usage columns 1..=4 of a row (a key without a usage row has none).
fn usage_of(row: &Row) -> Usage {
    Usage {
        use_count: row.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as u64,
        last_used: timestamp(row.get(2)),
        rejected_count: row.get::<_, Option<i64>>(3).unwrap_or(0).max(0) as u64,
        last_rejected: timestamp(row.get(4)),
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

const RECORD_WITH_USAGE: &str =
    "SELECT k.record, u.use_count, u.last_used, u.rejected_count, u.last_rejected
     FROM apikeys_keys k LEFT JOIN apikeys_usage u ON u.id = k.id";

impl Storage for PgStorage {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        _digests: NewDigests,
    ) -> Result<(), Error> {
        // The unique constraint on digests refuses a repeat in any case.
        self.write(|txn, version| {
            let mut numbered: Vec<&mut KeyRecord> = records.iter_mut().collect();
            number_records(txn, &mut numbered)?;
            let all: Vec<&KeyRecord> = numbered.iter().map(|r| &**r).collect();
            insert_records(txn, &all, version)?;
            let events = created_events(all.iter().map(|r| &**r));
            append_events(txn, at, events)
        })
    }

    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        self.write_if(|txn, version| {
            let row = match target {
                Target::Id(id) => txn.query_typed_opt(
                    "SELECT record FROM apikeys_keys WHERE id = $1 FOR UPDATE",
                    &[(&id, Type::TEXT)],
                )?,
                Target::Digest(digest) => txn.query_typed_opt(
                    "SELECT record FROM apikeys_keys WHERE digest = $1 FOR UPDATE",
                    &[(&digest.to_bytes().as_slice(), Type::BYTEA)],
                )?,
            };
            let Some(row) = row else {
                return Err(Error::UnknownKey(match target {
                    Target::Id(id) => id.to_string(),
                    Target::Digest(_) => "(the presented key)".into(),
                }));
            };
            let mut record = KeyRecord::decode(row.get(0))?;
            let outcome = change(&mut record)?;
            if !outcome.write {
                let unchanged = Changed {
                    record,
                    changed: false,
                    successor: None,
                };
                return Ok((unchanged, false));
            }
            let mut events = events_about(&record.id, outcome.events);
            let mut successor = outcome.successor;
            if let Some(new) = successor.as_mut() {
                number_records(txn, &mut [&mut *new])?;
                link_rotation(&mut record, new, &mut events);
                insert_records(txn, &[&*new], version)?;
            }
            txn.execute_typed(
                "UPDATE apikeys_keys SET record = $2, state = $3, version = $4 WHERE id = $1",
                &[
                    (&record.id, Type::TEXT),
                    (&record.encode(), Type::BYTEA),
                    (&record.state().word(), Type::INT8),
                    (&version, Type::INT8),
                ],
            )?;
            append_events(txn, at, events)?;
            let changed = Changed {
                record,
                changed: true,
                successor,
            };
            Ok((changed, true))
        })
    }

    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        self.with_connection(|connection| {
            let row = connection
                .client
                .query_opt(&connection.by_digest, &[&digest.to_bytes().as_slice()])?;
            row.map(|row| KeyRecord::decode(row.get(0))).transpose()
        })
    }

    fn key_state(&self, digest: &Digest, _id: &str) -> Result<Option<KeyState>, Error> {
        self.with_connection(|connection| {
            let row = connection
                .client
                .query_opt(&connection.key_state, &[&digest.to_bytes().as_slice()])?;
            Ok(row.map(|row| KeyState::from_word(row.get(0))))
        })
    }

    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        self.with_client(|client| {
            let query = format!("{RECORD_WITH_USAGE} WHERE k.id = $1");
            let row = client.query_opt(&query, &[&id])?;
            row.map(|row| Ok((KeyRecord::decode(row.get(0))?, usage_of(&row))))
                .transpose()
        })
    }

    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        self.with_client(|client| {
            let mut rows = client.query_raw(RECORD_WITH_USAGE, std::iter::empty::<i64>())?;
            while let Some(row) = rows.next()? {
                visit(KeyRecord::decode(row.get(0))?, usage_of(&row));
            }
            Ok(())
        })
    }

    fn key_count(&self) -> Result<u64, Error> {
        self.with_client(|client| {
            let count: i64 = client
                .query_one("SELECT count(*) FROM apikeys_keys", &[])?
                .get(0);
            Ok(count.max(0) as u64)
        })
    }

    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        self.with_client(|client| {
            let mut rows = client.query_raw(
                "SELECT digest, state FROM apikeys_keys",
                std::iter::empty::<i64>(),
            )?;
            while let Some(row) = rows.next()? {
                let digest: &[u8] = row.get(0);
                let digest = <[u8; 32]>::try_from(digest)
                    .map_err(|_| Error::Corrupted("a stored digest is not 32 bytes".into()))?;
                let state = KeyState::from_word(row.get(1));
                visit(StoredState {
                    digest,
                    expires_at: state.expires_at(),
                    revoked: state.word() == crate::state::REVOKED,
                });
            }
            Ok(())
        })
    }

    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        // Commutative increments, in id order: two machines flushing the
        // same keys at once lock them in the same order and cannot deadlock.
        let mut sorted: Vec<&UsageDelta<'_>> = deltas.iter().collect();
        sorted.sort_unstable_by_key(|delta| delta.id);
        let events: Vec<(String, EventKind)> = sorted
            .iter()
            .flat_map(|delta| {
                delta
                    .events
                    .iter()
                    .map(|kind| (delta.id.to_string(), kind.clone()))
            })
            .collect();
        let apply = |txn: &mut Transaction<'_>| -> Result<(), Error> {
            let statement = txn.prepare(
                "UPDATE apikeys_usage SET
                    use_count = use_count + $2,
                    last_used = GREATEST(last_used, $3),
                    rejected_count = rejected_count + $4,
                    last_rejected = GREATEST(last_rejected, $5)
                 WHERE id = $1",
            )?;
            for delta in &sorted {
                let usage = &delta.usage;
                txn.execute(
                    &statement,
                    &[
                        &delta.id,
                        &saturating_i64(usage.use_count),
                        &usage.last_used.map(Timestamp::unix),
                        &saturating_i64(usage.rejected_count),
                        &usage.last_rejected.map(Timestamp::unix),
                    ],
                )?;
            }
            Ok(())
        };
        if events.is_empty() {
            // No event: no need for the writers' turn.
            return self.with_client(|client| {
                let mut txn = client.transaction()?;
                apply(&mut txn)?;
                txn.commit()?;
                Ok(())
            });
        }
        self.write(|txn, _version| {
            apply(txn)?;
            append_events(txn, at, events)
        })
    }

    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        self.write(|txn, version| {
            let records: Vec<&KeyRecord> = keys.iter().map(|(record, _)| record).collect();
            insert_records(txn, &records, version)?;
            let statement = txn.prepare(
                "UPDATE apikeys_usage SET use_count = $2, last_used = $3,
                    rejected_count = $4, last_rejected = $5 WHERE id = $1",
            )?;
            let mut highest = 0u32;
            for (record, usage) in keys {
                let number = crate::key::id::id_number(&record.id)
                    .ok_or_else(|| Error::Corrupted(format!("id {} has no number", record.id)))?;
                highest = highest.max(number);
                txn.execute(
                    &statement,
                    &[
                        &record.id,
                        &saturating_i64(usage.use_count),
                        &usage.last_used.map(Timestamp::unix),
                        &saturating_i64(usage.rejected_count),
                        &usage.last_rejected.map(Timestamp::unix),
                    ],
                )?;
            }
            if highest > 0 {
                txn.execute(
                    "SELECT setval('apikeys_key_number', GREATEST($1, (SELECT last_value FROM apikeys_key_number)))",
                    &[&i64::from(highest)],
                )?;
            }
            let sequences: Vec<i64> = events.iter().map(|e| saturating_i64(e.sequence)).collect();
            let ats: Vec<i64> = events.iter().map(|e| e.at.unix()).collect();
            let ids: Vec<&str> = events.iter().map(|e| e.key_id.as_str()).collect();
            let encoded: Vec<Vec<u8>> = events.iter().map(Event::encode).collect();
            txn.execute(
                "INSERT INTO apikeys_events (sequence, at, key_id, event)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::bytea[])",
                &[&sequences, &ats, &ids, &encoded],
            )?;
            txn.execute(
                "UPDATE apikeys_feed SET last_event = GREATEST(last_event, $1)",
                &[&sequences.iter().copied().max().unwrap_or(0)],
            )?;
            // The primary key refuses a handle twice, the foreign key one
            // whose key is not moved.
            let (handles, ids): (Vec<&[u8]>, Vec<&str>) = handles
                .iter()
                .map(|filed| (filed.handle.as_slice(), filed.id.as_str()))
                .unzip();
            file_handles(txn, &handles, &ids)
        })
    }

    // Moving in: the `apikeys_legacy` table, written like any key in the
    // feed row's turn, so that every machine's feed brings imported and
    // re-digested keys.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.write_if(|txn, version| {
            // Writers take turns on the feed row: the handles read here are
            // every one committed, and none is added until this commits.
            let wanted: Vec<&[u8]> = keys.iter().map(|key| key.handle.as_slice()).collect();
            let known = known_handles(txn, &wanted)?;
            let mut fresh = HashSet::new();
            let mut handles = Vec::new();
            let mut last_used = Vec::new();
            let mut records = Vec::new();
            for key in keys {
                if known.contains(key.handle.as_slice()) || !fresh.insert(key.handle.clone()) {
                    continue;
                }
                handles.push(key.handle);
                last_used.push(key.last_used.map(Timestamp::unix));
                records.push(key.record);
            }
            if records.is_empty() {
                // Nothing new: no commit, no feed version.
                return Ok((records, false));
            }
            let mut numbered: Vec<&mut KeyRecord> = records.iter_mut().collect();
            number_records(txn, &mut numbered)?;
            let all: Vec<&KeyRecord> = records.iter().collect();
            insert_records(txn, &all, version)?;
            let ids: Vec<&str> = records.iter().map(|record| record.id.as_str()).collect();
            let handles: Vec<&[u8]> = handles.iter().map(Vec::as_slice).collect();
            file_handles(txn, &handles, &ids)?;
            txn.execute(
                "UPDATE apikeys_usage u SET last_used = t.last_used
                 FROM unnest($1::text[], $2::int8[]) AS t(id, last_used)
                 WHERE u.id = t.id AND t.last_used IS NOT NULL",
                &[&ids, &last_used],
            )?;
            let events = crate::storage::imported_events(&records);
            append_events(txn, at, events)?;
            Ok((records, true))
        })
    }

    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        self.with_client(|client| {
            let known = known_handles(client, handles)?;
            Ok(handles
                .iter()
                .map(|handle| known.contains(*handle))
                .collect())
        })
    }

    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        self.with_connection(|connection| {
            let row = connection
                .client
                .query_opt(&connection.by_handle, &[&handle])?;
            row.map(|row| KeyRecord::decode(row.get(0))).transpose()
        })
    }

    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        self.write_if(|txn, version| {
            let row = txn.query_opt(
                "SELECT record FROM apikeys_keys WHERE id = $1 FOR UPDATE",
                &[&id],
            )?;
            let Some(row) = row else {
                return Ok((None, false));
            };
            let mut record = KeyRecord::decode(row.get(0))?;
            if !crate::storage::awaits_redigest(&record, from) {
                // Another verify (here or on another machine) was first.
                return Ok((None, false));
            }
            crate::storage::redigested(&mut record, to);
            // A new version: every machine's feed brings the key under its
            // new digest.
            let updated = txn.execute(
                "UPDATE apikeys_keys SET digest = $2, record = $3, version = $4 WHERE id = $1",
                &[&id, &record.digest.as_slice(), &record.encode(), &version],
            );
            updated.map_err(error::of_digest_write)?;
            append_events(txn, at, vec![(record.id.clone(), EventKind::Redigested)])?;
            Ok((Some(record), true))
        })
    }

    fn legacy_sources(&self) -> Result<Sources, Error> {
        let at_open = self
            .sources_at_open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match at_open {
            Some(sources) => Ok(sources),
            None => self.with_client(stored_sources),
        }
    }

    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        self.with_client(|client| {
            let rows = client.query("SELECT handle, id FROM apikeys_legacy", &[])?;
            Ok(rows
                .iter()
                .map(|row| FiledHandle {
                    handle: row.get::<_, &[u8]>(0).to_vec(),
                    id: row.get(1),
                })
                .collect())
        })
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        self.with_client(|client| {
            let rows = client.query(
                "SELECT event FROM apikeys_events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
                &[&saturating_i64(after), &saturating_i64(limit as u64)],
            )?;
            rows.iter().map(|row| Event::decode(row.get(0))).collect()
        })
    }
}
