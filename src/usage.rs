//! Usage counting off the verify path.
//!
//! Each key's uses are counted in a [`UsageCell`] of atomics (accepted uses
//! of a key in exclusive mode's index, or pinned by a shared or fleet
//! process, are counted beside its digest instead, in [`AcceptedUses`], and
//! the cell keeps the rest). The first use after a flush (the
//! counter going from zero to one) puts the key on the [`DirtyList`]; a flush
//! drains that list and writes the deltas in one transaction. A verify
//! therefore costs a few atomic operations and never waits on the disk.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::clock::Timestamp;
use crate::record::{EventKind, Usage};
use crate::state::Status;
use crate::storage::UsageDelta;

/// Usage counted in memory since the last flush, for one key.
#[derive(Debug, Default)]
pub(crate) struct UsageCell {
    uses: AtomicU32,
    revoked_uses: AtomicU32,
    expired_uses: AtomicU32,
    /// Unix seconds of the last accepted use seen by this process; 0 = none.
    /// Kept across flushes: it is a maximum, not a delta.
    last_used: AtomicI64,
    /// Unix seconds of the last rejected use seen by this process; 0 = none.
    last_rejected: AtomicI64,
    /// Set by the first count after a take: the cell is on the dirty list.
    dirty: AtomicBool,
}

/// What a flush takes out of a cell.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingUsage {
    pub(crate) usage: Usage,
    pub(crate) revoked_uses: u64,
    pub(crate) expired_uses: u64,
}

impl PendingUsage {
    pub(crate) fn is_empty(&self) -> bool {
        self.usage.use_count == 0 && self.usage.rejected_count == 0
    }

    /// Adds counts taken elsewhere (a machine's feeder sums its workers').
    #[cfg_attr(not(all(feature = "postgres", unix)), allow(dead_code))]
    pub(crate) fn merge(&mut self, other: &PendingUsage) {
        self.usage.merge(&other.usage);
        self.revoked_uses = self.revoked_uses.saturating_add(other.revoked_uses);
        self.expired_uses = self.expired_uses.saturating_add(other.expired_uses);
    }

    /// These counts as a flush writes them for the key `id`.
    pub(crate) fn delta<'a>(&self, id: &'a str) -> UsageDelta<'a> {
        UsageDelta {
            id,
            usage: self.usage,
            events: self.events(),
        }
    }

    /// The events a flush of these counts writes: uses of a revoked or an
    /// expired key, the suspicious-use signal.
    pub(crate) fn events(&self) -> Vec<EventKind> {
        let mut events = Vec::new();
        if self.revoked_uses > 0 {
            events.push(EventKind::RevokedKeyUsed {
                count: self.revoked_uses,
            });
        }
        if self.expired_uses > 0 {
            events.push(EventKind::ExpiredKeyUsed {
                count: self.expired_uses,
            });
        }
        events
    }
}

fn raise(cell: &AtomicI64, now: Timestamp) {
    // A load first: the common case (same second) then writes nothing.
    if cell.load(Ordering::Relaxed) < now.unix() {
        cell.fetch_max(now.unix(), Ordering::Relaxed);
    }
}

/// Adds one use; returns the count before it. Saturates rather than wraps:
/// 4 billion uses between two flushes is not a real load, but a wrap would
/// mark the key clean.
pub(crate) fn count(counter: &AtomicU32) -> u32 {
    match counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1)) {
        Ok(before) | Err(before) => before,
    }
}

/// Accepted uses of one key counted beside its digest, in the entry a verify
/// reads anyway (exclusive mode's index entry, a shared or fleet process's
/// pinned details), so that an accepted verify touches no other line. The
/// key's [`UsageCell`] keeps the rest and is marked dirty by the first use
/// after a flush.
#[derive(Debug, Default)]
pub(crate) struct AcceptedUses {
    /// Accepted uses since the last flush.
    uses: AtomicU32,
    /// Unix seconds of the last accepted use, saturated to 32 bits; 0 = none.
    last_used: AtomicU32,
}

impl AcceptedUses {
    /// Counts an accepted use; returns true when it is the first since the
    /// last flush, so that the key must be marked dirty. The count is made
    /// before the key's flag is read, and a flush clears the flag before
    /// it takes the count (as [`UsageCell`] does).
    pub(crate) fn count(&self, now: Timestamp) -> bool {
        let now = u32::try_from(now.unix().max(1)).unwrap_or(u32::MAX);
        // A load first: the common case (same second) then writes nothing.
        if self.last_used.load(Ordering::Relaxed) < now {
            self.last_used.fetch_max(now, Ordering::Relaxed);
        }
        count(&self.uses) == 0
    }

    /// The accepted uses since the last flush, and the last one's time.
    pub(crate) fn take(&self) -> (u64, Option<Timestamp>) {
        let uses = self.uses.swap(0, Ordering::SeqCst);
        (u64::from(uses), self.last_use())
    }

    /// The counts not yet flushed, without taking them (for listings).
    pub(crate) fn peek(&self) -> Usage {
        Usage {
            use_count: u64::from(self.uses.load(Ordering::Relaxed)),
            last_used: self.last_use(),
            ..Usage::default()
        }
    }

    fn last_use(&self) -> Option<Timestamp> {
        match self.last_used.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Timestamp::from_unix(i64::from(at))),
        }
    }
}

fn timestamp(seconds: i64) -> Option<Timestamp> {
    (seconds != 0).then(|| Timestamp::from_unix(seconds))
}

impl UsageCell {
    /// Counts one presentation; returns true when the cell just became dirty
    /// and must be put on the dirty list.
    pub(crate) fn record(&self, presented: Status, now: Timestamp) -> bool {
        let (counter, last) = match presented {
            Status::Active => (&self.uses, &self.last_used),
            Status::Revoked => (&self.revoked_uses, &self.last_rejected),
            Status::Expired => (&self.expired_uses, &self.last_rejected),
        };
        raise(last, now);
        count(counter);
        // Counted before the flag is read; take() clears the flag before it
        // reads the counts, so no count is left on a cell that is not listed.
        self.mark_dirty()
    }

    /// Marks the cell dirty for counts kept outside it (the exclusive index
    /// counts accepted uses in the key's entry); true when it just became
    /// dirty and must be put on the dirty list.
    pub(crate) fn mark_dirty(&self) -> bool {
        !self.dirty.load(Ordering::SeqCst) && !self.dirty.swap(true, Ordering::SeqCst)
    }

    /// Takes the counts accumulated since the last take.
    pub(crate) fn take(&self) -> PendingUsage {
        self.dirty.store(false, Ordering::SeqCst);
        let uses = u64::from(self.uses.swap(0, Ordering::SeqCst));
        let revoked_uses = u64::from(self.revoked_uses.swap(0, Ordering::SeqCst));
        let expired_uses = u64::from(self.expired_uses.swap(0, Ordering::SeqCst));
        PendingUsage {
            usage: Usage {
                last_used: timestamp(self.last_used.load(Ordering::Relaxed)),
                use_count: uses,
                rejected_count: revoked_uses + expired_uses,
                last_rejected: timestamp(self.last_rejected.load(Ordering::Relaxed)),
            },
            revoked_uses,
            expired_uses,
        }
    }

    /// Puts back counts that a failed flush could not write; returns true
    /// when the cell must go back on the dirty list.
    pub(crate) fn restore(&self, pending: &PendingUsage) -> bool {
        let add = |counter: &AtomicU32, n: u64| {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                Some(c.saturating_add(n))
            });
        };
        add(&self.uses, pending.usage.use_count);
        add(&self.revoked_uses, pending.revoked_uses);
        add(&self.expired_uses, pending.expired_uses);
        !self.dirty.swap(true, Ordering::SeqCst)
    }

    /// The counts not yet flushed, without taking them (for listings).
    pub(crate) fn peek(&self) -> Usage {
        let revoked = u64::from(self.revoked_uses.load(Ordering::Relaxed));
        let expired = u64::from(self.expired_uses.load(Ordering::Relaxed));
        Usage {
            last_used: timestamp(self.last_used.load(Ordering::Relaxed)),
            use_count: u64::from(self.uses.load(Ordering::Relaxed)),
            rejected_count: revoked + expired,
            last_rejected: timestamp(self.last_rejected.load(Ordering::Relaxed)),
        }
    }
}

/// The keys with usage not yet flushed: each key is pushed when its counts
/// go from none to some, and the flush takes the counts of what it drains.
pub(crate) struct DirtyList<T> {
    keys: Mutex<Vec<T>>,
}

impl<T> Default for DirtyList<T> {
    fn default() -> Self {
        DirtyList {
            keys: Mutex::new(Vec::new()),
        }
    }
}

impl<T> core::fmt::Debug for DirtyList<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirtyList").finish_non_exhaustive()
    }
}

impl<T> DirtyList<T> {
    pub(crate) fn push(&self, key: T) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key);
    }

    /// Takes every listed key; the caller takes their counts.
    pub(crate) fn drain(&self) -> Vec<T> {
        core::mem::take(&mut *self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether anything is waiting to be flushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_after_take_marks_the_cell_dirty_once() {
        let cell = UsageCell::default();
        let now = Timestamp::from_unix(50);
        assert!(cell.record(Status::Active, now));
        assert!(!cell.record(Status::Active, now));
        assert!(!cell.record(Status::Revoked, now));
        let pending = cell.take();
        assert_eq!(pending.usage.use_count, 2);
        assert_eq!(pending.revoked_uses, 1);
        assert_eq!(pending.usage.last_used, Some(now));
        assert!(cell.record(Status::Expired, Timestamp::from_unix(60)));
        assert!(!cell.restore(&pending), "already dirty: listed once");
        let again = cell.take();
        assert_eq!(
            (
                again.usage.use_count,
                again.revoked_uses,
                again.expired_uses
            ),
            (2, 1, 1)
        );
    }
}
