//! Fleet mode's lookup (a store on PostgreSQL): every key's details and
//! state in this process's memory, a replica kept current by a thread that
//! follows the database's change feed ([`Feed`]), woken by `NOTIFY` and
//! polling every `bound / 4` anyway.
//!
//! The revocation bound L: the replica records when (on this machine's
//! monotonic clock, `CLOCK_BOOTTIME`, which also counts suspended time) the
//! last complete read of the feed *started*. That read saw every commit made
//! before it started. A verify served from memory at time t needs that start
//! within L before t, so a revocation committed before t - L is in the
//! replica. A verify that finds the replica older asks the database, or
//! refuses ([`NotCurrent`]); it never serves from memory. The proof and the
//! measured delays: `docs/postgres.md`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use hashbrown::HashTable;

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::KeyState;
use crate::storage::postgres::feed::Feed;
use crate::storage::NewDigests;
use crate::usage::PendingUsage;

use super::read_through::ReadThrough;
use super::{Found, KeyLookup};
use crate::store::info::Details;
use crate::store::options::{FleetPolicy, NotCurrent};
use crate::store::Inner;

/// Nanoseconds on a clock that never goes back and keeps counting while the
/// machine is suspended (`CLOCK_BOOTTIME`; `CLOCK_MONOTONIC` stops, which
/// would make an old replica look current after a resume).
pub(in crate::store) fn boot_nanos() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } == 0 {
            return (now.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(now.tv_nsec as u64);
        }
    }
    // Elsewhere: the monotonic clock from the first call.
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

struct Entry {
    details: Arc<Details>,
    /// The state word; only lowered, so commits applied in any order (the
    /// feed's and this process's own) keep the strictest.
    state: AtomicI64,
}

/// Every key of the database, as of the last feed read.
pub(in crate::store) struct Replica {
    keys: RwLock<HashTable<Entry>>,
    /// [`boot_nanos`] at the start of the last complete feed read; 0: none.
    confirmed: AtomicU64,
}

impl Replica {
    fn apply(&self, record: KeyRecord) {
        let digest = Digest::from_bytes(record.digest);
        let state = record.state().word();
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let hash = digest.table_hash();
        if let Some(entry) = keys.find(hash, |entry| entry.details.digest == digest) {
            entry.state.fetch_min(state, Ordering::SeqCst);
            return;
        }
        let entry = Entry {
            details: Arc::new(Details::from_record(record)),
            state: AtomicI64::new(state),
        };
        keys.insert_unique(hash, entry, |entry| entry.details.digest.table_hash());
    }

    fn get(&self, digest: &Digest) -> Option<(Arc<Details>, KeyState)> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.find(digest.table_hash(), |entry| entry.details.digest == *digest)
            .map(|entry| {
                let state = KeyState::from_word(entry.state.load(Ordering::SeqCst));
                (entry.details.clone(), state)
            })
    }

    /// Marks the replica current as of a read that started at `started`.
    fn confirm(&self, started: u64) {
        self.confirmed.fetch_max(started, Ordering::SeqCst);
    }

    /// How long ago, in nanoseconds, the last complete read started.
    fn age(&self, now: u64) -> u64 {
        match self.confirmed.load(Ordering::SeqCst) {
            0 => u64::MAX,
            confirmed => now.saturating_sub(confirmed),
        }
    }
}

/// The replica, the thread that follows the feed, and what to do when the
/// replica cannot be confirmed current.
pub(in crate::store) struct FleetLookup {
    replica: Arc<Replica>,
    through: ReadThrough,
    policy: FleetPolicy,
    stop: Arc<AtomicBool>,
}

impl FleetLookup {
    /// Reads every key once (so that the store opens current), then starts
    /// the thread that follows the feed.
    pub(in crate::store) fn start(mut feed: Feed, policy: FleetPolicy) -> Result<Self, Error> {
        let replica = Arc::new(Replica {
            keys: RwLock::new(HashTable::new()),
            confirmed: AtomicU64::new(0),
        });
        let started = boot_nanos();
        let first = feed.changes_since(0)?;
        for record in first.records {
            replica.apply(record);
        }
        replica.confirm(started);
        let stop = Arc::new(AtomicBool::new(false));
        let poll = (policy.bound / 4).max(Duration::from_millis(1));
        let (weak, stopped) = (Arc::downgrade(&replica), stop.clone());
        std::thread::Builder::new()
            .name("apikeys-feed".into())
            .spawn(move || follow(weak, feed, first.version, stopped, poll))
            .map_err(|error| Error::Storage(format!("could not start the feed thread: {error}")))?;
        Ok(FleetLookup {
            replica,
            through: ReadThrough::default(),
            policy,
            stop,
        })
    }
}

impl Drop for FleetLookup {
    fn drop(&mut self) {
        // The thread ends at its next wake-up (at most a poll interval).
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The feed thread: waits for a notification or the poll interval, reads
/// what changed, applies it, then records when that read started. A failed
/// read records nothing: the replica ages until a read succeeds.
fn follow(
    replica: Weak<Replica>,
    mut feed: Feed,
    mut version: i64,
    stop: Arc<AtomicBool>,
    poll: Duration,
) {
    loop {
        feed.wait(poll);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(replica) = replica.upgrade() else {
            return;
        };
        let started = boot_nanos();
        if let Ok(changes) = feed.changes_since(version) {
            for record in changes.records {
                replica.apply(record);
            }
            version = changes.version;
            replica.confirm(started);
        }
    }
}

impl KeyLookup for FleetLookup {
    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<Found<'store>, VerifyError> {
        if self.policy.strict {
            return self.through.find(store, digest, now);
        }
        // The age first, then the entry: what was applied before the read
        // confirmed is visible to this verify.
        let bound = u64::try_from(self.policy.bound.as_nanos()).unwrap_or(u64::MAX);
        if self.replica.age(boot_nanos()) > bound {
            return match self.policy.not_current {
                NotCurrent::AskDatabase => self.through.find(store, digest, now),
                NotCurrent::Refuse => Err(Error::DatabaseUnavailable(format!(
                    "this machine could not confirm within {:?} that its keys are current",
                    self.policy.bound
                ))
                .into()),
            };
        }
        let (details, state) = self.replica.get(digest).ok_or(Rejection::NotFound)?;
        Ok(ReadThrough::serve(store, details, state, now))
    }

    fn admit(
        &self,
        _records: &[KeyRecord],
    ) -> Result<(NewDigests, Option<MutexGuard<'_, ()>>), Error> {
        // Other machines insert too; the database's unique index decides.
        Ok((NewDigests::Unchecked, None))
    }

    fn hold_new_keys(&self) -> Option<MutexGuard<'_, ()>> {
        None
    }

    fn committed(&self, record: &KeyRecord) {
        // This process's own writes are served at once, before the feed
        // brings them back.
        self.replica.apply(record.clone());
    }

    fn pending_usage(&self, digest: &Digest) -> Usage {
        let mut usage = self.through.pending_usage(digest);
        if let Some((details, _)) = self.replica.get(digest) {
            usage.merge(&details.usage.peek());
        }
        usage
    }

    fn take_uses(&self, _details: &Details, _pending: &mut PendingUsage) {
        // Every count is in the key's cell.
    }
}
