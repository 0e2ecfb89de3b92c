//! Model-based fuzzing of the key store.
//!
//! Arbitrary sequences of generate / verify / verify with scope / revoke by
//! id / revoke by key / rotate / list / flush / reopen / clock moves run
//! against a real [`KeyStore`] on a temporary file, driven by a
//! [`ManualClock`], and against a plain in-memory model written here from
//! the documented behaviour. After every step the outcome is compared; list
//! contents (statuses, expiry, revocation, rotation links, usage counts) and
//! the lifecycle event log are compared after every step, through every
//! handle; `List` steps add status and unused-since filters.
//!
//! Both modes run: exclusive with one handle, shared with three handles on
//! the same store, so that every change made through one handle must be
//! seen by the others at once.
//!
//! The store is in memory ([`MemoryStore`]; in shared mode the handles still
//! map one shared index file, in /dev/shm when there is one), so that a run
//! costs what the library does rather than a durable commit per step
//! (fuzz/README.md measures the gain: about 20x in all over the durable
//! target, the checks after every step being most of what remains). The
//! durable path stays covered: the
//! first input a process runs (so also every replayed artifact) and one in
//! every [`DURABLE_EVERY`] after it run again on a real redb file, with every
//! commit synced.
#![no_main]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apikeys::{
    EventKind, KeyInfo, KeyStore, ListFilter, ManualClock, MemoryStore, Mode, NewKey, Rejection,
    Status, StatusFilter, StoreOptions, Timestamp, VerifiedKey, VerifyError,
};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "common/scratch.rs"]
mod scratch;

const START: i64 = 1_700_000_000;
const MAX_OPS: usize = 48;
const MAX_KEYS: usize = 24;
/// Handles on the store in shared mode.
const SHARED_HANDLES: usize = 3;
/// One input in this many (and the first) also runs on a durable file.
const DURABLE_EVERY: u64 = 1000;

const NAMES: [&str; 6] = ["Production", "  padded  ", "ci", "", "   ", "tab\tname"];
const ENVS: [Option<&str>; 5] = [
    None,
    Some("prod"),
    Some("dev1"),
    Some("BAD"),
    Some("toolong99"),
];
const GRANTABLE: [&str; 5] = [
    "contacts:read",
    "contacts:*",
    "*",
    "billing:write",
    "bad scope",
];
const REQUIRED: [&str; 5] = [
    "contacts:read",
    "contacts:notes:write",
    "billing:write",
    "admin",
    "contacts:",
];

#[derive(Arbitrary, Debug)]
enum Op {
    Generate {
        name: u8,
        env: u8,
        scopes: u8,
        expires_in: Option<u16>,
        handle: u8,
    },
    Verify {
        key: u8,
        handle: u8,
    },
    VerifyWithScope {
        key: u8,
        scope: u8,
        handle: u8,
    },
    Revoke {
        key: u8,
        handle: u8,
    },
    RevokeKey {
        key: u8,
        handle: u8,
    },
    Rotate {
        key: u8,
        grace: u16,
        handle: u8,
    },
    List {
        status: u8,
        unused_for: Option<u16>,
        handle: u8,
    },
    Flush {
        handle: u8,
    },
    Reopen,
    AdvanceSeconds(u16),
    AdvanceDays(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    shared: bool,
    ops: Vec<Op>,
}

/// What the model knows of one key.
#[derive(Debug, Clone)]
struct ModelKey {
    id: String,
    secret: String,
    name: String,
    env: Option<String>,
    scopes: Vec<String>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    rotated_from: Option<String>,
    rotated_to: Option<String>,
    /// Usage written to the file.
    stored: Counts,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    uses: u64,
    revoked_uses: u64,
    expired_uses: u64,
    last_used: Option<i64>,
    last_rejected: Option<i64>,
}

impl Counts {
    fn merged(&self, pending: &Counts) -> Counts {
        Counts {
            uses: self.uses + pending.uses,
            revoked_uses: self.revoked_uses + pending.revoked_uses,
            expired_uses: self.expired_uses + pending.expired_uses,
            last_used: self.last_used.max(pending.last_used),
            last_rejected: self.last_rejected.max(pending.last_rejected),
        }
    }
}

/// One open handle and the usage it has counted but not written.
struct Handle {
    store: KeyStore,
    /// Counts since the last flush; the `last_*` times are kept across
    /// flushes, as the store keeps them (they are maxima, not deltas).
    pending: HashMap<String, Counts>,
}

impl Handle {
    fn flush_into(&mut self, keys: &mut [ModelKey]) {
        for key in keys.iter_mut() {
            if let Some(pending) = self.pending.get_mut(&key.id) {
                key.stored = key.stored.merged(pending);
                *pending = Counts {
                    last_used: pending.last_used,
                    last_rejected: pending.last_rejected,
                    ..Counts::default()
                };
            }
        }
    }
}

struct Harness {
    /// The store's path; its files are removed with it.
    path: scratch::StorePath,
    /// The store's contents, or `None` for a redb file at `path`.
    memory: Option<MemoryStore>,
    clock: ManualClock,
    mode: Mode,
    handles: Vec<Handle>,
    keys: Vec<ModelKey>,
    /// Lifecycle events expected in the log, in order.
    events: Vec<(String, EventKind)>,
    /// A well-formed key that no store holds.
    stranger: String,
}

fn scope_covers(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match granted.strip_suffix(":*") {
        Some(prefix) => {
            required.len() > prefix.len() + 1 && required.starts_with(&format!("{prefix}:"))
        }
        None => false,
    }
}

fn status_of(key: &ModelKey, now: i64) -> Status {
    if key.revoked_at.is_some() {
        Status::Revoked
    } else if key.expires_at.is_some_and(|at| now >= at) {
        Status::Expired
    } else {
        Status::Active
    }
}

/// Bytes of a constant stream, to build a fixed well-formed key.
struct Zeros;
impl rand_core::RngCore for Zeros {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(7);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(7);
        Ok(())
    }
}

impl Harness {
    fn new(shared: bool, durable: bool) -> Harness {
        let mode = if shared {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let stranger = apikeys::generate_with(&mut Zeros, "flz", None)
            .expect("fixed generation")
            .expose_secret()
            .to_string();
        let mut harness = Harness {
            path: scratch::StorePath::new("model"),
            memory: (!durable).then(MemoryStore::new),
            clock: ManualClock::new(Timestamp::from_unix(START)),
            mode,
            handles: Vec::new(),
            keys: Vec::new(),
            events: Vec::new(),
            stranger,
        };
        harness.open_handles();
        harness
    }

    fn open_handles(&mut self) {
        let count = if self.mode == Mode::Shared {
            SHARED_HANDLES
        } else {
            1
        };
        for _ in 0..count {
            let mut options = StoreOptions::new()
                .mode(self.mode)
                .clock(self.clock.clone())
                // No background flush: the model decides when usage is written.
                .flush_interval(Duration::ZERO);
            if let Some(memory) = &self.memory {
                options = options.in_memory(memory);
            }
            let store = KeyStore::open(self.path.path(), options).expect("the store opens");
            self.handles.push(Handle {
                store,
                pending: HashMap::new(),
            });
        }
    }

    fn now(&self) -> i64 {
        use apikeys::Clock;
        self.clock.now().unix()
    }

    fn handle(&self, pick: u8) -> usize {
        usize::from(pick) % self.handles.len()
    }

    /// The key a `u8` points at: a known key, a well-formed stranger, or a
    /// malformed string (`None` index).
    fn pick(&self, pick: u8) -> (Option<usize>, String) {
        let choices = self.keys.len() + 2;
        let at = usize::from(pick) % choices;
        if at < self.keys.len() {
            (Some(at), self.keys[at].secret.clone())
        } else if at == self.keys.len() {
            (None, self.stranger.clone())
        } else {
            (None, "flz_sk_not_a_key".to_string())
        }
    }

    fn count(&mut self, handle: usize, id: &str, outcome: Status) {
        let now = self.now();
        let pending = self.handles[handle]
            .pending
            .entry(id.to_string())
            .or_default();
        match outcome {
            Status::Active => {
                pending.uses += 1;
                pending.last_used = pending.last_used.max(Some(now));
            }
            Status::Revoked => {
                pending.revoked_uses += 1;
                pending.last_rejected = pending.last_rejected.max(Some(now));
            }
            Status::Expired => {
                pending.expired_uses += 1;
                pending.last_rejected = pending.last_rejected.max(Some(now));
            }
        }
    }

    fn verify(&mut self, pick: u8, scope: Option<&str>, handle: u8) {
        let handle = self.handle(handle);
        let (index, secret) = self.pick(pick);
        // Owned: the model's own counts are updated before the answer is
        // checked, and a verified key borrows its store.
        let got = match scope {
            Some(scope) => self.handles[handle].store.verify_with_scope(&secret, scope),
            None => self.handles[handle].store.verify(&secret),
        }
        .map(VerifiedKey::into_owned);
        let Some(index) = index else {
            let expected = if apikeys::is_well_formed(&secret) {
                Rejection::NotFound
            } else {
                Rejection::Malformed
            };
            match got {
                Err(VerifyError::Rejected(rejection)) => assert_eq!(rejection, expected),
                other => panic!("unknown key: expected {expected:?}, got {other:?}"),
            }
            return;
        };
        let key = self.keys[index].clone();
        let status = status_of(&key, self.now());
        self.count(handle, &key.id, status);
        let expected = match status {
            Status::Revoked => Some(Rejection::Revoked),
            Status::Expired => Some(Rejection::Expired),
            Status::Active => match scope {
                Some(scope) if !key.scopes.iter().any(|g| scope_covers(g, scope)) => {
                    Some(Rejection::InsufficientScope)
                }
                _ => None,
            },
        };
        match (expected, got) {
            (None, Ok(verified)) => {
                assert_eq!(verified.id(), key.id);
                assert_eq!(verified.name(), key.name);
                assert_eq!(verified.env(), key.env.as_deref());
                assert_eq!(verified.scopes(), key.scopes.as_slice());
                assert_eq!(verified.expires_at().map(Timestamp::unix), key.expires_at);
            }
            (Some(rejection), Err(VerifyError::Rejected(got))) => assert_eq!(got, rejection),
            (expected, got) => panic!("verify {key:?}: expected {expected:?}, got {got:?}"),
        }
    }

    fn generate(&mut self, name: u8, env: u8, scopes: u8, expires_in: Option<u16>, handle: u8) {
        if self.keys.len() >= MAX_KEYS {
            return;
        }
        let handle = self.handle(handle);
        let name = NAMES[usize::from(name) % NAMES.len()];
        let env = ENVS[usize::from(env) % ENVS.len()];
        let granted: Vec<&str> = GRANTABLE
            .iter()
            .enumerate()
            .filter(|(bit, _)| scopes & (1 << bit) != 0)
            .map(|(_, scope)| *scope)
            .collect();
        let mut request = NewKey::new(name).scopes(granted.iter().copied());
        if let Some(env) = env {
            request = request.env(env);
        }
        if let Some(seconds) = expires_in {
            request = request.expires_in(Duration::from_secs(u64::from(seconds)));
        }
        let valid = !name.trim().is_empty()
            && !name.contains('\t')
            && env.map_or(true, |env| {
                (1..=8).contains(&env.len())
                    && env
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && !granted.contains(&"bad scope")
            && expires_in != Some(0);
        let got = self.handles[handle].store.generate(&request);
        if !valid {
            assert!(
                matches!(got, Err(apikeys::Error::InvalidArgument(_))),
                "invalid request {request:?} gave {got:?}"
            );
            return;
        }
        let generated = got.expect("a valid request generates a key");
        let now = self.now();
        let secret = generated.secret.expose_secret().to_string();
        assert!(apikeys::is_well_formed(&secret));
        let prefix = match env {
            Some(env) => format!("flz_sk_{env}_"),
            None => "flz_sk_".to_string(),
        };
        assert!(secret.starts_with(&prefix), "{secret} lacks {prefix}");
        let key = ModelKey {
            id: generated.id().to_string(),
            secret,
            name: name.trim().to_string(),
            env: env.map(str::to_string),
            scopes: granted.iter().map(|s| s.to_string()).collect(),
            created_at: now,
            expires_at: expires_in.map(|s| now + i64::from(s)),
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            stored: Counts::default(),
        };
        assert!(
            self.keys
                .iter()
                .all(|k| k.id != key.id && k.secret != key.secret),
            "a generated id or key repeats"
        );
        self.events.push((key.id.clone(), EventKind::Created));
        self.keys.push(key);
    }

    fn revoke(&mut self, pick: u8, by_key: bool, handle: u8) {
        let handle = self.handle(handle);
        let (index, secret) = self.pick(pick);
        let store = &self.handles[handle].store;
        let got = match (by_key, index) {
            (true, _) => store.revoke_key(&secret),
            (false, Some(index)) => store.revoke(&self.keys[index].id),
            (false, None) => store.revoke("0000000000000000"),
        };
        let Some(index) = index else {
            match got {
                Err(apikeys::Error::UnknownKey(_)) if !by_key || secret == self.stranger => {}
                Err(apikeys::Error::InvalidArgument(_)) if by_key && secret != self.stranger => {}
                other => panic!("revoking an unknown key gave {other:?}"),
            }
            return;
        };
        let now = self.now();
        let key = &mut self.keys[index];
        let newly = key.revoked_at.is_none();
        assert_eq!(got.expect("revoking a known key"), newly, "{key:?}");
        if newly {
            key.revoked_at = Some(now);
            self.events.push((key.id.clone(), EventKind::Revoked));
        }
    }

    fn rotate(&mut self, pick: u8, grace: u16, handle: u8) {
        if self.keys.len() >= MAX_KEYS {
            return;
        }
        let handle = self.handle(handle);
        let (index, _) = self.pick(pick);
        let grace = i64::from(grace) * 60;
        let id = index.map_or("0000000000000000".to_string(), |i| self.keys[i].id.clone());
        let got = self.handles[handle]
            .store
            .rotate(&id, Duration::from_secs(grace as u64));
        let Some(index) = index else {
            assert!(matches!(got, Err(apikeys::Error::UnknownKey(_))), "{got:?}");
            return;
        };
        let now = self.now();
        if status_of(&self.keys[index], now) != Status::Active {
            assert!(
                matches!(got, Err(apikeys::Error::InvalidArgument(_))),
                "rotating an inactive key gave {got:?}"
            );
            return;
        }
        let generated = got.expect("rotating an active key");
        let old = &mut self.keys[index];
        let successor = ModelKey {
            id: generated.id().to_string(),
            secret: generated.secret.expose_secret().to_string(),
            name: old.name.clone(),
            env: old.env.clone(),
            scopes: old.scopes.clone(),
            created_at: now,
            expires_at: old.expires_at,
            revoked_at: None,
            rotated_from: Some(old.id.clone()),
            rotated_to: None,
            stored: Counts::default(),
        };
        let grace_end = now + grace;
        old.expires_at = Some(old.expires_at.map_or(grace_end, |at| at.min(grace_end)));
        old.rotated_to = Some(successor.id.clone());
        self.events.push((
            old.id.clone(),
            EventKind::Rotated {
                successor: successor.id.clone(),
            },
        ));
        self.events.push((successor.id.clone(), EventKind::Created));
        assert_eq!(
            generated.info.rotated_from.as_deref(),
            Some(old.id.as_str())
        );
        self.keys.push(successor);
    }

    fn list(&mut self, status: u8, unused_for: Option<u16>, handle: u8) {
        let handle = self.handle(handle);
        let now = self.now();
        let status = match status % 4 {
            0 => StatusFilter::All,
            1 => StatusFilter::Only(Status::Active),
            2 => StatusFilter::Only(Status::Revoked),
            _ => StatusFilter::Only(Status::Expired),
        };
        let unused_since = unused_for.map(|seconds| now - i64::from(seconds));
        let filter = ListFilter {
            status,
            unused_since: unused_since.map(Timestamp::from_unix),
            owner: None,
        };
        let listed = self.handles[handle].store.list(&filter).expect("list");
        // At most MAX_KEYS: a vector searched in order costs less than a
        // hash map under the fuzzer's instrumentation. Bit i of `matched`:
        // listed[i] is a key of the model's (each listed key matches one).
        assert!(
            listed.len() <= 128,
            "{} keys listed, the model made {}",
            listed.len(),
            self.keys.len()
        );
        let mut matched = 0u128;
        for key in &self.keys {
            let seen = self.handles[handle]
                .pending
                .get(&key.id)
                .map_or(key.stored, |pending| key.stored.merged(pending));
            let key_status = status_of(key, now);
            let kept = match status {
                StatusFilter::All => true,
                StatusFilter::Only(only) => only == key_status,
            } && unused_since.map_or(true, |since| {
                seen.last_used.unwrap_or(key.created_at) < since
            });
            let at = (0..listed.len()).find(|&i| matched & (1 << i) == 0 && listed[i].id == key.id);
            let Some(info) = at.map(|at| {
                matched |= 1 << at;
                &listed[at]
            }) else {
                assert!(!kept, "{key:?} missing from list {filter:?}");
                continue;
            };
            assert!(kept, "{key:?} listed against filter {filter:?}");
            assert_eq!(info.name, key.name);
            assert_eq!(info.env, key.env);
            assert_eq!(info.scopes, key.scopes);
            assert_eq!(info.status, key_status, "{key:?}");
            assert_eq!(info.created_at.unix(), key.created_at);
            assert_eq!(info.expires_at.map(Timestamp::unix), key.expires_at);
            assert_eq!(info.revoked_at.map(Timestamp::unix), key.revoked_at);
            assert_eq!(info.rotated_from, key.rotated_from);
            assert_eq!(info.rotated_to, key.rotated_to);
            let body = &key.secret[key.secret.len() - apikeys::BODY_LEN..];
            let prefix = &key.secret[..key.secret.len() - apikeys::BODY_LEN];
            let hint = info
                .hint
                .strip_prefix(prefix)
                .and_then(|h| h.strip_suffix('…'));
            assert_eq!(hint, Some(&body[..4]), "hint {}", info.hint);
            assert_eq!(info.use_count, seen.uses, "{key:?}");
            assert_eq!(info.rejected_count, seen.revoked_uses + seen.expired_uses);
            assert_eq!(info.last_used.map(Timestamp::unix), seen.last_used);
            assert_eq!(info.last_rejected.map(Timestamp::unix), seen.last_rejected);
        }
        let unknown: Vec<&KeyInfo> = (0..listed.len())
            .filter(|&i| matched & (1 << i) == 0)
            .map(|i| &listed[i])
            .collect();
        assert!(unknown.is_empty(), "keys the model never made: {unknown:?}");
        self.check_events(handle);
    }

    fn check_events(&self, handle: usize) {
        let events = self.handles[handle]
            .store
            .events(0, usize::MAX)
            .expect("events");
        let mut sequence = 0;
        // Rejected uses logged, per key of the model (at most MAX_KEYS, found
        // by a search in order: no hash map, no copy of the log).
        let mut revoked_uses = [0u64; MAX_KEYS];
        let mut expired_uses = [0u64; MAX_KEYS];
        let position = |id: &str| self.keys.iter().position(|key| key.id == id);
        for event in &events {
            assert!(event.sequence > sequence, "event sequence goes back");
            sequence = event.sequence;
            let counted = match &event.kind {
                EventKind::RevokedKeyUsed { count } => Some((&mut revoked_uses, count)),
                EventKind::ExpiredKeyUsed { count } => Some((&mut expired_uses, count)),
                _ => None,
            };
            if let Some((counts, count)) = counted {
                if let Some(at) = position(&event.key_id) {
                    counts[at] += count;
                }
            }
        }
        let lifecycle = events.iter().filter(|event| {
            !matches!(
                event.kind,
                EventKind::RevokedKeyUsed { .. } | EventKind::ExpiredKeyUsed { .. }
            )
        });
        let same = lifecycle
            .clone()
            .map(|event| (&event.key_id, &event.kind))
            .eq(self.events.iter().map(|(id, kind)| (id, kind)));
        if !same {
            let lifecycle: Vec<(String, EventKind)> = lifecycle
                .map(|event| (event.key_id.clone(), event.kind.clone()))
                .collect();
            assert_eq!(lifecycle, self.events);
        }
        for (at, key) in self.keys.iter().enumerate() {
            assert_eq!(revoked_uses[at], key.stored.revoked_uses);
            assert_eq!(expired_uses[at], key.stored.expired_uses);
        }
    }

    fn flush(&mut self, handle: u8) {
        let handle = self.handle(handle);
        self.handles[handle].store.flush().expect("flush");
        let Harness { handles, keys, .. } = self;
        handles[handle].flush_into(keys);
    }

    fn reopen(&mut self) {
        for mut handle in std::mem::take(&mut self.handles) {
            handle.flush_into(&mut self.keys);
            handle.store.close().expect("close");
        }
        self.open_handles();
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Generate {
                name,
                env,
                scopes,
                expires_in,
                handle,
            } => self.generate(name, env, scopes, expires_in, handle),
            Op::Verify { key, handle } => self.verify(key, None, handle),
            Op::VerifyWithScope { key, scope, handle } => self.verify(
                key,
                Some(REQUIRED[usize::from(scope) % REQUIRED.len()]),
                handle,
            ),
            Op::Revoke { key, handle } => self.revoke(key, false, handle),
            Op::RevokeKey { key, handle } => self.revoke(key, true, handle),
            Op::Rotate { key, grace, handle } => self.rotate(key, grace, handle),
            Op::List {
                status,
                unused_for,
                handle,
            } => self.list(status, unused_for, handle),
            Op::Flush { handle } => self.flush(handle),
            Op::Reopen => self.reopen(),
            Op::AdvanceSeconds(seconds) => {
                self.clock.advance(Duration::from_secs(u64::from(seconds)))
            }
            Op::AdvanceDays(days) => self
                .clock
                .advance(Duration::from_secs(u64::from(days) * 86_400)),
        }
    }
}

fn run(input: &Input, durable: bool) {
    let mut harness = Harness::new(input.shared, durable);
    for op in input.ops.iter().take(MAX_OPS) {
        harness.run(op);
        // After every step, every handle lists exactly what the model holds.
        for handle in 0..harness.handles.len() {
            harness.list(0, None, handle as u8);
        }
    }
    // Whatever happened, a final reopen shows the same keys.
    harness.reopen();
    harness.list(0, None, 0);
}

/// Inputs run so far by this process.
static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|input: Input| {
    run(&input, false);
    if RUNS.fetch_add(1, Ordering::Relaxed) % DURABLE_EVERY == 0 {
        run(&input, true);
    }
});
