//! A store handle used in a child after `fork()` answers
//! `Error::UsedAfterFork` for every call, touches nothing, and the file stays
//! intact: the parent keeps using it, the child can open its own handle
//! (shared mode), and a later reopen finds every key.
//!
//! One test function, so that no other test thread of this binary is
//! running when it forks.

use apikeys::{Error, KeyStore, ListFilter, Mode, NewKey, Rejection, StoreOptions, VerifyError};

/// What the child checks, each with its own exit code so a failure says which.
const CHILD_OK: i32 = 0;
const VERIFY_NOT_REFUSED: i32 = 10;
const GENERATE_NOT_REFUSED: i32 = 11;
const REVOKE_NOT_REFUSED: i32 = 12;
const LIST_NOT_REFUSED: i32 = 13;
const FLUSH_NOT_REFUSED: i32 = 14;
const CLOSE_NOT_REFUSED: i32 = 15;
const FRESH_OPEN_WRONG: i32 = 16;
const FRESH_HANDLE_WRONG: i32 = 17;

fn used_after_fork<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::UsedAfterFork))
}

/// Runs in the forked child: only the calls under test, then `_exit`.
fn child_checks(
    store: KeyStore,
    secret: &str,
    id: &str,
    request: &NewKey,
    path: &std::path::Path,
    mode: Mode,
) -> i32 {
    if !matches!(
        store.verify(secret),
        Err(VerifyError::Failed(Error::UsedAfterFork))
    ) {
        return VERIFY_NOT_REFUSED;
    }
    if !used_after_fork(store.generate(request)) {
        return GENERATE_NOT_REFUSED;
    }
    if !used_after_fork(store.revoke(id)) {
        return REVOKE_NOT_REFUSED;
    }
    if !used_after_fork(store.list(&ListFilter::default())) {
        return LIST_NOT_REFUSED;
    }
    if !used_after_fork(store.flush()) {
        return FLUSH_NOT_REFUSED;
    }
    // Closing in the child frees memory and must not write to the file.
    if !used_after_fork(store.close()) {
        return CLOSE_NOT_REFUSED;
    }
    // The documented remedy: open the store again in the child.
    match (mode, KeyStore::open(path, StoreOptions::new().mode(mode))) {
        (Mode::Exclusive, Err(Error::Locked { .. })) => CHILD_OK,
        (Mode::Shared, Ok(fresh)) => {
            let fine = fresh.verify(secret).is_ok() && fresh.generate(request).is_ok();
            let closed = fresh.close().is_ok();
            if fine && closed {
                CHILD_OK
            } else {
                FRESH_HANDLE_WRONG
            }
        }
        _ => FRESH_OPEN_WRONG,
    }
}

fn fork_and_check(mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    // The default options: a background usage-flush thread is running.
    let store = KeyStore::open(&path, StoreOptions::new().mode(mode)).expect("open");
    let keys = store
        .generate_batch(
            &(0..20)
                .map(|i| NewKey::new(format!("key {i}")))
                .collect::<Vec<_>>(),
        )
        .expect("generate");
    for key in &keys {
        store.verify(key.secret.expose_secret()).expect("verify");
    }
    let secret = keys[0].secret.expose_secret().to_string();
    let id = keys[0].id().to_string();
    let request = NewKey::new("made in the child");

    // SAFETY: fork(2); the child only runs `child_checks` and then `_exit`,
    // never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child takes the handle it inherited, as a host's worker would.
        let code = child_checks(store, &secret, &id, &request, &path, mode);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the child did not exit normally: {status}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        CHILD_OK,
        "{mode:?}: child check failed (see the codes above)"
    );

    // The parent carries on with the same handle.
    for key in &keys {
        store
            .verify(key.secret.expose_secret())
            .expect("the parent's handle still works");
    }
    let later = store
        .generate(&NewKey::new("after the fork"))
        .expect("generate");
    assert!(store.revoke(keys[1].id()).expect("revoke"));
    store.close().expect("close");

    // The file is intact: every key is there with its state.
    let store = KeyStore::open(&path, StoreOptions::new().mode(mode)).expect("reopen");
    for key in keys.iter().chain(std::iter::once(&later)) {
        let outcome = store.verify(key.secret.expose_secret());
        if key.id() == keys[1].id() {
            assert!(matches!(
                outcome,
                Err(VerifyError::Rejected(Rejection::Revoked))
            ));
        } else {
            outcome.expect("verifies after reopen");
        }
    }
    let listed = store.list(&ListFilter::default()).expect("list");
    let made_in_child = usize::from(mode == Mode::Shared);
    assert_eq!(listed.len(), keys.len() + 1 + made_in_child);
    assert_eq!(
        listed
            .iter()
            .filter(|info| info.name == "made in the child")
            .count(),
        made_in_child,
        "only the child's own handle may write"
    );
    store.close().expect("close");
}

#[test]
fn a_handle_used_after_fork_is_refused_and_the_file_stays_intact() {
    fork_and_check(Mode::Exclusive);
    fork_and_check(Mode::Shared);
}
