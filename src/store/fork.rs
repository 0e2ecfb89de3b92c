//! Fork detection: a handle opened before `fork()` belongs to the parent,
//! and returns [`crate::Error::UsedAfterFork`] in the child instead of
//! writing to the file from both sides.

use std::sync::atomic::AtomicU64;
use std::sync::Once;

/// Incremented in the child by `pthread_atfork`: a handle opened under an
/// older generation belongs to the parent.
pub(super) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

pub(super) fn watch_forks() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        #[cfg(unix)]
        // SAFETY: registers a handler that only increments an atomic, which
        // is async-signal-safe as a fork child handler must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}
