//! Hostile input through the C ABI, from Rust: the one table of
//! `tests/support/hostile_table.rs` fed to `apikeys_key_verify`,
//! `apikeys_key_check`, `apikeys_key_validate`, `apikeys_header_verify`,
//! `apikeys_header_check`,
//! `apikeys_is_well_formed` and `apikeys_key_revoke_secret`; NULL in every
//! pointer slot of every function; hostile strings where names, ids, scopes
//! and paths go. Every call returns a documented status; none crashes.
//!
//! The library is loaded as a host would load it: `dlopen` of the built
//! `libapikeys.so` (this crate builds no Rust library to link against).

#[path = "../../tests/support/hostile_table.rs"]
#[allow(dead_code)] // the command-line column is for tests/hostile.rs
mod hostile_table;

use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};

use hostile_table::{cases, with_checksum, Expect, Kind};

const OK: u32 = 0;
const NULL_ARGUMENT: u32 = 1;
const INVALID_ARGUMENT: u32 = 2;
const UNKNOWN_KEY: u32 = 3;
const MALFORMED: u32 = 100;
const NOT_FOUND: u32 = 101;
const BAD_HEADER: u32 = 105;
/// Every status the header documents.
const DOCUMENTED: [u32; 20] = [
    0, 1, 2, 3, 100, 101, 102, 103, 104, 105, 200, 201, 202, 203, 204, 205, 206, 207, 208, 900,
];

type Store = c_void;
type Key = c_void;
type Verified = c_void;
type List = c_void;

/// The functions under test, resolved from the shared library.
struct Api {
    status_str: unsafe extern "C" fn(u32) -> *const c_char,
    last_error: unsafe extern "C" fn() -> *const c_char,
    is_well_formed: unsafe extern "C" fn(*const c_char, usize) -> u32,
    store_open:
        unsafe extern "C" fn(*const c_char, usize, *const u8, usize, u32, *mut *mut Store) -> u32,
    store_flush: unsafe extern "C" fn(*const Store) -> u32,
    store_close: unsafe extern "C" fn(*mut Store) -> u32,
    key_generate: unsafe extern "C" fn(
        *const Store,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *const c_char,
        usize,
        i64,
        *mut *mut Key,
    ) -> u32,
    key_secret: unsafe extern "C" fn(*const Key, *mut *const c_char, *mut usize) -> u32,
    key_info: unsafe extern "C" fn(*const Key, *mut *const c_void) -> u32,
    key_free: unsafe extern "C" fn(*mut Key) -> u32,
    key_verify: unsafe extern "C" fn(
        *const Store,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *mut *mut Verified,
    ) -> u32,
    key_check: unsafe extern "C" fn(*const Store, *const c_char, *const c_char, *mut c_char) -> u32,
    key_validate: unsafe extern "C" fn(*const Store, *const c_char) -> u32,
    header_verify: unsafe extern "C" fn(
        *const Store,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *mut *mut Verified,
    ) -> u32,
    header_check:
        unsafe extern "C" fn(*const Store, *const c_char, *const c_char, *mut c_char) -> u32,
    verified_info: unsafe extern "C" fn(*const Verified, *mut *const c_void) -> u32,
    verified_free: unsafe extern "C" fn(*mut Verified) -> u32,
    status_http: unsafe extern "C" fn(u32, *mut u16, *mut *const c_char) -> u32,
    key_revoke: unsafe extern "C" fn(*const Store, *const c_char, usize, *mut bool) -> u32,
    key_revoke_secret: unsafe extern "C" fn(*const Store, *const c_char, usize, *mut bool) -> u32,
    key_rotate: unsafe extern "C" fn(*const Store, *const c_char, usize, u64, *mut *mut Key) -> u32,
    key_list: unsafe extern "C" fn(*const Store, u32, i64, *mut *mut List) -> u32,
    list_len: unsafe extern "C" fn(*const List, *mut usize) -> u32,
    list_get: unsafe extern "C" fn(*const List, usize, *mut *const c_void) -> u32,
    list_free: unsafe extern "C" fn(*mut List) -> u32,
}

/// Resolves `name` in `library` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the function's true signature (copied from `include/apikeys.h`).
unsafe fn symbol<F: Copy>(library: *mut c_void, name: &str) -> F {
    let cname = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: library is a live dlopen handle; cname is NUL-terminated.
    let address = unsafe { libc::dlsym(library, cname.as_ptr()) };
    assert!(!address.is_null(), "{name} is not exported");
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: a non-NULL function address, read as the caller's signature.
    unsafe { std::mem::transmute_copy(&address) }
}

fn load() -> Api {
    let library = open_library();
    // SAFETY: every signature below is copied from include/apikeys.h.
    unsafe { resolve(library) }
}

/// `dlopen` of the built library (kept loaded for the process).
fn open_library() -> *mut c_void {
    // target/<profile>/deps/hostile_abi-<hash> -> target/<profile>/libapikeys.so
    let exe = std::env::current_exe().expect("test path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("libapikeys.so");
    let cpath = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: dlopen of the library this crate builds; kept loaded for the process.
    let library = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(
        !library.is_null(),
        "cannot load {}: build it first with `cargo build -p apikeys-ffi`",
        path.display()
    );
    library
}

/// # Safety
/// `library` is a live dlopen handle of libapikeys.
unsafe fn resolve(library: *mut c_void) -> Api {
    // SAFETY: every signature below is copied from include/apikeys.h.
    unsafe {
        Api {
            status_str: symbol(library, "apikeys_status_str"),
            last_error: symbol(library, "apikeys_last_error"),
            is_well_formed: symbol(library, "apikeys_is_well_formed"),
            store_open: symbol(library, "apikeys_store_open"),
            store_flush: symbol(library, "apikeys_store_flush"),
            store_close: symbol(library, "apikeys_store_close"),
            key_generate: symbol(library, "apikeys_key_generate"),
            key_secret: symbol(library, "apikeys_key_secret"),
            key_info: symbol(library, "apikeys_key_info"),
            key_free: symbol(library, "apikeys_key_free"),
            key_verify: symbol(library, "apikeys_key_verify"),
            key_check: symbol(library, "apikeys_key_check"),
            key_validate: symbol(library, "apikeys_key_validate"),
            header_verify: symbol(library, "apikeys_header_verify"),
            header_check: symbol(library, "apikeys_header_check"),
            verified_info: symbol(library, "apikeys_verified_info"),
            verified_free: symbol(library, "apikeys_verified_free"),
            status_http: symbol(library, "apikeys_status_http"),
            key_revoke: symbol(library, "apikeys_key_revoke"),
            key_revoke_secret: symbol(library, "apikeys_key_revoke_secret"),
            key_rotate: symbol(library, "apikeys_key_rotate"),
            key_list: symbol(library, "apikeys_key_list"),
            list_len: symbol(library, "apikeys_list_len"),
            list_get: symbol(library, "apikeys_list_get"),
            list_free: symbol(library, "apikeys_list_free"),
        }
    }
}

fn ptr(bytes: &[u8]) -> *const c_char {
    bytes.as_ptr().cast()
}

/// A status must be documented, and a failure must leave a message.
fn documented(api: &Api, status: u32, what: &str) -> u32 {
    assert!(
        DOCUMENTED.contains(&status),
        "{what}: undocumented status {status}"
    );
    assert_ne!(status, 900, "{what}: the library panicked");
    // SAFETY: both return static or thread-local NUL-terminated strings.
    unsafe {
        assert!(!CStr::from_ptr((api.status_str)(status))
            .to_bytes()
            .is_empty());
        if status != OK {
            assert!(!(api.last_error)().is_null());
        }
    }
    status
}

/// An open store (exclusive or shared) with one key `flz_sk_prod_...` of
/// scope `contacts:*`; returns the store, the secret and the key's id.
fn open_with_key(api: &Api, path: &std::path::Path, flags: u32) -> (*mut Store, String, String) {
    let path = path.to_str().expect("utf-8").as_bytes();
    let mut store = null_mut();
    // SAFETY: valid buffers and out pointers.
    unsafe {
        let status = (api.store_open)(ptr(path), path.len(), null(), 0, flags, &mut store);
        assert_eq!(status, OK);
        let (name, env, scopes) = (b"hostile", b"prod", b"contacts:*");
        let mut key = null_mut();
        let status = (api.key_generate)(
            store,
            ptr(name),
            name.len(),
            ptr(env),
            env.len(),
            ptr(scopes),
            scopes.len(),
            null(),
            0,
            0,
            &mut key,
        );
        assert_eq!(status, OK);
        let (mut text, mut len) = (null(), 0);
        assert_eq!((api.key_secret)(key, &mut text, &mut len), OK);
        let secret = std::str::from_utf8(std::slice::from_raw_parts(text.cast::<u8>(), len))
            .expect("utf-8")
            .to_string();
        let mut info = null();
        assert_eq!((api.key_info)(key, &mut info), OK);
        // The id is the first field of apikeys_key_info: a NUL-terminated string.
        let id = CStr::from_ptr(*info.cast::<*const c_char>())
            .to_str()
            .expect("id")
            .to_string();
        assert_eq!((api.key_free)(key), OK);
        (store, secret, id)
    }
}

fn stranger() -> String {
    with_checksum(&format!("flz_sk_prod_{}", "Q".repeat(26)))
}

fn hostile_table_through_the_c_abi(flags: u32) -> usize {
    let api = load();
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, valid, _) = open_with_key(&api, &dir.path().join("keys.redb"), flags);
    let table = cases(&valid, &stranger());
    let scope = b"contacts:read";
    for case in &table {
        let input = &case.input;
        // SAFETY: every buffer is a live slice with its own length.
        unsafe {
            let mut verified = null_mut();
            let status = match case.kind {
                Kind::Key => {
                    (api.key_verify)(store, ptr(input), input.len(), null(), 0, &mut verified)
                }
                Kind::Header => {
                    (api.header_verify)(store, ptr(input), input.len(), null(), 0, &mut verified)
                }
            };
            documented(&api, status, &case.name);
            let expected = match (case.kind, case.expect) {
                (_, Expect::Accepted) => OK,
                (_, Expect::Malformed) => MALFORMED,
                (_, Expect::NotFound) => NOT_FOUND,
                (_, Expect::BadHeader) => BAD_HEADER,
                // A presented key that is not UTF-8 is not a key; a header
                // that is not UTF-8 holds no token.
                (Kind::Key, Expect::NotUtf8) => MALFORMED,
                (Kind::Header, Expect::NotUtf8) => BAD_HEADER,
            };
            assert_eq!(status, expected, "{}", case.name);
            if status == OK {
                assert!(!verified.is_null(), "{}", case.name);
                let mut info = null();
                assert_eq!((api.verified_info)(verified, &mut info), OK);
                assert_eq!((api.verified_free)(verified), OK);
            } else {
                assert!(verified.is_null(), "{}: out written on failure", case.name);
                let (mut http, mut body) = (0u16, null());
                assert_eq!((api.status_http)(status, &mut http, &mut body), OK);
                assert_eq!(http, 401, "{}", case.name);
            }
            // With a required scope, the same outcome (the key grants contacts:*).
            let scoped = match case.kind {
                Kind::Key => (api.key_verify)(
                    store,
                    ptr(input),
                    input.len(),
                    ptr(scope),
                    scope.len(),
                    null_mut(),
                ),
                Kind::Header => (api.header_verify)(
                    store,
                    ptr(input),
                    input.len(),
                    ptr(scope),
                    scope.len(),
                    null_mut(),
                ),
            };
            assert_eq!(scoped, expected, "{} (with scope)", case.name);
            if case.kind == Kind::Header {
                header_check_as_c_string(&api, store, input, expected, &case.name);
            }
            if case.kind == Kind::Key {
                check_as_c_string(&api, store, input, expected, &case.name);
                let well_formed = (api.is_well_formed)(ptr(input), input.len());
                let expected = if matches!(case.expect, Expect::Accepted | Expect::NotFound) {
                    OK
                } else {
                    MALFORMED
                };
                assert_eq!(well_formed, expected, "{}: is_well_formed", case.name);
                if case.expect != Expect::Accepted {
                    let mut newly = false;
                    let revoked =
                        (api.key_revoke_secret)(store, ptr(input), input.len(), &mut newly);
                    documented(&api, revoked, &case.name);
                    let expected = if case.expect == Expect::NotFound {
                        UNKNOWN_KEY
                    } else {
                        INVALID_ARGUMENT
                    };
                    assert_eq!(revoked, expected, "{}: revoke by key", case.name);
                }
            }
        }
    }
    // SAFETY: live store handle; closed once.
    unsafe {
        let status = (api.key_verify)(
            store,
            ptr(valid.as_bytes()),
            valid.len(),
            null(),
            0,
            null_mut(),
        );
        assert_eq!(status, OK, "a hostile input revoked the real key");
        assert_eq!((api.store_close)(store), OK);
    }
    table.len()
}

/// `apikeys_header_check` on `input` made a C string: the answer of
/// `apikeys_header_verify` for the bytes C sees (up to the first NUL), with
/// and without a scope; the table's own answer when `input` holds no NUL.
///
/// # Safety
/// `store` is a live handle.
unsafe fn header_check_as_c_string(
    api: &Api,
    store: *const Store,
    input: &[u8],
    expected: u32,
    name: &str,
) {
    let cut = input.iter().position(|&b| b == 0).unwrap_or(input.len());
    let mut c_header = input[..cut].to_vec();
    c_header.push(0);
    let scope = c"contacts:read";
    let mut id = [b'x' as c_char; 17];
    // SAFETY: a NUL-terminated header and scope; a 17-byte id buffer.
    let (status, scoped, whole) = unsafe {
        (
            (api.header_check)(store, c_header.as_ptr().cast(), null(), id.as_mut_ptr()),
            (api.header_check)(store, c_header.as_ptr().cast(), scope.as_ptr(), null_mut()),
            (api.header_verify)(store, c_header.as_ptr().cast(), cut, null(), 0, null_mut()),
        )
    };
    documented(api, status, name);
    // Past the scan bound the value is refused unread (no server passes one on).
    let read_whole = if cut >= 8192 { BAD_HEADER } else { whole };
    assert_eq!(
        status, read_whole,
        "{name}: header_check and header_verify disagree"
    );
    assert_eq!(scoped, status, "{name}: header_check with scope");
    if cut == input.len() && cut < 8192 {
        assert_eq!(status, expected, "{name}: header_check");
    }
    if status == OK {
        assert_eq!(id[16], 0, "{name}: id not NUL-terminated");
    } else {
        assert!(
            id.iter().all(|&c| c == b'x' as c_char),
            "{name}: id written on failure"
        );
    }
}

/// `apikeys_key_check` on `input` made a C string: the answer of
/// `apikeys_key_verify` for the same bytes when they hold no NUL; for bytes
/// that do, C sees the key end at the first NUL, and the answer is that of
/// those bytes (a host must refuse such keys first: the packages do).
///
/// # Safety
/// `store` is a live handle.
unsafe fn check_as_c_string(
    api: &Api,
    store: *const Store,
    input: &[u8],
    expected: u32,
    name: &str,
) {
    let cut = input.iter().position(|&b| b == 0).unwrap_or(input.len());
    let mut c_key = input[..cut].to_vec();
    c_key.push(0);
    let scope = c"contacts:read";
    let mut id = [b'x' as c_char; 17];
    // SAFETY: a NUL-terminated key and scope; a 17-byte id buffer.
    let (status, scoped, validated, bare) = unsafe {
        (
            (api.key_check)(store, c_key.as_ptr().cast(), null(), id.as_mut_ptr()),
            (api.key_check)(store, c_key.as_ptr().cast(), scope.as_ptr(), null_mut()),
            (api.key_validate)(store, c_key.as_ptr().cast()),
            (api.key_verify)(store, c_key.as_ptr().cast(), cut, null(), 0, null_mut()),
        )
    };
    documented(api, status, name);
    assert_eq!(status, bare, "{name}: key_check and key_verify disagree");
    assert_eq!(scoped, status, "{name}: key_check with scope");
    assert_eq!(
        validated, status,
        "{name}: key_validate and key_check disagree"
    );
    if cut == input.len() {
        assert_eq!(status, expected, "{name}: key_check");
    }
    if status == OK {
        assert_eq!(id[16], 0, "{name}: id not NUL-terminated");
        assert!(
            id[..16].iter().all(|&c| (c as u8).is_ascii_alphanumeric()),
            "{name}: id"
        );
    } else {
        assert!(
            id.iter().all(|&c| c == b'x' as c_char),
            "{name}: id written on failure"
        );
    }
}

#[test]
fn hostile_inputs_get_their_defined_status_through_the_c_abi_exclusive() {
    let tried = hostile_table_through_the_c_abi(0);
    eprintln!("exclusive: {tried} hostile inputs through the C ABI");
}

#[test]
fn hostile_inputs_get_their_defined_status_through_the_c_abi_shared() {
    let tried = hostile_table_through_the_c_abi(1);
    eprintln!("shared: {tried} hostile inputs through the C ABI");
}

#[test]
fn null_in_any_pointer_slot_is_refused_without_a_crash() {
    let api = load();
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, valid, id) = open_with_key(&api, &dir.path().join("keys.redb"), 0);
    let key = valid.as_bytes();
    let idb = id.as_bytes();
    let text = b"x";
    let mut calls = 0;
    let mut check = |status: u32, expected: u32, what: &str| {
        // Both sides of a comparison are statuses the header documents.
        documented(&api, expected, what);
        documented(&api, status, what);
        assert_eq!(status, expected, "{what}");
        calls += 1;
    };
    // SAFETY: every non-NULL pointer is a live buffer of the given length or
    // a writable out slot; NULLs are what is under test.
    unsafe {
        let path = dir.path().join("other.redb");
        let path = path.to_str().expect("utf-8").as_bytes();
        let mut out = null_mut();
        // (NULL, 0) is the empty string: it gets the empty string's answer.
        let empty = b"".as_ptr().cast::<c_char>();
        check(
            (api.store_open)(null(), 0, null(), 0, 0, &mut out),
            (api.store_open)(empty, 0, null(), 0, 0, &mut out),
            "open: (NULL, 0) path",
        );
        check(
            (api.store_open)(null(), 9, null(), 0, 0, &mut out),
            NULL_ARGUMENT,
            "open: NULL path, length 9",
        );
        check(
            (api.store_open)(ptr(path), path.len(), null(), 0, 0, null_mut()),
            NULL_ARGUMENT,
            "open: NULL out",
        );
        check(
            (api.store_open)(ptr(path), path.len(), null(), 4, 0, &mut out),
            NULL_ARGUMENT,
            "open: NULL pepper, length 4",
        );
        assert!(out.is_null(), "open wrote its out parameter on failure");
        check(
            (api.store_open)(ptr(path), path.len(), null(), 0, 0xFF00, &mut out),
            INVALID_ARGUMENT,
            "open: unknown flags",
        );
        check(
            (api.store_flush)(null()),
            NULL_ARGUMENT,
            "flush: NULL store",
        );
        check((api.store_close)(null_mut()), OK, "close: NULL accepted");
        check((api.key_free)(null_mut()), OK, "key free: NULL accepted");
        check(
            (api.verified_free)(null_mut()),
            OK,
            "verified free: NULL accepted",
        );
        check((api.list_free)(null_mut()), OK, "list free: NULL accepted");
        check(
            (api.is_well_formed)(null(), 0),
            (api.is_well_formed)(empty, 0),
            "is_well_formed: (NULL, 0) key",
        );
        check(
            (api.is_well_formed)(null(), 44),
            NULL_ARGUMENT,
            "is_well_formed: NULL key, length 44",
        );

        let mut generated = null_mut();
        let gen = |store: *const Store,
                   name: *const c_char,
                   name_len,
                   env: *const c_char,
                   env_len,
                   out: *mut *mut Key| {
            (api.key_generate)(
                store,
                name,
                name_len,
                env,
                env_len,
                null(),
                0,
                null(),
                0,
                0,
                out,
            )
        };
        check(
            gen(null(), ptr(text), 1, null(), 0, &mut generated),
            NULL_ARGUMENT,
            "generate: NULL store",
        );
        check(
            gen(store, null(), 0, null(), 0, &mut generated),
            gen(store, empty, 0, null(), 0, &mut generated),
            "generate: (NULL, 0) name",
        );
        check(
            gen(store, null(), 5, null(), 0, &mut generated),
            NULL_ARGUMENT,
            "generate: NULL name, length 5",
        );
        check(
            gen(store, ptr(text), 1, null(), 3, &mut generated),
            NULL_ARGUMENT,
            "generate: NULL env, length 3",
        );
        check(
            gen(store, ptr(text), 1, null(), 0, null_mut()),
            NULL_ARGUMENT,
            "generate: NULL out",
        );
        check(
            (api.key_generate)(
                store,
                ptr(text),
                1,
                null(),
                0,
                null(),
                7,
                null(),
                0,
                0,
                &mut generated,
            ),
            NULL_ARGUMENT,
            "generate: NULL scopes, length 7",
        );
        check(
            (api.key_generate)(
                store,
                ptr(text),
                1,
                null(),
                0,
                null(),
                0,
                null(),
                2,
                0,
                &mut generated,
            ),
            NULL_ARGUMENT,
            "generate: NULL owner, length 2",
        );
        assert!(
            generated.is_null(),
            "generate wrote its out parameter on failure"
        );

        let (mut s, mut n) = (null(), 0usize);
        check(
            (api.key_secret)(null(), &mut s, &mut n),
            NULL_ARGUMENT,
            "secret: NULL key",
        );
        let mut info = null();
        check(
            (api.key_info)(null(), &mut info),
            NULL_ARGUMENT,
            "key info: NULL key",
        );
        check(
            (api.verified_info)(null(), &mut info),
            NULL_ARGUMENT,
            "verified info: NULL handle",
        );

        let mut verified = null_mut();
        check(
            (api.key_verify)(null(), ptr(key), key.len(), null(), 0, &mut verified),
            NULL_ARGUMENT,
            "verify: NULL store",
        );
        check(
            (api.key_verify)(store, null(), 0, null(), 0, &mut verified),
            (api.key_verify)(store, empty, 0, null(), 0, &mut verified),
            "verify: (NULL, 0) key",
        );
        check(
            (api.key_verify)(store, null(), 44, null(), 0, &mut verified),
            NULL_ARGUMENT,
            "verify: NULL key, length 44",
        );
        check(
            (api.key_verify)(store, ptr(key), key.len(), null(), 5, &mut verified),
            NULL_ARGUMENT,
            "verify: NULL scope, length 5",
        );
        check(
            (api.key_verify)(store, ptr(key), key.len(), null(), 0, null_mut()),
            OK,
            "verify: out is optional",
        );
        let c_key = std::ffi::CString::new(key).expect("a key holds no NUL");
        let mut id_buffer = [0 as c_char; 17];
        check(
            (api.key_check)(null(), c_key.as_ptr(), null(), id_buffer.as_mut_ptr()),
            NULL_ARGUMENT,
            "check: NULL store",
        );
        check(
            (api.key_check)(store, null(), null(), id_buffer.as_mut_ptr()),
            NULL_ARGUMENT,
            "check: NULL key",
        );
        check(
            (api.key_check)(store, c_key.as_ptr(), null(), null_mut()),
            OK,
            "check: NULL scope and id are optional",
        );
        check(
            (api.key_check)(store, c_key.as_ptr(), null(), id_buffer.as_mut_ptr()),
            OK,
            "check: the id comes back",
        );
        assert_eq!(CStr::from_ptr(id_buffer.as_ptr()).to_bytes(), idb);
        let c_header = std::ffi::CString::new(format!("Bearer {valid}")).expect("no NUL");
        check(
            (api.header_check)(null(), c_header.as_ptr(), null(), id_buffer.as_mut_ptr()),
            NULL_ARGUMENT,
            "header_check: NULL store",
        );
        check(
            (api.header_check)(store, null(), null(), id_buffer.as_mut_ptr()),
            BAD_HEADER,
            "header_check: NULL header is a missing one",
        );
        check(
            (api.header_check)(store, c_header.as_ptr(), null(), null_mut()),
            OK,
            "header_check: NULL scope and id are optional",
        );
        check(
            (api.key_validate)(null(), c_key.as_ptr()),
            NULL_ARGUMENT,
            "validate: NULL store",
        );
        check(
            (api.key_validate)(store, null()),
            NULL_ARGUMENT,
            "validate: NULL key",
        );
        check(
            (api.key_validate)(store, c_key.as_ptr()),
            OK,
            "validate: the key is good",
        );
        check(
            (api.header_verify)(null(), ptr(key), key.len(), null(), 0, &mut verified),
            NULL_ARGUMENT,
            "header: NULL store",
        );
        check(
            (api.header_verify)(store, null(), 0, null(), 0, &mut verified),
            (api.header_verify)(store, empty, 0, null(), 0, &mut verified),
            "header: (NULL, 0) header",
        );
        check(
            (api.header_verify)(store, null(), 12, null(), 0, &mut verified),
            NULL_ARGUMENT,
            "header: NULL header, length 12",
        );
        assert!(
            verified.is_null(),
            "verify wrote its out parameter on failure"
        );

        let (mut http, mut body) = (0u16, null());
        check(
            (api.status_http)(102, null_mut(), &mut body),
            NULL_ARGUMENT,
            "http: NULL status out",
        );
        check(
            (api.status_http)(102, &mut http, null_mut()),
            NULL_ARGUMENT,
            "http: NULL body out",
        );

        let mut newly = false;
        check(
            (api.key_revoke)(null(), ptr(idb), idb.len(), &mut newly),
            NULL_ARGUMENT,
            "revoke: NULL store",
        );
        check(
            (api.key_revoke)(store, null(), 0, &mut newly),
            (api.key_revoke)(store, empty, 0, &mut newly),
            "revoke: (NULL, 0) id",
        );
        check(
            (api.key_revoke)(store, null(), 16, &mut newly),
            NULL_ARGUMENT,
            "revoke: NULL id, length 16",
        );
        check(
            (api.key_revoke_secret)(null(), ptr(key), key.len(), &mut newly),
            NULL_ARGUMENT,
            "revoke secret: NULL store",
        );
        check(
            (api.key_revoke_secret)(store, null(), 0, &mut newly),
            (api.key_revoke_secret)(store, empty, 0, &mut newly),
            "revoke secret: (NULL, 0) key",
        );
        let mut rotated = null_mut();
        check(
            (api.key_rotate)(null(), ptr(idb), idb.len(), 60, &mut rotated),
            NULL_ARGUMENT,
            "rotate: NULL store",
        );
        check(
            (api.key_rotate)(store, null(), 0, 60, &mut rotated),
            (api.key_rotate)(store, empty, 0, 60, &mut rotated),
            "rotate: (NULL, 0) id",
        );
        check(
            (api.key_rotate)(store, ptr(idb), idb.len(), 60, null_mut()),
            NULL_ARGUMENT,
            "rotate: NULL out",
        );
        assert!(rotated.is_null());

        let mut list = null_mut();
        check(
            (api.key_list)(null(), 0, 0, &mut list),
            NULL_ARGUMENT,
            "list: NULL store",
        );
        check(
            (api.key_list)(store, 0, 0, null_mut()),
            NULL_ARGUMENT,
            "list: NULL out",
        );
        check(
            (api.key_list)(store, 77, 0, &mut list),
            INVALID_ARGUMENT,
            "list: unknown filter",
        );
        let mut len = 0usize;
        check(
            (api.list_len)(null(), &mut len),
            NULL_ARGUMENT,
            "list len: NULL list",
        );
        check(
            (api.list_get)(null(), 0, &mut info),
            NULL_ARGUMENT,
            "list get: NULL list",
        );
        check((api.key_list)(store, 0, 0, &mut list), OK, "list");
        check(
            (api.list_len)(list, null_mut()),
            NULL_ARGUMENT,
            "list len: NULL out",
        );
        check(
            (api.list_get)(list, 0, null_mut()),
            NULL_ARGUMENT,
            "list get: NULL out",
        );
        check(
            (api.list_get)(list, usize::MAX, &mut info),
            INVALID_ARGUMENT,
            "list get: index past the end",
        );
        check((api.list_len)(list, &mut len), OK, "list len");
        assert_eq!(len, 1);
        check((api.list_free)(list), OK, "list free");

        // The key survived all of it.
        check(
            (api.key_verify)(store, ptr(key), key.len(), null(), 0, null_mut()),
            OK,
            "the key still verifies",
        );
        check((api.store_close)(store), OK, "close");
    }
    eprintln!("{calls} calls with NULL or bad arguments, each a documented status");
}

#[test]
fn hostile_strings_where_names_ids_scopes_and_paths_go_are_refused() {
    let api = load();
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, valid, id) = open_with_key(&api, &dir.path().join("keys.redb"), 1);
    let mib = vec![b'n'; 1 << 20];
    let hostile: [(&str, &[u8]); 7] = [
        ("empty", b""),
        ("blank", b"   "),
        ("one MiB", &mib),
        ("NUL inside", b"na\0me"),
        ("invalid UTF-8", &[0xC3, 0x28]),
        ("control character", b"a\x07b"),
        ("newline", b"line\nbreak"),
    ];
    let mut calls = 0;
    // SAFETY: live buffers with their lengths and writable out slots.
    unsafe {
        for (what, bytes) in hostile {
            let mut key = null_mut();
            let as_name = (api.key_generate)(
                store,
                ptr(bytes),
                bytes.len(),
                null(),
                0,
                null(),
                0,
                null(),
                0,
                0,
                &mut key,
            );
            documented(&api, as_name, what);
            assert_eq!(as_name, INVALID_ARGUMENT, "name: {what}");
            let ok = b"fine";
            for (slot, status) in [
                (
                    "env",
                    (api.key_generate)(
                        store,
                        ptr(ok),
                        4,
                        ptr(bytes),
                        bytes.len(),
                        null(),
                        0,
                        null(),
                        0,
                        0,
                        &mut key,
                    ),
                ),
                (
                    "scopes",
                    (api.key_generate)(
                        store,
                        ptr(ok),
                        4,
                        null(),
                        0,
                        ptr(bytes),
                        bytes.len(),
                        null(),
                        0,
                        0,
                        &mut key,
                    ),
                ),
            ] {
                documented(&api, status, what);
                // An empty optional string means "none": that one succeeds.
                if bytes.is_empty() {
                    assert_eq!(status, OK, "{slot}: {what}");
                    assert_eq!((api.key_free)(key), OK);
                    key = null_mut();
                } else if !(slot == "scopes" && matches!(what, "blank" | "newline")) {
                    // (Scopes are whitespace-separated: blanks are no scope,
                    // a newline separates two valid ones.)
                    assert_eq!(status, INVALID_ARGUMENT, "{slot}: {what}");
                }
                calls += 1;
            }
            let mut newly = false;
            let revoked = (api.key_revoke)(store, ptr(bytes), bytes.len(), &mut newly);
            documented(&api, revoked, what);
            assert!(
                matches!(revoked, UNKNOWN_KEY | INVALID_ARGUMENT),
                "revoke id {what}: {revoked}"
            );
            let mut rotated = null_mut();
            let rotate = (api.key_rotate)(store, ptr(bytes), bytes.len(), 60, &mut rotated);
            documented(&api, rotate, what);
            assert!(
                matches!(rotate, UNKNOWN_KEY | INVALID_ARGUMENT),
                "rotate id {what}: {rotate}"
            );
            let scoped = (api.key_verify)(
                store,
                ptr(valid.as_bytes()),
                valid.len(),
                ptr(bytes),
                bytes.len(),
                null_mut(),
            );
            documented(&api, scoped, what);
            // The same scope as a C string (C sees it end at a NUL).
            let mut c_scope: Vec<u8> = bytes.iter().copied().take_while(|&b| b != 0).collect();
            c_scope.push(0);
            let c_valid = std::ffi::CString::new(valid.as_bytes()).expect("a key holds no NUL");
            let checked =
                (api.key_check)(store, c_valid.as_ptr(), c_scope.as_ptr().cast(), null_mut());
            documented(&api, checked, what);
            let c_header = std::ffi::CString::new(format!("Bearer {valid}")).expect("no NUL");
            let header_checked = (api.header_check)(
                store,
                c_header.as_ptr(),
                c_scope.as_ptr().cast(),
                null_mut(),
            );
            assert_eq!(header_checked, checked, "header_check scope {what}");
            // As a file name inside the temporary directory (never the
            // working directory): the bytes follow "<tmp>/".
            let mut path = dir.path().as_os_str().as_encoded_bytes().to_vec();
            path.push(b'/');
            path.extend_from_slice(bytes);
            let mut opened = null_mut();
            let open = (api.store_open)(ptr(&path), path.len(), null(), 0, 0, &mut opened);
            documented(&api, open, what);
            if open == OK {
                // Only a name that is a plausible file name opens: close it again.
                assert!(!opened.is_null());
                assert_eq!((api.store_close)(opened), OK);
            } else {
                assert!(opened.is_null(), "open wrote its out parameter on failure");
            }
            calls += 6;
        }
        // The key is untouched by all of it.
        let mut newly = true;
        assert_eq!(
            (api.key_revoke)(store, ptr(id.as_bytes()), id.len(), &mut newly),
            OK
        );
        assert!(newly, "a hostile id revoked the key");
        assert_eq!((api.store_close)(store), OK);
        // Unknown status numbers describe themselves without crashing.
        for status in [4, 99, 106, 199, 208, 899, 901, u32::MAX] {
            assert!(!CStr::from_ptr((api.status_str)(status))
                .to_bytes()
                .is_empty());
            let (mut http, mut body) = (0u16, null());
            let answer = (api.status_http)(status, &mut http, &mut body);
            documented(&api, answer, "status_http of an unknown status");
        }
    }
    eprintln!("{calls} calls with hostile names, env tags, scopes, ids and paths");
}

/// The persistent handles' functions (ffi/src/persistent.rs).
struct PersistentApi {
    open: unsafe extern "C" fn(
        *const c_char,
        usize,
        *const c_char,
        usize,
        u32,
        *mut *mut Store,
    ) -> u32,
    opens: unsafe extern "C" fn(*mut u64) -> u32,
    header_check: unsafe extern "C" fn(
        *const c_char,
        usize,
        *const c_char,
        usize,
        u32,
        *const c_char,
        usize,
        *const c_char,
        usize,
        *mut c_char,
    ) -> u32,
}

#[test]
fn persistent_open_refuses_null_and_hostile_arguments_and_writes_out_only_on_success() {
    let api = load();
    let library = open_library();
    // SAFETY: signatures copied from include/apikeys.h.
    let persistent = unsafe {
        PersistentApi {
            open: symbol(library, "apikeys_store_open_persistent"),
            opens: symbol(library, "apikeys_store_persistent_opens"),
            header_check: symbol(library, "apikeys_persistent_header_check"),
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("persistent.redb");
    let path = path.to_str().expect("utf-8").as_bytes();
    let directory = dir.path().to_str().expect("utf-8").as_bytes();
    let huge = vec![b'a'; 1 << 20];
    let sentinel = std::ptr::dangling_mut::<Store>();
    let pepper = b"pepper";
    // SAFETY: every non-NULL pointer is a live buffer of the given length or
    // a writable out slot; NULLs are what is under test.
    unsafe {
        let cases: [(&str, *const c_char, usize, *const c_char, usize, u32, u32); 9] = [
            (
                "NULL path, length 9",
                null(),
                9,
                null(),
                0,
                1,
                NULL_ARGUMENT,
            ),
            (
                "(NULL, 0) path: the empty path",
                null(),
                0,
                null(),
                0,
                1,
                INVALID_ARGUMENT,
            ),
            (
                "NULL pepper, length 4",
                ptr(path),
                path.len(),
                null(),
                4,
                1,
                NULL_ARGUMENT,
            ),
            (
                "unknown flags",
                ptr(path),
                path.len(),
                null(),
                0,
                0xFF00,
                INVALID_ARGUMENT,
            ),
            (
                "a NUL in the path",
                ptr(b"a\0b"),
                3,
                null(),
                0,
                1,
                INVALID_ARGUMENT,
            ),
            (
                "a path that is not UTF-8",
                ptr(b"\xff\xfe"),
                2,
                null(),
                0,
                1,
                INVALID_ARGUMENT,
            ),
            (
                "a directory",
                ptr(directory),
                directory.len(),
                null(),
                0,
                1,
                INVALID_ARGUMENT,
            ),
            (
                "a 1 MiB path",
                ptr(&huge),
                huge.len(),
                null(),
                0,
                1,
                (api.store_open)(ptr(&huge), huge.len(), null(), 0, 1, &mut null_mut()),
            ),
            (
                "a pepper of 1 MiB",
                ptr(path),
                path.len(),
                ptr(&huge),
                huge.len(),
                1,
                OK,
            ),
        ];
        for (what, path_ptr, path_len, pepper_ptr, pepper_len, flags, expected) in cases {
            let mut out = sentinel;
            let status =
                (persistent.open)(path_ptr, path_len, pepper_ptr, pepper_len, flags, &mut out);
            documented(&api, status, what);
            assert_eq!(status, expected, "{what}");
            if status == OK {
                assert!(!out.is_null() && out != sentinel, "{what}: no handle");
            } else {
                assert_eq!(out, sentinel, "{what}: out written on failure");
            }
        }
        // The store made above with the 1 MiB pepper refuses any other.
        let mut out = sentinel;
        let status = (persistent.open)(
            ptr(path),
            path.len(),
            ptr(pepper),
            pepper.len(),
            1,
            &mut out,
        );
        assert_eq!(status, 202, "another pepper: WRONG_PEPPER");
        assert_eq!(out, sentinel);
        assert_eq!(
            (persistent.open)(ptr(path), path.len(), null(), 0, 1, null_mut()),
            NULL_ARGUMENT,
            "NULL out"
        );
        assert_eq!(
            (persistent.opens)(null_mut()),
            NULL_ARGUMENT,
            "opens: NULL out"
        );

        // The same arguments give the same handle, which close leaves open.
        let (mut first, mut again) = (null_mut(), null_mut());
        assert_eq!(
            (persistent.open)(ptr(path), path.len(), ptr(&huge), huge.len(), 1, &mut first),
            OK
        );
        assert_eq!(
            (persistent.open)(ptr(path), path.len(), ptr(&huge), huge.len(), 1, &mut again),
            OK
        );
        assert_eq!(first, again);
        assert_eq!((api.store_close)(first), OK);
        let key = c"flz_sk_not_a_key";
        assert_eq!((api.key_validate)(first, key.as_ptr()), MALFORMED);
        let mut opens = 0u64;
        assert_eq!((persistent.opens)(&mut opens), OK);
        assert!(opens >= 1);

        // The one-call request path with hostile headers and scopes: only
        // documented statuses, the id buffer untouched on every refusal.
        let mut id = [b'x' as c_char; 17];
        let headers: [&[u8]; 8] = [
            b"",
            b"Bearer ",
            b"Bearer flz_sk_",
            b"Bearer \0flz_sk_00000000000000000000000000000000",
            b"\xff\xfe",
            b"Bearer flz_sk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &huge,
            &[b' '; 4096],
        ];
        let scopes: [&[u8]; 4] = [b"", b"contacts:read", b"\xff", &huge];
        for header in headers {
            for scope in scopes {
                let status = (persistent.header_check)(
                    ptr(path),
                    path.len(),
                    ptr(&huge),
                    huge.len(),
                    1,
                    ptr(header),
                    header.len(),
                    ptr(scope),
                    scope.len(),
                    id.as_mut_ptr(),
                );
                documented(&api, status, "persistent_header_check");
                assert_ne!(status, OK, "a hostile header was accepted");
                assert!(
                    id.iter().all(|&b| b == b'x' as c_char),
                    "id written on a refusal"
                );
            }
        }
        // The store's failure comes before any look at the header.
        let status = (persistent.header_check)(
            ptr(path),
            path.len(),
            ptr(pepper),
            pepper.len(),
            1,
            null(),
            0,
            null(),
            0,
            null_mut(),
        );
        assert_eq!(status, 202, "another pepper: WRONG_PEPPER, not BAD_HEADER");
    }
}
