//! How to open a store ([`StoreOptions`], [`Mode`]) and what to generate
//! ([`NewKey`]): plain values with builder methods, validated when used.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::key;
use crate::storage::memory::MemoryStore;

/// How the store file is shared between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One process owns the file. Verify is served from an in-memory index
    /// kept coherent by this process's own writes. Another process opening
    /// the file gets [`Error::Locked`].
    #[default]
    Exclusive,
    /// Many processes on one machine open the file (PHP-FPM, gunicorn, puma
    /// workers). Every process verifies from the shared index, a table of
    /// every key's state in a file beside the store that all of them map;
    /// a revocation committed by any process is refused by every verify that
    /// starts after its commit, in every process (`docs/shared-index.md`).
    Shared,
}

/// What a machine does when it cannot confirm, within the revocation bound,
/// that its copy of a PostgreSQL store's keys is current (the database or
/// the change feed is unreachable). It never keeps serving from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotCurrent {
    /// Ask the database on every verify until the copy is current again
    /// (and fail with [`crate::Error::DatabaseUnavailable`] if it cannot
    /// answer). The default.
    #[default]
    AskDatabase,
    /// Fail every verify with [`crate::Error::DatabaseUnavailable`].
    Refuse,
}

/// How verify on a PostgreSQL store decides (see [`StoreOptions::revocation_bound`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FleetPolicy {
    pub(crate) bound: Duration,
    pub(crate) not_current: NotCurrent,
    pub(crate) strict: bool,
    /// Where the machine's feeder lease and index live.
    pub(crate) local: LocalDir,
    /// A call connection unused this long is closed.
    pub(crate) idle_close: Duration,
    /// Reads of the database per second, per process, for well-formed keys
    /// the local copy does not know (a key just made on another machine).
    pub(crate) miss_reads: u32,
}

/// Where a PostgreSQL store's machine-local files live: the lease that
/// elects the one process per machine that follows the change feed, and the
/// machine's index that every process maps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LocalDir {
    /// `$XDG_RUNTIME_DIR/apikeys`, else `/run/apikeys` if this process may
    /// create or use it, else `<temp dir>/apikeys-<uid>`; created owner-only.
    /// If none is usable, each process follows the feed itself.
    #[default]
    Default,
    /// This directory (created owner-only if missing); an error if unusable.
    At(std::path::PathBuf),
    /// No machine-local files: every process follows the feed itself (two
    /// connections per process).
    PerProcess,
}

/// Idle call connections are closed after this long.
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(10);

/// Database reads per second and per process for unknown well-formed keys.
pub const DEFAULT_MISS_READS: u32 = 20;

/// The revocation bound unless set: a revocation committed in PostgreSQL is
/// refused by every machine within this time.
pub const DEFAULT_REVOCATION_BOUND: Duration = Duration::from_secs(1);

/// How to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    pub(super) pepper: Zeroizing<Vec<u8>>,
    pub(super) mode: Mode,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) vendor: String,
    pub(super) flush_interval: Duration,
    pub(super) track_usage: bool,
    pub(super) file_mode: u32,
    pub(crate) fleet: FleetPolicy,
    pub(super) memory: Option<MemoryStore>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pepper: Zeroizing::new(Vec::new()),
            mode: Mode::Exclusive,
            clock: Arc::new(SystemClock),
            vendor: key::DEFAULT_VENDOR.to_string(),
            flush_interval: Duration::from_secs(1),
            track_usage: true,
            file_mode: crate::ownership::OWNER_ONLY,
            fleet: FleetPolicy {
                bound: DEFAULT_REVOCATION_BOUND,
                not_current: NotCurrent::AskDatabase,
                strict: false,
                local: LocalDir::Default,
                idle_close: DEFAULT_IDLE_CLOSE,
                miss_reads: DEFAULT_MISS_READS,
            },
            memory: None,
        }
    }
}

impl core::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoreOptions")
            .field(
                "pepper",
                &if self.pepper.is_empty() {
                    "none"
                } else {
                    "set"
                },
            )
            .field("mode", &self.mode)
            .field("vendor", &self.vendor)
            .field("flush_interval", &self.flush_interval)
            .field("track_usage", &self.track_usage)
            .field("file_mode", &format_args!("{:o}", self.file_mode))
            .field("fleet", &self.fleet)
            .field("in_memory", &self.memory.is_some())
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// Exclusive mode, no pepper, the system clock, vendor `flz`, usage
    /// flushed every second.
    pub fn new() -> Self {
        Self::default()
    }

    /// A deployment secret mixed into every digest. A stolen store file is
    /// then useless without it. The store refuses to open with another one.
    pub fn pepper(mut self, pepper: impl AsRef<[u8]>) -> Self {
        self.pepper = Zeroizing::new(pepper.as_ref().to_vec());
        self
    }

    /// How the file is shared between processes.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Shorthand for `mode(Mode::Shared)`.
    pub fn shared(self) -> Self {
        self.mode(Mode::Shared)
    }

    /// Where the store reads the time (tests inject a [`crate::ManualClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The vendor prefix of generated keys: 2 to 8 of `[a-z]`.
    pub fn vendor(mut self, vendor: impl Into<String>) -> Self {
        self.vendor = vendor.into();
        self
    }

    /// How often counted usage is written; zero writes it only on
    /// [`KeyStore::flush`] and close.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Whether verify counts uses (last used, use count). On by default.
    pub fn track_usage(mut self, track: bool) -> Self {
        self.track_usage = track;
        self
    }

    /// The mode a new store file is created with: `0o600` (owner only, the
    /// default), `0o640` or `0o660` (workers in the file's group). An
    /// existing file keeps its mode; open refuses any other value.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// PostgreSQL stores: the revocation bound L. A revocation committed in
    /// the database is refused by every process on every machine within L;
    /// a process whose copy of the keys has not been confirmed current for
    /// L stops verifying from memory (see [`NotCurrent`]). Default
    /// [`DEFAULT_REVOCATION_BOUND`]; the URL parameter `apikeys_bound_ms`
    /// sets it too. Zero is refused.
    pub fn revocation_bound(mut self, bound: Duration) -> Self {
        self.fleet.bound = bound;
        self
    }

    /// PostgreSQL stores: what verify does when the copy of the keys is
    /// older than the revocation bound (URL: `apikeys_not_current=ask` or
    /// `refuse`).
    pub fn when_not_current(mut self, action: NotCurrent) -> Self {
        self.fleet.not_current = action;
        self
    }

    /// PostgreSQL stores: every verify reads the key's state from the
    /// database (one round trip), none from memory (URL: `apikeys_strict=1`).
    pub fn strict(mut self, strict: bool) -> Self {
        self.fleet.strict = strict;
        self
    }

    /// PostgreSQL stores: where the machine-local lease and index live
    /// ([`LocalDir`]; URL: `apikeys_local=<dir>` or `apikeys_local=off`).
    pub fn local_dir(mut self, dir: LocalDir) -> Self {
        self.fleet.local = dir;
        self
    }

    /// Applies this library's parameters of a PostgreSQL URL
    /// (`apikeys_bound_ms`, `apikeys_not_current`, `apikeys_strict`), so that
    /// hosts that pass only a URL can set them.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn apply_url_parameters(
        &mut self,
        parameters: &[(String, String)],
    ) -> Result<(), crate::Error> {
        let bad = |name: &str, value: &str| {
            crate::Error::InvalidArgument(format!(
                "URL parameter apikeys_{name}={value:?} is not understood"
            ))
        };
        for (name, value) in parameters {
            match name.as_str() {
                "bound_ms" => {
                    let ms: u64 = value.parse().map_err(|_| bad(name, value))?;
                    self.fleet.bound = Duration::from_millis(ms);
                }
                "not_current" => {
                    self.fleet.not_current = match value.as_str() {
                        "ask" => NotCurrent::AskDatabase,
                        "refuse" => NotCurrent::Refuse,
                        _ => return Err(bad(name, value)),
                    }
                }
                "strict" => {
                    self.fleet.strict = match value.as_str() {
                        "" | "1" | "true" | "on" => true,
                        "0" | "false" | "off" => false,
                        _ => return Err(bad(name, value)),
                    }
                }
                "local" => {
                    self.fleet.local = match value.as_str() {
                        "off" => LocalDir::PerProcess,
                        "" | "default" => LocalDir::Default,
                        dir => LocalDir::At(percent_decoded(dir).map_err(|_| bad(name, value))?),
                    }
                }
                "idle_ms" => {
                    let ms: u64 = value.parse().map_err(|_| bad(name, value))?;
                    self.fleet.idle_close = Duration::from_millis(ms);
                }
                "miss_reads" => {
                    self.fleet.miss_reads = value.parse().map_err(|_| bad(name, value))?;
                }
                _ => return Err(bad(name, value)),
            }
        }
        if self.fleet.bound.is_zero() {
            return Err(crate::Error::InvalidArgument(
                "the revocation bound must be above zero".into(),
            ));
        }
        Ok(())
    }
    /// Keeps the store in `memory` instead of a file (for test suites: no
    /// file, no fsync, nothing durable). [`KeyStore::open`](crate::KeyStore::open)'s path then only names
    /// the store: in exclusive mode nothing is written to disk; in shared
    /// mode the shared index is still a file, `<path>.index`, created
    /// owner-only, mapped by every shared handle of `memory` (give each
    /// in-memory store its own path). No file may exist at the path itself,
    /// so that an in-memory store never takes over a store file's index.
    pub fn in_memory(mut self, memory: &MemoryStore) -> Self {
        self.memory = Some(memory.clone());
        self
    }
}

/// A URL parameter's value with `%XX` escapes decoded (a path may hold `&`).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn percent_decoded(value: &str) -> Result<std::path::PathBuf, ()> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| ())?;
    if !text.starts_with('/') {
        return Err(());
    }
    Ok(std::path::PathBuf::from(text))
}

/// When a new key stops being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    At(Timestamp),
    In(Duration),
}

/// What to generate: a name (required) and optional env tag, scopes,
/// expiry, owner and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub(super) name: String,
    pub(super) env: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) expiry: Option<Expiry>,
    pub(super) owner: Option<String>,
    pub(super) metadata: Option<String>,
}

impl NewKey {
    /// A key named `name` (such as "Production"), with no scope, no expiry.
    pub fn new(name: impl Into<String>) -> Self {
        NewKey {
            name: name.into(),
            env: None,
            scopes: Vec::new(),
            expiry: None,
            owner: None,
            metadata: None,
        }
    }

    /// The environment tag in the key, such as `prod` (1 to 8 of `[a-z0-9]`).
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Adds a granted scope, such as `contacts:read`, `contacts:*` or `*`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Adds granted scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The key stops being accepted at `at`.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    /// The key stops being accepted `after` its creation.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.expiry = Some(Expiry::In(after));
        self
    }

    /// Who the key belongs to: an account or user id of the host.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Free-form data kept with the key, such as JSON.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }
}
