//! The cheapest verifies for hosts: `apikeys_key_check`, a NUL-terminated
//! key in, the status out, and the key's id when asked for; and
//! `apikeys_key_validate`, the same with only the store and the key; and
//! `apikeys_header_check`, `apikeys_key_check` for an `Authorization`
//! header's value, read by the core's rules instead of the host's.
//!
//! Why it exists: from PHP FFI and Python ctypes every argument of a call
//! costs about 30-40 ns of conversion (measured; ffi/README.md "Host call
//! cost"), so the six-argument `apikeys_key_verify` plus the
//! `apikeys_verified_info` / `apikeys_verified_free` calls that read its
//! handle cost more than the verify itself. Hosts' strings are
//! NUL-terminated in memory, so a key needs one argument instead of two; the
//! id, which is what a request handler needs to authorize, comes back in a
//! caller-owned buffer instead of a handle that must be read and freed.

use core::ffi::{c_char, CStr};

use apikeys_core::{ID_LEN, MAX_KEY_LEN};

use crate::boundary::{ffi_boundary, try_ref, utf8_arg, Failure};
use crate::status::apikeys_size::{APIKEYS_HEADER_SCAN_MAX, APIKEYS_ID_SIZE, APIKEYS_KEY_SCAN_MAX};
use crate::status::apikeys_status::{self, APIKEYS_CORRUPTED};
use crate::store::apikeys_store;
use crate::verify::{header_token, malformed, verify};

// The buffer holds any id and its NUL; the scan bound exceeds any key, so
// hitting it always means "not a key".
const _: () = assert!(APIKEYS_ID_SIZE as usize == ID_LEN + 1);
const _: () = assert!((APIKEYS_KEY_SCAN_MAX as usize) > MAX_KEY_LEN);

extern "C" {
    /// POSIX (and the Windows CRT): the length of `s`, reading at most
    /// `max_len` bytes. libc's version compares many bytes at a time
    /// without reading past the page that holds the terminator.
    fn strnlen(s: *const c_char, max_len: usize) -> usize;
}

/// Verifies the NUL-terminated `key` against the store, with the
/// NUL-terminated `scope` checked too when not NULL (NULL or "" = no scope).
///
/// Returns what `apikeys_key_verify` returns for the same key and scope:
/// `APIKEYS_OK` when the key is accepted, else `APIKEYS_MALFORMED`,
/// `APIKEYS_NOT_FOUND`, `APIKEYS_REVOKED`, `APIKEYS_EXPIRED`,
/// `APIKEYS_INSUFFICIENT_SCOPE`, or a store failure. It counts the use the
/// same way. A NULL `store` or `key` is `APIKEYS_NULL_ARGUMENT`; a `scope`
/// that is not UTF-8 is `APIKEYS_INVALID_ARGUMENT`.
///
/// `key` is read up to its NUL and never beyond `APIKEYS_KEY_SCAN_MAX` (256)
/// bytes: no NUL within them is `APIKEYS_MALFORMED` (no key is that long).
/// Bytes that are not UTF-8 are `APIKEYS_MALFORMED` too. The key ends at
/// its first NUL: a host whose strings may hold a NUL (PHP, Python, Ruby)
/// must refuse such a key before calling, as the packages do, or call
/// `apikeys_key_verify` with the length.
///
/// `id_out` is optional: when not NULL it must be writable for
/// `APIKEYS_ID_SIZE` (17) bytes, and receives the accepted key's id,
/// NUL-terminated, on success only.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `key` NULL (refused)
/// or NUL-terminated (or readable for `APIKEYS_KEY_SCAN_MAX` bytes); `scope`
/// NULL or NUL-terminated; `id_out` NULL or writable for `APIKEYS_ID_SIZE`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_check(
    store: *const apikeys_store,
    key: *const c_char,
    scope: *const c_char,
    id_out: *mut c_char,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        // SAFETY: NULL (refused) or NUL-terminated, or readable for the scan
        // bound (contract).
        let key = unsafe { terminated(key) }?;
        // SAFETY: NULL or NUL-terminated (contract).
        let scope = unsafe { terminated_scope(scope) }?;
        let key = key_str(key)?;
        let verified = verify(store, key, scope)?;
        if !id_out.is_null() {
            // SAFETY: not NULL; writable for APIKEYS_ID_SIZE bytes per the contract.
            unsafe { write_id(verified.id(), id_out)? };
        }
        Ok(())
    }
}

/// `apikeys_key_check(store, key, NULL, NULL)` in two arguments: verifies
/// the NUL-terminated `key` against the store and returns the status only,
/// counting the use the same way.
///
/// The cheapest verify from PHP FFI and Python ctypes, which convert every
/// argument on every call (30-60 ns each, measured; ffi/README.md "Host call
/// cost"): the answer to "may this request go on?" when no scope is needed.
/// `key` is read as `apikeys_key_check` reads it: up to its NUL, never beyond
/// `APIKEYS_KEY_SCAN_MAX` bytes, the key ending at its first NUL (hosts whose
/// strings may hold one refuse such keys before calling).
///
/// Returns `APIKEYS_OK`, `APIKEYS_MALFORMED`, `APIKEYS_NOT_FOUND`,
/// `APIKEYS_REVOKED`, `APIKEYS_EXPIRED` or a store failure; a NULL `store`
/// or `key` is `APIKEYS_NULL_ARGUMENT`.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `key` NULL (refused)
/// or NUL-terminated (or readable for `APIKEYS_KEY_SCAN_MAX` bytes).
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_validate(
    store: *const apikeys_store,
    key: *const c_char,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        // SAFETY: NULL (refused) or NUL-terminated, or readable for the scan
        // bound (contract).
        let key = key_str(unsafe { terminated(key) }?)?;
        verify(store, key, None).map(drop)
    }
}

/// `apikeys_key_check` for the value of an `Authorization` header: the
/// NUL-terminated `header` is read as `apikeys_header_verify` reads a
/// header, the key in it verified with the NUL-terminated `scope` (NULL or
/// "" = no scope), and the accepted key's id written to `id_out`.
///
/// For hosts whose own parse of the header costs more than the verify
/// (Python: about 5,000 instructions for the split, the case fold and the
/// character check, against 300 for this call's part; callgrind): one
/// call, and the header's rules are the core's, so no host is more
/// permissive than the library.
///
/// Returns what `apikeys_header_verify` returns for the same header and
/// scope, counting the use the same way: `APIKEYS_BAD_HEADER` for a NULL
/// (missing), empty, non-Bearer or non-UTF-8 header, and for one with no
/// NUL within `APIKEYS_HEADER_SCAN_MAX` (8192) bytes. The header ends at
/// its first NUL: a host whose strings may hold a NUL must refuse such a
/// header before calling, or call `apikeys_header_verify` with the length.
/// A NULL `store` is `APIKEYS_NULL_ARGUMENT`; a `scope` that is not UTF-8
/// is `APIKEYS_INVALID_ARGUMENT`. `id_out` is optional: when not NULL it
/// must be writable for `APIKEYS_ID_SIZE` (17) bytes, and receives the id,
/// NUL-terminated, on success only.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `header` NULL or
/// NUL-terminated (or readable for `APIKEYS_HEADER_SCAN_MAX` bytes);
/// `scope` NULL or NUL-terminated; `id_out` NULL or writable for
/// `APIKEYS_ID_SIZE` bytes.
#[no_mangle]
pub unsafe extern "C" fn apikeys_header_check(
    store: *const apikeys_store,
    header: *const c_char,
    scope: *const c_char,
    id_out: *mut c_char,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        // SAFETY: NUL-terminated, or readable for the scan bound (contract).
        let scope = unsafe { terminated_scope(scope) }?;
        let header = if header.is_null() {
            b""
        } else {
            // SAFETY: not NULL; NUL-terminated or readable for the bound (contract).
            // No NUL within the bound: a value no server passes on, refused
            // like any unusable header (the empty slice).
            unsafe { until_nul(header, APIKEYS_HEADER_SCAN_MAX as usize) }.unwrap_or(b"")
        };
        // SAFETY: id_out is NULL or writable for APIKEYS_ID_SIZE bytes (contract).
        unsafe { check_header(store, header, scope, id_out) }
    }
}

/// Verifies the key of an `Authorization` header's value on `store` and
/// writes its id to `id_out` when not NULL: `apikeys_header_check` and
/// `apikeys_persistent_header_check` once they hold a store.
///
/// # Safety
///
/// `id_out` must be NULL or writable for `APIKEYS_ID_SIZE` bytes.
pub(crate) unsafe fn check_header(
    store: &apikeys_store,
    header: &[u8],
    scope: Option<&str>,
    id_out: *mut c_char,
) -> Result<(), Failure> {
    let verified = verify(store, header_token(header)?, scope)?;
    if !id_out.is_null() {
        // SAFETY: not NULL; writable for APIKEYS_ID_SIZE bytes per the contract.
        unsafe { write_id(verified.id(), id_out)? };
    }
    Ok(())
}

/// The bytes of the NUL-terminated `key` before its NUL, or `None` when
/// there is no NUL within `APIKEYS_KEY_SCAN_MAX` bytes; NULL is refused.
///
/// # Safety
///
/// `key` must be NULL, NUL-terminated, or readable for `APIKEYS_KEY_SCAN_MAX`
/// bytes.
unsafe fn terminated<'a>(key: *const c_char) -> Result<Option<&'a [u8]>, Failure> {
    if key.is_null() {
        return Err(Failure::null_argument("key"));
    }
    // SAFETY: not NULL; NUL-terminated or readable for the bound (contract).
    Ok(unsafe { until_nul(key, APIKEYS_KEY_SCAN_MAX as usize) })
}

/// The bytes of the NUL-terminated `text` before its NUL, or `None` when
/// there is no NUL within `bound` bytes.
///
/// # Safety
///
/// `text` must not be NULL, and must be NUL-terminated or readable for
/// `bound` bytes.
unsafe fn until_nul<'a>(text: *const c_char, bound: usize) -> Option<&'a [u8]> {
    // SAFETY: not NULL; NUL-terminated or readable for the bound (contract).
    let len = unsafe { strnlen(text, bound) };
    if len == bound {
        return None;
    }
    // SAFETY: strnlen found a NUL after len readable bytes.
    Some(unsafe { core::slice::from_raw_parts(text.cast::<u8>(), len) })
}

/// The NUL-terminated `scope` argument: NULL or "" is no scope; bytes that
/// are not UTF-8 are an invalid argument.
///
/// # Safety
///
/// `scope` must be NULL or NUL-terminated.
unsafe fn terminated_scope<'a>(scope: *const c_char) -> Result<Option<&'a str>, Failure> {
    if scope.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL; NUL-terminated per the contract.
    Ok(
        match utf8_arg(unsafe { CStr::from_ptr(scope) }.to_bytes(), "scope")? {
            "" => None,
            scope => Some(scope),
        },
    )
}

/// The presented key as text: no terminator in bound, or bytes that are not
/// UTF-8, make it malformed (untrusted input, not an invalid argument).
fn key_str(key: Option<&[u8]>) -> Result<&str, Failure> {
    key.and_then(|key| core::str::from_utf8(key).ok())
        .ok_or_else(malformed)
}

/// # Safety
///
/// `out` must be writable for `APIKEYS_ID_SIZE` bytes.
pub(crate) unsafe fn write_id(id: &str, out: *mut c_char) -> Result<(), Failure> {
    // Ids are made by this library (ID_LEN base62 characters); anything else
    // came from a damaged or foreign file and is not cut short silently.
    if id.len() >= APIKEYS_ID_SIZE as usize || id.bytes().any(|b| b == 0) {
        return Err(Failure::new(
            APIKEYS_CORRUPTED,
            "a stored key id does not fit the APIKEYS_ID_SIZE buffer",
        ));
    }
    let out = out.cast::<u8>();
    // SAFETY: id.len() + 1 <= APIKEYS_ID_SIZE bytes, writable per the contract;
    // the id is a separate allocation, so the two do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(id.as_ptr(), out, id.len());
        out.add(id.len()).write(0);
    }
    Ok(())
}
