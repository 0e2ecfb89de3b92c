//! How verify finds a key: one trait, [`KeyLookup`], and one file per
//! strategy. The store picks its strategy once, at open, from its mode:
//!
//! - [`exclusive`]: exclusive mode's in-memory index of every key, kept
//!   coherent by this process's own writes.
//! - [`shared`]: shared mode's index file, mapped by every process, which
//!   falls back to [`read_through`] for a key being written or an index in
//!   doubt.
//! - [`read_through`]: the latest commit of the store file, with the keys'
//!   details (which never change) kept once per process, most of them
//!   [`pinned`] for the lookup's life.
//! - `fleet` (feature `postgres`): a replica of a PostgreSQL store in each
//!   process, fed by the database's change feed, with a bound on how stale
//!   it may be before verify stops serving from it.

use std::sync::{Arc, MutexGuard};

use crate::clock::Timestamp;
use crate::error::{Error, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::Status;
use crate::storage::NewDigests;
use crate::usage::PendingUsage;

use super::info::{Details, VerifiedKey};
use super::Inner;

pub(super) mod exclusive;
#[cfg(feature = "postgres")]
pub(super) mod fleet;
mod pinned;
pub(super) mod read_through;
#[cfg(all(feature = "postgres", unix))]
mod relay;
pub(super) mod shared;

/// What verify finds: the key as a verify returns it, and how it stands.
pub(super) type Found<'store> = (VerifiedKey<'store>, Status);

/// A verify strategy: how a presented key is found and its state decided,
/// and what the strategy must hear of the store's writes and flushes.
pub(super) trait KeyLookup: Send + Sync {
    /// The key with this digest and its state at `now`, with the use
    /// counted when `store` tracks usage. [`crate::Rejection::NotFound`]
    /// for an unknown key. `started` is what [`started`](Self::started)
    /// read when the verify began (0 from a lookup that checks no bound).
    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
        started: u64,
    ) -> Result<Found<'store>, VerifyError>;

    /// The moment a verify starts, on the clock this lookup checks a bound
    /// against (a fleet's `CLOCK_BOOTTIME`); 0 for a lookup that checks
    /// none. Verify reads it before it makes the key's digest: the precise
    /// clock's read (`rdtscp`) waits for every instruction before it to
    /// finish, which is then the parse, not the hash.
    fn started(&self) -> u64 {
        0
    }

    /// Before new keys are inserted: what the lookup knows of their digests
    /// (it may hold every stored one and check them itself), and a guard to hold until they are [`committed`](Self::committed),
    /// so that no other new key lands in between a check and its insert.
    fn admit(
        &self,
        records: &[KeyRecord],
    ) -> Result<(NewDigests, Option<MutexGuard<'_, ()>>), Error>;

    /// Before a change that creates a key checked in storage (a rotation's
    /// successor): the guard [`admit`](Self::admit) would take, so that no
    /// batch checks against a lookup that lacks that key.
    fn hold_new_keys(&self) -> Option<MutexGuard<'_, ()>>;

    /// A record this process committed: the lookup brings itself up to date.
    fn committed(&self, record: &KeyRecord);

    /// Usage of this key counted by this process and not yet flushed.
    fn pending_usage(&self, digest: &Digest) -> Usage;

    /// A flush takes a dirty key's counts: adds those the lookup holds
    /// itself (exclusive mode counts accepted uses in the key's entry) to
    /// `pending`, which already has the key's cell's.
    fn take_uses(&self, details: &Details, pending: &mut PendingUsage);

    /// Before a read of storage for a key the lookup does not hold (an
    /// imported key, found by its handle): whether one may be made now. A
    /// local store always; a fleet within its budget of reads for unknown
    /// keys, so that a flood of strings of a source's shape costs the
    /// database no more than one of unknown well-formed keys.
    fn may_read_unknown(&self) -> bool {
        true
    }

    /// A timed flush: hands the leading keys' counts to another process
    /// that writes them (a machine's feeder, see `relay`) and says how many
    /// it took; the store writes the rest. Only a fleet's machine relays.
    fn relay_usage(&self, _taken: &[(Arc<Details>, PendingUsage)]) -> usize {
        0
    }
}
