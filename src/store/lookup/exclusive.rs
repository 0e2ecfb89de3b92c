//! Exclusive mode's index: every key's digest and state in this process's
//! memory, sharded hash tables of one cache line per key, kept coherent by
//! this process's own writes (no other process writes the file).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use hashbrown::HashTable;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::memory::IndexMemory;
use crate::record::{KeyRecord, StoredState, Usage};
use crate::storage::repeated_digest;
use crate::usage::AcceptedUses;

use crate::error::{Rejection, VerifyError};
use crate::state::{KeyState, Status};
use crate::storage::{NewDigests, Storage};
use crate::usage::PendingUsage;
use std::sync::{Mutex, MutexGuard};

use super::{Found, KeyLookup};
use crate::store::info::{Details, Held, VerifiedKey};
use crate::store::Inner;

/// One key in the exclusive-mode index, stored inline in its shard's table,
/// one cache line each, so that a verify reads that line and nothing else.
///
/// It holds what verify decides on and counts accepted uses; what verify
/// returns (name, scopes...) is made when this process writes the key or on
/// its first verify, and is read only when the caller asks for it. A million
/// keys loaded at open then cost about 90 bytes each, and only keys
/// actually presented cost more.
#[repr(C, align(64))]
pub(in crate::store) struct Entry {
    digest: Digest,
    /// The key's state word ([`state_word`]). Only ever lowered
    /// (`fetch_min`), so that commits applied in any order keep the strictest.
    pub(in crate::store) state: AtomicI64,
    /// Accepted uses since the last flush.
    uses: AcceptedUses,
    /// What verify returns. Never replaced once set, and entries are never
    /// removed: a reference to the details lives as long as the index.
    pub(in crate::store) hot: OnceLock<Arc<Details>>,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 64);

impl Entry {
    /// The entry of a record this process holds in full (it just wrote it).
    pub(in crate::store) fn of(record: &KeyRecord) -> Self {
        let entry = Entry::cold(&StoredState {
            digest: record.digest,
            expires_at: record.expires_at,
            revoked: record.revoked_at.is_some(),
        });
        let _ = entry.hot.set(Arc::new(Details::of(record)));
        entry
    }

    /// The entry of a key loaded at open; its details are read on first use.
    pub(in crate::store) fn cold(state: &StoredState) -> Self {
        Entry {
            digest: Digest::from_bytes(state.digest),
            state: AtomicI64::new(state.state().word()),
            uses: AcceptedUses::default(),
            hot: OnceLock::new(),
        }
    }

    /// Applies a committed state: one-way, so that two threads applying
    /// their commits in the opposite order still leave the strictest state.
    fn lower(&self, state: i64) {
        self.state.fetch_min(state, Ordering::SeqCst);
    }

    /// Counts an accepted use; true when it is the first since the last
    /// flush (see [`AcceptedUses::count`]).
    pub(in crate::store) fn count_use(&self, now: Timestamp) -> bool {
        self.uses.count(now)
    }

    /// The accepted uses since the last flush, and the last one's time.
    pub(in crate::store) fn take_uses(&self) -> (u64, Option<Timestamp>) {
        self.uses.take()
    }

    pub(in crate::store) fn peek_uses(&self) -> Usage {
        self.uses.peek()
    }
}

/// One shard's table, alone on its cache lines: a read lock writes the lock
/// word, and two threads verifying keys of neighbouring shards must not
/// bounce one line between their cores.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    table: RwLock<HashTable<Entry, IndexMemory>>,
}

/// Fewest shards: threads verifying different keys rarely share a lock.
const MIN_SHARDS: u64 = 16;
/// Most shards chosen when sizing the index at open.
const MAX_SHARDS: u64 = 4096;

/// How many shards hold `keys` keys with little empty room. A table's
/// buckets are a power of two at most 7/8 full, so a store just past a
/// threshold would leave each table half empty: more shards put every table
/// just under one instead.
fn shard_count(keys: u64) -> u64 {
    let mut shards = MIN_SHARDS;
    while shards < MAX_SHARDS {
        let per_shard = keys.div_ceil(shards);
        let buckets = (per_shard.saturating_mul(8) / 7).max(1).next_power_of_two();
        if per_shard < 64 || per_shard * 10 >= buckets * 7 {
            break;
        }
        shards += 1;
    }
    shards
}

/// Digest -> key, for exclusive mode. Sharded so that threads verifying
/// different keys do not contend on one lock.
pub(in crate::store) struct Index {
    shards: Box<[Shard]>,
}

impl Index {
    /// An index sized for `keys` keys.
    pub(in crate::store) fn sized(keys: u64) -> Self {
        let shards = shard_count(keys);
        let per_shard = usize::try_from(keys.div_ceil(shards)).unwrap_or(0);
        Index {
            shards: (0..shards)
                .map(|_| Shard {
                    table: RwLock::new(HashTable::with_capacity_in(per_shard, IndexMemory)),
                })
                .collect(),
        }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<HashTable<Entry, IndexMemory>> {
        // Other digest bits than table_hash(), which the table uses, scaled
        // to the shard count by a multiplication rather than a division.
        let at = (u128::from(digest.shard_hash()) * self.shards.len() as u128) >> 64;
        &self.shards[at as usize].table
    }

    pub(in crate::store) fn insert(&self, entry: Entry) {
        let mut table = self
            .shard(&entry.digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let hash = entry.digest.table_hash();
        if let Some(found) = table.find(hash, |other| other.digest == entry.digest) {
            found.lower(entry.state.load(Ordering::SeqCst));
            if let Some(hot) = entry.hot.into_inner() {
                let _ = found.hot.set(hot);
            }
            return;
        }
        table.insert_unique(hash, entry, |other| other.digest.table_hash());
    }

    /// Adds a key loaded at open. Storage holds one record per digest, so
    /// there is no entry to merge with.
    pub(in crate::store) fn load(&self, entry: Entry) {
        let mut table = self
            .shard(&entry.digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let hash = entry.digest.table_hash();
        table.insert_unique(hash, entry, |other| other.digest.table_hash());
    }

    /// Refuses new keys whose digest is in the index or repeated among them.
    pub(in crate::store) fn check_new(&self, records: &[KeyRecord]) -> Result<(), Error> {
        let mut digests: Vec<[u8; 32]> = records.iter().map(|record| record.digest).collect();
        digests.sort_unstable();
        let repeated = digests.windows(2).any(|pair| pair[0] == pair[1])
            || digests
                .iter()
                .any(|digest| self.with(&Digest::from_bytes(*digest), |_| ()).is_some());
        if repeated {
            return Err(repeated_digest());
        }
        Ok(())
    }

    pub(in crate::store) fn with<T>(
        &self,
        digest: &Digest,
        found: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        let table = self
            .shard(digest)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = table.find(digest.table_hash(), |entry| entry.digest == *digest)?;
        Some(found(entry))
    }
}

/// Exclusive mode's strategy: the index, and the lock that keeps new keys
/// from landing between a batch's check against the index and its insert.
pub(in crate::store) struct ExclusiveLookup {
    index: Index,
    /// Held from checking new keys against the index until they are in it.
    adding: Mutex<()>,
}

impl ExclusiveLookup {
    /// Loads every key's state from `storage` (a scan that skips the rest
    /// of each record; details are read on a key's first verify).
    pub(in crate::store) fn load(storage: &dyn Storage) -> Result<Self, Error> {
        let index = Index::sized(storage.key_count()?);
        storage.scan_states(&|state| index.load(Entry::cold(&state)))?;
        Ok(ExclusiveLookup {
            index,
            adding: Mutex::new(()),
        })
    }
}

impl KeyLookup for ExclusiveLookup {
    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
        _started: u64,
    ) -> Result<Found<'store>, VerifyError> {
        let index = &self.index;
        // None when the key is known but its details are not loaded yet.
        let serve = |entry: &Entry| {
            let hot = entry.hot.get()?;
            let state = KeyState::from_word(entry.state.load(Ordering::SeqCst));
            let outcome = state.status(now);
            // An accepted use is counted in the entry: the details
            // are touched only by the first use after a flush.
            let listed = store.track_usage
                && match outcome {
                    Status::Active => entry.count_use(now) && hot.usage.mark_dirty(),
                    rejected => hot.usage.record(rejected, now),
                };
            if listed {
                store.count_later(hot.clone());
            }
            // SAFETY: the details are in an Arc that the entry holds for as
            // long as the index lives (`Entry::hot` is never replaced and
            // entries are never removed). The index lives as long as `self`,
            // which the store keeps alive for the borrow the result carries;
            // a resize of the table moves the Arc, not the details it
            // points to.
            let details: &Details = unsafe { &*Arc::as_ptr(hot) };
            let verified = VerifiedKey {
                details: Held::Indexed(details),
                expires_at: state.expires_at(),
            };
            Some((verified, outcome))
        };
        match index.with(digest, serve).ok_or(Rejection::NotFound)? {
            Some(served) => Ok(served),
            None => {
                // First use of a key loaded at open: read its record
                // once. Revocation and expiry stay those of the index.
                let record = store
                    .storage
                    .by_digest(digest)?
                    .ok_or_else(|| Error::Corrupted("an indexed key has no record".into()))?;
                let hot = Arc::new(Details::from_record(record));
                Ok(index
                    .with(digest, |entry| {
                        let _ = entry.hot.set(hot);
                        serve(entry)
                    })
                    .flatten()
                    .ok_or(Rejection::NotFound)?)
            }
        }
    }

    fn admit(
        &self,
        records: &[KeyRecord],
    ) -> Result<(NewDigests, Option<MutexGuard<'_, ()>>), Error> {
        // The index holds every stored digest, so a repeat is looked for
        // there, not by a storage read per key (a fifth of a batch's time).
        let adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        self.index.check_new(records)?;
        Ok((NewDigests::KnownNew, Some(adding)))
    }

    fn hold_new_keys(&self) -> Option<MutexGuard<'_, ()>> {
        Some(self.adding.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn committed(&self, record: &KeyRecord) {
        // One lookup, which adds a new key or lowers a known key's state.
        self.index.insert(Entry::of(record));
    }

    fn pending_usage(&self, digest: &Digest) -> Usage {
        self.index
            .with(digest, |entry| {
                let mut usage = entry.peek_uses();
                if let Some(hot) = entry.hot.get() {
                    usage.merge(&hot.usage.peek());
                }
                usage
            })
            .unwrap_or_default()
    }

    fn take_uses(&self, details: &Details, pending: &mut PendingUsage) {
        if let Some((uses, last_used)) = self.index.with(&details.digest, Entry::take_uses) {
            pending.usage.use_count += uses;
            pending.usage.last_used = pending.usage.last_used.max(last_used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::repeated_digest;

    #[test]
    fn exclusive_mode_finds_a_repeated_digest_in_its_index() {
        let key = |byte: u8| KeyRecord {
            digest: [byte; 32],
            ..crate::record::tests::sample()
        };
        let index = Index::sized(4);
        index.insert(Entry::of(&key(1)));
        assert!(index.check_new(&[key(2), key(3)]).is_ok());
        // Already stored, or twice in the batch.
        for batch in [vec![key(2), key(1)], vec![key(2), key(3), key(2)]] {
            let refused = index.check_new(&batch).unwrap_err();
            assert_eq!(refused.to_string(), repeated_digest().to_string());
        }
    }
}
