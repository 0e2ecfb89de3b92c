//! Fleet mode's lookup (a store on PostgreSQL), in one of two shapes:
//!
//! - **per machine** (the default when a machine-local directory is
//!   usable): one process per machine, elected by an `flock` lease on a
//!   file in that directory, follows the database's change feed ([`Feed`])
//!   and writes every key's state into the machine's index (the shared
//!   index file format, `shared/index.rs`), with the moment up to which it
//!   confirmed it current. Every process maps it and checks that moment
//!   against L itself; a process holds no feed connection unless it is the
//!   feeder, and its call connection only while it uses it. When the
//!   feeder dies the kernel releases the lease and another process takes it.
//! - **per process**: every key's details and state in this process's
//!   memory, a replica kept current by a thread of its own that follows the
//!   feed.
//!
//! Either way the feed is woken by `NOTIFY` and polled every `bound / 4`.
//!
//! The revocation bound L: the replica records when (on this machine's
//! monotonic clock, `CLOCK_BOOTTIME`, which also counts suspended time) the
//! last complete read of the feed *started*. That read saw every commit made
//! before it started. A verify served from memory at time t needs that start
//! within L before t, so a revocation committed before t - L is in the
//! replica. A verify that finds the replica older asks the database, or
//! refuses ([`NotCurrent`]); it never serves from memory. The proof and the
//! measured delays: `docs/postgres.md`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use hashbrown::HashTable;

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::record::{KeyRecord, Usage};
use crate::state::KeyState;
use crate::storage::postgres::feed::Feed;
use crate::storage::postgres::{IdleCloser, Server};
use crate::storage::NewDigests;
use crate::usage::PendingUsage;

use super::read_through::{Known, ReadThrough};
use super::shared::index::{Lookup, SharedIndex};
use super::{Found, KeyLookup};
use crate::store::info::Details;
use crate::store::options::{FleetPolicy, LocalDir, NotCurrent};
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
    fn empty() -> Replica {
        Replica {
            keys: RwLock::new(HashTable::new()),
            confirmed: AtomicU64::new(0),
        }
    }

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

/// A machine's process's own committed writes the machine's index did not
/// take: a key this process just generated is accepted by its next verify,
/// and one it just revoked refused, without waiting for the feeder. Dropped
/// once the index is confirmed as of a feed read that started after the
/// last of them (that read saw them all, and the feeder wrote them).
#[derive(Default)]
struct Unpublished {
    writes: std::sync::OnceLock<Replica>,
    /// `boot_nanos` after the last write kept; 0: none kept.
    last: AtomicU64,
    /// Taken to keep a write and to drop them all, so that a drop never
    /// takes a write kept after the moment it checked.
    turn: Mutex<()>,
}

impl Unpublished {
    fn keep(&self, record: &KeyRecord) {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        self.writes
            .get_or_init(Replica::empty)
            .apply(record.clone());
        self.last.store(boot_nanos(), Ordering::SeqCst);
    }

    /// The state of a key this process wrote and the index lacks, if any
    /// such write is still kept.
    fn get(&self, index: &SharedIndex, digest: &Digest) -> Option<(Arc<Details>, KeyState)> {
        let last = self.last.load(Ordering::SeqCst);
        if last == 0 {
            return None;
        }
        let writes = self.writes.get()?;
        let now = boot_nanos();
        if index.confirmed_within(now, now.saturating_sub(last)) {
            // Confirmed as of a read that started after the last write kept.
            let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
            if self.last.load(Ordering::SeqCst) == last {
                writes
                    .keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                self.last.store(0, Ordering::SeqCst);
                return None;
            }
            drop(_turn);
        }
        writes.get(digest)
    }
}

/// Where verify reads the keys' states.
enum Source {
    /// This process's replica, fed by its own feed thread.
    Process(Arc<Replica>),
    /// The machine's index, fed by the elected feeder.
    Machine(Arc<SharedIndex>),
}

/// The keys' states, the thread that follows the feed (or competes for the
/// machine's lease), and what to do when they cannot be confirmed current.
pub(in crate::store) struct FleetLookup {
    source: Source,
    through: ReadThrough,
    policy: FleetPolicy,
    misses: MissReads,
    stop: Arc<AtomicBool>,
    /// Per machine: this process's own writes that the index could not
    /// take at once (a table being rebuilt, or full), served from here
    /// until the feeder has brought them (see [`Unpublished`]).
    unpublished: Unpublished,
    /// Per machine: timed flushes go to the machine's feeder.
    #[cfg(unix)]
    relay: Option<super::relay::UsageSender>,
    /// Whether this process is the machine's feeder with its relay running.
    #[cfg(unix)]
    relay_running: Arc<super::relay::Running>,
}

/// Reads of the database for well-formed keys the local copy does not know,
/// at most `rate` a second in this process (a token bucket of `rate`), so
/// that a flood of made-up keys costs the database at most that.
struct MissReads {
    rate: u32,
    /// Tokens left and the moment (`boot_nanos`) they were counted.
    bucket: Mutex<(f64, u64)>,
}

impl MissReads {
    fn new(rate: u32) -> Self {
        MissReads {
            rate,
            bucket: Mutex::new((f64::from(rate), boot_nanos())),
        }
    }

    fn take(&self) -> bool {
        if self.rate == 0 {
            return false;
        }
        let now = boot_nanos();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = f64::from(self.rate);
        let refill = now.saturating_sub(bucket.1) as f64 / 1e9 * rate;
        bucket.0 = (bucket.0 + refill).min(rate);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The machine-local files of one store: the feeder's lease, the index,
/// and the socket the feeder takes the workers' usage on.
struct MachineFiles {
    lease: PathBuf,
    index: PathBuf,
    usage: PathBuf,
}

/// What a process needs once elected the machine's feeder: the server to
/// read the feed from, and the usage relay's socket and writer.
struct Elected {
    server: Server,
    socket: PathBuf,
    usage: UsageWriter,
    /// Set while this process's relay runs (see `FleetLookup::drop`).
    #[cfg(unix)]
    running: Arc<super::relay::Running>,
}

/// How the machine's feeder writes the usage its workers hand it
/// (`super::relay`): its own connection, every `interval` (the store's
/// flush interval), events dated by `clock`.
pub(in crate::store) struct UsageWriter {
    pub(in crate::store) storage: crate::storage::postgres::PgStorage,
    pub(in crate::store) interval: Duration,
    pub(in crate::store) clock: Arc<dyn crate::clock::Clock>,
}

impl FleetLookup {
    /// Per machine if a local directory is usable (or asked for), else per
    /// process. `url` (without password or parameters) and the pepper's
    /// `fingerprint` name the machine's files, one pair per store.
    pub(in crate::store) fn start(
        server: Server,
        policy: FleetPolicy,
        fingerprint: [u8; 32],
        closer: IdleCloser,
        url: &str,
        usage: UsageWriter,
    ) -> Result<Self, Error> {
        let files = match &policy.local {
            LocalDir::PerProcess => None,
            LocalDir::At(dir) => Some(machine_files(dir, true, &fingerprint, url)?),
            LocalDir::Default => default_dirs()
                .iter()
                .find_map(|dir| machine_files(dir, false, &fingerprint, url).ok()),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let poll = (policy.bound / 4).max(Duration::from_millis(1));
        // The feeder's usage socket, for a store fed per machine.
        let mut sender: Option<PathBuf> = None;
        #[cfg(unix)]
        let relay_running = Arc::new(super::relay::Running::default());
        let source = match files {
            Some(files) => {
                let lease = File::options()
                    .read(true)
                    .write(true)
                    .open(&files.lease)
                    .map_err(|error| crate::ownership::io_error(error, &files.lease))?;
                let index = Arc::new(SharedIndex::open_machine(
                    &files.lease,
                    &files.index,
                    fingerprint,
                )?);
                let (weak, stopped, idle) =
                    (Arc::downgrade(&index), stop.clone(), policy.idle_close);
                let elected = Elected {
                    server,
                    socket: files.usage.clone(),
                    usage,
                    #[cfg(unix)]
                    running: relay_running.clone(),
                };
                std::thread::Builder::new()
                    .name("apikeys-lease".into())
                    .spawn(move || {
                        compete(weak, lease, stopped, poll, closer, idle, elected);
                    })
                    .map_err(|error| {
                        Error::Storage(format!("could not start the lease thread: {error}"))
                    })?;
                // Open returns with a current index when a feeder can
                // confirm one within L (at once if one already runs);
                // otherwise verifies follow the policy until it does.
                let bound = u64::try_from(policy.bound.as_nanos()).unwrap_or(u64::MAX);
                let waiting = std::time::Instant::now();
                while !index.confirmed_within(boot_nanos(), bound)
                    && waiting.elapsed() < policy.bound
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                sender = Some(files.usage);
                Source::Machine(index)
            }
            None => {
                let replica = Arc::new(Replica::empty());
                let mut feed = Feed::new(server);
                let started = boot_nanos();
                let first = feed.changes_since(0)?;
                for record in first.records {
                    replica.apply(record);
                }
                replica.confirm(started);
                let (weak, stopped, idle) =
                    (Arc::downgrade(&replica), stop.clone(), policy.idle_close);
                std::thread::Builder::new()
                    .name("apikeys-feed".into())
                    .spawn(move || {
                        follow(weak, feed, first.version, stopped, poll, closer, idle);
                    })
                    .map_err(|error| {
                        Error::Storage(format!("could not start the feed thread: {error}"))
                    })?;
                Source::Process(replica)
            }
        };
        Ok(FleetLookup {
            source,
            through: ReadThrough::default(),
            misses: MissReads::new(policy.miss_reads),
            policy,
            stop,
            unpublished: Unpublished::default(),
            #[cfg(unix)]
            relay: sender.map(super::relay::UsageSender::new),
            #[cfg(unix)]
            relay_running,
        })
    }

    /// The machine index file, when this store uses one.
    #[allow(dead_code)]
    pub(in crate::store) fn machine_index(&self) -> Option<&Path> {
        match &self.source {
            Source::Machine(index) => Some(index.path()),
            Source::Process(_) => None,
        }
    }

    /// A key this process holds with its details (the replica's, or a write
    /// not yet in the machine index), its uses counted in its cell; else a
    /// [miss](Self::miss).
    fn held_or_miss<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
        held: Option<(Arc<Details>, KeyState)>,
    ) -> Result<Found<'store>, VerifyError> {
        match held {
            Some((details, state)) => Ok(ReadThrough::serve(
                store,
                Known::Counted(details),
                state,
                now,
            )),
            None => self.miss(store, digest, now),
        }
    }

    /// A verify on a copy not confirmed current within L: never from memory.
    fn not_current<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<Found<'store>, VerifyError> {
        match self.policy.not_current {
            NotCurrent::AskDatabase => self.through.find(store, digest, now, 0),
            NotCurrent::Refuse => Err(Error::DatabaseUnavailable(format!(
                "this machine could not confirm within {:?} that its keys are current",
                self.policy.bound
            ))
            .into()),
        }
    }

    /// A well-formed key the local copy does not know: one indexed read of
    /// the database while the budget lasts (a key made on another machine
    /// moments ago is then accepted at once), else `NotFound`.
    fn miss<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<Found<'store>, VerifyError> {
        if self.misses.take() {
            self.through.find(store, digest, now, 0)
        } else {
            Err(Rejection::NotFound.into())
        }
    }
}

impl Drop for FleetLookup {
    fn drop(&mut self) {
        // The thread ends at its next wake-up (at most a poll interval).
        self.stop.store(true, Ordering::SeqCst);
        // A feeder's relay writes what the machine's workers handed it
        // first (within `relay::STOP_LATENCY` and one write).
        #[cfg(unix)]
        self.relay_running.wait_ended(Duration::from_secs(10));
    }
}

/// The directories tried, in order, when none is configured.
fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        dirs.push(PathBuf::from(runtime).join("apikeys"));
    }
    dirs.push(PathBuf::from("/run/apikeys"));
    #[cfg(unix)]
    {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        dirs.push(std::env::temp_dir().join(format!("apikeys-{uid}")));
    }
    dirs
}

/// Makes `dir` (owner-only when this creates it) and checks that it is a
/// directory of this user that others cannot write (nor, for a default
/// directory, read); then the lease (created owner-only) and index paths of
/// this store in it.
fn machine_files(
    dir: &Path,
    explicit: bool,
    fingerprint: &[u8; 32],
    url: &str,
) -> Result<MachineFiles, Error> {
    let unusable = |why: &str| {
        Error::InvalidArgument(format!(
            "the machine-local directory {} is not usable: {why}",
            dir.display()
        ))
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|error| crate::ownership::io_error(error, dir))?;
    let metadata =
        std::fs::symlink_metadata(dir).map_err(|error| crate::ownership::io_error(error, dir))?;
    if !metadata.is_dir() {
        return Err(unusable("not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        if metadata.uid() != uid {
            return Err(unusable("owned by another user"));
        }
        // A configured directory may be shared with a group (its files stay
        // owner-only unless made otherwise); nobody else may write in it.
        let forbidden = if explicit { 0o002 } else { 0o077 };
        if metadata.mode() & forbidden != 0 {
            return Err(unusable("open to other users"));
        }
    }
    // One pair of files per store: the database and the pepper.
    let mut hasher = blake3::Hasher::new_derive_key("apikeys machine files v1");
    hasher.update(url.as_bytes());
    hasher.update(&[0]);
    hasher.update(fingerprint);
    let name = hasher.finalize().to_hex();
    let name = &name.as_str()[..24];
    let lease = dir.join(format!("apikeys-{name}.lease"));
    crate::ownership::create_store_file(&lease, crate::ownership::OWNER_ONLY)?;
    // A probe: the directory and the lease must be writable here.
    File::options()
        .read(true)
        .write(true)
        .open(&lease)
        .map_err(|error| crate::ownership::io_error(error, &lease))?;
    Ok(MachineFiles {
        index: dir.join(format!("apikeys-{name}.index")),
        usage: dir.join(format!("apikeys-{name}.usage")),
        lease,
    })
}

/// Lease descriptors of this process. A child made by `fork()` inherits
/// them, and with them the `flock` (it belongs to the open file, not the
/// process): a child that outlived a killed feeder would hold the lease
/// without feeding. The child closes its copies right after the fork.
#[cfg(unix)]
static LEASES: [std::sync::atomic::AtomicI32; 64] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; 64];

#[cfg(unix)]
extern "C" fn close_leases_in_child() {
    for slot in &LEASES {
        let fd = slot.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: close is async-signal-safe; the descriptor is this
            // process's copy of a lease, which no code of the child uses.
            unsafe { libc::close(fd) };
        }
    }
}

/// Remembers a lease descriptor for [`close_leases_in_child`]; the slot to
/// forget it by (none when 64 are taken: that lease stays inherited).
#[cfg(unix)]
fn register_lease(lease: &File) -> Option<usize> {
    use std::os::fd::AsRawFd;
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only swaps atomics and
        // closes descriptors, both async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(close_leases_in_child));
        }
    });
    let fd = lease.as_raw_fd();
    LEASES.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// The lease thread of a per-machine store: tries the lease every poll
/// interval; the process that holds it feeds the machine's index until its
/// store closes (the kernel releases the lease if it dies). Closes the call
/// connection once idle, in every process.
fn compete(
    index: Weak<SharedIndex>,
    lease: File,
    stop: Arc<AtomicBool>,
    poll: Duration,
    closer: IdleCloser,
    idle: Duration,
    elected: Elected,
) {
    let Elected {
        server,
        socket,
        usage,
        #[cfg(unix)]
        running,
    } = elected;
    #[cfg(unix)]
    let slot = register_lease(&lease);
    loop {
        if stop.load(Ordering::SeqCst) || !closer.close_if_idle(idle) {
            break;
        }
        if lease.try_lock().is_ok() {
            // The workers' usage, written by this process while it feeds.
            // It stops with the store (whose drop waits for its last write),
            // its socket gone before the lease is released.
            #[cfg(unix)]
            let relay = {
                let (closing, ended) = (stop.clone(), running.clone());
                running.set(true);
                let thread = std::thread::Builder::new()
                    .name("apikeys-usage-relay".into())
                    .spawn(move || {
                        super::relay::receive(&socket, usage, idle, &closing);
                        ended.set(false);
                    });
                if thread.is_err() {
                    running.set(false);
                }
                thread.ok()
            };
            #[cfg(not(unix))]
            let _ = (usage, socket);
            // Returns only once the store is going away.
            feed_machine(&index, Feed::new(server), &stop, poll, &closer, idle);
            #[cfg(unix)]
            if let Some(thread) = relay {
                stop.store(true, Ordering::SeqCst);
                let _ = thread.join();
            }
            break;
        }
        std::thread::sleep(poll);
    }
    #[cfg(unix)]
    if let Some(slot) = slot {
        LEASES[slot].store(-1, Ordering::SeqCst);
    }
    // Released for every copy of the descriptor (a child's, if one kept it).
    let _ = lease.unlock();
}

/// The elected feeder: a full read of the feed, then every change, each
/// written into the machine's index and confirmed as of the moment its read
/// started. A failed read or write confirms nothing: the index ages, and
/// after L every process stops trusting it.
fn feed_machine(
    index: &Weak<SharedIndex>,
    mut feed: Feed,
    stop: &AtomicBool,
    poll: Duration,
    closer: &IdleCloser,
    idle: Duration,
) {
    let mut all: hashbrown::HashMap<[u8; 32], i64> = hashbrown::HashMap::new();
    // None until a full read has succeeded.
    let mut version: Option<i64> = None;
    loop {
        if stop.load(Ordering::SeqCst) || !closer.close_if_idle(idle) {
            return;
        }
        let Some(index) = index.upgrade() else {
            return;
        };
        let started = boot_nanos();
        if let Ok(changes) = feed.changes_since(version.unwrap_or(0)) {
            let mut changed = Vec::with_capacity(changes.records.len());
            for record in &changes.records {
                let state = record.state().word();
                let held = all.entry(record.digest).or_insert(state);
                *held = (*held).min(state);
                changed.push((record.digest, *held));
            }
            let everything = || {
                all.iter()
                    .map(|(digest, state)| (*digest, *state))
                    .collect()
            };
            if index.feed(everything, &changed, started).is_ok() {
                version = Some(changes.version);
            }
        }
        drop(index);
        feed.wait(poll);
    }
}

/// The feed thread of a per-process store: waits for a notification or the
/// poll interval, reads what changed, applies it, then records when that
/// read started. A failed read records nothing: the replica ages until a
/// read succeeds.
fn follow(
    replica: Weak<Replica>,
    mut feed: Feed,
    mut version: i64,
    stop: Arc<AtomicBool>,
    poll: Duration,
    closer: IdleCloser,
    idle: Duration,
) {
    loop {
        feed.wait(poll);
        if stop.load(Ordering::SeqCst) || !closer.close_if_idle(idle) {
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
    fn started(&self) -> u64 {
        if self.policy.strict {
            return 0;
        }
        boot_nanos()
    }

    fn find<'store>(
        &'store self,
        store: &'store Inner,
        digest: &Digest,
        now: Timestamp,
        started: u64,
    ) -> Result<Found<'store>, VerifyError> {
        if self.policy.strict {
            return self.through.find(store, digest, now, 0);
        }
        // `started` (`CLOCK_BOOTTIME`) was read after this verify began: a
        // verify that begins more than L after a confirmed moment finds it
        // older than L. The confirmed moment is read after it, then the
        // entry: what was applied before it was confirmed is visible to
        // this verify.
        let bound = u64::try_from(self.policy.bound.as_nanos()).unwrap_or(u64::MAX);
        match &self.source {
            Source::Process(replica) => {
                if replica.age(started) > bound {
                    return self.not_current(store, digest, now);
                }
                self.held_or_miss(store, digest, now, replica.get(digest))
            }
            Source::Machine(index) => match index.lookup_confirmed(digest, started, bound) {
                None => self.not_current(store, digest, now),
                Some(Lookup::Found(word)) => {
                    let details = self.through.details_of(store, digest)?;
                    // The stricter of the index's and this process's own.
                    let own = self.unpublished.get(index, digest);
                    let word = own.map_or(word, |(_, state)| word.min(state.word()));
                    Ok(ReadThrough::serve(
                        store,
                        details,
                        KeyState::from_word(word),
                        now,
                    ))
                }
                Some(Lookup::Absent) => {
                    self.held_or_miss(store, digest, now, self.unpublished.get(index, digest))
                }
                // An entry being written or damaged: the database.
                Some(Lookup::Unsure) => self.through.find(store, digest, now, 0),
            },
        }
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
        // This process's own writes are served at once (on its machine),
        // before the feed brings them back.
        match &self.source {
            Source::Process(replica) => replica.apply(record.clone()),
            Source::Machine(index) => {
                // If the index cannot take it now, the feeder brings it;
                // until then this process serves it itself.
                let digest = Digest::from_bytes(record.digest);
                if !matches!(index.publish_own(&digest, record.state().word()), Ok(true)) {
                    self.unpublished.keep(record);
                }
            }
        }
    }

    fn pending_usage(&self, digest: &Digest) -> Usage {
        let mut usage = self.through.pending_usage(digest);
        if let Source::Process(replica) = &self.source {
            if let Some((details, _)) = replica.get(digest) {
                usage.merge(&details.usage.peek());
            }
        }
        usage
    }

    fn take_uses(&self, details: &Details, pending: &mut PendingUsage) {
        // A key pinned by `through` counts its accepted uses there; the
        // replica's and the unpublished writes' details count in their cell.
        self.through.take_uses(details, pending)
    }

    fn relay_usage(&self, taken: &[(Arc<Details>, PendingUsage)]) -> usize {
        #[cfg(unix)]
        if let Some(relay) = &self.relay {
            return relay.send(taken);
        }
        let _ = taken;
        0
    }

    fn may_read_unknown(&self) -> bool {
        // An imported key's handle is read from the database: within the
        // budget of `miss`, unless every verify reads the database anyway.
        self.policy.strict || self.misses.take()
    }
}
