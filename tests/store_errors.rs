//! Opening a store that cannot be used as asked gives a clear, typed error;
//! two processes share a store in shared mode.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use apikeys::{Error, KeyStore, ListFilter, Mode, NewKey, Rejection, StoreOptions, VerifyError};

fn cli(db: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("APIKEYS_PEPPER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn quiet() -> StoreOptions {
    StoreOptions::new().flush_interval(Duration::ZERO)
}

#[test]
fn a_wrong_pepper_is_refused_and_the_right_one_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let store = KeyStore::open(&path, quiet().pepper("right pepper")).unwrap();
    let key = store.generate(&NewKey::new("k")).unwrap();
    store.close().unwrap();
    for options in [
        quiet().pepper("wrong pepper"),
        quiet(),
        quiet().pepper("right pepper "),
    ] {
        match KeyStore::open(&path, options.clone()) {
            Err(Error::WrongPepper) => {}
            other => panic!("{options:?}: {other:?}"),
        }
        match KeyStore::open(&path, options.clone().shared()) {
            Err(Error::WrongPepper) => {}
            other => panic!("{options:?} shared: {other:?}"),
        }
    }
    let store = KeyStore::open(&path, quiet().pepper("right pepper")).unwrap();
    assert!(store.verify(key.secret.expose_secret()).is_ok());
    let message = Error::WrongPepper.to_string();
    assert!(message.contains("pepper"), "{message}");
}

#[test]
fn a_second_process_is_told_to_use_shared_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let store = KeyStore::open(&path, quiet()).unwrap();
    for args in [&["list"][..], &["--shared", "list"][..]] {
        let output = cli(&path, args, "");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("shared mode"), "{args:?}: {stderr}");
    }
    store.close().unwrap();
    let output = cli(&path, &["list"], "");
    assert_eq!(output.status.code(), Some(0), "free once closed");
}

#[test]
fn an_exclusive_open_is_refused_while_shared_processes_hold_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let shared = KeyStore::open(&path, quiet().shared()).unwrap();
    let output = cli(&path, &["list"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("shared mode"));
    shared.close().unwrap();
}

#[test]
fn foreign_and_damaged_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not the keys you are looking for\n".repeat(200),
    )
    .unwrap();
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(
        &garbage,
        (0..65_536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    for path in [&text, &garbage] {
        for mode in [Mode::Exclusive, Mode::Shared] {
            match KeyStore::open(path, quiet().mode(mode)) {
                Err(error @ (Error::Corrupted(_) | Error::Io(_) | Error::Storage(_))) => {
                    assert!(!error.to_string().is_empty());
                }
                other => panic!("{} {mode:?}: {other:?}", path.display()),
            }
        }
    }
    let unchanged = std::fs::read_to_string(&text).unwrap();
    assert!(
        unchanged.starts_with("these are not"),
        "a foreign file is left as it was"
    );

    // A redb file of another application is not an apikeys store.
    let foreign = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        let orders: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("orders");
        txn.open_table(orders).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    match KeyStore::open(&foreign, quiet()) {
        Err(Error::Corrupted(reason)) => {
            assert!(reason.contains("another application"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match KeyStore::open(dir.path(), quiet()) {
        Err(Error::InvalidArgument(_) | Error::Io(_)) => {}
        other => panic!("a directory: {other:?}"),
    }
}

#[test]
fn shared_mode_two_processes_see_each_others_writes_on_the_next_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let store = KeyStore::open(&path, quiet().shared()).unwrap();
    let ours = store.generate(&NewKey::new("ours")).unwrap();

    // The other process generates: our next verify accepts its key.
    let output = cli(
        &path,
        &["--shared", "generate", "--name", "theirs", "--json"],
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let their_key = theirs["key"].as_str().unwrap();
    assert_eq!(store.verify(their_key).unwrap().name(), "theirs");

    // It verifies and revokes ours: our next verify rejects it.
    let output = cli(&path, &["--shared", "verify"], ours.secret.expose_secret());
    assert_eq!(output.status.code(), Some(0));
    assert!(store.verify(ours.secret.expose_secret()).is_ok());
    let output = cli(&path, &["--shared", "revoke", ours.id()], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(matches!(
        store.verify(ours.secret.expose_secret()),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));

    // We revoke theirs: its next verify rejects it.
    assert!(store.revoke(theirs["id"].as_str().unwrap()).unwrap());
    let output = cli(&path, &["--shared", "verify", "--json"], their_key);
    assert_eq!(output.status.code(), Some(1));
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["reason"], "revoked");

    // Usage counted by both processes adds up.
    store.flush().unwrap();
    let listed = store.list(&ListFilter::default()).unwrap();
    let ours_info = listed.iter().find(|k| k.id == ours.id()).unwrap();
    assert_eq!((ours_info.use_count, ours_info.rejected_count), (2, 1));
}
