//! Usage off the verify path: counts coalesced in memory, written in
//! batches by [`KeyStore::flush`], the flusher thread, close and drop.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::background::{self, Signal};
use crate::error::Error;
use crate::storage::{Storage, UsageDelta};
use crate::usage::PendingUsage;

use super::fork::FORK_GENERATION;
use super::info::Details;
use super::{Flusher, Inner, KeyStore};

impl KeyStore {
    /// Writes counted usage now. On failure the counts are kept for the next flush.
    pub fn flush(&self) -> Result<(), Error> {
        self.inner()?.flush()
    }
}

impl Inner {
    /// Writes counted usage through the store's own connection.
    pub(super) fn flush(&self) -> Result<(), Error> {
        self.flush_through(false)
    }

    /// `relay`: the flusher thread's timed flush, which the lookup may hand
    /// to the machine's feeder (`lookup::relay`); what it does not take is
    /// written here.
    fn flush_through(&self, relay: bool) -> Result<(), Error> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let taken: Vec<(Arc<Details>, PendingUsage)> = self
            .dirty
            .drain()
            .into_iter()
            .map(|dirty| {
                let pending = self.take(&dirty);
                (dirty, pending)
            })
            // Empty after a race with an earlier flush.
            .filter(|(_, pending)| !pending.is_empty())
            .collect();
        if taken.is_empty() {
            return Ok(());
        }
        let relayed = if relay {
            self.lookup.relay_usage(&taken)
        } else {
            0
        };
        if relayed == taken.len() {
            return Ok(());
        }
        let deltas: Vec<UsageDelta<'_>> = taken[relayed..]
            .iter()
            .map(|(dirty, pending)| pending.delta(&dirty.id))
            .collect();
        let result = self.storage.add_usage(&deltas, self.clock.now());
        if result.is_err() {
            for (dirty, pending) in taken.into_iter().skip(relayed) {
                // Put back in the key's cell, which sums with its entry.
                if dirty.usage.restore(&pending) {
                    self.dirty.push(dirty);
                }
            }
        }
        result
    }

    /// Takes a dirty key's counts: its cell's, and in exclusive mode the
    /// accepted uses counted in its index entry. The cell's flag is cleared
    /// (by its take) before the entry's count is read.
    pub(super) fn take(&self, details: &Details) -> PendingUsage {
        let mut pending = details.usage.take();
        self.lookup.take_uses(details, &mut pending);
        pending
    }
}

impl Flusher {
    /// Starts the thread; `None` when the system refuses one (thread
    /// limits, memory), in which case usage is still written by
    /// [`KeyStore::flush`], close and drop, only not on a timer.
    pub(super) fn start(inner: Weak<Inner>, interval: Duration) -> Option<Flusher> {
        let stop = Arc::new(Signal::default());
        let stopping = stop.clone();
        let thread = background::spawn("apikeys-usage-flush", move |worker| loop {
            // A fork may happen in this wait (see `crate::background`).
            if worker.wait(|| stopping.wait(interval)) {
                return;
            }
            match inner.upgrade() {
                Some(inner) if inner.fork_generation == FORK_GENERATION.load(Ordering::SeqCst) => {
                    // A failed flush keeps its counts for the next one.
                    let _ = inner.flush_through(true);
                }
                _ => return,
            }
        });
        // `std::thread::spawn` would panic in exactly this case.
        thread.ok().map(|thread| Flusher { stop, thread })
    }

    /// Tells the thread to end and waits for it.
    pub(super) fn stop(self) {
        self.stop.raise();
        self.thread.join();
    }
}
