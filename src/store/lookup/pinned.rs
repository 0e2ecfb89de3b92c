//! The details of keys a shared or fleet process has verified, pinned for
//! as long as the lookup lives, so that a verify finds them without a lock
//! or a reference count, and counts an accepted use beside the key's digest
//! without touching the details, as exclusive mode's index does.
//!
//! Keys are only ever added, each once, by one thread at a time (under
//! `adding`); readers take no lock. A key's [`Hot`] never moves or goes away
//! before the lookup does: a verify may hand out a reference to its details
//! for as long as the store is borrowed. The table of pointers to them grows
//! by copying into a table twice as large; a reader still probing an older
//! table finds what it held then, so old tables are kept until the lookup
//! goes too (together at most the size of the last).

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::key::digest::Digest;
use crate::usage::AcceptedUses;

use crate::store::info::Details;

/// One pinned key: its digest, its accepted uses, its details. One cache
/// line, the only one an accepted verify of the key reads or writes here.
#[repr(C, align(64))]
pub(in crate::store) struct Hot {
    digest: Digest,
    pub(in crate::store) uses: AcceptedUses,
    pub(in crate::store) details: Arc<Details>,
}

const _: () = assert!(core::mem::size_of::<Hot>() == 64);

/// One slot of the table: the first 8 bytes of the key's digest, to skip
/// other keys without reading their line, and the key, null while free.
/// Written once, the tag before the key.
#[derive(Default)]
struct Slot {
    tag: AtomicU64,
    hot: AtomicPtr<Hot>,
}

/// An open-addressed table (linear probing), at most half full.
struct Table {
    slots: Box<[Slot]>,
    mask: usize,
}

impl Table {
    fn with_slots(slots: usize) -> Table {
        Table {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            mask: slots - 1,
        }
    }

    fn find(&self, digest: &Digest) -> Option<*mut Hot> {
        let tag = digest.table_hash();
        let mut at = tag as usize & self.mask;
        loop {
            let slot = &self.slots[at];
            let hot = slot.hot.load(Ordering::Acquire);
            if hot.is_null() {
                return None;
            }
            // SAFETY: a non-null pointer is a `Hot` of `Pinned::keys`, which
            // are freed only when the `Pinned` drops.
            if slot.tag.load(Ordering::Relaxed) == tag && unsafe { &(*hot).digest } == digest {
                return Some(hot);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Under `adding`, with room.
    fn put(&self, tag: u64, hot: *mut Hot) {
        let mut at = tag as usize & self.mask;
        while !self.slots[at].hot.load(Ordering::Relaxed).is_null() {
            at = (at + 1) & self.mask;
        }
        self.slots[at].tag.store(tag, Ordering::Relaxed);
        self.slots[at].hot.store(hot, Ordering::Release);
    }
}

/// What `adding` guards: every key pinned (owned here, freed on drop) and
/// every table made (the current one last).
#[derive(Default)]
struct Owned {
    keys: Vec<*mut Hot>,
    tables: Vec<*mut Table>,
}

/// The pinned keys of one lookup, at most `limit` of them.
pub(in crate::store) struct Pinned {
    current: AtomicPtr<Table>,
    adding: Mutex<Owned>,
    limit: usize,
}

// SAFETY: the raw pointers are to `Hot`s and `Table`s owned by the `Pinned`
// (made by `Box::into_raw`, freed once, on drop); what they point to is only
// read through shared references or atomics, and `Details` and `Hot` are
// themselves `Send + Sync`.
unsafe impl Send for Pinned {}
// SAFETY: as above.
unsafe impl Sync for Pinned {}

const FIRST_SLOTS: usize = 1024;

impl Pinned {
    pub(in crate::store) fn new(limit: usize) -> Pinned {
        let table = Box::into_raw(Box::new(Table::with_slots(FIRST_SLOTS)));
        Pinned {
            current: AtomicPtr::new(table),
            adding: Mutex::new(Owned {
                keys: Vec::new(),
                tables: vec![table],
            }),
            limit,
        }
    }

    /// The pinned key with this digest, if it is pinned.
    pub(in crate::store) fn get(&self, digest: &Digest) -> Option<&Hot> {
        // SAFETY: the current table and every `Hot` it points to live as
        // long as `self` (see `Owned`).
        let table = unsafe { &*self.current.load(Ordering::Acquire) };
        table.find(digest).map(|hot| unsafe { &*hot })
    }

    /// Pins `details` unless its key is pinned already (then that one is
    /// returned) or `limit` keys are; `None` then.
    pub(in crate::store) fn pin(&self, details: Arc<Details>) -> Option<&Hot> {
        let mut owned = self.lock();
        if let Some(hot) = self.get(&details.digest) {
            return Some(hot);
        }
        if owned.keys.len() >= self.limit {
            return None;
        }
        // SAFETY: the current table is the last of `owned.tables`, alive.
        let mut table = unsafe { &*self.current.load(Ordering::Acquire) };
        if (owned.keys.len() + 1) * 2 > table.slots.len() {
            let grown = Table::with_slots(table.slots.len() * 2);
            for &hot in &owned.keys {
                // SAFETY: every pinned key is alive (see `Owned`).
                grown.put(unsafe { &*hot }.digest.table_hash(), hot);
            }
            let grown = Box::into_raw(Box::new(grown));
            owned.tables.push(grown);
            self.current.store(grown, Ordering::Release);
            // SAFETY: just made, freed only on drop.
            table = unsafe { &*grown };
        }
        let tag = details.digest.table_hash();
        let hot = Box::into_raw(Box::new(Hot {
            digest: details.digest,
            uses: AcceptedUses::default(),
            details,
        }));
        owned.keys.push(hot);
        table.put(tag, hot);
        // SAFETY: just made, freed only on drop.
        Some(unsafe { &*hot })
    }

    fn lock(&self) -> MutexGuard<'_, Owned> {
        self.adding.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let owned = self
            .adding
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for &hot in &owned.keys {
            // SAFETY: made by `Box::into_raw` in `pin`, freed only here; no
            // reference to it outlives `self`.
            drop(unsafe { Box::from_raw(hot) });
        }
        for &table in &owned.tables {
            // SAFETY: as above, for the tables.
            drop(unsafe { Box::from_raw(table) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    fn details(number: u16) -> Arc<Details> {
        let mut digest = [0xaa; 32];
        digest[..2].copy_from_slice(&number.to_le_bytes());
        Arc::new(Details::of(&crate::record::KeyRecord {
            digest,
            ..sample()
        }))
    }

    #[test]
    fn pinned_keys_are_found_across_growth_and_a_full_table_pins_no_more() {
        let pinned = Pinned::new(3000);
        // More than a first table holds at half full: it grows twice.
        for number in 0..2000 {
            assert!(pinned.pin(details(number)).is_some());
        }
        let again = details(7);
        let held = pinned.pin(again.clone()).unwrap();
        assert!(!Arc::ptr_eq(&held.details, &again), "pinned once");
        for number in 0..2000 {
            let digest = details(number).digest;
            assert!(pinned.get(&digest).unwrap().details.digest == digest);
        }
        let mut other = details(1).digest.to_bytes();
        other[31] = 0;
        assert!(
            pinned.get(&Digest::from_bytes(other)).is_none(),
            "the same first word, another digest"
        );
        assert!(pinned.get(&details(2001).digest).is_none());

        let full = Pinned::new(1);
        assert!(full.pin(details(1)).is_some());
        assert!(full.pin(details(2)).is_none());
        assert!(full.pin(details(1)).is_some(), "already pinned");
    }
}
