//! Status numbers, the named constants C passes in (open flags, list
//! filters, key states), and how core errors map onto them.
//!
//! Numbers are stable and never reused, grouped in ranges: 0..99 usage,
//! 100..199 verification outcomes, 200..299 storage and environment, 900 a
//! caught panic. A number coming from C is a plain `u32` and is matched
//! against these values, never transmuted into the enum.

use core::ffi::{c_char, CStr};

use apikeys_core::{Error, Rejection, VerifyError};

use crate::boundary::Failure;

/// What every function returns; `APIKEYS_OK` (0) is success.
///
/// In C this is a `uint32_t`: compare it with the `APIKEYS_*` constants.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum apikeys_status {
    /// Success (for a verify: the key is accepted).
    APIKEYS_OK = 0,
    /// A required pointer was NULL, or a NULL buffer had a non-zero length.
    APIKEYS_NULL_ARGUMENT = 1,
    /// Bad UTF-8, empty or oversize name, bad env tag or scope, expiry in the past, ...
    APIKEYS_INVALID_ARGUMENT = 2,
    /// No key has this id (revoke, rotate) or this secret (revoke by key).
    APIKEYS_UNKNOWN_KEY = 3,

    /// Verify: not a well-formed key (storage was not read).
    APIKEYS_MALFORMED = 100,
    /// Verify: well-formed, but not in this store.
    APIKEYS_NOT_FOUND = 101,
    /// Verify: the key was revoked.
    APIKEYS_REVOKED = 102,
    /// Verify: the key has expired (or its rotation grace period is over).
    APIKEYS_EXPIRED = 103,
    /// Verify: a valid key without the required scope.
    APIKEYS_INSUFFICIENT_SCOPE = 104,
    /// Header verify: no header, not `Bearer`, or an unusable token.
    APIKEYS_BAD_HEADER = 105,

    /// The file is held by another process (open it in shared mode everywhere).
    APIKEYS_LOCKED = 200,
    /// Not an apikeys store, or damaged.
    APIKEYS_CORRUPTED = 201,
    /// The store was created with another pepper.
    APIKEYS_WRONG_PEPPER = 202,
    /// The handle was opened before `fork()`: open the store again in the child.
    APIKEYS_USED_AFTER_FORK = 203,
    /// Input/output error.
    APIKEYS_IO = 204,
    /// Other storage engine error.
    APIKEYS_STORAGE = 205,
    /// The store was written by a newer apikeys.
    APIKEYS_UNSUPPORTED_VERSION = 206,
    /// The operating system's random generator failed.
    APIKEYS_RANDOM = 207,
    /// This process's user may not open the store file (or create it); the
    /// last error names the file's owner and mode and this process's user.
    APIKEYS_PERMISSION_DENIED = 208,
    /// The database server (PostgreSQL) cannot be reached, or this machine
    /// could not confirm within its revocation bound that its keys are
    /// current. Neither an accept nor a rejection: answer 500, never 401.
    APIKEYS_DATABASE_UNAVAILABLE = 209,

    /// A bug: the library panicked and caught it.
    APIKEYS_PANIC = 900,
}

use apikeys_status::*;

/// Every status, for lookups by number.
pub(crate) const ALL_STATUSES: [apikeys_status; 21] = [
    APIKEYS_OK,
    APIKEYS_NULL_ARGUMENT,
    APIKEYS_INVALID_ARGUMENT,
    APIKEYS_UNKNOWN_KEY,
    APIKEYS_MALFORMED,
    APIKEYS_NOT_FOUND,
    APIKEYS_REVOKED,
    APIKEYS_EXPIRED,
    APIKEYS_INSUFFICIENT_SCOPE,
    APIKEYS_BAD_HEADER,
    APIKEYS_LOCKED,
    APIKEYS_CORRUPTED,
    APIKEYS_WRONG_PEPPER,
    APIKEYS_USED_AFTER_FORK,
    APIKEYS_IO,
    APIKEYS_STORAGE,
    APIKEYS_UNSUPPORTED_VERSION,
    APIKEYS_RANDOM,
    APIKEYS_PERMISSION_DENIED,
    APIKEYS_DATABASE_UNAVAILABLE,
    APIKEYS_PANIC,
];

impl apikeys_status {
    /// The status with this number, if there is one.
    pub(crate) fn from_number(number: u32) -> Option<apikeys_status> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|status| *status as u32 == number)
    }

    /// A static description.
    pub(crate) fn description(self) -> &'static CStr {
        match self {
            APIKEYS_OK => c"success",
            APIKEYS_NULL_ARGUMENT => c"a required pointer argument was NULL",
            APIKEYS_INVALID_ARGUMENT => c"invalid argument",
            APIKEYS_UNKNOWN_KEY => c"no such key",
            APIKEYS_MALFORMED => c"the key is not well-formed",
            APIKEYS_NOT_FOUND => c"no such key in this store",
            APIKEYS_REVOKED => c"the key was revoked",
            APIKEYS_EXPIRED => c"the key has expired",
            APIKEYS_INSUFFICIENT_SCOPE => c"the key lacks the required scope",
            APIKEYS_BAD_HEADER => c"no usable Authorization: Bearer header",
            APIKEYS_LOCKED => {
                c"the store is open in another process; open it in shared mode in every process"
            }
            APIKEYS_CORRUPTED => c"the store file is corrupted or not an apikeys store",
            APIKEYS_WRONG_PEPPER => c"the store was created with a different pepper",
            APIKEYS_USED_AFTER_FORK => {
                c"store handle used after fork(); open the store again in the child process"
            }
            APIKEYS_IO => c"input/output error",
            APIKEYS_STORAGE => c"storage engine error",
            APIKEYS_UNSUPPORTED_VERSION => c"the store was written by a newer version of apikeys",
            APIKEYS_RANDOM => c"the operating system's random generator failed",
            APIKEYS_PERMISSION_DENIED => {
                c"this process's user may not open the store file: see apikeys_last_error"
            }
            APIKEYS_DATABASE_UNAVAILABLE => {
                c"the database is unavailable (never a verdict on the key)"
            }
            APIKEYS_PANIC => c"internal error: apikeys panicked (a bug)",
        }
    }
}

/// `flags` of `apikeys_store_open`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum apikeys_open_flag {
    /// One process owns the file (the default: flags = 0).
    APIKEYS_OPEN_EXCLUSIVE = 0,
    /// Many processes on one machine share the file (PHP-FPM, gunicorn, puma workers).
    APIKEYS_OPEN_SHARED = 1,
    /// With either of the above: the store lives in this process's memory,
    /// for test suites. Nothing is durable and, in exclusive mode, nothing
    /// is written to disk; in shared mode the shared index is still a file,
    /// `<path>.index`. Handles opened in memory with the same path share one
    /// store, dropped when the last of them is closed. No file may exist at
    /// `path`.
    APIKEYS_OPEN_IN_MEMORY = 2,
}

/// `status_filter` of `apikeys_key_list`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum apikeys_list_filter {
    /// Every key.
    APIKEYS_LIST_ALL = 0,
    /// Keys verify accepts.
    APIKEYS_LIST_ACTIVE = 1,
    /// Revoked keys.
    APIKEYS_LIST_REVOKED = 2,
    /// Expired keys (not revoked).
    APIKEYS_LIST_EXPIRED = 3,
}

/// `status` field of `apikeys_key_info`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum apikeys_key_status {
    /// Accepted by verify.
    APIKEYS_KEY_ACTIVE = 0,
    /// Revoked: rejected forever.
    APIKEYS_KEY_REVOKED = 1,
    /// Past its expiry (or its rotation grace period).
    APIKEYS_KEY_EXPIRED = 2,
}

/// Sizes C needs to know, as constants (PHP's FFI cannot see `#define`s).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum apikeys_size {
    /// Bytes of the `id_out` buffer of `apikeys_key_check`: a key id (16
    /// characters) and its NUL.
    APIKEYS_ID_SIZE = 17,
    /// `apikeys_key_check` reads at most this many bytes of a key looking
    /// for its NUL (no key is that long).
    APIKEYS_KEY_SCAN_MAX = 256,
    /// `apikeys_header_check` reads at most this many bytes of a header
    /// value looking for its NUL: the 8 KB a server takes for one header
    /// line by default (nginx, gunicorn, puma) holds no longer value.
    APIKEYS_HEADER_SCAN_MAX = 8192,
}

/// The status for a core error.
pub(crate) fn status_of_error(error: &Error) -> apikeys_status {
    match error {
        Error::InvalidArgument(_) => APIKEYS_INVALID_ARGUMENT,
        Error::UnknownKey(_) => APIKEYS_UNKNOWN_KEY,
        Error::Locked { .. } => APIKEYS_LOCKED,
        Error::Corrupted(_) => APIKEYS_CORRUPTED,
        Error::WrongPepper => APIKEYS_WRONG_PEPPER,
        Error::UsedAfterFork => APIKEYS_USED_AFTER_FORK,
        Error::Io(_) => APIKEYS_IO,
        Error::Storage(_) => APIKEYS_STORAGE,
        Error::UnsupportedVersion(_) => APIKEYS_UNSUPPORTED_VERSION,
        Error::Random(_) => APIKEYS_RANDOM,
        Error::PermissionDenied { .. } => APIKEYS_PERMISSION_DENIED,
        Error::DatabaseUnavailable(_) => APIKEYS_DATABASE_UNAVAILABLE,
        // `Closed` cannot happen through this ABI (close frees the handle);
        // any error added to the core later is still a storage failure.
        _ => APIKEYS_STORAGE,
    }
}

/// The status for a rejected key.
pub(crate) fn status_of_rejection(rejection: Rejection) -> apikeys_status {
    match rejection {
        Rejection::Malformed => APIKEYS_MALFORMED,
        Rejection::NotFound => APIKEYS_NOT_FOUND,
        Rejection::Revoked => APIKEYS_REVOKED,
        Rejection::Expired => APIKEYS_EXPIRED,
        Rejection::InsufficientScope => APIKEYS_INSUFFICIENT_SCOPE,
        // A reason added to the core later is still a refusal (401), never
        // an acceptance.
        _ => APIKEYS_NOT_FOUND,
    }
}

/// The core's sentence for a rejection, as a static C string: a rejected
/// key, the common failure, then records its message without allocating.
pub(crate) fn rejection_message(rejection: Rejection) -> &'static CStr {
    match rejection {
        Rejection::Malformed => c"the key is not well-formed",
        Rejection::NotFound => c"no such key",
        Rejection::Revoked => c"the key was revoked",
        Rejection::Expired => c"the key has expired",
        Rejection::InsufficientScope => c"the key lacks the required scope",
        _ => c"the key was refused",
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::new(status_of_error(&error), error.to_string())
    }
}

impl From<VerifyError> for Failure {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => {
                Failure::fixed(status_of_rejection(rejection), rejection_message(rejection))
            }
            VerifyError::Failed(error) => error.into(),
        }
    }
}

/// The C string of a static description.
pub(crate) fn status_str(number: u32) -> *const c_char {
    match apikeys_status::from_number(number) {
        Some(status) => status.description().as_ptr(),
        None => c"unknown status".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_messages_are_the_core_sentences() {
        for rejection in [
            Rejection::Malformed,
            Rejection::NotFound,
            Rejection::Revoked,
            Rejection::Expired,
            Rejection::InsufficientScope,
        ] {
            assert_eq!(
                rejection_message(rejection).to_str().ok(),
                Some(rejection.to_string().as_str())
            );
        }
    }
}
