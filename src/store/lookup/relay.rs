//! Usage of a machine's workers, written to PostgreSQL by the machine's
//! feeder: the connections a machine holds stay at the feed's and one
//! usage connection, whatever the number of workers and the load.
//!
//! A worker's timed flush sends its counts as datagrams to a Unix socket
//! beside the machine's lease, owned by the feeder (`apikeys-….usage`, in
//! the owner-only machine directory); the feeder sums what arrives and
//! writes it every flush interval, as the sorted commutative increments of
//! [`Storage::add_usage`]. A count is handed over once: the worker forgets
//! it when its datagram is queued, so nothing is counted twice.
//!
//! When there is no feeder to take it (none elected yet, its queue full, the
//! socket path too long), the worker writes through its own connection as
//! before; an explicit [`KeyStore::flush`](crate::KeyStore::flush) and
//! close always do, so that they return with the counts in the database.
//! A feeder that dies loses the counts it had not written yet, as a
//! worker that dies loses its own: usage is a count of the past, never a
//! decision.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Timestamp;
use crate::record::{EventKind, Usage};
use crate::storage::{Storage, UsageDelta};
use crate::usage::PendingUsage;

use super::fleet::UsageWriter;

const MAGIC: &[u8; 4] = b"AKU1";
/// Largest datagram sent: well under the default socket buffer, so that a
/// few flushes queue while the feeder writes.
const DATAGRAM_MAX: usize = 16 * 1024;
/// A delta: id length, id, then six 8-byte fields.
const FIELDS: usize = 6 * 8;
const NO_TIME: i64 = i64::MIN;

/// The counts of one key, as they travel.
#[derive(Default, Clone, Copy, PartialEq, Debug)]
struct Counts {
    use_count: u64,
    last_used: Option<i64>,
    rejected_count: u64,
    last_rejected: Option<i64>,
    revoked_uses: u64,
    expired_uses: u64,
}

impl Counts {
    /// `None` for a delta carrying an event the relay does not carry.
    fn of(delta: &UsageDelta<'_>) -> Option<Counts> {
        let mut counts = Counts {
            use_count: delta.usage.use_count,
            last_used: delta.usage.last_used.map(Timestamp::unix),
            rejected_count: delta.usage.rejected_count,
            last_rejected: delta.usage.last_rejected.map(Timestamp::unix),
            ..Counts::default()
        };
        for event in &delta.events {
            match event {
                EventKind::RevokedKeyUsed { count } => counts.revoked_uses += count,
                EventKind::ExpiredKeyUsed { count } => counts.expired_uses += count,
                _ => return None,
            }
        }
        Some(counts)
    }

    fn add(&mut self, other: &Counts) {
        self.use_count = self.use_count.saturating_add(other.use_count);
        self.rejected_count = self.rejected_count.saturating_add(other.rejected_count);
        self.revoked_uses = self.revoked_uses.saturating_add(other.revoked_uses);
        self.expired_uses = self.expired_uses.saturating_add(other.expired_uses);
        self.last_used = self.last_used.max(other.last_used);
        self.last_rejected = self.last_rejected.max(other.last_rejected);
    }

    fn pending(&self) -> PendingUsage {
        PendingUsage {
            usage: Usage {
                last_used: self.last_used.map(Timestamp::from_unix),
                use_count: self.use_count,
                rejected_count: self.rejected_count,
                last_rejected: self.last_rejected.map(Timestamp::from_unix),
            },
            revoked_uses: self.revoked_uses,
            expired_uses: self.expired_uses,
        }
    }
}

fn encode(buffer: &mut Vec<u8>, id: &str, counts: &Counts) {
    buffer.push(id.len() as u8);
    buffer.extend_from_slice(id.as_bytes());
    for word in [
        counts.use_count as i64,
        counts.last_used.unwrap_or(NO_TIME),
        counts.rejected_count as i64,
        counts.last_rejected.unwrap_or(NO_TIME),
        counts.revoked_uses as i64,
        counts.expired_uses as i64,
    ] {
        buffer.extend_from_slice(&word.to_le_bytes());
    }
}

/// The deltas of one datagram; `None` if it is not one of ours (it is
/// then dropped whole).
fn decode(datagram: &[u8]) -> Option<Vec<(String, Counts)>> {
    let mut rest = datagram.strip_prefix(MAGIC)?;
    let mut deltas = Vec::new();
    while let Some((&length, after)) = rest.split_first() {
        let length = usize::from(length);
        if after.len() < length + FIELDS {
            return None;
        }
        let id = std::str::from_utf8(&after[..length]).ok()?.to_string();
        let mut words = after[length..length + FIELDS]
            .chunks_exact(8)
            .map(|word| i64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        let mut next = || words.next().unwrap_or(0);
        let time = |word: i64| (word != NO_TIME).then_some(word);
        let counts = Counts {
            use_count: next() as u64,
            last_used: time(next()),
            rejected_count: next() as u64,
            last_rejected: time(next()),
            revoked_uses: next() as u64,
            expired_uses: next() as u64,
        };
        deltas.push((id, counts));
        rest = &after[length + FIELDS..];
    }
    Some(deltas)
}

/// A worker's side: sends its timed flushes to the machine's feeder.
pub(super) struct UsageSender {
    path: PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
}

impl UsageSender {
    pub(super) fn new(path: PathBuf) -> Self {
        UsageSender {
            path,
            socket: Mutex::new(None),
        }
    }

    /// Hands the leading deltas over to the feeder; how many it took (the
    /// caller writes the rest itself).
    pub(super) fn send(&self, deltas: &[UsageDelta<'_>]) -> usize {
        let mut slot = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            // A full queue (ten datagrams by default on Linux) is waited
            // for a moment: this is the flusher thread, off every verify.
            *slot = UnixDatagram::unbound()
                .and_then(|socket| {
                    socket.set_write_timeout(Some(SEND_WAIT))?;
                    Ok(socket)
                })
                .ok();
        }
        let Some(socket) = slot.as_ref() else {
            return 0;
        };
        let mut sent = 0;
        let mut buffer = Vec::with_capacity(DATAGRAM_MAX);
        while sent < deltas.len() {
            buffer.clear();
            buffer.extend_from_slice(MAGIC);
            let mut taken = 0;
            for delta in &deltas[sent..] {
                if buffer.len() + 1 + delta.id.len() + FIELDS > DATAGRAM_MAX
                    || delta.id.len() > usize::from(u8::MAX)
                {
                    break;
                }
                let Some(counts) = Counts::of(delta) else {
                    break;
                };
                encode(&mut buffer, delta.id, &counts);
                taken += 1;
            }
            // Queued whole or not at all (a datagram); no feeder, or one
            // whose queue stayed full: the caller writes the rest.
            if taken == 0 || socket.send_to(&buffer, &self.path).is_err() {
                break;
            }
            sent += taken;
        }
        sent
    }
}

/// The feeder's side: a socket that takes the machine's usage, read by
/// this thread, and a second thread that writes what it summed every
/// interval, until `stop`. Reading never waits on the database, so the
/// socket's short queue (ten datagrams by default on Linux) drains while a
/// write is under way. On `stop` (within [`STOP_LATENCY`]) the socket goes,
/// what is queued is taken, and the writer writes it before returning: a
/// feeder that closes its store loses nothing it was handed.
pub(super) fn receive(path: &Path, writer: UsageWriter, idle: Duration, stop: &dyn Fn() -> bool) {
    // A socket left by a feeder that died: this one holds the lease now.
    let _ = std::fs::remove_file(path);
    let Ok(socket) = UnixDatagram::bind(path) else {
        return; // workers write their own usage
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    let interval = writer.interval.max(Duration::from_millis(10));
    let _ = socket.set_read_timeout(Some(interval.min(STOP_LATENCY)));
    let held: Mutex<HashMap<String, Counts>> = Mutex::new(HashMap::new());
    let reading_done = (Mutex::new(false), Condvar::new());
    let take = |datagram: &[u8]| {
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, counts) in decode(datagram).unwrap_or_default() {
            held.entry(id).or_default().add(&counts);
        }
    };
    std::thread::scope(|scope| {
        let writing = std::thread::Builder::new()
            .name("apikeys-usage-write".into())
            .spawn_scoped(scope, || {
                let closer = writer.storage.idle_closer();
                loop {
                    let (done, changed) = &reading_done;
                    let done = done.lock().unwrap_or_else(PoisonError::into_inner);
                    let (done, _) = changed
                        .wait_timeout_while(done, interval, |done| !*done)
                        .unwrap_or_else(PoisonError::into_inner);
                    let last = *done;
                    drop(done);
                    write(&writer, &held);
                    closer.close_if_idle(idle);
                    if last {
                        return;
                    }
                }
            });
        let mut buffer = vec![0u8; DATAGRAM_MAX];
        while !stop() {
            if let Ok(length) = socket.recv(&mut buffer) {
                take(&buffer[..length]);
            }
        }
        // Stopping: no new datagram can arrive once the name is gone; then
        // what is queued (and a send midway, a moment later) is taken.
        let _ = std::fs::remove_file(path);
        let _ = socket.set_nonblocking(true);
        for _ in 0..2 {
            while let Ok(length) = socket.recv(&mut buffer) {
                take(&buffer[..length]);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (done, changed) = &reading_done;
        *done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        changed.notify_all();
        if writing.is_err() {
            write(&writer, &held);
        }
    });
}

/// How long a worker's timed flush waits for room in the feeder's queue
/// before writing through its own connection.
const SEND_WAIT: Duration = Duration::from_millis(50);

/// How soon the relay sees a stop.
const STOP_LATENCY: Duration = Duration::from_millis(50);

/// Whether this process's relay is running, for the store's drop to wait
/// for its last write.
#[derive(Default)]
pub(super) struct Running {
    /// The process the relay runs in, while it runs (a child made by
    /// `fork()` has a copy of this and no relay: it must not wait).
    running: Mutex<Option<u32>>,
    changed: Condvar,
}

impl Running {
    pub(super) fn set(&self, running: bool) {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) =
            running.then(std::process::id);
        self.changed.notify_all();
    }

    /// Waits up to `limit` for this process's relay to end (its last write
    /// waits on the database, which may be down).
    pub(super) fn wait_ended(&self, limit: Duration) {
        let here = std::process::id();
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(running, limit, |running| *running == Some(here));
    }
}

/// Writes what is held; put back for the next time if the database fails.
fn write(writer: &UsageWriter, held: &Mutex<HashMap<String, Counts>>) {
    let taken = std::mem::take(&mut *held.lock().unwrap_or_else(PoisonError::into_inner));
    if taken.is_empty() {
        return;
    }
    let pending: Vec<(&String, PendingUsage)> = taken
        .iter()
        .map(|(id, counts)| (id, counts.pending()))
        .collect();
    let deltas: Vec<UsageDelta<'_>> = pending
        .iter()
        .map(|(id, pending)| UsageDelta {
            id,
            usage: pending.usage,
            events: pending.events(),
        })
        .collect();
    if writer
        .storage
        .add_usage(&deltas, writer.clock.now())
        .is_err()
    {
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, counts) in taken {
            held.entry(id).or_default().add(&counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_travel_unchanged_and_a_foreign_datagram_is_dropped() {
        let counts = Counts {
            use_count: 7,
            last_used: Some(1_700_000_000),
            rejected_count: 2,
            last_rejected: None,
            revoked_uses: 1,
            expired_uses: 1,
        };
        let mut buffer = MAGIC.to_vec();
        encode(&mut buffer, "k_0000000001abcd", &counts);
        encode(&mut buffer, "k_2", &Counts::default());
        let decoded = decode(&buffer).unwrap();
        assert_eq!(decoded[0], ("k_0000000001abcd".to_string(), counts));
        assert_eq!(decoded[1], ("k_2".to_string(), Counts::default()));
        assert!(decode(b"AKU0").is_none());
        assert!(
            decode(&buffer[..buffer.len() - 1]).is_none(),
            "a cut datagram"
        );
        let mut summed = counts;
        summed.add(&counts);
        assert_eq!((summed.use_count, summed.revoked_uses), (14, 2));
        assert_eq!(summed.last_used, Some(1_700_000_000));
    }
}
