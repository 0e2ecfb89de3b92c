//! The store handle: open, flush, close.

use core::ffi::c_char;

use std::sync::{Mutex, PoisonError};

use apikeys_core::{Error, KeyStore, MemoryStore, Mode, StoreOptions};

use crate::boundary::{ffi_boundary, try_bytes, try_out, try_ref, try_str, Failure};
use crate::status::{apikeys_open_flag, apikeys_status};

/// An open API-key store. Opaque; safe to use from several threads at once.
#[allow(non_camel_case_types)]
pub struct apikeys_store {
    pub(crate) store: KeyStore,
    /// The path of a store opened with `APIKEYS_OPEN_IN_MEMORY`, under which
    /// [`MEMORY_STORES`] keeps its contents.
    pub(crate) memory: Option<Box<str>>,
}

// The handle is shared between host threads: keep it Send + Sync.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<apikeys_store>();
};

const SHARED: u32 = apikeys_open_flag::APIKEYS_OPEN_SHARED as u32;
const IN_MEMORY: u32 = apikeys_open_flag::APIKEYS_OPEN_IN_MEMORY as u32;
const KNOWN_OPEN_FLAGS: u32 = SHARED | IN_MEMORY;

/// The in-memory stores of this process: a path, its contents, and how many
/// open handles hold them (the entry goes when the last is closed).
static MEMORY_STORES: Mutex<Vec<(Box<str>, MemoryStore, usize)>> = Mutex::new(Vec::new());

/// Opens a handle as `flags` say (checked by [`check_open_arguments`]).
pub(crate) fn open_handle(path: &str, pepper: &[u8], flags: u32) -> Result<apikeys_store, Failure> {
    let mode = if flags & SHARED != 0 {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let options = StoreOptions::new().pepper(pepper).mode(mode);
    if flags & IN_MEMORY == 0 {
        let store = KeyStore::open(path, options)?;
        return Ok(apikeys_store {
            store,
            memory: None,
        });
    }
    let mut stores = MEMORY_STORES.lock().unwrap_or_else(PoisonError::into_inner);
    let at = match stores.iter().position(|(held, _, _)| **held == *path) {
        Some(at) => at,
        None => {
            stores.push((path.into(), MemoryStore::new(), 0));
            stores.len() - 1
        }
    };
    match KeyStore::open(path, options.in_memory(&stores[at].1)) {
        Ok(store) => {
            stores[at].2 += 1;
            Ok(apikeys_store {
                store,
                memory: Some(path.into()),
            })
        }
        Err(error) => {
            if stores[at].2 == 0 {
                stores.remove(at);
            }
            Err(error.into())
        }
    }
}

/// Closes a handle, and drops its in-memory store with the last handle.
pub(crate) fn close_handle(handle: apikeys_store) -> Result<(), Error> {
    let apikeys_store { store, memory } = handle;
    let closed = store.close();
    if let Some(path) = memory {
        let mut stores = MEMORY_STORES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = stores.iter().position(|(held, _, _)| *held == path) {
            stores[at].2 -= 1;
            if stores[at].2 == 0 {
                stores.remove(at);
            }
        }
    }
    closed
}

/// The checks `apikeys_store_open` and `apikeys_store_open_persistent`
/// make of their path and flags.
pub(crate) fn check_open_arguments(path: &str, flags: u32) -> Result<(), Failure> {
    if path.is_empty() {
        return Err(Failure::invalid_argument("argument `path` is empty"));
    }
    if path.contains('\0') {
        return Err(Failure::invalid_argument(
            "argument `path` contains a NUL byte",
        ));
    }
    if flags & !KNOWN_OPEN_FLAGS != 0 {
        return Err(Failure::invalid_argument(format!(
            "argument `flags`: unknown bits {:#x}",
            flags & !KNOWN_OPEN_FLAGS
        )));
    }
    Ok(())
}

/// Opens the store file at `path` (UTF-8, `path_len` bytes, not
/// NUL-terminated), creating it readable by its owner only if it does not
/// exist.
///
/// `pepper` (`pepper_len` bytes, any bytes; `(NULL, 0)` for none) is a
/// deployment secret mixed into every digest; the store refuses to open
/// with another one (`APIKEYS_WRONG_PEPPER`). `flags` is
/// `APIKEYS_OPEN_EXCLUSIVE` (0) or `APIKEYS_OPEN_SHARED` (1), optionally
/// with `APIKEYS_OPEN_IN_MEMORY` (2: the store is kept in this process's
/// memory under `path`, for test suites); other bits are
/// `APIKEYS_INVALID_ARGUMENT`.
///
/// On success `*out` receives a new handle, owned by the caller and released
/// by `apikeys_store_close`. Errors include `APIKEYS_LOCKED` (another process
/// holds the file), `APIKEYS_CORRUPTED`, `APIKEYS_WRONG_PEPPER`,
/// `APIKEYS_IO`.
///
/// # Safety
///
/// `path` and `pepper`, when not NULL, must be readable for their lengths;
/// `out` must be NULL (refused) or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn apikeys_store_open(
    path: *const c_char,
    path_len: usize,
    pepper: *const u8,
    pepper_len: usize,
    flags: u32,
    out: *mut *mut apikeys_store,
) -> apikeys_status {
    ffi_boundary! {
        try_out!(out);
        let path = try_str!(path, path_len);
        let pepper = try_bytes!(pepper, pepper_len);
        check_open_arguments(path, flags)?;
        let handle = Box::into_raw(Box::new(open_handle(path, pepper, flags)?));
        // SAFETY: checked not NULL above; the caller guarantees it is writable.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// Writes the usage counted so far (last used, use count) to the file now.
/// Usage is otherwise written every second and on close. On failure the
/// counts are kept for the next flush.
///
/// # Safety
///
/// `store` must be NULL (refused) or a handle from `apikeys_store_open` not
/// yet closed.
#[no_mangle]
pub unsafe extern "C" fn apikeys_store_flush(store: *const apikeys_store) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        store.store.flush()?;
        Ok(())
    }
}

/// Flushes usage, closes the file and frees the handle. The handle is freed
/// even when the flush fails (the status then says why). NULL is accepted
/// and does nothing, and so is a handle from
/// `apikeys_store_open_persistent`, which belongs to the library.
///
/// In a child process after `fork()`, closing a handle opened in the parent
/// frees its memory without touching the file (which the parent still
/// owns) and returns `APIKEYS_OK`.
///
/// # Safety
///
/// `store` must be NULL or a handle from `apikeys_store_open` not yet
/// closed; no other thread may be using it, and it must not be used again.
#[no_mangle]
pub unsafe extern "C" fn apikeys_store_close(store: *mut apikeys_store) -> apikeys_status {
    ffi_boundary! {
        // A persistent handle belongs to the library (persistent.rs).
        if store.is_null() || crate::persistent::is_persistent(store) {
            return Ok(());
        }
        // SAFETY: the caller hands back a pointer made by Box::into_raw in
        // apikeys_store_open, exactly once.
        let handle = unsafe { Box::from_raw(store) };
        match close_handle(*handle) {
            // The core's drop leaked the parent's storage: nothing to report.
            Err(Error::UsedAfterFork) => Ok(()),
            result => Ok(result?),
        }
    }
}
