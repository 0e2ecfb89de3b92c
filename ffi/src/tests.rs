//! Tests of the boundary itself: panics, NULL checks, status numbers, and
//! the mapping of core errors. The C programs in `ffi/tests/c` test the ABI
//! as a host sees it.

use core::ffi::{c_char, CStr};
use core::ptr;

use apikeys_core::{Error, Rejection};

use crate::boundary::{catch, Failure};
use crate::key::apikeys_is_well_formed;
use crate::status::{apikeys_status::*, status_of_error, status_of_rejection, ALL_STATUSES};
use crate::store::{apikeys_store_close, apikeys_store_open};
use crate::verify::{apikeys_key_verify, apikeys_status_http};
use crate::*;

fn last_error_text() -> String {
    // SAFETY: apikeys_last_error returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(apikeys_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn text(pointer: *const c_char) -> String {
    assert!(!pointer.is_null());
    // SAFETY: the functions under test return NUL-terminated strings.
    unsafe { CStr::from_ptr(pointer) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_panic_inside_the_boundary_becomes_the_panic_status() {
    #[allow(clippy::panic)]
    let status = catch(|| -> Result<(), Failure> { panic!("deliberate test panic") });
    assert_eq!(status, APIKEYS_PANIC);
    let message = last_error_text();
    assert!(message.contains("deliberate test panic"), "{message}");
}

#[test]
fn a_panic_in_a_string_function_returns_an_empty_string_not_null() {
    #[allow(clippy::panic)]
    let pointer = catch(|| -> *const c_char { panic!("deliberate test panic") });
    assert_eq!(text(pointer), "");
}

#[test]
fn a_failure_is_returned_and_recorded_as_the_last_error() {
    let status = catch(|| -> Result<(), Failure> {
        Err(Failure::invalid_argument("the detail for the host"))
    });
    assert_eq!(status, APIKEYS_INVALID_ARGUMENT);
    assert_eq!(last_error_text(), "the detail for the host");
    // A later success does not erase the last failure's detail.
    assert_eq!(catch(|| -> Result<(), Failure> { Ok(()) }), APIKEYS_OK);
    assert_eq!(last_error_text(), "the detail for the host");
}

#[test]
fn the_last_error_is_per_thread() {
    let _ = catch(|| -> Result<(), Failure> { Err(Failure::invalid_argument("main thread")) });
    let other = std::thread::spawn(last_error_text)
        .join()
        .unwrap_or_else(|_| String::from("thread failed"));
    assert_eq!(other, "");
    assert_eq!(last_error_text(), "main thread");
}

#[test]
fn null_out_pointers_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let path = dir.path().join("keys.redb");
    let path = path.to_str().unwrap_or_default();
    // SAFETY: valid buffers or NULL, as the contract allows.
    let status = unsafe {
        apikeys_store_open(
            path.as_ptr().cast(),
            path.len(),
            ptr::null(),
            0,
            0,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, APIKEYS_NULL_ARGUMENT);
    assert!(last_error_text().contains("`out`"));
    // Refused before opening: the file was not created.
    assert!(!dir.path().join("keys.redb").exists());
}

#[test]
fn a_null_buffer_with_a_length_is_a_null_argument_and_out_is_untouched() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let path = dir.path().join("keys.redb");
    let path = path.to_str().unwrap_or_default();
    let mut store: *mut apikeys_store = ptr::null_mut();
    // SAFETY: valid buffers or NULL, as the contract allows.
    let status = unsafe {
        apikeys_store_open(
            path.as_ptr().cast(),
            path.len(),
            ptr::null(),
            0,
            0,
            &mut store,
        )
    };
    assert_eq!(status, APIKEYS_OK);
    // Never dereferenced: only compared, to see that out was not written.
    let sentinel = ptr::dangling_mut::<apikeys_verified>();
    let mut verified = sentinel;
    // SAFETY: as above.
    let status =
        unsafe { apikeys_key_verify(store, ptr::null(), 5, ptr::null(), 0, &mut verified) };
    assert_eq!(status, APIKEYS_NULL_ARGUMENT);
    assert!(last_error_text().contains("`key`"));
    assert_eq!(verified, sentinel, "out must be written only on success");
    // SAFETY: NULL store.
    let status =
        unsafe { apikeys_key_verify(ptr::null(), ptr::null(), 0, ptr::null(), 0, ptr::null_mut()) };
    assert_eq!(status, APIKEYS_NULL_ARGUMENT);
    // SAFETY: a handle from apikeys_store_open, closed once.
    assert_eq!(unsafe { apikeys_store_close(store) }, APIKEYS_OK);
}

#[test]
fn non_ascii_input_of_key_length_is_malformed_not_a_panic() {
    // 39 bytes with a two-byte character across the body boundary (byte 7):
    // once a panic in the core's parser, which the boundary turned into
    // APIKEYS_PANIC.
    let key = format!("ab{}c", "é".repeat(18));
    assert_eq!(key.len(), 39);
    assert!(!key.is_char_boundary(7));
    // SAFETY: a valid buffer.
    let status = unsafe { apikeys_is_well_formed(key.as_ptr().cast(), key.len()) };
    assert_eq!(status, APIKEYS_MALFORMED);
}

#[test]
fn status_numbers_are_unique_and_read_back_by_value() {
    for (i, status) in ALL_STATUSES.iter().enumerate() {
        assert_eq!(apikeys_status::from_number(*status as u32), Some(*status));
        assert!(ALL_STATUSES[i + 1..].iter().all(|other| other != status));
        assert!(!text(apikeys_status_str(*status as u32)).is_empty());
    }
    assert_eq!(apikeys_status::from_number(4), None);
    assert_eq!(apikeys_status::from_number(u32::MAX), None);
    assert_eq!(text(apikeys_status_str(4242)), "unknown status");
    assert_eq!(text(apikeys_status_str(0)), "success");
}

#[test]
fn core_errors_map_to_their_documented_numbers() {
    let cases = [
        (Error::InvalidArgument(String::new()), 2),
        (Error::UnknownKey(String::new()), 3),
        (Error::Locked { path: "x".into() }, 200),
        (Error::Corrupted(String::new()), 201),
        (Error::WrongPepper, 202),
        (Error::UsedAfterFork, 203),
        (Error::Io(std::io::Error::other("x")), 204),
        (Error::Storage(String::new()), 205),
        (Error::UnsupportedVersion(9), 206),
        (Error::Random(String::new()), 207),
    ];
    for (error, number) in cases {
        assert_eq!(status_of_error(&error) as u32, number, "{error}");
    }
    let rejections = [
        (Rejection::Malformed, 100),
        (Rejection::NotFound, 101),
        (Rejection::Revoked, 102),
        (Rejection::Expired, 103),
        (Rejection::InsufficientScope, 104),
    ];
    for (rejection, number) in rejections {
        assert_eq!(status_of_rejection(rejection) as u32, number);
    }
}

#[test]
fn http_answers_are_the_core_bodies() {
    use apikeys_core::http::{FORBIDDEN_SCOPE_BODY, INTERNAL_ERROR_BODY, UNAUTHORIZED_BODY};
    let cases = [
        (APIKEYS_MALFORMED as u32, 401, UNAUTHORIZED_BODY),
        (APIKEYS_BAD_HEADER as u32, 401, UNAUTHORIZED_BODY),
        (APIKEYS_INSUFFICIENT_SCOPE as u32, 403, FORBIDDEN_SCOPE_BODY),
        (APIKEYS_LOCKED as u32, 500, INTERNAL_ERROR_BODY),
        (77_777, 500, INTERNAL_ERROR_BODY),
    ];
    for (status, expected_code, expected_body) in cases {
        let mut code = 0u16;
        let mut body: *const c_char = ptr::null();
        // SAFETY: valid out pointers.
        let answered = unsafe { apikeys_status_http(status, &mut code, &mut body) };
        assert_eq!(answered, APIKEYS_OK);
        assert_eq!(code, expected_code);
        assert_eq!(text(body), expected_body);
    }
}

#[test]
fn in_memory_handles_of_one_path_share_a_store_until_the_last_is_closed() {
    use crate::store::{close_handle, open_handle};
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let path = dir.path().join("keys.redb");
    let path = path.to_str().unwrap_or_default();
    let shared_in_memory = 1 | 2;
    let open = || open_handle(path, b"pepper", shared_in_memory).unwrap_or_else(|_| unreachable!());
    let first = open();
    let second = open();
    let key = first
        .store
        .generate(&apikeys_core::NewKey::new("test"))
        .unwrap_or_else(|e| unreachable!("{e}"));
    let secret = key.secret.expose_secret().to_string();
    assert!(second.store.verify(&secret).is_ok());
    // Another pepper on the same in-memory store is refused, and leaves it.
    assert!(open_handle(path, b"other", shared_in_memory).is_err());
    close_handle(first).unwrap_or_else(|e| unreachable!("{e}"));
    let third = open();
    assert!(
        third.store.verify(&secret).is_ok(),
        "a handle still held it"
    );
    close_handle(second).unwrap_or_else(|e| unreachable!("{e}"));
    close_handle(third).unwrap_or_else(|e| unreachable!("{e}"));
    // The last close dropped it: the same path is a new, empty store.
    let fresh = open();
    assert!(matches!(
        fresh.store.verify(&secret),
        Err(apikeys_core::VerifyError::Rejected(Rejection::NotFound))
    ));
    close_handle(fresh).unwrap_or_else(|e| unreachable!("{e}"));
    // Nothing but the shared index was written beside the path.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| unreachable!("{e}"))
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    assert_eq!(names, ["keys.redb.index"]);

    // Through the C function: exclusive in memory opens; unknown bits do not.
    for (flags, want) in [(2, APIKEYS_OK), (4, APIKEYS_INVALID_ARGUMENT)] {
        let mut store: *mut apikeys_store = ptr::null_mut();
        let other = dir.path().join("exclusive.redb");
        let other = other.to_str().unwrap_or_default();
        // SAFETY: valid buffers and out slot.
        let status = unsafe {
            apikeys_store_open(
                other.as_ptr().cast(),
                other.len(),
                ptr::null(),
                0,
                flags,
                &mut store,
            )
        };
        assert_eq!(status, want, "flags {flags}");
        // SAFETY: a handle from apikeys_store_open or NULL, closed once.
        assert_eq!(unsafe { apikeys_store_close(store) }, APIKEYS_OK);
    }
    assert!(!dir.path().join("exclusive.redb").exists());
}

#[test]
fn keys_imported_from_other_stores_verify_through_the_abi() {
    use crate::check::apikeys_key_check;
    use crate::verify::{apikeys_header_verify, apikeys_verified_free};
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let path = dir.path().join("keys.redb");
    // A Sanctum token `7|secret`, its table keeping the SHA-256 hex of
    // `secret` (here the SHA-256 of "secret", written out).
    let rows = "id,name,token\n7,Sanctum,2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n";
    {
        let store = apikeys_core::KeyStore::open(&path, apikeys_core::StoreOptions::new())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let report = store
            .import(
                apikeys_core::Source::Sanctum,
                rows.as_bytes(),
                &apikeys_core::ImportOptions::new(),
            )
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(report.imported, 1);
        store.close().unwrap_or_else(|e| unreachable!("{e}"));
    }
    let path = path.to_str().unwrap_or_default();
    let mut store: *mut apikeys_store = ptr::null_mut();
    // SAFETY: valid buffers; out is writable.
    let status = unsafe {
        apikeys_store_open(
            path.as_ptr().cast(),
            path.len(),
            ptr::null(),
            0,
            0,
            &mut store,
        )
    };
    assert_eq!(status, APIKEYS_OK);
    let key = "7|secret";
    for _ in 0..2 {
        // Before its re-digest, then after.
        let mut verified: *mut apikeys_verified = ptr::null_mut();
        // SAFETY: valid buffers; out is writable.
        let status = unsafe {
            apikeys_key_verify(
                store,
                key.as_ptr().cast(),
                key.len(),
                ptr::null(),
                0,
                &mut verified,
            )
        };
        assert_eq!(status, APIKEYS_OK);
        // SAFETY: the handle the verify returned.
        unsafe { apikeys_verified_free(verified) };
        // SAFETY: NUL-terminated key; no scope; no id wanted.
        let status =
            unsafe { apikeys_key_check(store, c"7|secret".as_ptr(), ptr::null(), ptr::null_mut()) };
        assert_eq!(status, APIKEYS_OK);
        let header = "Bearer 7|secret";
        let mut verified: *mut apikeys_verified = ptr::null_mut();
        // SAFETY: valid buffers; out is writable.
        let status = unsafe {
            apikeys_header_verify(
                store,
                header.as_ptr().cast(),
                header.len(),
                ptr::null(),
                0,
                &mut verified,
            )
        };
        assert_eq!(status, APIKEYS_OK);
        // SAFETY: the handle the verify returned.
        unsafe { apikeys_verified_free(verified) };
    }
    // SAFETY: NUL-terminated key.
    let status =
        unsafe { apikeys_key_check(store, c"7|secreT".as_ptr(), ptr::null(), ptr::null_mut()) };
    assert_eq!(status, APIKEYS_NOT_FOUND);
    // SAFETY: the open handle, closed once.
    assert_eq!(unsafe { apikeys_store_close(store) }, APIKEYS_OK);
}
