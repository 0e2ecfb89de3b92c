//! Listing keys: a snapshot handle read by index.

use apikeys_core::{ListFilter, Status, StatusFilter, Timestamp};

use crate::boundary::{ffi_boundary, try_out, try_ref, Failure};
use crate::info::{apikeys_key_info, OwnedKeyInfo};
use crate::status::{apikeys_list_filter, apikeys_status};
use crate::store::apikeys_store;

/// The keys a list call matched, oldest first. Opaque; read with
/// `apikeys_list_len` and `apikeys_list_get`, free with `apikeys_list_free`.
#[allow(non_camel_case_types)]
pub struct apikeys_list {
    keys: Vec<OwnedKeyInfo>,
}

fn status_filter(number: u32) -> Result<StatusFilter, Failure> {
    use apikeys_list_filter::*;
    let filters = [
        (APIKEYS_LIST_ALL, StatusFilter::All),
        (APIKEYS_LIST_ACTIVE, StatusFilter::Only(Status::Active)),
        (APIKEYS_LIST_REVOKED, StatusFilter::Only(Status::Revoked)),
        (APIKEYS_LIST_EXPIRED, StatusFilter::Only(Status::Expired)),
    ];
    filters
        .into_iter()
        .find(|(constant, _)| *constant as u32 == number)
        .map(|(_, filter)| filter)
        .ok_or_else(|| {
            Failure::invalid_argument(format!(
                "argument `status_filter`: {number} is not one of APIKEYS_LIST_ALL (0), ACTIVE (1), REVOKED (2), EXPIRED (3)"
            ))
        })
}

/// Lists the keys of the store, oldest first, with their usage counted so
/// far (flushed or not).
///
/// `status_filter` is `APIKEYS_LIST_ALL` (0), `APIKEYS_LIST_ACTIVE` (1),
/// `APIKEYS_LIST_REVOKED` (2) or `APIKEYS_LIST_EXPIRED` (3); any other number
/// is `APIKEYS_INVALID_ARGUMENT`. `unused_since` (Unix seconds, 0 = no
/// filter) keeps keys last used before that time, or never used and created
/// before it.
///
/// On success `*out` receives a new list handle, owned by the caller and
/// released by `apikeys_list_free`.
///
/// # Safety
///
/// `store` must be NULL (refused) or an open handle; `out` NULL (refused)
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_key_list(
    store: *const apikeys_store,
    status_filter: u32,
    unused_since: i64,
    out: *mut *mut apikeys_list,
) -> apikeys_status {
    ffi_boundary! {
        let store = try_ref!(store);
        try_out!(out);
        let filter = ListFilter {
            status: self::status_filter(status_filter)?,
            unused_since: (unused_since != 0).then(|| Timestamp::from_unix(unused_since)),
            owner: None,
        };
        let keys = store.store.list(&filter)?;
        let list = apikeys_list { keys: keys.iter().map(OwnedKeyInfo::new).collect() };
        let handle = Box::into_raw(Box::new(list));
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(handle) };
        Ok(())
    }
}

/// How many keys the list holds, in `*out`.
///
/// # Safety
///
/// `list` must be NULL (refused) or a live list handle; `out` NULL (refused)
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_list_len(
    list: *const apikeys_list,
    out: *mut usize,
) -> apikeys_status {
    ffi_boundary! {
        let list = try_ref!(list);
        try_out!(out);
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(list.keys.len()) };
        Ok(())
    }
}

/// The key at `index` (0 to len - 1): `*out` points to a read-only struct
/// owned by `list`, valid until `apikeys_list_free`. An index past the end
/// is `APIKEYS_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `list` must be NULL (refused) or a live list handle; `out` NULL (refused)
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn apikeys_list_get(
    list: *const apikeys_list,
    index: usize,
    out: *mut *const apikeys_key_info,
) -> apikeys_status {
    ffi_boundary! {
        let list = try_ref!(list);
        try_out!(out);
        let key = list.keys.get(index).ok_or_else(|| {
            Failure::invalid_argument(format!(
                "argument `index`: {index} is past the end of a list of {}",
                list.keys.len()
            ))
        })?;
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { out.write(key.view()) };
        Ok(())
    }
}

/// Frees a list handle. NULL is accepted and does nothing. Structs obtained
/// from it are invalid afterwards.
///
/// # Safety
///
/// `list` must be NULL or a list handle not yet freed; it must not be used again.
#[no_mangle]
pub unsafe extern "C" fn apikeys_list_free(list: *mut apikeys_list) -> apikeys_status {
    ffi_boundary! {
        if !list.is_null() {
            // SAFETY: made by Box::into_raw in this crate, handed back once.
            drop(unsafe { Box::from_raw(list) });
        }
        Ok(())
    }
}
