//! Generated keys: generate, rotate, read the secret once, free (wiping it);
//! revoke by id or by secret; the offline well-formedness check.

use core::ffi::c_char;
use std::time::Duration;

use apikeys_core::{is_well_formed, GeneratedKey, NewKey, Timestamp};
use zeroize::Zeroizing;

use crate::boundary::{
    ffi_boundary, try_bytes, try_optional_str, try_out, try_ref, try_str, Failure,
};
use crate::info::{apikeys_key_info, OwnedKeyInfo};
use crate::status::apikeys_status;
use crate::store::apikeys_store;

/// A key just generated (or rotated in): its secret, to show once, and its
/// information. Opaque; freed, and its secret wiped, by `apikeys_key_free`.
#[allow(non_camel_case_types)]
pub struct apikeys_key {
    /// The key followed by a NUL, so C can read it in place. Allocated at
    /// its exact size and wiped on drop; the core's `SecretKey` it was
    /// copied from wipes itself too.
    secret: Zeroizing<Vec<u8>>,
    info: OwnedKeyInfo,
}

impl apikeys_key {
    fn new(generated: GeneratedKey) -> Self {
        let text = generated.secret.expose_secret().as_bytes();
        let mut secret = Zeroizing::new(Vec::with_capacity(text.len() + 1));
        secret.extend_from_slice(text);
        secret.push(0);
        apikeys_key {
            secret,
            info: OwnedKeyInfo::new(&generated.info),
        }
    }

    fn secret_len(&self) -> usize {
        self.secret.len() - 1
    }
}

/// Whether `key` (`key_len` bytes) is a well-formed key: syntax and
/// checksum, offline, no store needed. Returns `APIKEYS_OK` or
/// `APIKEYS_MALFORMED` (also for bytes that are not UTF-8: they are not a
/// key; a presented key is untrusted input, never an invalid argument).
///
/// # Safety
///
/// `key`, when not NULL, must be readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn apikeys_is_well_formed(
    key: *const c_char,
    key_len: usize,
) -> apikeys_status {
    ffi_boundary! {
        let key = try_bytes!(key, key_len);
        match core::str::from_utf8(key) {
            Ok(key) if is_well_formed(key) => Ok(()),
            _ => Err(Failure::new(apikeys_status::APIKEYS_MALFORMED, "the key is not well-formed")),
        }
    }
}

/// Generates a key and stores its digest, durably before returning.
///
/// `name` is required (non-empty, at most 128 bytes, no control
/// characters). Optional strings are absent when their length is 0: `env`
/// (1 to 8 of `[a-z0-9]`, becomes part of the key: `flz_sk_prod_...`),
/// `scopes` (space-separated, such as "contacts:read contacts:write"),
/// `owner` (at most 128 bytes). `expires_at` is Unix seconds UTC, 0 for
/// never; a time not in the future is `APIKEYS_INVALID_ARGUMENT`.
///
/// On success `*out` receives a new key handle, owned by the caller:
/// read the secret with `apikeys_key_secret`, show it once, then release it
/// with `apikeys_key_free`, which wipes it. Nothing is generated when an
/// argument is refused.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; each string, when not
/// NULL, readable for its length; `out` NULL (refused) or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn apikeys_key_generate(
    store: *const apikeys_store,
    name: *const c_char,
    name_len: usize,
    env: *const c_char,
    env_len: usize,
    scopes: *const c_char,
    scopes_len: usize,
    owner: *const c_char,
    owner_len: usize,
    expires_at: i64,
    out: *mut *mut apikeys_key,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        try_out!(out);
        let name = try_str!(name, name_len);
        let env = try_optional_str!(env, env_len);
        let scopes = try_optional_str!(scopes, scopes_len);
        let owner = try_optional_str!(owner, owner_len);
        let mut request = NewKey::new(name).scopes(scopes.unwrap_or("").split_ascii_whitespace());
        if let Some(env) = env {
            request = request.env(env);
        }
        if let Some(owner) = owner {
            request = request.owner(owner);
        }
        if expires_at != 0 {
            request = request.expires_at(Timestamp::from_unix(expires_at));
        }
        let generated = store.store.generate(&request)?;
        let handle = Box::into_raw(Box::new(apikeys_key::new(generated)));
        // SAFETY: checked not NULL above; the caller guarantees it is writable.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// The plaintext key: `*out` points to it (NUL-terminated) and `*out_len`
/// receives its length without the NUL. The bytes belong to `key` and are
/// wiped by `apikeys_key_free`: copy them out if they must outlive it, and
/// never log them. `out_len` may be NULL.
///
/// # Safety
///
/// `key` must be NULL (refused) or a live key handle; `out` NULL (refused)
/// or writable; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_secret(
    key: *const apikeys_key,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> apikeys_status {
    ffi_boundary! {
        let key = try_ref!(key);
        try_out!(out);
        // SAFETY: checked not NULL (out) or tested (out_len); writable per the contract.
        unsafe {
            out.write(key.secret.as_ptr().cast::<c_char>());
            if !out_len.is_null() {
                out_len.write(key.secret_len());
            }
        }
        Ok(())
    }
}

/// The key's information (id, name, hint, scopes, ...): `*out` points to a
/// read-only struct owned by `key`, valid until `apikeys_key_free`.
///
/// # Safety
///
/// `key` must be NULL (refused) or a live key handle; `out` NULL (refused)
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_info(
    key: *const apikeys_key,
    out: *mut *const apikeys_key_info,
) -> apikeys_status {
    ffi_boundary! {
        let key = try_ref!(key);
        try_out!(out);
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(key.info.view()) };
        Ok(())
    }
}

/// Frees a key handle, wiping its secret from memory. NULL is accepted and
/// does nothing. Pointers obtained from the key are invalid afterwards.
///
/// # Safety
///
/// `key` must be NULL or a key handle not yet freed; it must not be used again.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_free(key: *mut apikeys_key) -> apikeys_status {
    ffi_boundary! {
        if !key.is_null() {
            // SAFETY: made by Box::into_raw in this crate, handed back once.
            // Dropping wipes the secret (Zeroizing).
            drop(unsafe { Box::from_raw(key) });
        }
        Ok(())
    }
}

/// Revokes the key with this `id` (UTF-8, `id_len` bytes): immediately,
/// irreversibly, durably before returning. Revoking a revoked key is
/// `APIKEYS_OK` and changes nothing; `*newly_revoked` (optional, may be NULL)
/// tells which. An unknown id is `APIKEYS_UNKNOWN_KEY`.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `id`, when not NULL,
/// readable for `id_len` bytes; `newly_revoked` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_revoke(
    store: *const apikeys_store,
    id: *const c_char,
    id_len: usize,
    newly_revoked: *mut bool,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        let id = try_str!(id, id_len);
        let changed = store.store.revoke(id)?;
        if !newly_revoked.is_null() {
            // SAFETY: not NULL; writable per the contract.
            unsafe { newly_revoked.write(changed) };
        }
        Ok(())
    }
}

/// Revokes a key given the key itself (`key_len` bytes), as when it has
/// leaked and its id is not at hand. A string that is not a well-formed key
/// is `APIKEYS_INVALID_ARGUMENT`; a well-formed key not in the store is
/// `APIKEYS_UNKNOWN_KEY`. `*newly_revoked` as for `apikeys_key_revoke`.
///
/// # Safety
///
/// As for `apikeys_key_revoke`, with `key` readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_revoke_secret(
    store: *const apikeys_store,
    key: *const c_char,
    key_len: usize,
    newly_revoked: *mut bool,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        let key = try_str!(key, key_len);
        let changed = store.store.revoke_key(key)?;
        if !newly_revoked.is_null() {
            // SAFETY: not NULL; writable per the contract.
            unsafe { newly_revoked.write(changed) };
        }
        Ok(())
    }
}

/// Rotates the key with this `id`: a new key inherits its name, env tag,
/// scopes, owner and expiry; the old key keeps working for `grace_seconds`
/// (never past its own expiry; 0 = it expires now), then expires. A revoked
/// or expired key cannot be rotated (`APIKEYS_INVALID_ARGUMENT`).
///
/// On success `*out` receives the new key, owned by the caller and released
/// by `apikeys_key_free`.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `id`, when not NULL,
/// readable for `id_len` bytes; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_rotate(
    store: *const apikeys_store,
    id: *const c_char,
    id_len: usize,
    grace_seconds: u64,
    out: *mut *mut apikeys_key,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        try_out!(out);
        let id = try_str!(id, id_len);
        let generated = store.store.rotate(id, Duration::from_secs(grace_seconds))?;
        let handle = Box::into_raw(Box::new(apikeys_key::new(generated)));
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}
