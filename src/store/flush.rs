//! Usage off the verify path: counts coalesced in memory, written in
//! batches by [`KeyStore::flush`], the flusher thread, close and drop.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::background;
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
        let deltas: Vec<UsageDelta<'_>> = taken
            .iter()
            .map(|(dirty, pending)| UsageDelta {
                id: &dirty.id,
                usage: pending.usage,
                events: pending.events(),
            })
            .collect();
        let relayed = if relay {
            self.lookup.relay_usage(&deltas)
        } else {
            0
        };
        if relayed == deltas.len() {
            return Ok(());
        }
        let result = self.storage.add_usage(&deltas[relayed..], self.clock.now());
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
        let stop = Arc::new(Stop::default());
        let stopping = stop.clone();
        let thread = background::spawn("apikeys-usage-flush", move |worker| loop {
            // A condition variable's wait: no allocation, no lock held, so
            // a fork may happen in it (see `crate::background`).
            let stopped = worker.wait(|| {
                let stopped = stopping
                    .stopped
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let (stopped, _) = stopping
                    .changed
                    .wait_timeout_while(stopped, interval, |stopped| !*stopped)
                    .unwrap_or_else(PoisonError::into_inner);
                *stopped
            });
            if stopped {
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
        *self
            .stop
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.stop.changed.notify_all();
        self.thread.join();
    }
}

/// The flusher's stop signal.
#[derive(Default)]
pub(super) struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
}
