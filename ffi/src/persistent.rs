//! Persistent store handles: one open store per process for each path and
//! set of options, owned by the library, the way PDO keeps persistent
//! connections.
//!
//! Why: PHP-FPM frees every PHP value between requests, so a host package
//! cannot keep a handle from one request to the next; opening the store on
//! every request cost an open, a verify and a close with a durable usage
//! write each time (issue 12: 0.04x of the no-auth throughput). The handle
//! therefore lives here, in the process, for the life of the process:
//!
//! - keyed by (process id, path as given, flags, BLAKE3 digest of the
//!   pepper): the pepper itself is never kept, and a handle opened before a
//!   `fork()` is never handed out in the child (the child opens its own);
//! - `apikeys_store_close` on such a handle does nothing: it belongs to the
//!   library, not to the caller;
//! - an exit hook (`atexit`, registered once) closes every handle this
//!   process opened, flushing its usage, when the process exits normally
//!   (PHP-FPM: `pm.max_requests` recycling and a graceful stop, SIGQUIT);
//! - the library pins itself in memory (`RTLD_NODELETE`) on the first
//!   persistent open, so that a host that `dlclose`s it between requests
//!   (PHP's `FFI::cdef` objects do) neither loses the handles nor unmaps code
//!   that the store's flush thread is running.

use core::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use crate::boundary::{ffi_boundary, try_bytes, try_optional_str, try_out, try_str, Failure};
use crate::check::check_header;
use crate::status::apikeys_status;
use crate::store::apikeys_store;

/// Most persistent stores one process may hold open at once. Handles are
/// never evicted (a host may still be using one), so a host opening a store
/// per tenant must not grow them without bound: past this many the open is
/// refused with `APIKEYS_INVALID_ARGUMENT`.
const MAX_OPEN: usize = 64;

/// The BLAKE3 key-derivation context of the pepper digests the registry
/// compares: unique to this use, so a digest kept here is no other digest.
const PEPPER_CONTEXT: &str = "apikeys-ffi 2026-12 persistent store registry: pepper";

/// One persistent handle.
struct Entry {
    /// The process that opened it; in any other (a forked child) it is
    /// never handed out, never closed, and never freed.
    pid: u32,
    path: Box<str>,
    flags: u32,
    /// BLAKE3 of the pepper; `blake3::Hash` compares in constant time.
    pepper: blake3::Hash,
    /// Made by `Box::into_raw`; freed by the exit hook in `pid`, and then
    /// kept here (dangling, never dereferenced) with `open` false, so that a
    /// late `apikeys_store_close` on it still does nothing.
    handle: *mut apikeys_store,
    open: bool,
}

// SAFETY: the handle points to an `apikeys_store`, which is Send + Sync
// (store.rs asserts it); the registry's mutex serializes access to entries.
unsafe impl Send for Entry {}

struct Registry {
    entries: Vec<Entry>,
    /// Stores opened through `apikeys_store_open_persistent` by `opens_pid`.
    opens: u64,
    opens_pid: u32,
}

/// Whether any persistent handle was ever made in this process image
/// (inherited across fork, as the handles are).
static ANY_OPENED: AtomicBool = AtomicBool::new(false);

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    entries: Vec::new(),
    opens: 0,
    opens_pid: 0,
});

/// This process's id, cached: a call that finds its handle is then a lock
/// and a comparison, without a system call (getpid costs more than the
/// rest of the lookup where system calls are slow, as in sandboxes). 0 =
/// not known yet. A fork child handler (pthread_atfork, registered before
/// the first id is cached) resets it in every child.
static PID: AtomicU32 = AtomicU32::new(0);

fn current_pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic,
        // which is async-signal-safe as a fork child handler must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(forget_pid_after_fork));
        }
    });
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

extern "C" fn forget_pid_after_fork() {
    PID.store(0, Ordering::Relaxed);
}

/// The registry, even if a thread panicked while holding it: every update
/// is a push or a flag write, which a panic cannot leave half done.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens the store file at `path`, or hands back the handle this process
/// already opened for the same `path`, `pepper` and `flags`. For hosts that
/// cannot keep a handle between requests (PHP-FPM): the first call in a
/// process opens the store, every later one returns the same handle.
///
/// The arguments are those of `apikeys_store_open`, except that `pepper`
/// is declared `const char *` so that hosts pass the string they hold
/// without a copy; it is any bytes (not necessarily UTF-8 nor
/// NUL-terminated), `pepper_len` of them. `path` is compared as given: two
/// spellings of one file are two handles.
///
/// Ownership: the handle belongs to the library, not to the caller.
/// `apikeys_store_close` on it does nothing and returns `APIKEYS_OK`; it
/// stays valid, and safe to use from several threads, until the process
/// exits. Then an exit hook (`atexit`, registered on the first call) closes
/// every persistent handle the process opened, flushing its usage. A
/// process killed by a signal loses the usage counted since the last
/// periodic flush (at most one second's). No thread may use a persistent
/// handle once `exit()` has begun. Usage is written every second and by
/// `apikeys_store_flush`, never per verify.
///
/// Fork: a handle is kept with the id of the process that opened it. In a
/// child after `fork()`, a call opens a new handle for the child; the
/// parent's answers `APIKEYS_USED_AFTER_FORK` there, is never closed nor
/// freed there (the file is the parent's), and the child's exit leaves it
/// alone. Open persistent stores in each worker after the fork, never in
/// the parent.
///
/// The pepper is never kept: only a BLAKE3 digest of it, to tell whether a
/// later call asks for the same store. A call with another pepper opens
/// the file again, which then fails with `APIKEYS_WRONG_PEPPER`. A failed
/// open is not remembered: the next call tries again. A process holds at
/// most 64 persistent handles: past that, `APIKEYS_INVALID_ARGUMENT`.
///
/// On success `*out` receives the handle. Errors are those of
/// `apikeys_store_open`.
///
/// # Safety
///
/// `path` and `pepper`, when not NULL, must be readable for their lengths;
/// `out` must be NULL (refused) or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn apikeys_store_open_persistent(
    path: *const c_char,
    path_len: usize,
    pepper: *const c_char,
    pepper_len: usize,
    flags: u32,
    out: *mut *mut apikeys_store,
) -> apikeys_status {
    ffi_boundary! {
        try_out!(out);
        let path = try_str!(path, path_len);
        let pepper = try_bytes!(pepper, pepper_len);
        let handle = persistent_handle(path, pepper, flags)?;
        // SAFETY: checked not NULL above; the caller guarantees it is writable.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// The request path of a host that keeps nothing between requests (PHP
/// under PHP-FPM): `apikeys_store_open_persistent` and a verify of the key
/// in an `Authorization` header value, in one call. Returns what
/// `apikeys_header_verify` returns for the header and scope on the
/// persistent handle of (`path`, `pepper`, `flags`), opening it first when
/// this process has not yet; or the open's failure.
///
/// Why: in a PHP-FPM request every call into the library is the first of
/// its kind since the last request, and a cold FFI call costs microseconds
/// (measured: 3 us for the persistent lookup, 2 us for the verify, under
/// load, against 0.3 us warm). One call instead of two, with the header
/// read here by the core's rules instead of a PHP pattern, is most of what
/// the package can still take off an authenticated request.
///
/// `header` is the header's value, `header_len` bytes, any bytes (a value
/// that is not UTF-8 holds no token); NULL with 0 is a missing header.
/// Either is `APIKEYS_BAD_HEADER`, as is a value without a usable
/// `Bearer <key>` (RFC 6750, the core's `bearer_token`). `scope` is
/// `scope_len` bytes of UTF-8; 0 bytes = no scope. `id_out`, when not NULL,
/// must be writable for `APIKEYS_ID_SIZE` (17) bytes and receives the
/// accepted key's id, NUL-terminated, on success only. The use is counted
/// as `apikeys_key_check` counts it.
///
/// # Safety
///
/// `path`, `pepper`, `header` and `scope`, when not NULL, must be readable
/// for their lengths; `id_out` NULL or writable for `APIKEYS_ID_SIZE` bytes.
#[no_mangle]
pub unsafe extern "C" fn apikeys_persistent_header_check(
    path: *const c_char,
    path_len: usize,
    pepper: *const c_char,
    pepper_len: usize,
    flags: u32,
    header: *const c_char,
    header_len: usize,
    scope: *const c_char,
    scope_len: usize,
    id_out: *mut c_char,
) -> apikeys_status {
    ffi_boundary! {
        let path = try_str!(path, path_len);
        let pepper = try_bytes!(pepper, pepper_len);
        let header = try_bytes!(header, header_len);
        let scope = try_optional_str!(scope, scope_len);
        // The store first: a store that cannot be opened is a 500 whatever
        // the request presented, never a 401.
        let handle = persistent_handle(path, pepper, flags)?;
        // SAFETY: a live persistent handle: made by Box::into_raw in this
        // process and freed only by the exit hook, after which no thread
        // may call the library (contract of apikeys_store_open_persistent).
        let store = unsafe { &*handle };
        // SAFETY: id_out is NULL or writable for APIKEYS_ID_SIZE bytes (contract).
        unsafe { check_header(store, header, scope, id_out) }
    }
}

/// The persistent handle of (`path`, `pepper`, `flags`) in this process:
/// the one already open, or a new one (see `apikeys_store_open_persistent`).
fn persistent_handle(path: &str, pepper: &[u8], flags: u32) -> Result<*mut apikeys_store, Failure> {
    crate::store::check_open_arguments(path, flags)?;
    let digest = pepper_digest(pepper);
    let pid = current_pid();
    let mut registry = registry();
    if registry.opens_pid != pid {
        // A new process (a forked child): nothing opened here yet.
        registry.opens_pid = pid;
        registry.opens = 0;
    }
    let found = registry.entries.iter().find(|entry| {
        entry.open
            && entry.pid == pid
            && entry.flags == flags
            && *entry.path == *path
            && entry.pepper == digest
    });
    if let Some(entry) = found {
        return Ok(entry.handle);
    }
    let held = registry
        .entries
        .iter()
        .filter(|entry| entry.open && entry.pid == pid)
        .count();
    if held >= MAX_OPEN {
        return Err(Failure::invalid_argument(format!(
            "this process already holds {MAX_OPEN} persistent stores, the most it may"
        )));
    }
    let handle = crate::store::open_handle(path, pepper, flags)?;
    register_exit_hook_and_pin();
    let handle = Box::into_raw(Box::new(handle));
    registry.entries.push(Entry {
        pid,
        path: path.into(),
        flags,
        pepper: digest,
        handle,
        open: true,
    });
    ANY_OPENED.store(true, Ordering::Release);
    registry.opens += 1;
    Ok(handle)
}

/// Writes to `*out` how many stores this process has opened through
/// `apikeys_store_open_persistent`: each open counts once, however many
/// calls then reused it, so a worker that kept its store reads 1. Starts at
/// 0 in every process, forked children included.
///
/// # Safety
///
/// `out` must be NULL (refused) or valid for one `uint64_t` write.
#[no_mangle]
pub unsafe extern "C" fn apikeys_store_persistent_opens(out: *mut u64) -> apikeys_status {
    ffi_boundary! {
        try_out!(out);
        let registry = registry();
        let opens = if registry.opens_pid == current_pid() { registry.opens } else { 0 };
        // SAFETY: checked not NULL above; the caller guarantees it is writable.
        unsafe { out.write(opens) };
        Ok(())
    }
}

/// BLAKE3 of the pepper, keyed with a key derived once per process from
/// the registry's own context. A keyed hash of a short pepper is one
/// compression; cloning a `new_derive_key` hasher per call instead copied
/// its 1.9 KB state, which in a PHP-FPM request (every call cold) showed in
/// the profile beside the compression itself.
fn pepper_digest(pepper: &[u8]) -> blake3::Hash {
    static KEY: std::sync::OnceLock<[u8; blake3::KEY_LEN]> = std::sync::OnceLock::new();
    blake3::keyed_hash(
        KEY.get_or_init(|| blake3::derive_key(PEPPER_CONTEXT, &[])),
        pepper,
    )
}

/// Whether `store` was handed out by `apikeys_store_open_persistent` (in
/// this process or the one it was forked from): `apikeys_store_close`
/// then leaves it alone.
pub(crate) fn is_persistent(store: *const apikeys_store) -> bool {
    // A process that never opened one never takes the registry's lock here.
    if !ANY_OPENED.load(Ordering::Acquire) {
        return false;
    }
    registry()
        .entries
        .iter()
        .any(|entry| core::ptr::eq(entry.handle, store))
}

/// Registers the exit hook and pins the library, once per process image (a
/// forked child inherits both).
fn register_exit_hook_and_pin() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()`, which catches its
        // panics. ISO C runs it when the process exits normally (`exit()`,
        // returning from `main`); glibc also runs the hooks of a shared
        // object when it is unloaded, which pin_library() prevents.
        let registered = unsafe { libc::atexit(close_at_exit) };
        if registered != 0 {
            // The handles then stay open until the process ends: usage
            // counted in the last second before exit is lost. Nothing else
            // depends on it.
            crate::boundary::set_last_error(&crate::boundary::Message::Fixed(
                c"atexit() refused the persistent stores' exit hook",
            ));
        }
        pin_library();
    });
}

/// The exit hook: closes, flushing their usage, the persistent handles this
/// process opened. Those of a parent process are left alone.
extern "C" fn close_at_exit() {
    // A panic must not unwind out of an exit hook (that would abort).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let pid = current_pid();
        let handles: Vec<*mut apikeys_store> = {
            let mut registry = registry();
            registry
                .entries
                .iter_mut()
                .filter(|entry| entry.open && entry.pid == pid)
                .map(|entry| {
                    entry.open = false;
                    entry.handle
                })
                .collect()
        };
        for handle in handles {
            // SAFETY: made by Box::into_raw in apikeys_store_open_persistent,
            // in this process, and taken here once (`open` is now false, and
            // apikeys_store_close never frees a persistent handle).
            let handle = unsafe { Box::from_raw(handle) };
            // Nobody is left to tell of a failed final flush.
            let _ = crate::store::close_handle(*handle);
        }
    }));
}

/// Marks this shared library `RTLD_NODELETE`, so that it stays mapped even
/// when its host `dlclose`s it: the persistent handles, and the flush
/// threads running its code, outlive any one request's load of it.
fn pin_library() {
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    // SAFETY: dladdr reads the address of a function of this library and
    // fills `info`; dlopen with RTLD_NOLOAD only takes one more reference
    // on an object already loaded (this one, or the executable when the
    // library is linked statically), never loads anything.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let here = apikeys_store_open_persistent as *const c_void;
        if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
            // The reference is kept on purpose: it is what keeps the
            // library loaded.
            let _ = libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
        }
    }
}
