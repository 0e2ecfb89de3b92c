//! A store made by an admin and opened by workers running as another user:
//! `apikeys init --owner`, group modes, files that keep their owner and
//! mode, and the error a worker gets when it may not open the file.
#![cfg(unix)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use apikeys::{Error, KeyStore, NewKey, StoreOptions};

fn cli(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("APIKEYS_PEPPER")
        .output()
        .unwrap()
}

fn quiet() -> StoreOptions {
    StoreOptions::new().flush_interval(Duration::ZERO)
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the command line as user and group 65534 (`nobody`), as a worker
/// of a web server would run, with `stdin` as its input.
fn cli_as_nobody(db: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("APIKEYS_PEPPER")
        .uid(65534)
        .gid(65534)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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

/// A directory every user may enter, so that only the file's own mode
/// decides (tempdir makes 0700 ones).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    dir
}

#[test]
fn a_new_store_is_owner_only_and_a_group_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.redb");
    KeyStore::open(&private, quiet()).unwrap().close().unwrap();
    assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o777, 0o600);

    let grouped = dir.path().join("grouped.redb");
    KeyStore::open(&grouped, quiet().file_mode(0o660))
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(std::fs::metadata(&grouped).unwrap().mode() & 0o777, 0o660);
    // Writing through another handle (the admin's) keeps it.
    let store = KeyStore::open(&grouped, quiet()).unwrap();
    store.generate(&NewKey::new("k")).unwrap();
    store.close().unwrap();
    assert_eq!(std::fs::metadata(&grouped).unwrap().mode() & 0o777, 0o660);
}

#[test]
fn a_mode_readable_by_other_users_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let error = KeyStore::open(&path, quiet().file_mode(0o644)).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    assert!(
        !path.exists(),
        "a refused mode must not leave a file behind"
    );

    let output = cli(&path, &["init", "--mode", "666"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("600, 640 or 660"));
    assert!(!path.exists());
}

#[test]
fn a_process_that_may_not_open_the_store_is_told_who_owns_it() {
    let dir = open_dir();
    let path = dir.path().join("k.redb");
    KeyStore::open(&path, quiet()).unwrap().close().unwrap();
    if is_root() {
        // A worker running as nobody, against root's owner-only file.
        let output = cli_as_nobody(&path, &["--shared", "list"], "");
        assert_eq!(output.status.code(), Some(2));
        let message = String::from_utf8_lossy(&output.stderr);
        for part in [
            "permission denied opening",
            path.to_str().unwrap(),
            "owned by root:root with mode 600",
            "this process runs as nobody",
            "apikeys init --owner",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }
    // Through the Rust API, as a process whose access was taken away (root
    // bypasses file modes, so this part checks the mapping, not the kernel).
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o500),
    )
    .unwrap();
    if !is_root() {
        let error = KeyStore::open(private.join("k.redb"), quiet()).unwrap_err();
        match &error {
            Error::PermissionDenied {
                path: refused,
                detail,
            } => {
                assert_eq!(refused, &private.join("k.redb"));
                assert!(detail.contains("its directory is owned by"), "{detail}");
            }
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
    // Nothing was lost: the owner still opens the store.
    KeyStore::open(&path, quiet()).unwrap().close().unwrap();
}

#[test]
fn init_gives_the_store_to_the_workers_user_and_admin_commands_keep_it() {
    if !is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let dir = open_dir();
    let path = dir.path().join("k.redb");
    let output = cli(&path, &["init", "--owner", "65534:65534"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    assert_eq!(metadata.mode() & 0o777, 0o600);

    // The admin (root) generates a key; the file stays the workers'.
    let generated = cli(&path, &["generate", "--name", "Production", "--json"]);
    assert!(generated.status.success());
    let line = String::from_utf8(generated.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let secret = json["key"].as_str().unwrap().to_string();
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (metadata.uid(), metadata.gid(), metadata.mode() & 0o777),
        (65534, 65534, 0o600)
    );

    // A worker running as that user verifies it.
    let output = cli_as_nobody(&path, &["--shared", "verify"], &secret);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Run again with a group mode: the existing store is kept, its mode set.
    let output = cli(&path, &["init", "--mode", "660"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!((metadata.uid(), metadata.mode() & 0o777), (65534, 0o660));
    let store = KeyStore::open(&path, quiet()).unwrap();
    assert!(
        store.verify(&secret).is_ok(),
        "init must not touch the keys"
    );
}

#[test]
fn init_in_shared_mode_gives_the_index_to_the_workers_user_too() {
    if !is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let dir = open_dir();
    let path = dir.path().join("k.redb");
    // A user alone brings their primary group (nobody's is 65534 here).
    let output = cli(
        &path,
        &["--shared", "init", "--owner", "nobody", "--mode", "660"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut index = path.as_os_str().to_owned();
    index.push(".index");
    for file in [path.clone(), index.into()] {
        let metadata = std::fs::metadata(&file).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.gid(), metadata.mode() & 0o777),
            (65534, 65534, 0o660),
            "{}",
            file.display()
        );
    }
    let generated = cli(&path, &["--shared", "generate", "--name", "k", "--json"]);
    assert!(generated.status.success());
    let json: serde_json::Value =
        serde_json::from_slice(generated.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let output = cli_as_nobody(
        &path,
        &["--shared", "verify"],
        json["key"].as_str().unwrap(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn init_names_an_unknown_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let output = cli(&path, &["init", "--owner", "no-such-user-apikeys"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-user-apikeys"));
}
