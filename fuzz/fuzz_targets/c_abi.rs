//! The C ABI fed arbitrary bytes, lengths and NULLs.
//!
//! Each input is a sequence of calls on one store (opened exclusive or
//! shared). Buffers are always valid `(pointer, length)` pairs, or NULL
//! with any length: the C contract makes reading past a real buffer the
//! caller's bug, not the library's. Checked after every call: the status is
//! one the header documents and never `APIKEYS_PANIC`; out parameters are
//! written only on success; static strings are never NULL; a key that was
//! generated verifies until a revoke of it returned OK, and is `REVOKED`
//! afterwards, through `apikeys_key_verify` and through `apikeys_key_check`
//! (which also hands back its id); `apikeys_key_validate` answers as
//! `apikeys_key_check` does without a scope; every header and scope given
//! to `apikeys_header_verify` is refused the same way by
//! `apikeys_persistent_header_check` (on a persistent store of its own).
//!
//! Stores are opened `APIKEYS_OPEN_IN_MEMORY` (no durable commit per call:
//! fuzz/README.md measures what that and the rest gain, about 30x in all
//! over the durable target); the first input a process runs
//! (so also every replayed artifact) and one in every [`DURABLE_EVERY`]
//! after it run again on a real redb file, with every commit synced.
#![no_main]

use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "common/scratch.rs"]
mod scratch;

// Links the instrumented C ABI into this binary.
extern crate apikeys_ffi_rlib;

extern "C" {
    fn apikeys_status_str(status: u32) -> *const c_char;
    fn apikeys_last_error() -> *const c_char;
    fn apikeys_is_well_formed(key: *const c_char, key_len: usize) -> u32;
    fn apikeys_store_open(
        path: *const c_char,
        path_len: usize,
        pepper: *const u8,
        pepper_len: usize,
        flags: u32,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_store_flush(store: *const c_void) -> u32;
    fn apikeys_store_close(store: *mut c_void) -> u32;
    fn apikeys_key_generate(
        store: *const c_void,
        name: *const c_char,
        name_len: usize,
        env: *const c_char,
        env_len: usize,
        scopes: *const c_char,
        scopes_len: usize,
        owner: *const c_char,
        owner_len: usize,
        expires_at: i64,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_key_secret(key: *const c_void, out: *mut *const c_char, out_len: *mut usize) -> u32;
    fn apikeys_key_info(key: *const c_void, out: *mut *const c_void) -> u32;
    fn apikeys_key_free(key: *mut c_void) -> u32;
    fn apikeys_key_verify(
        store: *const c_void,
        key: *const c_char,
        key_len: usize,
        scope: *const c_char,
        scope_len: usize,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_key_check(
        store: *const c_void,
        key: *const c_char,
        scope: *const c_char,
        id_out: *mut c_char,
    ) -> u32;
    fn apikeys_key_validate(store: *const c_void, key: *const c_char) -> u32;
    fn apikeys_header_verify(
        store: *const c_void,
        header: *const c_char,
        header_len: usize,
        scope: *const c_char,
        scope_len: usize,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_header_check(
        store: *const c_void,
        header: *const c_char,
        scope: *const c_char,
        id_out: *mut c_char,
    ) -> u32;
    fn apikeys_persistent_header_check(
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
    ) -> u32;
    fn apikeys_verified_info(verified: *const c_void, out: *mut *const c_void) -> u32;
    fn apikeys_verified_free(verified: *mut c_void) -> u32;
    fn apikeys_status_http(status: u32, http_status: *mut u16, body: *mut *const c_char) -> u32;
    fn apikeys_key_revoke(
        store: *const c_void,
        id: *const c_char,
        id_len: usize,
        newly: *mut bool,
    ) -> u32;
    fn apikeys_key_revoke_secret(
        store: *const c_void,
        key: *const c_char,
        key_len: usize,
        newly: *mut bool,
    ) -> u32;
    fn apikeys_key_rotate(
        store: *const c_void,
        id: *const c_char,
        id_len: usize,
        grace_seconds: u64,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_key_list(
        store: *const c_void,
        filter: u32,
        unused_since: i64,
        out: *mut *mut c_void,
    ) -> u32;
    fn apikeys_list_len(list: *const c_void, out: *mut usize) -> u32;
    fn apikeys_list_get(list: *const c_void, index: usize, out: *mut *const c_void) -> u32;
    fn apikeys_list_free(list: *mut c_void) -> u32;
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 101;
const REVOKED: u32 = 102;
const IN_MEMORY: u32 = 2;
/// One input in this many (and the first) also runs on a durable file.
const DURABLE_EVERY: u64 = 1000;
/// Calls of an input that run.
const MAX_CALLS: usize = 64;
const EXPIRED: u32 = 103;
const INSUFFICIENT_SCOPE: u32 = 104;
const BAD_HEADER: u32 = 105;
const PANIC: u32 = 900;
const DOCUMENTED: [u32; 19] = [
    0, 1, 2, 3, 100, 101, 102, 103, 104, 105, 200, 201, 202, 203, 204, 205, 206, 207, 900,
];

/// A string argument: NULL with a length, or real bytes.
#[derive(Arbitrary, Debug)]
enum Text {
    Null(u8),
    Bytes(#[arbitrary(with = bytes)] Vec<u8>),
}

/// A key argument: arbitrary text, or a generated key as is, or with one
/// byte changed, or wrapped in a header.
#[derive(Arbitrary, Debug)]
enum KeyText {
    Raw(Text),
    Known(u8),
    Mutated(u8, u8, u8),
    Header(u8, #[arbitrary(with = bytes)] Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Call {
    IsWellFormed(KeyText),
    Generate {
        null_store: bool,
        name: Text,
        env: Text,
        scopes: Text,
        owner: Text,
        expires_at: i64,
        null_out: bool,
    },
    Verify {
        null_store: bool,
        key: KeyText,
        scope: Text,
        null_out: bool,
    },
    HeaderVerify {
        header: KeyText,
        scope: Text,
        null_out: bool,
    },
    RevokeById {
        known: Option<u8>,
        id: Text,
        null_newly: bool,
    },
    RevokeBySecret {
        key: KeyText,
        null_newly: bool,
    },
    Rotate {
        known: Option<u8>,
        id: Text,
        grace: u64,
        null_out: bool,
    },
    List {
        filter: u32,
        unused_since: i64,
        index: usize,
        null_out: bool,
    },
    Flush(bool),
    StatusStr(u32),
    StatusHttp(u32, bool, bool),
    KeyAccessors {
        null_key: bool,
        null_text: bool,
        null_len: bool,
    },
    // The NUL-terminated verify: the key's bytes up to their first NUL, a
    // scope the same way (None: NULL), the id buffer or NULL.
    Check {
        null_store: bool,
        key: KeyText,
        #[arbitrary(with = optional_bytes)]
        scope: Option<Vec<u8>>,
        with_id: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    shared: bool,
    #[arbitrary(with = optional_bytes)]
    pepper: Option<Vec<u8>>,
    #[arbitrary(with = first_calls)]
    calls: Vec<Call>,
}

// The input's layout is `arbitrary`'s own (so the seeds and any saved
// corpus keep their meaning): what follows decodes exactly as `Vec<u8>`,
// `Option<Vec<u8>>` and the trailing `Vec<Call>` do, only faster.

/// A `Vec<u8>` as `arbitrary` lays one out: each byte preceded by a byte
/// whose low bit says that one follows (missing bytes read as 0), decoded
/// in one pass with one allocation instead of two `u8` decodings per byte.
fn bytes(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let data = u.peek_bytes(u.len()).unwrap_or_default();
    let mut used = 0;
    while data.get(used).is_some_and(|more| more & 1 == 1) {
        used += 2;
    }
    let mut bytes = Vec::with_capacity(used / 2);
    bytes.extend(
        (1..used)
            .step_by(2)
            .map(|at| data.get(at).copied().unwrap_or(0)),
    );
    // The even byte that ended the list, if the data did not end first.
    let consumed = if used < data.len() {
        used + 1
    } else {
        data.len()
    };
    u.bytes(consumed)?;
    Ok(bytes)
}

/// An `Option<Vec<u8>>` as `arbitrary` lays one out: a byte whose low bit
/// says whether the bytes follow.
fn optional_bytes(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<Vec<u8>>> {
    Ok(if bool::arbitrary(u)? {
        Some(bytes(u)?)
    } else {
        None
    })
}

/// The first [`MAX_CALLS`] calls of the trailing `Vec<Call>`, the only ones
/// that run: `arbitrary` decoded every call the input's bytes held (a
/// 4 KiB input holds hundreds) into a vector of which the rest was never
/// read. No part of a `Call` can fail to decode, so stopping early skips
/// nothing that would have rejected the input.
fn first_calls(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Call>> {
    let mut calls = Vec::new();
    while calls.len() < MAX_CALLS && u.arbitrary::<bool>().unwrap_or(false) {
        calls.push(Call::arbitrary(u)?);
    }
    Ok(calls)
}

/// A generated key: its secret, id, whether a revoke of it returned OK,
/// and whether it has an expiry (then it may expire during the run).
struct Known {
    secret: Vec<u8>,
    id: Vec<u8>,
    revoked: bool,
    may_expire: bool,
}

/// Holds the bytes behind a pointer for the duration of a call.
struct Arg {
    bytes: Vec<u8>,
    null_len: Option<usize>,
}

impl Arg {
    fn ptr(&self) -> *const c_char {
        match self.null_len {
            Some(_) => null(),
            None => self.bytes.as_ptr().cast(),
        }
    }
    fn len(&self) -> usize {
        self.null_len.unwrap_or(self.bytes.len())
    }
}

fn text(t: &Text) -> Arg {
    match t {
        Text::Null(len) => Arg {
            bytes: Vec::new(),
            null_len: Some(usize::from(*len)),
        },
        Text::Bytes(bytes) => Arg {
            bytes: bytes.clone(),
            null_len: None,
        },
    }
}

/// What a key argument is, and which known key it is exactly, if any.
fn key_text(k: &KeyText, known: &[Known]) -> (Arg, Option<usize>) {
    let pick = |at: u8| (!known.is_empty()).then(|| usize::from(at) % known.len());
    match k {
        KeyText::Raw(t) => (text(t), None),
        KeyText::Known(at) => match pick(*at) {
            Some(i) => (
                Arg {
                    bytes: known[i].secret.clone(),
                    null_len: None,
                },
                Some(i),
            ),
            None => (
                Arg {
                    bytes: Vec::new(),
                    null_len: None,
                },
                None,
            ),
        },
        KeyText::Mutated(at, position, byte) => match pick(*at) {
            Some(i) => {
                let mut bytes = known[i].secret.clone();
                let p = usize::from(*position) % bytes.len();
                let same = bytes[p] == *byte;
                bytes[p] = *byte;
                (
                    Arg {
                        bytes,
                        null_len: None,
                    },
                    same.then_some(i),
                )
            }
            None => (
                Arg {
                    bytes: vec![*byte],
                    null_len: None,
                },
                None,
            ),
        },
        KeyText::Header(at, prefix) => {
            let mut bytes = prefix.clone();
            if let Some(i) = pick(*at) {
                bytes.extend_from_slice(&known[i].secret);
            }
            (
                Arg {
                    bytes,
                    null_len: None,
                },
                None,
            )
        }
    }
}

/// `apikeys_header_check` on `store` answers as `apikeys_header_verify`
/// does for the bytes C sees: the header and the scope up to their first
/// NUL (a NULL one stays NULL), the header refused unread from
/// APIKEYS_HEADER_SCAN_MAX bytes. Tried on the header as fuzzed and with
/// `Bearer ` in front of it (a known key then verifies). The id buffer is
/// written on success only, with the id `apikeys_key_check` hands back.
fn header_check(store: *const c_void, header: &Arg, scope: &Arg) {
    const SCAN_MAX: usize = 8192;
    let cut = |arg: &Arg| -> Option<Vec<u8>> {
        (!arg.ptr().is_null()).then(|| {
            let bytes = &arg.bytes[..arg.len().min(arg.bytes.len())];
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            bytes[..end].to_vec()
        })
    };
    let c_scope = cut(scope).map(|mut bytes| {
        bytes.push(0);
        bytes
    });
    let scope_ptr = c_scope
        .as_ref()
        .map_or(null(), |bytes| bytes.as_ptr().cast::<c_char>());
    let scope_len = c_scope.as_ref().map_or(0, |bytes| bytes.len() - 1);
    let plain = cut(header);
    let bearer = plain
        .as_ref()
        .map(|bytes| [b"Bearer ".as_slice(), bytes].concat());
    for value in [plain, bearer] {
        let c_header = value.map(|mut bytes| {
            bytes.push(0);
            bytes
        });
        let header_ptr = c_header
            .as_ref()
            .map_or(null(), |bytes| bytes.as_ptr().cast::<c_char>());
        let header_len = c_header.as_ref().map_or(0, |bytes| bytes.len() - 1);
        let mut id = [0x55 as c_char; 17];
        // SAFETY: the header and scope are NULL or NUL-terminated buffers;
        // the id buffer holds APIKEYS_ID_SIZE bytes.
        let status = check(
            unsafe { apikeys_header_check(store, header_ptr, scope_ptr, id.as_mut_ptr()) },
            "header check",
        );
        // SAFETY: every pointer is NULL or a live buffer of its length.
        let whole = check(
            unsafe {
                apikeys_header_verify(
                    store,
                    header_ptr,
                    header_len,
                    scope_ptr,
                    scope_len,
                    null_mut(),
                )
            },
            "header verify of the C strings",
        );
        let expected = if header_len >= SCAN_MAX {
            BAD_HEADER
        } else {
            whole
        };
        assert_eq!(status, expected, "header check vs header verify");
        if status == OK {
            assert_eq!(id[16], 0, "id not NUL-terminated");
        } else {
            assert!(
                id.iter().all(|&b| b == 0x55 as c_char),
                "id written by a refusal"
            );
        }
    }
}

/// The same header and scope through `apikeys_persistent_header_check`, on
/// this process's persistent store (in memory, opened by the first call,
/// kept for the process's life as persistent handles are, and never given
/// a key): it reads the header and the scope as `apikeys_header_verify`
/// did, so it refuses them the same way, and any key it finds well formed
/// is `NOT_FOUND` there. Its id buffer is written only on success (never
/// here).
fn persistent_header_check(header: &Arg, scope: &Arg, verified: u32) {
    const PATH: &[u8] = b"c_abi fuzz: persistent";
    const PEPPER: &[u8] = b"pepper";
    let mut id = [0x55 as c_char; 17];
    // SAFETY: every pointer is NULL or a live buffer of its length; the id
    // buffer holds APIKEYS_ID_SIZE bytes.
    let status = check(
        unsafe {
            apikeys_persistent_header_check(
                PATH.as_ptr().cast(),
                PATH.len(),
                PEPPER.as_ptr().cast(),
                PEPPER.len(),
                IN_MEMORY,
                header.ptr(),
                header.len(),
                scope.ptr(),
                scope.len(),
                id.as_mut_ptr(),
            )
        },
        "persistent header check",
    );
    assert!(
        id.iter().all(|&b| b == 0x55 as c_char),
        "id written by a refusal"
    );
    // The fuzzed store's own failures (200 and up) say nothing of the header.
    if verified < 200 {
        let expected = match verified {
            OK | NOT_FOUND | REVOKED | EXPIRED | INSUFFICIENT_SCOPE => NOT_FOUND,
            refused => refused,
        };
        assert_eq!(
            status, expected,
            "persistent header check vs header verify ({verified})"
        );
    }
}

fn check(status: u32, what: &str) -> u32 {
    assert!(
        DOCUMENTED.contains(&status),
        "{what}: undocumented status {status}"
    );
    assert_ne!(status, PANIC, "{what}: the library panicked");
    // SAFETY: static / thread-local NUL-terminated strings.
    unsafe {
        assert!(!apikeys_status_str(status).is_null());
        let last = apikeys_last_error();
        assert!(!last.is_null());
        let _ = CStr::from_ptr(last).to_bytes().len();
    }
    status
}

/// Reads a generated key's secret and id; frees the handle.
unsafe fn take_key(key: *mut c_void, may_expire: bool) -> Known {
    // SAFETY: a live key handle from the library.
    unsafe {
        let (mut text, mut len) = (null(), 0usize);
        assert_eq!(apikeys_key_secret(key, &mut text, &mut len), OK);
        let secret = std::slice::from_raw_parts(text.cast::<u8>(), len).to_vec();
        let mut info = null();
        assert_eq!(apikeys_key_info(key, &mut info), OK);
        // apikeys_key_info starts with `const char *id`.
        let id = CStr::from_ptr(*info.cast::<*const c_char>())
            .to_bytes()
            .to_vec();
        assert_eq!(apikeys_key_free(key), OK);
        Known {
            secret,
            id,
            revoked: false,
            may_expire,
        }
    }
}

fn run(input: &Input, durable: bool) {
    // Removes the store's files when the input ends.
    let scratch = scratch::StorePath::new("abi");
    let path = scratch.path().to_str().expect("utf-8").as_bytes().to_vec();
    let pepper = input.pepper.clone().unwrap_or_default();
    let flags = u32::from(input.shared) | if durable { 0 } else { IN_MEMORY };
    let mut store = null_mut();
    // SAFETY: valid buffers; out slot writable.
    let opened = check(
        unsafe {
            apikeys_store_open(
                path.as_ptr().cast(),
                path.len(),
                pepper.as_ptr(),
                pepper.len(),
                flags,
                &mut store,
            )
        },
        "open",
    );
    if opened != OK {
        assert!(store.is_null(), "open wrote its out parameter on failure");
        return;
    }
    let mut known: Vec<Known> = Vec::new();
    for call in &input.calls {
        // SAFETY: every pointer passed is NULL or a live buffer of the
        // stated length / a writable out slot; handles are live.
        unsafe {
            match call {
                Call::IsWellFormed(k) => {
                    let (arg, exact) = key_text(k, &known);
                    let status = check(
                        apikeys_is_well_formed(arg.ptr(), arg.len()),
                        "is_well_formed",
                    );
                    if exact.is_some() {
                        assert_eq!(status, OK);
                    }
                }
                Call::Generate {
                    null_store,
                    name,
                    env,
                    scopes,
                    owner,
                    expires_at,
                    null_out,
                } => {
                    let (name, env, scopes, owner) =
                        (text(name), text(env), text(scopes), text(owner));
                    let mut out = null_mut();
                    let status = check(
                        apikeys_key_generate(
                            if *null_store { null() } else { store },
                            name.ptr(),
                            name.len(),
                            env.ptr(),
                            env.len(),
                            scopes.ptr(),
                            scopes.len(),
                            owner.ptr(),
                            owner.len(),
                            *expires_at,
                            if *null_out { null_mut() } else { &mut out },
                        ),
                        "generate",
                    );
                    if status == OK && known.len() < 32 {
                        known.push(take_key(out, *expires_at != 0));
                    } else if status == OK {
                        assert_eq!(apikeys_key_free(out), OK);
                    } else {
                        assert!(out.is_null(), "generate wrote its out parameter on failure");
                    }
                }
                Call::Verify {
                    null_store,
                    key,
                    scope,
                    null_out,
                } => {
                    let (arg, exact) = key_text(key, &known);
                    let scope = text(scope);
                    let mut out = null_mut();
                    let status = check(
                        apikeys_key_verify(
                            if *null_store { null() } else { store },
                            arg.ptr(),
                            arg.len(),
                            scope.ptr(),
                            scope.len(),
                            if *null_out { null_mut() } else { &mut out },
                        ),
                        "verify",
                    );
                    if let (Some(i), false, true) = (
                        exact,
                        *null_store,
                        scope.len() == 0 && scope.null_len.is_none(),
                    ) {
                        let expected = if known[i].revoked { REVOKED } else { OK };
                        let expired = known[i].may_expire && !known[i].revoked && status == EXPIRED;
                        assert!(
                            status == expected || expired,
                            "a known key got {status}, not {expected}"
                        );
                    }
                    if status == OK && !*null_out {
                        let mut info = null();
                        assert_eq!(apikeys_verified_info(out, &mut info), OK);
                        assert_eq!(apikeys_verified_free(out), OK);
                    } else {
                        assert!(out.is_null(), "verify wrote its out parameter on failure");
                    }
                }
                Call::HeaderVerify {
                    header,
                    scope,
                    null_out,
                } => {
                    let (arg, _) = key_text(header, &known);
                    let scope = text(scope);
                    let mut out = null_mut();
                    let status = check(
                        apikeys_header_verify(
                            store,
                            arg.ptr(),
                            arg.len(),
                            scope.ptr(),
                            scope.len(),
                            if *null_out { null_mut() } else { &mut out },
                        ),
                        "header verify",
                    );
                    if status == OK && !*null_out {
                        assert_eq!(apikeys_verified_free(out), OK);
                    } else {
                        assert!(out.is_null());
                    }
                    persistent_header_check(&arg, &scope, status);
                    header_check(store, &arg, &scope);
                }
                Call::RevokeById {
                    known: pick,
                    id,
                    null_newly,
                } => {
                    let target = pick
                        .filter(|_| !known.is_empty())
                        .map(|at| usize::from(at) % known.len());
                    let arg = match target {
                        Some(i) => Arg {
                            bytes: known[i].id.clone(),
                            null_len: None,
                        },
                        None => text(id),
                    };
                    let mut newly = false;
                    let status = check(
                        apikeys_key_revoke(
                            store,
                            arg.ptr(),
                            arg.len(),
                            if *null_newly { null_mut() } else { &mut newly },
                        ),
                        "revoke",
                    );
                    if let Some(i) = target {
                        assert_eq!(status, OK, "revoking a known id");
                        if !*null_newly {
                            assert_eq!(newly, !known[i].revoked, "newly_revoked is wrong");
                        }
                        known[i].revoked = true;
                    }
                }
                Call::RevokeBySecret { key, null_newly } => {
                    let (arg, exact) = key_text(key, &known);
                    let mut newly = false;
                    let status = check(
                        apikeys_key_revoke_secret(
                            store,
                            arg.ptr(),
                            arg.len(),
                            if *null_newly { null_mut() } else { &mut newly },
                        ),
                        "revoke by secret",
                    );
                    if let Some(i) = exact {
                        assert_eq!(status, OK, "revoking a known key");
                        known[i].revoked = true;
                    } else if status == OK {
                        // A revocation by some text that is exactly a known key.
                        for k in known.iter_mut().filter(|k| k.secret == arg.bytes) {
                            k.revoked = true;
                        }
                    }
                }
                Call::Rotate {
                    known: pick,
                    id,
                    grace,
                    null_out,
                } => {
                    let target = pick
                        .filter(|_| !known.is_empty())
                        .map(|at| usize::from(at) % known.len());
                    let arg = match target {
                        Some(i) => Arg {
                            bytes: known[i].id.clone(),
                            null_len: None,
                        },
                        None => text(id),
                    };
                    // The successor inherits the expiry of the key it replaces.
                    let may_expire = target.map_or(true, |i| known[i].may_expire);
                    let mut out = null_mut();
                    // Grace in whole days or more, so the old key stays valid in this run.
                    let grace = grace.saturating_add(86_400 * 365);
                    let status = check(
                        apikeys_key_rotate(
                            store,
                            arg.ptr(),
                            arg.len(),
                            grace,
                            if *null_out { null_mut() } else { &mut out },
                        ),
                        "rotate",
                    );
                    if status == OK && known.len() < 32 {
                        known.push(take_key(out, may_expire));
                    } else if status == OK {
                        assert_eq!(apikeys_key_free(out), OK);
                    } else {
                        assert!(out.is_null());
                    }
                }
                Call::List {
                    filter,
                    unused_since,
                    index,
                    null_out,
                } => {
                    let mut list = null_mut();
                    let status = check(
                        apikeys_key_list(
                            store,
                            *filter,
                            *unused_since,
                            if *null_out { null_mut() } else { &mut list },
                        ),
                        "list",
                    );
                    if status == OK {
                        let mut len = 0usize;
                        assert_eq!(apikeys_list_len(list, &mut len), OK);
                        if *filter == 0 && *unused_since == 0 {
                            assert_eq!(
                                len,
                                known.len().max(len),
                                "fewer keys listed than generated"
                            );
                        }
                        let mut info = null();
                        let got = check(apikeys_list_get(list, *index, &mut info), "list get");
                        assert_eq!(got == OK, *index < len);
                        assert_eq!(apikeys_list_free(list), OK);
                    } else {
                        assert!(list.is_null());
                    }
                }
                Call::Flush(null_store) => {
                    let status = check(
                        apikeys_store_flush(if *null_store { null() } else { store }),
                        "flush",
                    );
                    assert_eq!(status == OK, !*null_store);
                }
                Call::StatusStr(status) => {
                    assert!(!apikeys_status_str(*status).is_null());
                }
                Call::StatusHttp(status, null_code, null_body) => {
                    let (mut code, mut body) = (0u16, null());
                    check(
                        apikeys_status_http(
                            *status,
                            if *null_code { null_mut() } else { &mut code },
                            if *null_body { null_mut() } else { &mut body },
                        ),
                        "status_http",
                    );
                }
                Call::KeyAccessors {
                    null_key,
                    null_text,
                    null_len,
                } => {
                    let (name, mut key) = (b"fuzz", null_mut());
                    if apikeys_key_generate(
                        store,
                        name.as_ptr().cast(),
                        4,
                        null(),
                        0,
                        null(),
                        0,
                        null(),
                        0,
                        0,
                        &mut key,
                    ) != OK
                    {
                        continue;
                    }
                    let (mut text, mut len) = (null(), 0usize);
                    let status = check(
                        apikeys_key_secret(
                            if *null_key { null() } else { key },
                            if *null_text { null_mut() } else { &mut text },
                            if *null_len { null_mut() } else { &mut len },
                        ),
                        "key secret",
                    );
                    // `out_len` is optional: the secret is NUL-terminated too.
                    assert_eq!(status == OK, !*null_key && !*null_text);
                    if status == OK && !*null_len {
                        assert_eq!(CStr::from_ptr(text).to_bytes().len(), len);
                    }
                    assert_eq!(apikeys_key_free(key), OK);
                }
                Call::Check {
                    null_store,
                    key,
                    scope,
                    with_id,
                } => {
                    let (arg, exact) = key_text(key, &known);
                    let c_string = |bytes: &[u8]| {
                        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                        let mut c = Vec::with_capacity(end + 1);
                        c.extend_from_slice(&bytes[..end]);
                        c.push(0);
                        c
                    };
                    let c_key = c_string(&arg.bytes);
                    let c_scope = scope.as_deref().map(c_string);
                    let mut id = [b'x' as c_char; 17];
                    let store_arg = if *null_store { null() } else { store };
                    let key_arg = if arg.null_len.is_some() {
                        null()
                    } else {
                        c_key.as_ptr().cast()
                    };
                    let status = check(
                        apikeys_key_check(
                            store_arg,
                            key_arg,
                            c_scope.as_ref().map_or(null(), |c| c.as_ptr().cast()),
                            if *with_id {
                                id.as_mut_ptr()
                            } else {
                                null_mut()
                            },
                        ),
                        "check",
                    );
                    // A known key, whole (no NUL cut it), without a scope.
                    let whole = c_key.len() == arg.bytes.len() + 1;
                    let no_scope = c_scope.as_ref().is_none_or(|c| c.len() == 1);
                    if no_scope {
                        // The two-argument verify answers as check does
                        // (or EXPIRED, if the key's expiry passed between).
                        let validated = check(apikeys_key_validate(store_arg, key_arg), "validate");
                        assert!(
                            validated == status || (status == OK && validated == EXPIRED),
                            "validate answered {validated}, check {status}"
                        );
                    }
                    if let (Some(i), false, true, true) = (exact, *null_store, whole, no_scope) {
                        let expected = if known[i].revoked { REVOKED } else { OK };
                        let expired = known[i].may_expire && !known[i].revoked && status == EXPIRED;
                        assert!(
                            status == expected || expired,
                            "check: a known key got {status}, not {expected}"
                        );
                        if status == OK && *with_id {
                            let got = CStr::from_ptr(id.as_ptr()).to_bytes();
                            assert_eq!(got, &known[i].id[..], "check: wrong id");
                        }
                    }
                    if status != OK {
                        assert!(
                            id.iter().all(|&c| c == b'x' as c_char),
                            "check wrote its id on failure"
                        );
                    }
                }
            }
        }
    }
    // Every known key still answers as the model says, through a reopen:
    // of the file; of an in-memory store in shared mode, by a second handle
    // opened before the first is closed (the last close drops the store).
    // SAFETY: live handles, each closed once.
    unsafe {
        let in_memory = flags & IN_MEMORY != 0;
        if !(in_memory && input.shared) {
            assert_eq!(check(apikeys_store_close(store), "close"), OK);
            store = null_mut();
        }
        let mut again = null_mut();
        let status = apikeys_store_open(
            path.as_ptr().cast(),
            path.len(),
            pepper.as_ptr(),
            pepper.len(),
            flags,
            &mut again,
        );
        assert_eq!(status, OK, "the store does not reopen");
        if !store.is_null() {
            assert_eq!(check(apikeys_store_close(store), "close"), OK);
        }
        for key in &known {
            let status = apikeys_key_verify(
                again,
                key.secret.as_ptr().cast(),
                key.secret.len(),
                null(),
                0,
                null_mut(),
            );
            let expected = if in_memory && !input.shared {
                // A new, empty store: the last close dropped the old one.
                NOT_FOUND
            } else if key.revoked {
                REVOKED
            } else {
                OK
            };
            let expired = key.may_expire && !key.revoked && status == EXPIRED;
            assert!(
                status == expected || (expired && expected == OK),
                "after reopen a known key got {status}, expected {expected}"
            );
        }
        assert_eq!(apikeys_store_close(again), OK);
    }
}

/// Inputs run so far by this process.
static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|input: Input| {
    run(&input, false);
    if RUNS.fetch_add(1, Ordering::Relaxed) % DURABLE_EVERY == 0 {
        run(&input, true);
    }
});
