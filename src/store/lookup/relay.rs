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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Timestamp;
use crate::record::Usage;
use crate::storage::{Storage, UsageDelta};
use crate::usage::PendingUsage;

use super::fleet::UsageWriter;
use crate::background::Signal;
use crate::store::info::Details;

const MAGIC: &[u8; 4] = b"AKU1";
/// Largest datagram sent: well under the default socket buffer, so that a
/// few flushes queue while the feeder writes.
const DATAGRAM_MAX: usize = 16 * 1024;
/// A delta: id length, id, then six 8-byte fields.
const FIELDS: usize = 6 * 8;
const NO_TIME: i64 = i64::MIN;

fn encode(buffer: &mut Vec<u8>, id: &str, counts: &PendingUsage) {
    let time = |at: Option<Timestamp>| at.map_or(NO_TIME, Timestamp::unix);
    buffer.push(id.len() as u8);
    buffer.extend_from_slice(id.as_bytes());
    for word in [
        counts.usage.use_count as i64,
        time(counts.usage.last_used),
        counts.usage.rejected_count as i64,
        time(counts.usage.last_rejected),
        counts.revoked_uses as i64,
        counts.expired_uses as i64,
    ] {
        buffer.extend_from_slice(&word.to_le_bytes());
    }
}

/// The keys' counts in one datagram; `None` if it is not one of ours (it
/// is then dropped whole).
fn decode(datagram: &[u8]) -> Option<Vec<(String, PendingUsage)>> {
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
        let time = |word: i64| (word != NO_TIME).then(|| Timestamp::from_unix(word));
        let counts = PendingUsage {
            usage: Usage {
                use_count: next() as u64,
                last_used: time(next()),
                rejected_count: next() as u64,
                last_rejected: time(next()),
            },
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

    /// Hands the leading keys' counts over to the feeder; how many it took
    /// (the caller writes the rest itself).
    pub(super) fn send(&self, taken: &[(Arc<Details>, PendingUsage)]) -> usize {
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
        while sent < taken.len() {
            buffer.clear();
            buffer.extend_from_slice(MAGIC);
            let mut in_datagram = 0;
            for (details, counts) in &taken[sent..] {
                let id: &str = &details.id;
                if buffer.len() + 1 + id.len() + FIELDS > DATAGRAM_MAX
                    || id.len() > usize::from(u8::MAX)
                {
                    break;
                }
                encode(&mut buffer, id, counts);
                in_datagram += 1;
            }
            // Queued whole or not at all (a datagram); no feeder, or one
            // whose queue stayed full: the caller writes the rest.
            if in_datagram == 0 || socket.send_to(&buffer, &self.path).is_err() {
                break;
            }
            sent += in_datagram;
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
pub(super) fn receive(path: &Path, writer: UsageWriter, idle: Duration, stop: &AtomicBool) {
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
    let held: Mutex<HashMap<String, PendingUsage>> = Mutex::new(HashMap::new());
    let reading_done = Signal::default();
    let take = |datagram: &[u8]| {
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, counts) in decode(datagram).unwrap_or_default() {
            held.entry(id).or_default().merge(&counts);
        }
    };
    std::thread::scope(|scope| {
        let writing = std::thread::Builder::new()
            .name("apikeys-usage-write".into())
            .spawn_scoped(scope, || {
                let closer = writer.storage.idle_closer();
                loop {
                    let last = reading_done.wait(interval);
                    write(&writer, &held);
                    closer.close_if_idle(idle);
                    if last {
                        return;
                    }
                }
            });
        let mut buffer = vec![0u8; DATAGRAM_MAX];
        while !stop.load(Ordering::SeqCst) {
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
        reading_done.raise();
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
fn write(writer: &UsageWriter, held: &Mutex<HashMap<String, PendingUsage>>) {
    let taken = std::mem::take(&mut *held.lock().unwrap_or_else(PoisonError::into_inner));
    if taken.is_empty() {
        return;
    }
    let deltas: Vec<UsageDelta<'_>> = taken.iter().map(|(id, counts)| counts.delta(id)).collect();
    if writer
        .storage
        .add_usage(&deltas, writer.clock.now())
        .is_err()
    {
        let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, counts) in taken {
            held.entry(id).or_default().merge(&counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_travel_unchanged_and_a_foreign_datagram_is_dropped() {
        let counts = PendingUsage {
            usage: Usage {
                use_count: 7,
                last_used: Some(Timestamp::from_unix(1_700_000_000)),
                rejected_count: 2,
                last_rejected: None,
            },
            revoked_uses: 1,
            expired_uses: 1,
        };
        let mut buffer = MAGIC.to_vec();
        encode(&mut buffer, "k_0000000001abcd", &counts);
        encode(&mut buffer, "k_2", &PendingUsage::default());
        let decoded = decode(&buffer).unwrap();
        assert_eq!(decoded[0], ("k_0000000001abcd".to_string(), counts));
        assert_eq!(decoded[1], ("k_2".to_string(), PendingUsage::default()));
        assert!(decode(b"AKU0").is_none());
        assert!(
            decode(&buffer[..buffer.len() - 1]).is_none(),
            "a cut datagram"
        );
        let mut summed = counts;
        summed.merge(&counts);
        assert_eq!((summed.usage.use_count, summed.revoked_uses), (14, 2));
        assert_eq!(
            summed.usage.last_used,
            Some(Timestamp::from_unix(1_700_000_000))
        );
    }
}
