//! The boundary every exported function runs behind: panics caught and
//! turned into `APIKEYS_PANIC`, failures recorded as this thread's last
//! error, and the pointer checks that come before any pointer is read.
//!
//! One mechanism, used by every exported function: [`ffi_boundary!`] around
//! the body, which returns a `Result<(), Failure>` (or a static C string for
//! the few functions that return one).

use core::ffi::c_char;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::apikeys_status;

/// Why a call failed: the status returned to C and the detail kept for
/// `apikeys_last_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: apikeys_status,
    pub(crate) message: Message,
}

/// The text of a failure: a fixed sentence costs no allocation, which keeps
/// a rejected key (the common failure, on the request path) cheap.
#[derive(Debug)]
pub(crate) enum Message {
    Fixed(&'static CStr),
    Text(String),
}

impl Failure {
    pub(crate) fn new(status: apikeys_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: Message::Text(message.into()),
        }
    }

    pub(crate) fn fixed(status: apikeys_status, message: &'static CStr) -> Self {
        Failure {
            status,
            message: Message::Fixed(message),
        }
    }

    pub(crate) fn null_argument(name: &str) -> Self {
        Failure::new(
            apikeys_status::APIKEYS_NULL_ARGUMENT,
            format!("argument `{name}` is NULL"),
        )
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Failure::new(apikeys_status::APIKEYS_INVALID_ARGUMENT, message)
    }
}

/// What an exported function hands back to C, and what it hands back when
/// its body panicked.
pub(crate) trait FfiReturn {
    type C;
    fn into_c(self) -> Self::C;
    fn on_panic() -> Self::C;
}

impl FfiReturn for Result<(), Failure> {
    type C = apikeys_status;

    fn into_c(self) -> apikeys_status {
        match self {
            Ok(()) => apikeys_status::APIKEYS_OK,
            Err(failure) => {
                set_last_error(&failure.message);
                failure.status
            }
        }
    }

    fn on_panic() -> apikeys_status {
        apikeys_status::APIKEYS_PANIC
    }
}

/// Functions returning a static or thread-local string return "" on panic,
/// never NULL, so a host can always print what it got.
impl FfiReturn for *const c_char {
    type C = *const c_char;

    fn into_c(self) -> *const c_char {
        self
    }

    fn on_panic() -> *const c_char {
        c"".as_ptr()
    }
}

/// Runs `body`, catching any panic. Use through [`ffi_boundary!`].
pub(crate) fn catch<R: FfiReturn>(body: impl FnOnce() -> R) -> R::C {
    // AssertUnwindSafe: after a caught panic the handles stay usable because
    // the core recovers poisoned locks (`PoisonError::into_inner`) and keeps
    // no invariant half-updated across a panic that a later call could see
    // as memory unsafety; at worst a count is off. Refusing every later call
    // would turn one bug into an outage.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value.into_c(),
        Err(payload) => {
            set_last_error(&Message::Text(format!(
                "apikeys panicked (a bug, please report it): {}",
                panic_message(payload.as_ref())
            )));
            R::on_panic()
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "no message"
    }
}

/// Wraps the body of an exported function in the panic boundary.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        $crate::boundary::catch(move || { $($body)* })
    };
}
pub(crate) use ffi_boundary;

/// This thread's last error as C reads it.
enum LastError {
    Fixed(&'static CStr),
    Text(CString),
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const { RefCell::new(LastError::Fixed(c"")) };
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &Message) {
    let last = match message {
        Message::Fixed(text) => LastError::Fixed(text),
        Message::Text(text) => {
            // A message never carries a NUL on purpose; replace any rather than lose it.
            let bytes: Vec<u8> = text
                .bytes()
                .map(|b| if b == 0 { b'?' } else { b })
                .collect();
            LastError::Text(CString::new(bytes).unwrap_or_default())
        }
    };
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = last;
        }
    });
}

/// This thread's last error, valid until the next failed call on this thread.
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| match cell.try_borrow() {
            Ok(last) => match &*last {
                LastError::Fixed(text) => text.as_ptr(),
                LastError::Text(text) => text.as_ptr(),
            },
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}

/// Converts text for C: NUL-terminated, any interior NUL (which the core
/// refuses on input, but a file written by other software might hold)
/// shown as U+FFFD rather than silently cutting the string.
pub(crate) fn c_string(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        Err(_) => CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// A pointer's referent, or `NULL_ARGUMENT` naming the argument.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: the exported function's contract: `$ptr` is NULL or points
        // to a live value of its type, which outlives the call.
        match unsafe { $ptr.as_ref() } {
            Some(reference) => reference,
            None => return Err($crate::boundary::Failure::null_argument(stringify!($ptr))),
        }
    };
}
pub(crate) use try_ref;

/// Checks that an out pointer is not NULL; it is written only on success.
macro_rules! try_out {
    ($ptr:ident) => {
        if $ptr.is_null() {
            return Err($crate::boundary::Failure::null_argument(stringify!($ptr)));
        }
    };
}
pub(crate) use try_out;

/// A `(ptr, len)` byte buffer: `(NULL, 0)` is empty, `(NULL, n > 0)` is
/// `NULL_ARGUMENT`.
macro_rules! try_bytes {
    ($ptr:ident, $len:ident) => {
        // SAFETY: the caller guarantees `$ptr` is valid for `$len` bytes when not NULL.
        unsafe { $crate::boundary::bytes_arg($ptr.cast::<u8>(), $len, stringify!($ptr))? }
    };
}
pub(crate) use try_bytes;

/// A required `(ptr, len)` UTF-8 string; bad UTF-8 is `INVALID_ARGUMENT`.
macro_rules! try_str {
    ($ptr:ident, $len:ident) => {
        $crate::boundary::utf8_arg($crate::boundary::try_bytes!($ptr, $len), stringify!($ptr))?
    };
}
pub(crate) use try_str;

/// An optional `(ptr, len)` UTF-8 string: absent when `len` is 0.
macro_rules! try_optional_str {
    ($ptr:ident, $len:ident) => {
        match $crate::boundary::try_str!($ptr, $len) {
            "" => None,
            text => Some(text),
        }
    };
}
pub(crate) use try_optional_str;

/// # Safety
///
/// When `ptr` is not NULL it must be valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::null_argument(name))
        };
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid_argument(format!(
            "argument `{name}`: length {len} is larger than any buffer"
        )));
    }
    // SAFETY: not NULL, length bounded, validity guaranteed by the caller.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

pub(crate) fn utf8_arg<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Failure> {
    core::str::from_utf8(bytes).map_err(|error| {
        Failure::invalid_argument(format!("argument `{name}` is not valid UTF-8: {error}"))
    })
}
