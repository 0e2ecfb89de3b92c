//! [`KeyStore`]: the lifecycle of API keys (generate, verify, revoke, rotate,
//! list) over a [`Storage`], with usage counted off the verify path.
//!
//! This file opens and closes a store and holds its state ([`Inner`]); each
//! other file is one concept: `options` (how to open, what to generate),
//! `info` (what the store tells about a key), `write` (generate, revoke,
//! rotate), `verify`, `list`, `leaked` (peek at a key without counting a
//! use, revoke a leaked key), `flush` (usage), `fork` (handles used after
//! `fork()`), and `lookup/` (how verify finds a key, one file per mode).

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::Error;
use crate::key;
use crate::key::digest::Hasher;
use crate::storage::{PanicGuard, Storage};
use crate::usage::DirtyList;

mod flush;
mod fork;
mod import;
mod info;
mod leaked;
mod list;
mod lookup;
mod migrate;
mod options;
mod verify;
mod write;

use crate::storage::lazy::LazyStorage;
pub use crate::storage::memory::MemoryStore;
use fork::{watch_forks, FORK_GENERATION};
pub use import::{ImportOptions, ImportReport};
use info::Details;
pub use info::{GeneratedKey, KeyInfo, ListFilter, Status, StatusFilter, VerifiedKey};
pub use leaked::MAX_LOCATION_LEN;
use lookup::exclusive::ExclusiveLookup;
/// The shared index's file beside a store (`ownership` gives it the store's owner).
pub(crate) use lookup::shared::index::index_path;
use lookup::shared::index::{self as shared_index, Indexed, SharedIndex, StoreIdentity};
use lookup::shared::SharedLookup;
use lookup::KeyLookup;
pub use migrate::Copied;
pub use options::{
    LocalDir, Mode, NewKey, NotCurrent, StoreOptions, DEFAULT_IDLE_CLOSE, DEFAULT_MISS_READS,
    DEFAULT_REVOCATION_BOUND,
};
pub use write::{MAX_BATCH, MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN};

struct Inner {
    path: PathBuf,
    /// Dropped only in the process that opened it (see `Drop for Inner`).
    storage: ManuallyDrop<Box<dyn Storage>>,
    hasher: Hasher,
    clock: Arc<dyn Clock>,
    vendor: String,
    mode: Mode,
    track_usage: bool,
    fork_generation: u64,
    /// How verify finds a key: chosen once, at open, from the mode.
    lookup: Box<dyn KeyLookup>,
    /// Keys with usage counted and not yet flushed.
    dirty: DirtyList<Arc<Details>>,
    /// How often the flusher thread writes usage (zero: no thread).
    flush_interval: Duration,
    /// The flusher thread, started by the first counted use (see
    /// [`Inner::count_later`]): a handle that never verifies, or only
    /// opens and closes (a recycled worker, a test), starts no thread.
    flusher: Mutex<Option<Flusher>>,
    flusher_started: AtomicBool,
    /// This store, for the flusher thread (which must not keep it alive).
    this: Weak<Inner>,
    /// In exclusive mode, the index file, whose lock keeps shared handles
    /// out for as long as this one lives (`shared_index::exclude_shared`).
    _exclusion: Option<std::fs::File>,
    /// Which sources of imported keys the store holds (`import`).
    legacy: import::LegacySources,
}

/// An open API-key store. Safe to share between threads (`&self` methods).
///
/// Dropping it flushes counted usage; [`KeyStore::close`] does the same and
/// reports errors.
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Flusher {
    stop: Arc<crate::background::Signal>,
    thread: crate::background::Background,
}

impl core::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.inner.path)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Opens the store at `path`, creating it (owner-only, 0600, unless
    /// [`StoreOptions::file_mode`] says otherwise) if needed.
    ///
    /// Errors: [`Error::Locked`] when another process holds the file (in
    /// exclusive mode, or in shared mode against an exclusive holder),
    /// [`Error::PermissionDenied`] when this process's user may not open it,
    /// [`Error::WrongPepper`], [`Error::Corrupted`] for a damaged or foreign
    /// file, [`Error::InvalidArgument`] for a bad vendor.
    ///
    /// A `postgres://` (or `postgresql://`) URL opens a store in that
    /// PostgreSQL database instead (feature `postgres`): see
    /// `docs/postgres.md`.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<KeyStore, Error> {
        let path = path.as_ref().to_path_buf();
        if !key::is_vendor(&options.vendor) {
            return Err(Error::InvalidArgument(format!(
                "vendor {:?}: expected 2 to 8 of [a-z]",
                options.vendor
            )));
        }
        if let Some(url) = path.to_str().filter(|p| crate::storage::is_server_url(p)) {
            return Self::open_server(url, options);
        }
        crate::ownership::check_mode(options.file_mode)?;
        watch_forks();
        let hasher = Hasher::new(&options.pepper);
        let fingerprint = hasher.fingerprint();
        // The one place the mode decides: the lookup verify uses, and
        // whether writes keep the shared index.
        let (storage, lookup, exclusion): (Box<dyn Storage>, Box<dyn KeyLookup>, _) = match (
            &options.memory,
            options.mode,
        ) {
            (None, Mode::Exclusive) => {
                crate::ownership::create_store_file(&path, options.file_mode)?;
                // Every storage call is guarded: a damaged file is an error, not a panic.
                let storage = crate::storage::open(&path, false, &fingerprint)?;
                // This process writes without keeping the shared index:
                // shared processes rebuild it when they next open the store.
                let exclusion = shared_index::exclude_shared(&path)?;
                let lookup = Box::new(ExclusiveLookup::load(&*storage)?);
                (storage, lookup, exclusion)
            }
            (None, Mode::Shared) => {
                crate::ownership::create_store_file(&path, options.file_mode)?;
                // A process that may not write the store is told so at
                // open, as when redb opened it here.
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|error| crate::ownership::io_error(error, &path))?;
                // The store file opens when first needed: a valid index
                // is all a verify of a known key's state needs, and its
                // header checks the pepper (`storage/lazy.rs`).
                let storage = LazyStorage::new(&path, &fingerprint);
                let index = SharedIndex::open(&path, fingerprint, &storage, StoreIdentity::File)?;
                if index.holds_handle_lock() {
                    storage.open_in_background();
                } else {
                    // No lock keeps exclusive handles out: redb's must.
                    storage.key_count()?;
                }
                let (storage, lookup) = Self::shared_parts(Box::new(storage), index);
                (storage, lookup, None)
            }
            (Some(memory), mode) => {
                if std::fs::symlink_metadata(&path).is_ok() {
                    return Err(Error::InvalidArgument(format!(
                            "{} exists: an in-memory store needs a path with no file, its shared index goes beside it",
                            path.display()
                        )));
                }
                let shared = mode == Mode::Shared;
                let storage = crate::storage::open_memory(memory, &path, shared, &fingerprint)?;
                if shared {
                    let identity = StoreIdentity::Memory(memory.identity());
                    let index = SharedIndex::open(&path, fingerprint, &storage, identity)?;
                    let (storage, lookup) = Self::shared_parts(storage, index);
                    (storage, lookup, None)
                } else {
                    let lookup = Box::new(ExclusiveLookup::load(&*storage)?);
                    (storage, lookup, None)
                }
            }
        };
        Self::with_storage(path, storage, lookup, exclusion, hasher, options)
    }

    /// Shared mode's storage (every write keeps the index) and lookup.
    fn shared_parts(
        storage: Box<dyn Storage>,
        index: SharedIndex,
    ) -> (Box<dyn Storage>, Box<dyn KeyLookup>) {
        let index = Arc::new(index);
        let indexed = Indexed {
            storage,
            index: index.clone(),
        };
        (
            Box::new(PanicGuard(indexed)),
            Box::new(SharedLookup::new(index)),
        )
    }

    /// Opens a store in a PostgreSQL database.
    #[cfg(feature = "postgres")]
    fn open_server(url: &str, mut options: StoreOptions) -> Result<KeyStore, Error> {
        use crate::storage::postgres::{redacted, split_url, PgStorage, Server};
        watch_forks();
        let (url, parameters) = split_url(url);
        options.apply_url_parameters(&parameters)?;
        let hasher = Hasher::new(&options.pepper);
        let server = Server::parse(&url)?;
        let storage = PgStorage::open(server.clone(), &hasher.fingerprint())?;
        let lookup = lookup::fleet::FleetLookup::start(
            server,
            options.fleet.clone(),
            hasher.fingerprint(),
            storage.idle_closer(),
            &redacted(&url),
            lookup::fleet::UsageWriter {
                storage: storage.another(),
                interval: options.flush_interval,
                clock: options.clock.clone(),
            },
        )?;
        Self::with_storage(
            PathBuf::from(redacted(&url)),
            Box::new(PanicGuard(storage)),
            Box::new(lookup),
            None,
            hasher,
            options,
        )
    }

    #[cfg(not(feature = "postgres"))]
    fn open_server(_url: &str, _options: StoreOptions) -> Result<KeyStore, Error> {
        Err(Error::InvalidArgument(
            "this build of apikeys has no PostgreSQL support (cargo feature `postgres`)".into(),
        ))
    }

    /// Builds the store over an opened storage.
    fn with_storage(
        path: PathBuf,
        storage: Box<dyn Storage>,
        lookup: Box<dyn KeyLookup>,
        exclusion: Option<std::fs::File>,
        hasher: Hasher,
        options: StoreOptions,
    ) -> Result<KeyStore, Error> {
        let on_server = path.to_str().is_some_and(crate::storage::is_server_url);
        let legacy =
            import::LegacySources::load(&*storage, options.clock.now(), options.mode, on_server)?;
        let inner = Arc::new_cyclic(|this| Inner {
            path,
            storage: ManuallyDrop::new(storage),
            hasher,
            clock: options.clock,
            vendor: options.vendor,
            mode: options.mode,
            track_usage: options.track_usage,
            fork_generation: FORK_GENERATION.load(Ordering::SeqCst),
            lookup,
            dirty: DirtyList::default(),
            legacy,
            flush_interval: options.flush_interval,
            flusher: Mutex::new(None),
            flusher_started: AtomicBool::new(false),
            this: this.clone(),
            _exclusion: exclusion,
        });
        Ok(KeyStore { inner })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The mode the store was opened in.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Flushes usage and closes the store, reporting any error.
    pub fn close(mut self) -> Result<(), Error> {
        self.stop_flusher();
        self.flush()
    }

    fn stop_flusher(&mut self) {
        let flusher = self
            .inner
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            if self.inner.fork_generation != FORK_GENERATION.load(Ordering::SeqCst) {
                // The thread stayed in the parent: there is nothing to join.
                core::mem::forget(flusher);
                return;
            }
            flusher.stop();
        }
    }

    fn inner(&self) -> Result<&Inner, Error> {
        if self.inner.fork_generation != FORK_GENERATION.load(Ordering::SeqCst) {
            return Err(Error::UsedAfterFork);
        }
        Ok(&self.inner)
    }
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

impl Inner {
    /// Lists a key whose usage was counted for the next flush, starting the
    /// flusher thread on the first one.
    pub(super) fn count_later(&self, details: Arc<Details>) {
        self.dirty.push(details);
        if self.flusher_started.load(Ordering::Relaxed) || self.flush_interval.is_zero() {
            return;
        }
        let mut flusher = self.flusher.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.flusher_started.swap(true, Ordering::SeqCst) {
            *flusher = Flusher::start(self.this.clone(), self.flush_interval);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.fork_generation != FORK_GENERATION.load(Ordering::SeqCst) {
            // The parent owns the file: closing it from the child would write
            // to it from both sides of the fork. Leave the storage undropped.
            return;
        }
        let _ = self.flush();
        // SAFETY: dropped once, here, and `self` is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.storage) }
    }
}
