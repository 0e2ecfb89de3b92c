//! The library's own threads (the usage flusher, the shared-mode background
//! open) and `fork()`.
//!
//! A fork copies a process's memory but only the thread that called it. If
//! one of our threads is inside the allocator at that moment, or holds a
//! process-wide lock, the child inherits that lock held by a thread that no
//! longer exists, and hangs at its first allocation. glibc's malloc guards
//! itself against this; AddressSanitizer's allocator (and others) do not:
//! a preforking server's worker that opens its own store after the fork
//! then hangs in its first use (seen in `ffi/tests/c/test_fork` under ASan).
//!
//! So a fork waits for our threads: a `pthread_atfork` prepare handler
//! waits until each of them is either between two pieces of work, in a
//! futex wait that holds no lock ([`Worker::wait`]), or has ended, in which
//! case the handler joins it (an ending thread still frees its thread-local
//! state). New work and new threads wait until the fork is done. The wait
//! is as long as the piece of work in progress: one usage flush, or one
//! open of a store file.
//!
//! Not covered: the PostgreSQL feed threads, whose waits are network reads
//! inside the client library; a fork while one of them is mid-call relies
//! on the allocator being fork-safe (glibc's is).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

struct Gate {
    /// Threads doing work (or starting): a fork waits for none.
    working: usize,
    /// A fork is being prepared: no work starts until it is done.
    forking: bool,
    next_id: u64,
    /// Threads not joined yet, with their ids.
    threads: Vec<(u64, JoinHandle<()>)>,
    /// Threads whose work has ended: the prepare handler joins them.
    ended: Vec<u64>,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    working: 0,
    forking: false,
    next_id: 0,
    threads: Vec::new(),
    ended: Vec::new(),
});
static CHANGED: Condvar = Condvar::new();

std::thread_local! {
    /// Set in our threads while they work: their own spawns do not wait
    /// for a fork (which waits for them).
    static WORKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The gate, held by the forking thread from prepare to the parent or
    /// child handler.
    static HELD: std::cell::RefCell<Option<MutexGuard<'static, Gate>>> =
        const { std::cell::RefCell::new(None) };
}

impl Gate {
    fn take_thread(&mut self, id: u64) -> Option<JoinHandle<()>> {
        let at = self.threads.iter().position(|(of, _)| *of == id)?;
        Some(self.threads.swap_remove(at).1)
    }
}

fn lock() -> MutexGuard<'static, Gate> {
    GATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blocks while a fork is being prepared, then counts one more thread at work.
fn start_work() {
    let mut gate = lock();
    while gate.forking {
        gate = CHANGED.wait(gate).unwrap_or_else(PoisonError::into_inner);
    }
    gate.working += 1;
}

fn end_work(gate: &mut Gate) {
    gate.working -= 1;
    CHANGED.notify_all();
}

/// A thread of ours: joined by [`Background::join`] (or by a fork's
/// prepare handler once its work has ended).
pub(crate) struct Background {
    id: u64,
}

/// Given to a thread's body, to mark its waits.
pub(crate) struct Worker(());

impl Worker {
    /// Runs `wait`, a wait that neither allocates nor holds a lock (a
    /// condition variable's), as a time a fork may happen in.
    pub(crate) fn wait<T>(&self, wait: impl FnOnce() -> T) -> T {
        WORKING.with(|working| working.set(false));
        end_work(&mut lock());
        let result = wait();
        start_work();
        WORKING.with(|working| working.set(true));
        result
    }
}

/// Starts a named thread running `body`, counted at work from before it
/// starts until `body` returns or waits.
pub(crate) fn spawn(
    name: &str,
    body: impl FnOnce(&Worker) + Send + 'static,
) -> std::io::Result<Background> {
    watch_forks();
    let id = {
        let mut gate = lock();
        if !WORKING.with(|working| working.get()) {
            while gate.forking {
                gate = CHANGED.wait(gate).unwrap_or_else(PoisonError::into_inner);
            }
        }
        gate.working += 1;
        gate.next_id += 1;
        gate.next_id
    };
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            WORKING.with(|working| working.set(true));
            body(&Worker(()));
            WORKING.with(|working| working.set(false));
            let mut gate = lock();
            gate.ended.push(id);
            end_work(&mut gate);
        });
    let mut gate = lock();
    match spawned {
        Ok(thread) => {
            gate.threads.push((id, thread));
            Ok(Background { id })
        }
        Err(error) => {
            end_work(&mut gate);
            Err(error)
        }
    }
}

impl Background {
    /// Waits for the thread to end (at once if a fork joined it already).
    pub(crate) fn join(self) {
        let thread = lock().take_thread(self.id);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// A flag that threads wait for: raised once, seen by every wait after.
#[derive(Default)]
pub(crate) struct Signal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *self.raised.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for the signal: whether it is raised. A
    /// condition variable's wait (no allocation, no lock held), which
    /// [`Worker::wait`] may wrap.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> bool {
        let raised = self.raised.lock().unwrap_or_else(PoisonError::into_inner);
        let (raised, _) = self
            .changed
            .wait_timeout_while(raised, timeout, |raised| !*raised)
            .unwrap_or_else(PoisonError::into_inner);
        *raised
    }
}

#[cfg(unix)]
extern "C" fn before_fork() {
    let mut gate = lock();
    gate.forking = true;
    while gate.working > 0 {
        gate = CHANGED.wait(gate).unwrap_or_else(PoisonError::into_inner);
    }
    for id in std::mem::take(&mut gate.ended) {
        if let Some(thread) = gate.take_thread(id) {
            let _ = thread.join();
        }
    }
    HELD.with(|held| *held.borrow_mut() = Some(gate));
}

#[cfg(unix)]
fn after_fork(in_child: bool) {
    let Some(mut gate) = HELD.with(|held| held.borrow_mut().take()) else {
        return;
    };
    gate.forking = false;
    if in_child {
        // The parent's threads do not exist here: nothing to join, and
        // their handles must not be dropped (that would detach them).
        std::mem::forget(std::mem::take(&mut gate.threads));
        gate.ended.clear();
    }
    drop(gate);
    CHANGED.notify_all();
}

#[cfg(unix)]
extern "C" fn after_fork_in_parent() {
    after_fork(false);
}

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    after_fork(true);
}

fn watch_forks() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        #[cfg(unix)]
        // SAFETY: the handlers only take and release the gate's lock, and
        // the child handler releases a lock its own thread took in prepare.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            );
        }
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// Forks while one of our threads is in a piece of work: the fork
    /// waits for the work to end, so the child's copy of memory never
    /// shows it half done.
    #[test]
    fn a_fork_waits_for_work_in_progress_and_not_for_a_wait() {
        let in_work = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(Signal::default());
        let (working, stopping) = (in_work.clone(), stop.clone());
        let thread = spawn("apikeys-test", move |worker| {
            working.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            working.store(false, Ordering::SeqCst);
            // Then a long wait, which a fork does not wait for.
            worker.wait(|| while !stopping.wait(Duration::from_secs(3600)) {});
        })
        .unwrap();
        while !in_work.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // SAFETY: the child only reads an atomic and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = if in_work.load(Ordering::SeqCst) { 1 } else { 0 };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child saw the work half done"
        );
        // The thread is now in its wait: a second fork returns at once (a
        // fork that waited for it would never return).
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        stop.raise();
        thread.join();
    }
}
