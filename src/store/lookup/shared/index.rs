//! Shared mode's index: one table of every key's digest and state in a
//! memory-mapped file beside the store (`<store>.index`), so that every
//! worker process on the machine verifies from memory, with one copy of the
//! index per machine (the page cache), not one per worker.
//!
//! The store file stays the source of truth; the index is a cache that a
//! process may always rebuild from it. How it stays correct (the argument is
//! in `docs/shared-index.md`):
//!
//! - **Writers** (generate, revoke, rotate, in any process) hold the index
//!   lock (a process mutex and an `flock` on the index file) around the
//!   whole write. Before the store commit they set the header's `dirty`
//!   word and mark every entry the write touches *pending* (inserting new
//!   keys as pending); after the commit they publish each entry's committed
//!   state and clear `dirty`. A verify that finds a pending entry reads the
//!   store file instead. So a verify that starts after a commit sees either
//!   the published state or a pending mark, never the state from before,
//!   even when the writer dies between its commit and its publication.
//! - The next writer, or the next process to open the store, finds `dirty`
//!   set by a writer that did not finish (the kernel released its lock) and
//!   rebuilds the table from the store file. A failed commit is handled the
//!   same way: its outcome is not trusted, its entries stay pending.
//! - **Readers** take no lock. Each entry has its own sequence word (odd
//!   while a writer changes it); the table has one (odd while it is
//!   rebuilt). A read that overlaps a change, an entry whose check word does
//!   not match its contents, a header that is not this store's (another
//!   store's index, another pepper, a replaced file), a truncated file: each
//!   reads the store file, and the last three make the next open or write
//!   rebuild the table. No path through a doubtful index accepts a key.
//! - A process that opens the store in exclusive mode invalidates the
//!   index (clears its magic word): it writes without maintaining it, and
//!   shared processes rebuild it when they next open the store (exclusive
//!   and shared handles never coexist).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use memmap2::MmapRaw;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::key::digest::Digest;
use crate::legacy::Sources;
use crate::record::{Event, KeyRecord, StoredState, Usage};
use crate::state::KeyState;
use crate::storage::{
    ChangeFn, Changed, FiledHandle, ImportedKey, NewDigests, Storage, Target, UsageDelta,
};

/// "APKIDX01", little-endian.
const MAGIC: u64 = u64::from_le_bytes(*b"APKIDX01");
const VERSION: u64 = 1;
/// The header's size: the first page.
const HEADER_BYTES: u64 = 4096;
const WORDS_PER_ENTRY: usize = 8;
const ENTRY_BYTES: u64 = (WORDS_PER_ENTRY * 8) as u64;
/// The smallest table, in slots.
const MIN_CAPACITY: u64 = 1024;

// Header words. Line 0 is read by every verify and written only by a
// rebuild; line 1 by writers.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 1;
const H_CAPACITY: usize = 2;
const H_TABLE_SEQ: usize = 3;
const H_SALT: usize = 4;
const H_CHECK: usize = 5;
const H_DIRTY: usize = 8;
const H_USED: usize = 9;
const H_DOUBTFUL: usize = 10;
/// A machine index fed from PostgreSQL (`fleet.rs`): the `CLOCK_BOOTTIME`
/// moment up to which its feeder confirmed it current; 0 while none did
/// (reset at every rebuild, before the table is written).
const H_CONFIRMED: usize = 11;
const H_FINGERPRINT: usize = 16;
const H_DEVICE: usize = 20;
const H_INODE: usize = 21;
const H_BOOT: usize = 22;

// Entry words.
const E_SEQ_FLAGS: usize = 0;
const E_STATE: usize = 1;
const E_DIGEST: usize = 2;
const E_CHECK: usize = 6;

const USED: u64 = 1;
const PENDING: u64 = 2;

/// What the index says about a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No such key in the store.
    Absent,
    /// The key's state word as of the latest commit.
    Found(i64),
    /// The index cannot say: read the store file.
    Unsure,
}

/// One mapping of the index file.
struct Mapping {
    map: MmapRaw,
    capacity: u64,
}

impl Mapping {
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is shared, writable, page-aligned and at least
        // HEADER_BYTES + capacity * ENTRY_BYTES long (checked when mapped);
        // every process reads and writes it only through atomics.
        unsafe {
            core::slice::from_raw_parts(self.map.as_ptr() as *const AtomicU64, self.map.len() / 8)
        }
    }

    fn header(&self, word: usize) -> &AtomicU64 {
        &self.words()[word]
    }

    fn entry(&self, slot: u64) -> &[AtomicU64] {
        let start = (HEADER_BYTES / 8) as usize + slot as usize * WORDS_PER_ENTRY;
        &self.words()[start..start + WORDS_PER_ENTRY]
    }
}

/// What identifies the store an index belongs to.
#[derive(Clone, Copy)]
struct Identity {
    fingerprint: [u8; 32],
    device: u64,
    inode: u64,
    /// This boot of the machine: the file is never synced, so after a
    /// crash of the machine its pages may be older than the store's.
    boot: u64,
}

/// A number for this boot of the machine (Linux's boot id), 0 elsewhere.
/// Read once per process: a process lives within one boot, and every open
/// of a shared store asks for it.
fn boot_id() -> u64 {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|id| mix(0, id.trim().bytes().map(u64::from)))
            .unwrap_or(0)
    })
}

/// The shared index of one open store.
pub(crate) struct SharedIndex {
    path: PathBuf,
    file: File,
    identity: Identity,
    current: AtomicPtr<Mapping>,
    /// Every mapping this handle made, the current one last: a reader may
    /// still be probing an older one, so none is unmapped before close.
    /// Boxed so that `current` keeps pointing at a mapping when the vector
    /// grows (a `Vec<Mapping>` would move them).
    #[allow(clippy::vec_box)]
    mappings: Mutex<Vec<Box<Mapping>>>,
    /// Writers of this process; the `flock` orders processes.
    writing: Mutex<()>,
    /// Readers of this process that found the table grown by another.
    remapping: Mutex<()>,
    /// Whether this handle holds the shared-handle lock on the index file
    /// (see [`exclude_shared`]): only then may the store file open lazily.
    holds_handle_lock: bool,
}

/// Which store an index belongs to, as its header records it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreIdentity {
    /// The store file beside the index: its device and inode.
    File,
    /// An in-memory store ([`crate::MemoryStore`]): its number, which no
    /// file's device and inode can match (device `u64::MAX`).
    Memory(u64),
}

/// The index file of a store.
pub(crate) fn index_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".index");
    PathBuf::from(name)
}

/// Keeps exclusive-mode handles and shared-mode handles of one store apart
/// when a shared handle may not have the store file open (it opens it
/// lazily: `storage/lazy.rs`), so that redb's own locks cannot tell: every
/// shared handle holds a read lock on the first byte of the index file, an
/// exclusive handle a write lock. These are Linux's open-file-description
/// locks (`F_OFD_SETLK`), owned by the handle's descriptor, not the process,
/// and independent of the writers' `flock` of the whole file.
#[cfg(target_os = "linux")]
mod handle_lock {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// What taking the lock gave.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Taken {
        Held,
        /// A handle of the other mode holds it.
        Conflict,
        /// This file system has no such locks: the store file must then be
        /// opened eagerly, so that redb's locks keep the modes apart.
        Unsupported,
    }

    pub(crate) fn take(file: &File, write: bool) -> std::io::Result<Taken> {
        // SAFETY: a zeroed `flock` is a valid value of the plain C struct.
        let mut lock: libc::flock = unsafe { core::mem::zeroed() };
        lock.l_type = if write { libc::F_WRLCK } else { libc::F_RDLCK } as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = 0;
        lock.l_len = 1;
        // SAFETY: a valid descriptor and a valid `flock` for the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
            return Ok(Taken::Held);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(Taken::Conflict),
            Some(libc::EINVAL) | Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) => {
                Ok(Taken::Unsupported)
            }
            _ => Err(error),
        }
    }
}

/// Elsewhere there are no such locks: shared handles open the store file at
/// once, and redb's locks keep the modes apart.
#[cfg(not(target_os = "linux"))]
mod handle_lock {
    use std::fs::File;

    // The callers match every outcome; only Linux's locks make the first two.
    #[allow(dead_code)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Taken {
        Held,
        Conflict,
        Unsupported,
    }

    pub(crate) fn take(_file: &File, _write: bool) -> std::io::Result<Taken> {
        Ok(Taken::Unsupported)
    }
}

use handle_lock::Taken;

/// For a process that has just opened `store` in exclusive mode: refuses
/// ([`Error::Locked`]) while a shared handle holds the index (one that has
/// not opened the store file yet, so redb let this open through), and marks
/// the index as not current, since this process writes without keeping it:
/// its magic word is cleared, so the next shared open rebuilds the table in
/// place. The file itself stays, with its owner and mode, so that workers
/// that may not create files in the store's directory can still rebuild it.
///
/// Returns the index file to keep open for as long as the exclusive handle
/// lives: its write lock keeps new shared handles out meanwhile.
pub(crate) fn exclude_shared(store: &Path) -> Result<Option<File>, Error> {
    use std::io::Write;
    let path = index_path(store);
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(mut file) => {
            match handle_lock::take(&file, true)
                .map_err(|error| crate::ownership::io_error(error, &path))?
            {
                Taken::Conflict => {
                    return Err(Error::Locked {
                        path: store.to_path_buf(),
                    })
                }
                Taken::Held | Taken::Unsupported => {}
            }
            // A new descriptor writes at offset 0: the magic word.
            file.write_all(&[0; 8])
                .map_err(|error| crate::ownership::io_error(error, &path))?;
            Ok(Some(file))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Not ours to write: remove it, if the directory lets us. A shared
        // handle of another user could hold it without the store file open:
        // refuse rather than write under it.
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            if let Ok(file) = File::open(&path) {
                if held_by_any(&file) {
                    return Err(Error::Locked {
                        path: store.to_path_buf(),
                    });
                }
            }
            std::fs::remove_file(&path).map_err(|_| crate::ownership::io_error(error, &path))?;
            Ok(None)
        }
        Err(error) => Err(crate::ownership::io_error(error, &path)),
    }
}

/// Whether another descriptor holds a lock on the index's first byte (a
/// read lock this descriptor holds does not count).
#[cfg(target_os = "linux")]
fn held_by_any(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `handle_lock::take`.
    let mut lock: libc::flock = unsafe { core::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_len = 1;
    // SAFETY: a valid descriptor and `flock`.
    let asked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    asked != 0 || lock.l_type != libc::F_UNLCK as libc::c_short
}

#[cfg(not(target_os = "linux"))]
fn held_by_any(_file: &File) -> bool {
    false
}

/// An exclusive lock on the index file (`flock` on Unix, `LockFileEx` on
/// Windows), released on drop, and by the system if the process dies.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn take(file: &'a File) -> Result<Self, Error> {
        file.lock().map_err(Error::Io)?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The device and inode of a file: which file a store is, so that an index
/// made for a file since replaced is not taken for its own.
#[cfg(unix)]
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// Elsewhere the creation time stands in for the inode.
#[cfg(not(unix))]
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    let created = metadata
        .created()
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as u64);
    (0, created)
}

/// The check word of an entry or a header: a keyed mix of its words, so
/// that damaged bytes are noticed (this guards against accidents, not an
/// attacker who can write the file; such a one can write the store too).
fn mix(salt: u64, words: impl IntoIterator<Item = u64>) -> u64 {
    let mut hash = salt ^ 0x243f_6a88_85a3_08d3;
    for word in words {
        hash = (hash ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        hash ^= hash >> 29;
    }
    hash
}

fn digest_words(digest: &[u8; 32]) -> [u64; 4] {
    core::array::from_fn(|i| {
        u64::from_le_bytes(digest[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
    })
}

impl SharedIndex {
    /// Opens the index beside `store`, rebuilding it from `storage` when it
    /// is missing, foreign, damaged or left dirty by a writer that died.
    pub(crate) fn open(
        store: &Path,
        fingerprint: [u8; 32],
        storage: &dyn Storage,
        of: StoreIdentity,
    ) -> Result<SharedIndex, Error> {
        let path = index_path(store);
        let (file, (device, inode)) = match of {
            StoreIdentity::File => (
                crate::ownership::open_beside(store, &path)?,
                file_identity(&std::fs::metadata(store).map_err(Error::Io)?),
            ),
            StoreIdentity::Memory(number) => (
                crate::ownership::open_owner_only(&path)?,
                (u64::MAX, number),
            ),
        };
        // Before the header is read: an exclusive handle that holds the
        // lock may have invalidated it or be writing the store without it.
        let holds_handle_lock = match handle_lock::take(&file, false)
            .map_err(|error| crate::ownership::io_error(error, &path))?
        {
            Taken::Held => true,
            Taken::Conflict => {
                return Err(Error::Locked {
                    path: store.to_path_buf(),
                })
            }
            Taken::Unsupported => false,
        };
        let index = SharedIndex {
            holds_handle_lock,
            path,
            file,
            identity: Identity {
                fingerprint,
                device,
                inode,
                boot: boot_id(),
            },
            current: AtomicPtr::new(core::ptr::null_mut()),
            mappings: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
            remapping: Mutex::new(()),
        };
        // Most opens find the index valid: checked without the lock, as a
        // verify reads it, so that workers starting at once do not queue on
        // it. Anything to repair (or a writer at work) is seen again under
        // the lock, where a `dirty` word means a writer that died.
        if index.map_if_valid()? {
            return Ok(index);
        }
        {
            let _process = index.writing.lock().unwrap_or_else(PoisonError::into_inner);
            let _lock = FileLock::take(&index.file)?;
            if !index.map_if_valid()? {
                index.rebuild(storage)?;
            }
        }
        Ok(index)
    }

    /// Whether exclusive handles are kept out by this handle's lock on the
    /// index file, so that the store file may open later than the index.
    pub(crate) fn holds_handle_lock(&self) -> bool {
        self.holds_handle_lock
    }

    /// The index file.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn mapping(&self) -> Option<&Mapping> {
        // SAFETY: a pointer into a Box held in `mappings`, which lives as
        // long as `self` and never drops a mapping before `self` does.
        unsafe { self.current.load(Ordering::Acquire).as_ref() }
    }

    /// Maps the file as it is; false when its header or size is not a valid
    /// index of this store with nothing left to repair.
    fn map_if_valid(&self) -> Result<bool, Error> {
        let len = self.file.metadata().map_err(Error::Io)?.len();
        if len < HEADER_BYTES {
            return Ok(false);
        }
        let mapping = self.map(len)?;
        let valid = self.header_is_ours(&mapping)
            && HEADER_BYTES + mapping.capacity * ENTRY_BYTES <= len
            && mapping.header(H_DIRTY).load(Ordering::SeqCst) == 0
            && mapping.header(H_DOUBTFUL).load(Ordering::SeqCst) == 0
            && mapping.header(H_TABLE_SEQ).load(Ordering::SeqCst) % 2 == 0;
        self.install(mapping);
        Ok(valid)
    }

    fn map(&self, len: u64) -> Result<Mapping, Error> {
        let map = memmap2::MmapOptions::new()
            .len(len as usize)
            .map_raw(&self.file)
            .map_err(|error| crate::ownership::io_error(error, &self.path))?;
        let words_len = map.len() / 8;
        // SAFETY: as in `Mapping::words`, for the header only.
        let capacity = if words_len > H_INODE {
            unsafe { (*(map.as_ptr() as *const AtomicU64).add(H_CAPACITY)).load(Ordering::SeqCst) }
        } else {
            0
        };
        // A capacity the file does not hold maps no table: lookups are Unsure.
        let capacity = if capacity.is_power_of_two()
            && HEADER_BYTES
                .checked_add(capacity.saturating_mul(ENTRY_BYTES))
                .is_some_and(|end| end <= len)
        {
            capacity
        } else {
            0
        };
        Ok(Mapping { map, capacity })
    }

    fn install(&self, mapping: Mapping) {
        let mut mappings = self.mappings.lock().unwrap_or_else(PoisonError::into_inner);
        let boxed = Box::new(mapping);
        let pointer = &*boxed as *const Mapping as *mut Mapping;
        mappings.push(boxed);
        self.current.store(pointer, Ordering::Release);
    }

    fn header_is_ours(&self, mapping: &Mapping) -> bool {
        if mapping.capacity == 0 {
            return false;
        }
        let h = |word| mapping.header(word).load(Ordering::SeqCst);
        let fingerprint = digest_words(&self.identity.fingerprint);
        h(H_MAGIC) == MAGIC
            && h(H_VERSION) == VERSION
            && (0..4).all(|i| h(H_FINGERPRINT + i) == fingerprint[i])
            && h(H_DEVICE) == self.identity.device
            && h(H_INODE) == self.identity.inode
            && h(H_BOOT) == self.identity.boot
            && h(H_CHECK) == self.header_check(mapping)
    }

    fn header_check(&self, mapping: &Mapping) -> u64 {
        let h = |word: usize| mapping.header(word).load(Ordering::SeqCst);
        mix(
            h(H_SALT),
            [
                H_MAGIC,
                H_VERSION,
                H_CAPACITY,
                H_FINGERPRINT,
                H_FINGERPRINT + 1,
                H_FINGERPRINT + 2,
                H_FINGERPRINT + 3,
                H_DEVICE,
                H_INODE,
                H_BOOT,
            ]
            .map(h),
        )
    }

    /// Looks a digest up without a lock or a system call.
    pub(crate) fn lookup(&self, digest: &Digest) -> Lookup {
        let Some(mapping) = self.current_mapping() else {
            return Lookup::Unsure;
        };
        let table_seq = mapping.header(H_TABLE_SEQ).load(Ordering::Acquire);
        if table_seq % 2 == 1 {
            return Lookup::Unsure;
        }
        let found = self.probe(mapping, digest);
        fence(Ordering::Acquire);
        if mapping.header(H_TABLE_SEQ).load(Ordering::Relaxed) != table_seq {
            return Lookup::Unsure;
        }
        found
    }

    /// The mapping to read, remapped first when a rebuild in another
    /// process grew the table.
    fn current_mapping(&self) -> Option<&Mapping> {
        let mapping = self.mapping()?;
        let capacity = mapping.header(H_CAPACITY).load(Ordering::Acquire);
        if capacity == mapping.capacity && capacity != 0 {
            return Some(mapping);
        }
        // Zero while a rebuild runs, or an odd table sequence: nothing to map
        // yet (the caller reads the store). Mapping then would make one
        // mapping per verify for as long as the rebuild lasts.
        if capacity == 0 || mapping.header(H_TABLE_SEQ).load(Ordering::Acquire) % 2 == 1 {
            return None;
        }
        // One thread maps the grown table; the others find it mapped.
        let _remapping = self
            .remapping
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mapping = self.mapping()?;
        if mapping.header(H_CAPACITY).load(Ordering::Acquire) == mapping.capacity {
            return Some(mapping);
        }
        let len = self.file.metadata().ok()?.len();
        let fresh = self.map(len).ok()?;
        if fresh.capacity == 0 {
            return None;
        }
        self.install(fresh);
        self.mapping()
    }

    fn probe(&self, mapping: &Mapping, digest: &Digest) -> Lookup {
        let bytes = digest.to_bytes();
        let wanted = digest_words(&bytes);
        let mask = mapping.capacity - 1;
        let salt = mapping.header(H_SALT).load(Ordering::Relaxed);
        let mut slot = wanted[0] & mask;
        for _ in 0..mapping.capacity {
            let entry = mapping.entry(slot);
            let Some(words) = read_entry(entry) else {
                return Lookup::Unsure;
            };
            let flags = words[E_SEQ_FLAGS] >> 32;
            if flags & USED == 0 {
                return Lookup::Absent;
            }
            if words[E_CHECK] != entry_check(salt, &words) {
                mapping.header(H_DOUBTFUL).store(1, Ordering::SeqCst);
                return Lookup::Unsure;
            }
            let stored = Digest::from_bytes(words_to_digest(&words));
            if stored == *digest {
                return if flags & PENDING != 0 {
                    Lookup::Unsure
                } else {
                    Lookup::Found(words[E_STATE] as i64)
                };
            }
            slot = (slot + 1) & mask;
        }
        Lookup::Unsure
    }

    /// Runs a write of the store under the index lock, with the entries it
    /// touches pending until it has committed.
    fn write<T>(
        &self,
        storage: &dyn Storage,
        body: impl FnOnce(&mut Marker<'_>) -> Result<T, Error>,
        committed: impl FnOnce(&T) -> Vec<(Digest, i64)>,
    ) -> Result<T, Error> {
        let _process = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = FileLock::take(&self.file)?;
        self.ensure_current(storage)?;
        let mapping = self
            .mapping()
            .ok_or_else(|| Error::Storage("index not mapped".into()))?;
        mapping.header(H_DIRTY).store(1, Ordering::SeqCst);
        let mut marker = Marker {
            index: self,
            storage,
            marked: Vec::new(),
        };
        let value = match body(&mut marker) {
            Ok(value) => value,
            Err(error) => {
                // Nothing marked: nothing to doubt. Otherwise the commit's
                // outcome is unknown: `dirty` stays set, the entries stay
                // pending, and the next writer rebuilds from the store.
                if marker.marked.is_empty() {
                    mapping.header(H_DIRTY).store(0, Ordering::SeqCst);
                }
                return Err(error);
            }
        };
        for (digest, state) in committed(&value) {
            self.publish(&digest, state)?;
        }
        let mapping = self
            .mapping()
            .ok_or_else(|| Error::Storage("index not mapped".into()))?;
        mapping.header(H_DIRTY).store(0, Ordering::SeqCst);
        Ok(value)
    }

    /// Under the lock: makes sure the mapping is the file's current table
    /// and nothing is left to repair.
    fn ensure_current(&self, storage: &dyn Storage) -> Result<(), Error> {
        let needs_map = self.mapping().is_none_or(|mapping| {
            mapping.header(H_CAPACITY).load(Ordering::SeqCst) != mapping.capacity
        });
        if needs_map && !self.map_if_valid()? {
            return self.rebuild(storage);
        }
        let mapping = self
            .mapping()
            .ok_or_else(|| Error::Storage("index not mapped".into()))?;
        let clean = self.header_is_ours(mapping)
            && mapping.header(H_DIRTY).load(Ordering::SeqCst) == 0
            && mapping.header(H_DOUBTFUL).load(Ordering::SeqCst) == 0;
        if clean {
            Ok(())
        } else {
            self.rebuild(storage)
        }
    }

    /// Whether one more key would fill the table past half.
    fn is_full(&self) -> bool {
        self.mapping().is_none_or(|mapping| {
            (mapping.header(H_USED).load(Ordering::SeqCst) + 1) * 2 > mapping.capacity
        })
    }

    /// Marks `digest`'s entry pending (or, with `pending` false, sets its
    /// state), inserting it if absent.
    fn set(&self, digest: &Digest, state: i64, pending: bool) -> Result<(), Error> {
        let mapping = self
            .mapping()
            .ok_or_else(|| Error::Storage("index not mapped".into()))?;
        let salt = mapping.header(H_SALT).load(Ordering::Relaxed);
        let wanted = digest_words(&digest.to_bytes());
        let mask = mapping.capacity - 1;
        let mut slot = wanted[0] & mask;
        for _ in 0..mapping.capacity {
            let entry = mapping.entry(slot);
            let flags = entry[E_SEQ_FLAGS].load(Ordering::SeqCst) >> 32;
            let same = || (0..4).all(|i| entry[E_DIGEST + i].load(Ordering::SeqCst) == wanted[i]);
            if flags & USED == 0 || same() {
                if flags & USED == 0 {
                    mapping.header(H_USED).fetch_add(1, Ordering::SeqCst);
                }
                let state = if pending && flags & USED != 0 {
                    // Readers go to the store meanwhile; keep what was there.
                    entry[E_STATE].load(Ordering::SeqCst) as i64
                } else {
                    state
                };
                let flags = if pending { USED | PENDING } else { USED };
                write_entry(entry, salt, flags, state, &wanted);
                return Ok(());
            }
            slot = (slot + 1) & mask;
        }
        Err(Error::Storage("the shared index is full".into()))
    }

    /// After a commit: the entry's committed state, no longer pending.
    fn publish(&self, digest: &Digest, state: i64) -> Result<(), Error> {
        self.set(digest, state, false)
    }

    fn rebuild(&self, storage: &dyn Storage) -> Result<(), Error> {
        self.rebuild_with(storage, 0)
    }

    /// Under the lock: writes a fresh table of every key in the store, with
    /// room for at least `room` keys.
    fn rebuild_with(&self, storage: &dyn Storage, room: u64) -> Result<(), Error> {
        let states = Mutex::new(Vec::new());
        storage.scan_states(&|state: StoredState| {
            states
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((state.digest, state.state().word()));
        })?;
        let states = states.into_inner().unwrap_or_else(PoisonError::into_inner);
        self.write_table(&states, room)
    }

    /// Under the lock: writes a fresh table of `states`, with room for at
    /// least `room` keys. The confirmed moment is cleared first.
    fn write_table(&self, states: &[([u8; 32], i64)], room: u64) -> Result<(), Error> {
        let keys = states.len() as u64;
        let capacity = (keys.max(room) * 2).max(MIN_CAPACITY).next_power_of_two();

        // Readers that still map the old table see it being rebuilt, and
        // no longer current.
        if let Some(old) = self.mapping() {
            if old.map.len() as u64 >= HEADER_BYTES {
                old.header(H_CONFIRMED).store(0, Ordering::SeqCst);
            }
            if old.capacity != 0 && old.map.len() as u64 >= HEADER_BYTES {
                old.header(H_TABLE_SEQ).fetch_or(1, Ordering::SeqCst);
            }
        }
        let len = HEADER_BYTES + capacity * ENTRY_BYTES;
        // The file only grows: another process may still map its old length.
        let current = self.file.metadata().map_err(Error::Io)?.len();
        if current < len {
            self.file
                .set_len(len)
                .map_err(|error| crate::ownership::io_error(error, &self.path))?;
        }
        let mapping = self.map(current.max(len))?;
        let words = mapping.words();
        words[H_CONFIRMED].store(0, Ordering::SeqCst);
        let seq = words[H_TABLE_SEQ].load(Ordering::SeqCst);
        // Odd for as long as the table is not whole.
        words[H_TABLE_SEQ].store(seq | 1, Ordering::SeqCst);
        words[H_CAPACITY].store(0, Ordering::SeqCst);
        // Bytes past the file's old end are zero already (`set_len`):
        // writing them too would fault in every page of a new table.
        let written = current.clamp(HEADER_BYTES, len);
        for word in &words[(HEADER_BYTES / 8) as usize..(written / 8) as usize] {
            word.store(0, Ordering::Relaxed);
        }
        let salt = {
            let mut bytes = [0u8; 8];
            rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes)?;
            u64::from_le_bytes(bytes)
        };
        let fingerprint = digest_words(&self.identity.fingerprint);
        words[H_MAGIC].store(MAGIC, Ordering::SeqCst);
        words[H_VERSION].store(VERSION, Ordering::SeqCst);
        words[H_SALT].store(salt, Ordering::SeqCst);
        for (i, word) in fingerprint.iter().enumerate() {
            words[H_FINGERPRINT + i].store(*word, Ordering::SeqCst);
        }
        words[H_DEVICE].store(self.identity.device, Ordering::SeqCst);
        words[H_INODE].store(self.identity.inode, Ordering::SeqCst);
        words[H_BOOT].store(self.identity.boot, Ordering::SeqCst);
        let table = Mapping {
            map: mapping.map,
            capacity,
        };
        let mask = capacity - 1;
        for (digest, state) in states {
            let wanted = digest_words(digest);
            let mut slot = wanted[0] & mask;
            loop {
                let entry = table.entry(slot);
                if entry[E_SEQ_FLAGS].load(Ordering::Relaxed) >> 32 & USED == 0 {
                    write_entry(entry, salt, USED, *state, &wanted);
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        table.words()[H_USED].store(keys, Ordering::SeqCst);
        table.words()[H_DIRTY].store(0, Ordering::SeqCst);
        table.words()[H_DOUBTFUL].store(0, Ordering::SeqCst);
        table.words()[H_CAPACITY].store(capacity, Ordering::SeqCst);
        let check = self.header_check(&table);
        table.words()[H_CHECK].store(check, Ordering::SeqCst);
        table.words()[H_TABLE_SEQ].store((seq | 1) + 1, Ordering::SeqCst);
        self.install(table);
        Ok(())
    }
}

/// A machine's index of a PostgreSQL store (`src/store/lookup/fleet.rs`):
/// the same file format, written by one elected feeder per machine from the
/// database's change feed instead of by the writers of a store file, with
/// the moment up to which the feeder confirmed it current in the header.
#[cfg(feature = "postgres")]
impl SharedIndex {
    /// Opens (creating it if needed) the machine index at `path`, whose
    /// identity is the `anchor` file's (the feeder's lease file). Nothing is
    /// rebuilt here: a worker maps what is there; until a feeder has written
    /// a table and confirmed it, verifies do not trust it.
    pub(crate) fn open_machine(
        anchor: &Path,
        path: &Path,
        fingerprint: [u8; 32],
    ) -> Result<SharedIndex, Error> {
        let file = crate::ownership::open_beside(anchor, path)?;
        let (device, inode) = file_identity(&std::fs::metadata(anchor).map_err(Error::Io)?);
        let index = SharedIndex {
            path: path.to_path_buf(),
            file,
            identity: Identity {
                fingerprint,
                device,
                inode,
                boot: boot_id(),
            },
            current: AtomicPtr::new(core::ptr::null_mut()),
            mappings: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
            remapping: Mutex::new(()),
            // No exclusive handle of a PostgreSQL store takes this file.
            holds_handle_lock: false,
        };
        {
            let _process = index.writing.lock().unwrap_or_else(PoisonError::into_inner);
            let _lock = FileLock::take(&index.file)?;
            index.map_if_valid()?;
        }
        Ok(index)
    }

    /// Whether a feeder confirmed this index current at a moment within
    /// `bound` nanoseconds before `now` (both `CLOCK_BOOTTIME`), in a table
    /// of this store and this boot that is not being rebuilt. Read before
    /// the entry, so that what the feeder applied before confirming is seen.
    pub(crate) fn confirmed_within(&self, now: u64, bound: u64) -> bool {
        let Some(mapping) = self.current_mapping() else {
            return false;
        };
        let table_seq = mapping.header(H_TABLE_SEQ).load(Ordering::SeqCst);
        table_seq % 2 == 0 && self.confirmed_in(mapping, now, bound)
    }

    /// A verify's read of the machine index: what it says of `digest`, if it
    /// is [confirmed](Self::confirmed_within) within `bound` before `now`;
    /// `None` when it is not. One mapping, and one table sequence read
    /// around both the confirmed moment and the entry (as [`Self::lookup`]
    /// reads it around the entry).
    pub(crate) fn lookup_confirmed(&self, digest: &Digest, now: u64, bound: u64) -> Option<Lookup> {
        let mapping = self.current_mapping()?;
        let table_seq = mapping.header(H_TABLE_SEQ).load(Ordering::SeqCst);
        if table_seq % 2 == 1 || !self.confirmed_in(mapping, now, bound) {
            return None;
        }
        let found = self.probe(mapping, digest);
        fence(Ordering::Acquire);
        if mapping.header(H_TABLE_SEQ).load(Ordering::Relaxed) != table_seq {
            return Some(Lookup::Unsure);
        }
        Some(found)
    }

    /// The header's confirmed moment within `bound` before `now`, in a
    /// table of this store's format and this boot.
    fn confirmed_in(&self, mapping: &Mapping, now: u64, bound: u64) -> bool {
        let h = |word| mapping.header(word).load(Ordering::SeqCst);
        let confirmed = h(H_CONFIRMED);
        confirmed != 0
            && confirmed <= now
            && now - confirmed <= bound
            && h(H_MAGIC) == MAGIC
            && h(H_VERSION) == VERSION
            && h(H_BOOT) == self.identity.boot
    }

    /// The feeder, after a read of the feed that started at `started` and
    /// brought `changed`: applies them (each state only lowered), or writes
    /// the whole table from `all` (every key it knows) when the table is
    /// not a clean one of this store (missing, foreign, a previous boot's,
    /// left dirty by a feeder that died, found damaged by a reader) or has
    /// no room; then confirms the table current as of `started`.
    pub(crate) fn feed(
        &self,
        all: impl FnOnce() -> Vec<([u8; 32], i64)>,
        changed: &[([u8; 32], i64)],
        started: u64,
    ) -> Result<(), Error> {
        let _process = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = FileLock::take(&self.file)?;
        let clean = self.clean_table();
        let room = self.mapping().is_some_and(|mapping| {
            (mapping.header(H_USED).load(Ordering::SeqCst) + changed.len() as u64) * 2
                <= mapping.capacity
        });
        let mapping = if clean && room {
            let mapping = self
                .mapping()
                .ok_or_else(|| Error::Storage("index not mapped".into()))?;
            // Set while entries change: a feeder killed here leaves it, and
            // the next one rewrites the table.
            mapping.header(H_DIRTY).store(1, Ordering::SeqCst);
            for (digest, state) in changed {
                self.lower(&Digest::from_bytes(*digest), *state)?;
            }
            mapping.header(H_DIRTY).store(0, Ordering::SeqCst);
            mapping
        } else {
            let all = all();
            self.write_table(&all, all.len() as u64 * 2)?;
            self.mapping()
                .ok_or_else(|| Error::Storage("index not mapped".into()))?
        };
        mapping
            .header(H_CONFIRMED)
            .fetch_max(started, Ordering::SeqCst);
        Ok(())
    }

    /// A process's own committed write, published on its machine at once:
    /// the key's state lowered (or the key added) if the table is a clean
    /// one with room; otherwise left to the feeder (false).
    pub(crate) fn publish_own(&self, digest: &Digest, state: i64) -> Result<bool, Error> {
        let _process = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = FileLock::take(&self.file)?;
        if self.clean_table() && !self.is_full() {
            self.lower(digest, state)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Under the lock: the mapping is the file's current table, of this
    /// store and boot, with nothing left to repair.
    fn clean_table(&self) -> bool {
        let needs_map = self.mapping().is_none_or(|mapping| {
            mapping.header(H_CAPACITY).load(Ordering::SeqCst) != mapping.capacity
        });
        if needs_map && !self.map_if_valid().unwrap_or(false) {
            return false;
        }
        self.mapping().is_some_and(|mapping| {
            self.header_is_ours(mapping)
                && mapping.header(H_DIRTY).load(Ordering::SeqCst) == 0
                && mapping.header(H_DOUBTFUL).load(Ordering::SeqCst) == 0
                && mapping.header(H_TABLE_SEQ).load(Ordering::SeqCst) % 2 == 0
        })
    }

    /// Under the lock: sets a key's state to the lower of the one held and
    /// `state` (states only go down), inserting the key if absent.
    fn lower(&self, digest: &Digest, state: i64) -> Result<(), Error> {
        let held = match self.probe_locked(digest) {
            Some(held) => held.min(state),
            None => state,
        };
        self.set(digest, held, false)
    }

    /// Under the lock (no writer can be midway): the state held for a digest.
    fn probe_locked(&self, digest: &Digest) -> Option<i64> {
        let mapping = self.mapping()?;
        match self.probe(mapping, digest) {
            Lookup::Found(word) => Some(word),
            _ => None,
        }
    }
}

/// Marks entries pending from inside a store write (see [`SharedIndex::write`]).
pub(crate) struct Marker<'a> {
    index: &'a SharedIndex,
    storage: &'a dyn Storage,
    marked: Vec<(Digest, i64)>,
}

impl Marker<'_> {
    fn mark(&mut self, digest: &Digest, state: i64) -> Result<(), Error> {
        if self.index.is_full() {
            // Rebuilt from the store with room for twice as many keys. The
            // keys this write marked are not in the store yet: mark them
            // again in the new table.
            let keys = self
                .index
                .mapping()
                .map_or(0, |m| m.header(H_USED).load(Ordering::SeqCst));
            self.index.rebuild_with(self.storage, keys + 1)?;
            let mapping = self
                .index
                .mapping()
                .ok_or_else(|| Error::Storage("index not mapped".into()))?;
            mapping.header(H_DIRTY).store(1, Ordering::SeqCst);
            for (marked, state) in &self.marked {
                self.index.set(marked, *state, true)?;
            }
        }
        self.marked.push((*digest, state));
        self.index.set(digest, state, true)
    }
}

/// Reads an entry's words under its sequence word; `None` when a writer
/// kept changing it.
fn read_entry(entry: &[AtomicU64]) -> Option<[u64; WORDS_PER_ENTRY]> {
    for _ in 0..64 {
        let before = entry[E_SEQ_FLAGS].load(Ordering::Acquire);
        if before & 1 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let mut words: [u64; WORDS_PER_ENTRY] =
            core::array::from_fn(|i| entry[i].load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        if entry[E_SEQ_FLAGS].load(Ordering::Relaxed) == before {
            words[E_SEQ_FLAGS] = before;
            return Some(words);
        }
    }
    None
}

/// Writes an entry under its sequence word (the caller holds the lock).
fn write_entry(entry: &[AtomicU64], salt: u64, flags: u64, state: i64, digest: &[u64; 4]) {
    let current = entry[E_SEQ_FLAGS].load(Ordering::SeqCst);
    // Odd while the entry changes: readers retry, or read the store.
    let seq = (current as u32) | 1;
    entry[E_SEQ_FLAGS].store((current & !0xffff_ffff) | u64::from(seq), Ordering::SeqCst);
    let next = (flags << 32) | u64::from(seq.wrapping_add(1));
    let mut words = [0u64; WORDS_PER_ENTRY];
    words[E_SEQ_FLAGS] = next;
    words[E_STATE] = state as u64;
    words[E_DIGEST..E_DIGEST + 4].copy_from_slice(digest);
    for (i, word) in words.iter().enumerate().skip(1).take(5) {
        entry[i].store(*word, Ordering::SeqCst);
    }
    entry[E_CHECK].store(entry_check(salt, &words), Ordering::SeqCst);
    entry[E_SEQ_FLAGS].store(next, Ordering::SeqCst);
}

/// The check word of an entry: its flags, state and digest.
fn entry_check(salt: u64, words: &[u64; WORDS_PER_ENTRY]) -> u64 {
    mix(
        salt,
        [
            words[E_SEQ_FLAGS] >> 32,
            words[E_STATE],
            words[E_DIGEST],
            words[E_DIGEST + 1],
            words[E_DIGEST + 2],
            words[E_DIGEST + 3],
        ],
    )
}

fn words_to_digest(words: &[u64; WORDS_PER_ENTRY]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    for i in 0..4 {
        digest[i * 8..i * 8 + 8].copy_from_slice(&words[E_DIGEST + i].to_le_bytes());
    }
    digest
}

/// The store's storage in shared mode: every write keeps the index.
pub(crate) struct Indexed<S> {
    pub(crate) storage: S,
    pub(crate) index: std::sync::Arc<SharedIndex>,
}

impl<S: Storage> Storage for Indexed<S> {
    fn insert(
        &self,
        records: &mut [KeyRecord],
        at: Timestamp,
        digests: NewDigests,
    ) -> Result<(), Error> {
        let states: Vec<(Digest, i64)> = records
            .iter()
            .map(|record| (Digest::from_bytes(record.digest), record.state().word()))
            .collect();
        self.index.write(
            &self.storage,
            |marker| {
                for (digest, state) in &states {
                    marker.mark(digest, *state)?;
                }
                self.storage.insert(records, at, digests)
            },
            |_| states.clone(),
        )
    }

    fn change(
        &self,
        target: Target<'_>,
        at: Timestamp,
        change: &mut ChangeFn<'_>,
    ) -> Result<Changed, Error> {
        self.index.write(
            &self.storage,
            |marker| {
                let mut marking_failed = None;
                let result = self.storage.change(target, at, &mut |record| {
                    // Before the commit, which follows this function: the
                    // key itself and any key the change creates.
                    let outcome = change(record)?;
                    let touched = core::iter::once(&*record).chain(outcome.successor.iter());
                    for key in touched {
                        if let Err(error) =
                            marker.mark(&Digest::from_bytes(key.digest), key.state().word())
                        {
                            marking_failed = Some(error);
                            return Err(Error::Storage(
                                "the shared index could not be updated".into(),
                            ));
                        }
                    }
                    Ok(outcome)
                });
                match marking_failed {
                    Some(error) => Err(error),
                    None => result,
                }
            },
            |changed| {
                core::iter::once(&changed.record)
                    .chain(changed.successor.iter())
                    .map(|record| (Digest::from_bytes(record.digest), record.state().word()))
                    .collect()
            },
        )
    }

    fn by_digest(&self, digest: &Digest) -> Result<Option<KeyRecord>, Error> {
        self.storage.by_digest(digest)
    }

    fn key_state(&self, digest: &Digest, id: &str) -> Result<Option<KeyState>, Error> {
        self.storage.key_state(digest, id)
    }

    fn by_id(&self, id: &str) -> Result<Option<(KeyRecord, Usage)>, Error> {
        self.storage.by_id(id)
    }

    fn scan(&self, visit: &mut dyn FnMut(KeyRecord, Usage)) -> Result<(), Error> {
        self.storage.scan(visit)
    }

    fn key_count(&self) -> Result<u64, Error> {
        self.storage.key_count()
    }

    fn scan_states(&self, visit: &(dyn Fn(StoredState) + Sync)) -> Result<(), Error> {
        self.storage.scan_states(visit)
    }

    fn add_usage(&self, deltas: &[UsageDelta<'_>], at: Timestamp) -> Result<(), Error> {
        self.storage.add_usage(deltas, at)
    }

    fn events(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        self.storage.events(after, limit)
    }

    fn import(
        &self,
        keys: &[(KeyRecord, Usage)],
        events: &[Event],
        handles: &[FiledHandle],
    ) -> Result<(), Error> {
        // Every new key is marked before the commit, as an insert does.
        let states: Vec<(Digest, i64)> = keys
            .iter()
            .map(|(record, _)| (Digest::from_bytes(record.digest), record.state().word()))
            .collect();
        self.index.write(
            &self.storage,
            |marker| {
                for (digest, state) in &states {
                    marker.mark(digest, *state)?;
                }
                self.storage.import(keys, events, handles)
            },
            |_| states.clone(),
        )
    }

    // Moving in: imports and re-digests keep the index like any write.
    fn import_legacy(
        &self,
        keys: Vec<ImportedKey>,
        at: Timestamp,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.index.write(
            &self.storage,
            |marker| {
                // Under the index's lock no other process writes: the
                // handles stored now are exactly those the import skips.
                let known = {
                    let handles: Vec<&[u8]> =
                        keys.iter().map(|key| key.handle.as_slice()).collect();
                    self.storage.handles_known(&handles)?
                };
                let mut marked = std::collections::HashSet::new();
                for (key, known) in keys.iter().zip(known) {
                    if !known && marked.insert(key.handle.as_slice()) {
                        let digest = Digest::from_bytes(key.record.digest);
                        marker.mark(&digest, key.record.state().word())?;
                    }
                }
                self.storage.import_legacy(keys, at)
            },
            |records| {
                records
                    .iter()
                    .map(|record| (Digest::from_bytes(record.digest), record.state().word()))
                    .collect()
            },
        )
    }

    fn handles_known(&self, handles: &[&[u8]]) -> Result<Vec<bool>, Error> {
        self.storage.handles_known(handles)
    }

    fn by_handle(&self, handle: &[u8]) -> Result<Option<KeyRecord>, Error> {
        self.storage.by_handle(handle)
    }

    fn redigest(
        &self,
        id: &str,
        from: &Digest,
        to: &Digest,
        at: Timestamp,
    ) -> Result<Option<KeyRecord>, Error> {
        self.index.write(
            &self.storage,
            |marker| {
                let Some((record, _)) = self.storage.by_id(id)? else {
                    return Ok(None);
                };
                let on_legacy = record
                    .origin
                    .as_ref()
                    .is_some_and(|origin| origin.legacy_digest.is_some());
                if Digest::from_bytes(record.digest) != *from || !on_legacy {
                    return Ok(None);
                }
                // The key under its new digest; the placeholder, which no
                // presented key can hash to, refused from now on.
                marker.mark(to, record.state().word())?;
                marker.mark(from, crate::state::REVOKED)?;
                self.storage.redigest(id, from, to, at)
            },
            |moved| match moved {
                Some(record) => vec![(*to, record.state().word()), (*from, crate::state::REVOKED)],
                None => Vec::new(),
            },
        )
    }

    fn legacy_sources(&self) -> Result<Sources, Error> {
        self.storage.legacy_sources()
    }

    fn legacy_handles(&self) -> Result<Vec<FiledHandle>, Error> {
        self.storage.legacy_handles()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NEVER;
    use crate::state::REVOKED;
    use crate::storage::redb::RedbStorage;
    use crate::storage::Change;

    fn record(id: &str, digest: [u8; 32]) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            digest,
            ..crate::record::tests::sample()
        }
    }

    fn revoke(storage: &dyn Storage, digest: &Digest) {
        storage
            .change(
                Target::Digest(digest),
                Timestamp::from_unix(2),
                &mut |record| {
                    record.revoked_at = Some(Timestamp::from_unix(2));
                    Ok(Change::write(Vec::new()))
                },
            )
            .unwrap();
    }

    /// An indexed store holding one key, and that key's digest.
    fn store_with_one_key(dir: &Path) -> (PathBuf, Indexed<RedbStorage>, Digest) {
        let path = dir.join("s.redb");
        crate::ownership::create_store_file(&path, 0o600).unwrap();
        let storage = RedbStorage::open(&path, true, &[1; 32]).unwrap();
        let index = std::sync::Arc::new(
            SharedIndex::open(&path, [1; 32], &storage, StoreIdentity::File).unwrap(),
        );
        let indexed = Indexed { storage, index };
        let mut records = vec![record("aaaaaaaaaaaaaaaa", [0x42; 32])];
        indexed
            .insert(&mut records, Timestamp::from_unix(1), NewDigests::Unchecked)
            .unwrap();
        (path, indexed, Digest::from_bytes([0x42; 32]))
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn shared_handles_and_exclusive_handles_keep_each_other_out_through_the_index_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, indexed, digest) = store_with_one_key(dir.path());
        drop(indexed);
        // A shared handle that never opened the store file: only its lock on
        // the index file tells an exclusive open that it is there.
        let storage = crate::storage::memory::MemoryStorage::open(
            &crate::storage::memory::MemoryStore::new(),
            true,
            &[1; 32],
            &path,
        )
        .unwrap();
        let index = SharedIndex::open(&path, [1; 32], &storage, StoreIdentity::File).unwrap();
        assert!(index.holds_handle_lock());
        assert_eq!(
            index.lookup(&digest),
            Lookup::Found(NEVER),
            "served from the index"
        );
        assert!(matches!(exclude_shared(&path), Err(Error::Locked { .. })));
        let header = std::fs::read(index_path(&path)).unwrap();
        assert_eq!(
            header[..8],
            MAGIC.to_le_bytes(),
            "a refused exclusive open wrote"
        );
        drop(index);

        // An exclusive handle's lock keeps new shared handles out, and the
        // index it left is stale.
        let exclusion = exclude_shared(&path).unwrap();
        assert!(exclusion.is_some());
        assert!(matches!(
            SharedIndex::open(&path, [1; 32], &storage, StoreIdentity::File),
            Err(Error::Locked { .. })
        ));
        drop(exclusion);
        let header = std::fs::read(index_path(&path)).unwrap();
        assert_eq!(header[..8], [0; 8]);
    }

    #[test]
    fn a_writer_dead_between_its_commit_and_its_publication_is_read_through_then_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let (path, indexed, digest) = store_with_one_key(dir.path());
        assert_eq!(indexed.index.lookup(&digest), Lookup::Found(NEVER));
        assert_eq!(
            indexed.index.lookup(&Digest::from_bytes([9; 32])),
            Lookup::Absent
        );

        // Steps 1-4 of a revocation, then nothing: the writer "died".
        {
            let _lock = FileLock::take(&indexed.index.file).unwrap();
            let mapping = indexed.index.mapping().unwrap();
            mapping.header(H_DIRTY).store(1, Ordering::SeqCst);
            indexed.index.set(&digest, NEVER, true).unwrap();
            revoke(&indexed.storage, &digest);
        }
        // Committed, not published: this process reads the store file.
        assert_eq!(indexed.index.lookup(&digest), Lookup::Unsure);
        assert_eq!(
            indexed
                .storage
                .by_digest(&digest)
                .unwrap()
                .unwrap()
                .state()
                .word(),
            REVOKED
        );

        // Another process opening the store repairs the table for everyone.
        let other =
            SharedIndex::open(&path, [1; 32], &indexed.storage, StoreIdentity::File).unwrap();
        assert_eq!(other.lookup(&digest), Lookup::Found(REVOKED));
        assert_eq!(indexed.index.lookup(&digest), Lookup::Found(REVOKED));
    }

    #[test]
    fn a_failed_write_leaves_its_entries_pending_and_the_next_writer_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let (_path, indexed, digest) = store_with_one_key(dir.path());
        // A change that fails after its key was marked: the commit never happens.
        let failed = indexed.change(
            Target::Digest(&digest),
            Timestamp::from_unix(2),
            &mut |_| Err(Error::Storage("injected".into())),
        );
        assert!(failed.is_err());
        // Marked before the closure failed? The closure runs first, so nothing
        // was marked and the entry is still served.
        assert_eq!(indexed.index.lookup(&digest), Lookup::Found(NEVER));

        // An insert whose commit fails after marking (a repeated digest).
        let mut repeated = vec![record("bbbbbbbbbbbbbbbb", [0x42; 32])];
        let mut fresh = vec![record("cccccccccccccccc", [0x43; 32]), repeated.remove(0)];
        assert!(indexed
            .insert(&mut fresh, Timestamp::from_unix(3), NewDigests::Unchecked)
            .is_err());
        assert_eq!(
            indexed.index.lookup(&Digest::from_bytes([0x43; 32])),
            Lookup::Unsure
        );
        assert_eq!(indexed.index.lookup(&digest), Lookup::Unsure);
        // The next write rebuilds from the store: the failed key is absent.
        revoke(&indexed, &digest);
        assert_eq!(
            indexed.index.lookup(&Digest::from_bytes([0x43; 32])),
            Lookup::Absent
        );
        assert_eq!(indexed.index.lookup(&digest), Lookup::Found(REVOKED));
    }
}
