//! The change feed a machine's replica follows: every key written since the
//! feed version it last saw, read by one statement (so in one snapshot) with
//! the version that snapshot is current to. `LISTEN` on [`CHANNEL`] only wakes the reader
//! early; it polls anyway (PgBouncer in transaction mode, replicas and
//! CockroachDB have no `LISTEN`).
//!
//! Why it cannot skip a change: every writing transaction updates the one
//! feed row first and holds its lock until it commits, so a transaction
//! gets version v + 1 only after the one with v has committed. A snapshot
//! that sees version V therefore sees every transaction up to V, and a key
//! written by one of them carries its version (or a later one). Reading
//! `version > last_seen` then misses nothing. A `bigserial` does not work
//! that way: numbers are handed out at insert, transactions commit in any
//! order, and a reader that saw 8 skips a 7 committed after it
//! (`tests/postgres.rs` reproduces both).

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Statement};

use crate::error::Error;
use crate::record::KeyRecord;

use super::schema::CHANNEL;
use super::Server;

/// A connection of its own that reads the feed.
pub(crate) struct Feed {
    server: Server,
    client: Option<(Client, Statement)>,
}

/// One statement, so one snapshot: the feed's version and every key
/// written after `$1` as of that version (a row with no record when none).
const CHANGES: &str = "SELECT f.version, k.record FROM apikeys_feed f
     LEFT JOIN apikeys_keys k ON k.version > $1 ORDER BY k.version";

/// What one read of the feed brought.
pub(crate) struct Changes {
    /// The feed version the read was current to: the next read starts there.
    pub(crate) version: i64,
    /// Every key written after the previous version, as of `version`.
    pub(crate) records: Vec<KeyRecord>,
}

impl Feed {
    pub(crate) fn new(server: Server) -> Self {
        Feed {
            server,
            client: None,
        }
    }

    fn client(&mut self) -> Result<&mut (Client, Statement), Error> {
        if self
            .client
            .as_ref()
            .is_none_or(|(client, _)| client.is_closed())
        {
            let mut client = self.server.connect()?;
            // Before the first read: a commit after that read's snapshot
            // then always leaves a notification on this connection.
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            let changes = client.prepare(CHANGES)?;
            self.client = Some((client, changes));
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::DatabaseUnavailable("no connection".into()))
    }

    /// Every key written after feed version `after`, and the version the
    /// answer is current to. On failure the connection is dropped and the
    /// next call reconnects.
    pub(crate) fn changes_since(&mut self, after: i64) -> Result<Changes, Error> {
        let result = (|| {
            let (client, changes) = self.client()?;
            let rows = client.query(&*changes, &[&after])?;
            let version: i64 = rows
                .first()
                .ok_or_else(|| Error::Corrupted("the feed row is missing".into()))?
                .get(0);
            let records = rows
                .iter()
                .filter_map(|row| row.get::<_, Option<&[u8]>>(1))
                .map(KeyRecord::decode)
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(Changes { version, records })
        })();
        if result.is_err() {
            self.client = None;
        }
        result
    }

    /// Waits up to `timeout` for a writer's notification; returns at once
    /// if one is pending. Without a connection, sleeps.
    pub(crate) fn wait(&mut self, timeout: Duration) {
        let Some((client, _)) = self.client.as_mut() else {
            std::thread::sleep(timeout);
            return;
        };
        let failed = {
            let mut notifications = client.notifications();
            let woken = notifications.timeout_iter(timeout).next();
            match woken {
                Ok(Some(_)) => {
                    // Drain what else is queued: one read serves them all.
                    let mut pending = notifications.iter();
                    while let Ok(Some(_)) = pending.next() {}
                    false
                }
                Ok(None) => false,
                Err(_) => true,
            }
        };
        if failed {
            self.client = None;
        }
    }
}
