//! Verification: of a key, of an `Authorization` header, and the HTTP
//! answer for each outcome.

use core::ffi::c_char;
use std::ffi::CString;
use std::sync::LazyLock;

use apikeys_core::http::{
    bearer_token_bytes, FORBIDDEN_SCOPE_BODY, INTERNAL_ERROR_BODY, UNAUTHORIZED_BODY,
};
use apikeys_core::{Rejection, VerifiedKey, VerifyError};

use crate::boundary::{ffi_boundary, try_bytes, try_optional_str, try_out, try_ref, Failure};
use crate::info::{apikeys_verified_info, OwnedVerifiedInfo};
use crate::status::apikeys_status::{self, *};
use crate::store::apikeys_store;

/// What a successful verify tells about the key. Opaque; read it with
/// `apikeys_verified_info`, free it with `apikeys_verified_free`.
#[allow(non_camel_case_types)]
pub struct apikeys_verified {
    info: OwnedVerifiedInfo,
}

/// Verifies `key` against the store, with the `scope` the request needs
/// checked too when given.
///
/// Returns `APIKEYS_OK` when the key is accepted, or why not:
/// `APIKEYS_MALFORMED` (also for bytes that are not UTF-8: a presented key
/// is untrusted input, never an invalid argument), `APIKEYS_NOT_FOUND`,
/// `APIKEYS_REVOKED`, `APIKEYS_EXPIRED`, `APIKEYS_INSUFFICIENT_SCOPE`; or a
/// store failure (`APIKEYS_USED_AFTER_FORK`, `APIKEYS_IO`, ...), which
/// neither accepts nor refuses the key. `apikeys_status_http` gives the HTTP
/// answer for any of them.
///
/// `scope` is optional (absent when `scope_len` is 0). `out` is optional:
/// when not NULL and the key is accepted, `*out` receives a new handle owned
/// by the caller, released by `apikeys_verified_free`.
///
/// Never waits on a disk write: usage is counted in memory and flushed
/// later. Safe to call from several threads on one store.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `key` and `scope`,
/// when not NULL, readable for their lengths; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_verify(
    store: *const apikeys_store,
    key: *const c_char,
    key_len: usize,
    scope: *const c_char,
    scope_len: usize,
    out: *mut *mut apikeys_verified,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        let key = try_bytes!(key, key_len);
        let scope = try_optional_str!(scope, scope_len);
        let Ok(key) = core::str::from_utf8(key) else {
            return Err(malformed());
        };
        let verified = verify(store, key, scope)?;
        // SAFETY: out is NULL or writable per the contract.
        unsafe { hand_out(verified, out) };
        Ok(())
    }
}

/// Verifies the key in an `Authorization` header value, such as
/// "Bearer flz_sk_prod_..." (the scheme is case-insensitive, surrounding
/// blanks ignored). A missing or empty header, another scheme or a token
/// that is not one word is `APIKEYS_BAD_HEADER`; otherwise the outcomes,
/// `scope` and `out` are those of `apikeys_key_verify`.
///
/// # Safety
///
/// As for `apikeys_key_verify`, with `header` readable for `header_len`
/// bytes when not NULL.
#[no_mangle]
pub unsafe extern "C" fn apikeys_header_verify(
    store: *const apikeys_store,
    header: *const c_char,
    header_len: usize,
    scope: *const c_char,
    scope_len: usize,
    out: *mut *mut apikeys_verified,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        let header = try_bytes!(header, header_len);
        let scope = try_optional_str!(scope, scope_len);
        let verified = verify(store, header_token(header)?, scope)?;
        // SAFETY: out is NULL or writable per the contract.
        unsafe { hand_out(verified, out) };
        Ok(())
    }
}

/// The key in an `Authorization` header value, by the core's rules; a value
/// that is not UTF-8 holds no token, the same answer as any bad header.
pub(crate) fn header_token(header: &[u8]) -> Result<&str, Failure> {
    bearer_token_bytes(header).map_err(|_| {
        Failure::new(
            APIKEYS_BAD_HEADER,
            "no usable `Authorization: Bearer <key>` header",
        )
    })
}

/// The failure for a key that is not well-formed (no storage touched).
pub(crate) fn malformed() -> Failure {
    Failure::from(VerifyError::Rejected(Rejection::Malformed))
}

/// The core's verify, with or without a scope; shared with `apikeys_key_check`.
pub(crate) fn verify<'store>(
    store: &'store apikeys_store,
    key: &str,
    scope: Option<&str>,
) -> Result<VerifiedKey<'store>, Failure> {
    Ok(match scope {
        Some(scope) => store.store.verify_with_scope(key, scope)?,
        None => store.store.verify(key)?,
    })
}

/// # Safety
///
/// `out` must be NULL or valid for one pointer write.
unsafe fn hand_out(verified: VerifiedKey<'_>, out: *mut *mut apikeys_verified) {
    if out.is_null() {
        return;
    }
    let handle = Box::into_raw(Box::new(apikeys_verified {
        info: OwnedVerifiedInfo::new(&verified),
    }));
    // SAFETY: not NULL; writable per the caller's contract.
    unsafe { out.write(handle) };
}

/// What the verified key is: `*out` points to a read-only struct owned by
/// `verified`, valid until `apikeys_verified_free`.
///
/// # Safety
///
/// `verified` must be NULL (refused) or a live handle; `out` NULL (refused)
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_verified_info(
    verified: *const apikeys_verified,
    out: *mut *const apikeys_verified_info,
) -> apikeys_status {
    ffi_boundary! {
        let verified = try_ref!(verified);
        try_out!(out);
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(verified.info.view()) };
        Ok(())
    }
}

/// Frees a handle from a verify. NULL is accepted and does nothing.
///
/// # Safety
///
/// `verified` must be NULL or a handle not yet freed; it must not be used again.
#[no_mangle]
pub unsafe extern "C" fn apikeys_verified_free(verified: *mut apikeys_verified) -> apikeys_status {
    ffi_boundary! {
        if !verified.is_null() {
            // SAFETY: made by Box::into_raw in this crate, handed back once.
            drop(unsafe { Box::from_raw(verified) });
        }
        Ok(())
    }
}

// The core's bodies, NUL-terminated once for C.
static UNAUTHORIZED: LazyLock<CString> =
    LazyLock::new(|| crate::boundary::c_string(UNAUTHORIZED_BODY));
static FORBIDDEN: LazyLock<CString> =
    LazyLock::new(|| crate::boundary::c_string(FORBIDDEN_SCOPE_BODY));
static INTERNAL_ERROR: LazyLock<CString> =
    LazyLock::new(|| crate::boundary::c_string(INTERNAL_ERROR_BODY));

/// The HTTP answer to send for a failed verify `status`: `*http_status`
/// receives 401, 403 or 500 and `*body` a static NUL-terminated JSON body
/// (never freed).
///
/// 401 `UNAUTHORIZED` for a missing, malformed, unknown, revoked or expired
/// key or a bad header (one body: the caller does not learn which); 403
/// `FORBIDDEN` for a missing scope; 500 `INTERNAL_ERROR` for every other
/// number, known or not (the store failed: the key was neither accepted nor
/// refused). `APIKEYS_OK` has no error answer: `APIKEYS_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `http_status` and `body` must each be NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_status_http(
    status: u32,
    http_status: *mut u16,
    body: *mut *const c_char,
) -> apikeys_status {
    ffi_boundary! {
        try_out!(http_status);
        try_out!(body);
        let (code, text): (u16, &CString) = match apikeys_status::from_number(status) {
            Some(APIKEYS_OK) => {
                return Err(Failure::invalid_argument(
                    "APIKEYS_OK is an accepted key: there is no error answer to send",
                ))
            }
            Some(
                APIKEYS_MALFORMED | APIKEYS_NOT_FOUND | APIKEYS_REVOKED | APIKEYS_EXPIRED
                | APIKEYS_BAD_HEADER,
            ) => (401, &UNAUTHORIZED),
            Some(APIKEYS_INSUFFICIENT_SCOPE) => (403, &FORBIDDEN),
            _ => (500, &INTERNAL_ERROR),
        };
        // SAFETY: both checked not NULL above; writable per the contract.
        unsafe {
            http_status.write(code);
            body.write(text.as_ptr());
        }
        Ok(())
    }
}
