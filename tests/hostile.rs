//! Hostile input: the one table of `support/hostile_table.rs` driven through
//! the Rust API and the `apikeys` command line, each input getting its
//! defined outcome; then hostile store files (corrupt, truncated, foreign,
//! a directory), each a clear error and never a panic.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use apikeys::http::{bearer_token, Answer};
use apikeys::{Error, KeyStore, Mode, NewKey, Rejection, StoreOptions, VerifyError};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use support::hostile_table::{cases, Case, Expect, Kind};

/// A store holding one real key (`flz_sk_prod_...`, scope `contacts:*`), and
/// a well-formed key that it does not hold.
fn store_with_key(path: &Path, mode: Mode) -> (KeyStore, String, String) {
    let store = KeyStore::open(path, StoreOptions::new().mode(mode)).expect("open");
    let key = store
        .generate(&NewKey::new("hostile").env("prod").scope("contacts:*"))
        .expect("generate");
    let stranger = stranger_key();
    (store, key.secret.expose_secret().to_string(), stranger)
}

fn stranger_key() -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    apikeys::generate_with(&mut rng, "flz", Some("prod"))
        .expect("generate")
        .expose_secret()
        .to_string()
}

/// What the Rust API answers to a presented key.
fn outcome_of(result: Result<apikeys::VerifiedKey, VerifyError>) -> Expect {
    match result {
        Ok(_) => Expect::Accepted,
        Err(VerifyError::Rejected(Rejection::Malformed)) => Expect::Malformed,
        Err(VerifyError::Rejected(Rejection::NotFound)) => Expect::NotFound,
        Err(other) => panic!("unexpected outcome for a hostile input: {other:?}"),
    }
}

fn check_case_through_rust_api(store: &KeyStore, case: &Case) {
    let Ok(text) = std::str::from_utf8(&case.input) else {
        // A &str cannot carry these bytes: the host's own decoding refuses them.
        assert_eq!(case.expect, Expect::NotUtf8, "{}", case.name);
        return;
    };
    assert_ne!(case.expect, Expect::NotUtf8, "{}: is UTF-8", case.name);
    let key = match case.kind {
        Kind::Key => text,
        Kind::Header => match bearer_token(text) {
            Ok(token) => token,
            Err(_) => {
                assert_eq!(case.expect, Expect::BadHeader, "{}", case.name);
                // The HTTP answer to an unusable header is the one 401.
                assert_eq!(Answer::UNAUTHORIZED.status, 401);
                return;
            }
        },
    };
    let got = outcome_of(store.verify(key));
    assert_eq!(got, case.expect, "{}", case.name);
    let got_scoped = outcome_of(store.verify_with_scope(key, "contacts:read"));
    assert_eq!(got_scoped, case.expect, "{} (with scope)", case.name);
    assert_eq!(
        apikeys::is_well_formed(key),
        matches!(case.expect, Expect::Accepted | Expect::NotFound),
        "{}",
        case.name
    );
    if let Err(error) = store.verify(key) {
        assert_eq!(Answer::for_error(&error).status, 401, "{}", case.name);
    }
    // Revoking by the presented text: only the real key may be revoked, and
    // these inputs must not be mistaken for it.
    if case.expect != Expect::Accepted {
        match store.revoke_key(key) {
            Err(Error::InvalidArgument(_)) => assert_eq!(case.expect, Expect::Malformed),
            Err(Error::UnknownKey(_)) => assert_eq!(case.expect, Expect::NotFound),
            other => panic!("{}: revoke_key gave {other:?}", case.name),
        }
    }
}

fn hostile_table_through_rust_api(mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    hostile_table_at(&dir.path().join("keys.redb"), mode);
}

/// The table against the store at `location` (a file or a postgres:// URL).
fn hostile_table_at(location: &Path, mode: Mode) {
    let (store, valid, stranger) = store_with_key(location, mode);
    let table = cases(&valid, &stranger);
    for case in &table {
        check_case_through_rust_api(&store, case);
    }
    // Nothing in the table revoked or damaged the real key.
    assert!(store.verify(&valid).is_ok());
    store.close().expect("close");
    let store = KeyStore::open(location, StoreOptions::new().mode(mode)).expect("reopen");
    assert!(store.verify(&valid).is_ok());
    assert_eq!(store.list(&Default::default()).expect("list").len(), 1);
    eprintln!(
        "{mode:?}: {} hostile inputs through the Rust API",
        table.len()
    );
}

#[test]
fn hostile_inputs_get_their_defined_outcome_through_the_rust_api_exclusive() {
    hostile_table_through_rust_api(Mode::Exclusive);
}

#[test]
fn hostile_inputs_get_their_defined_outcome_through_the_rust_api_shared() {
    hostile_table_through_rust_api(Mode::Shared);
}

/// The same table on PostgreSQL (feature `postgres-tests`, `PG_URL`).
#[cfg(feature = "postgres-tests")]
#[test]
fn hostile_inputs_get_their_defined_outcome_through_the_rust_api_on_postgresql() {
    let server =
        std::env::var("PG_URL").expect("PG_URL is not set: this test needs a PostgreSQL server");
    let name = format!("apikeys_hostile_{}", std::process::id());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .expect("drop");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create");
    let url = format!(
        "{}/{name}",
        server.rsplit_once('/').expect("a database in PG_URL").0
    );
    hostile_table_at(Path::new(&url), Mode::Shared);
}

#[test]
fn the_table_covers_every_kind_of_hostile_input() {
    let table = cases(&fixed_valid_key(), &stranger_key());
    for expect in [
        Expect::Accepted,
        Expect::Malformed,
        Expect::NotFound,
        Expect::BadHeader,
        Expect::NotUtf8,
    ] {
        assert!(table.iter().any(|case| case.expect == expect), "{expect:?}");
    }
    assert!(table.iter().any(|case| case.input.len() >= 1 << 20));
    assert!(table.iter().any(|case| case.input.contains(&0)));
    // The table's own checksum agrees with the library on a real key.
    let key = fixed_valid_key();
    assert_eq!(
        support::hostile_table::with_checksum(&key[..key.len() - 6]),
        key
    );
}

fn fixed_valid_key() -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    apikeys::generate_with(&mut rng, "flz", Some("prod"))
        .expect("generate")
        .expose_secret()
        .to_string()
}

// ---- the command line ------------------------------------------------------

fn command_line(db: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apikeys starts");
    let mut input = child.stdin.take().expect("stdin");
    // The command reads one line: it may exit before reading a huge input.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("apikeys runs")
}

fn json_of(output: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|error| panic!("{error}: {text:?}"))
}

#[test]
fn hostile_inputs_get_their_defined_outcome_through_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.redb");
    let generated = command_line(
        &db,
        &[
            "generate",
            "--name",
            "hostile",
            "--env",
            "prod",
            "--scope",
            "contacts:*",
            "--json",
        ],
        b"",
    );
    assert!(generated.status.success(), "{generated:?}");
    let valid = json_of(&generated)["key"]
        .as_str()
        .expect("the key in the JSON")
        .to_string();
    let table = cases(&valid, &stranger_key());
    let mut tried = 0;
    for case in table.iter().filter(|case| case.kind == Kind::Key) {
        let output = command_line(&db, &["verify", "--json"], &case.input);
        let code = output.status.code();
        match case.command_line {
            Expect::Accepted => {
                assert_eq!(code, Some(0), "{}: {output:?}", case.name);
                assert_eq!(json_of(&output)["valid"], true, "{}", case.name);
            }
            Expect::Malformed | Expect::NotFound => {
                assert_eq!(code, Some(1), "{}: {output:?}", case.name);
                let reason = if case.command_line == Expect::Malformed {
                    "malformed"
                } else {
                    "not_found"
                };
                assert_eq!(json_of(&output)["reason"], reason, "{}", case.name);
            }
            Expect::NotUtf8 => {
                // Bytes that are not UTF-8 are not a key: rejected as malformed,
                // as the C ABI answers them.
                assert_eq!(code, Some(1), "{}: {output:?}", case.name);
                assert_eq!(json_of(&output)["reason"], "malformed", "{}", case.name);
            }
            Expect::BadHeader => unreachable!("key cases only"),
        }
        // The key never shows up in what the command prints about a rejection.
        if case.command_line != Expect::Accepted {
            let printed = [output.stdout.as_slice(), &output.stderr].concat();
            let printed = String::from_utf8_lossy(&printed);
            assert!(!printed.contains(&valid[12..]), "{}: {printed}", case.name);
        }
        // `revoke --key-stdin` with anything but the key revokes nothing.
        if case.command_line != Expect::Accepted {
            let revoked = command_line(&db, &["revoke", "--key-stdin"], &case.input);
            assert_eq!(revoked.status.code(), Some(2), "{}: {revoked:?}", case.name);
        }
        tried += 1;
    }
    let still = command_line(&db, &["verify"], valid.as_bytes());
    assert_eq!(still.status.code(), Some(0), "{still:?}");
    eprintln!("{tried} hostile inputs through the command line (verify and revoke --key-stdin)");
}

// ---- hostile store files -------------------------------------------------

/// Opening `path` must give a clear error, never a panic or a store.
fn open_error(path: &Path, mode: Mode) -> Error {
    match KeyStore::open(path, StoreOptions::new().mode(mode)) {
        Ok(_) => panic!("{} opened as a store", path.display()),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            error
        }
    }
}

/// A real store of 200 keys, every other one revoked, closed; returns the
/// secrets with whether each was revoked.
fn real_store(path: &Path) -> Vec<(String, bool)> {
    let store = KeyStore::open(path, StoreOptions::new()).expect("open");
    let mut secrets = Vec::new();
    for i in 0..200 {
        let key = store
            .generate(
                &NewKey::new(format!("key {i}"))
                    .scope("contacts:read")
                    .metadata("x".repeat(200)),
            )
            .expect("generate");
        let revoked = i % 2 == 1;
        if revoked {
            store.revoke(key.id()).expect("revoke");
        }
        secrets.push((key.secret.expose_secret().to_string(), revoked));
    }
    store.close().expect("close");
    secrets
}

/// How a damaged store answered.
#[derive(Debug, Default)]
struct DamageReport {
    open_errors: usize,
    verify_errors: usize,
    keys_still_right: usize,
    keys_refused_as_unknown: usize,
}

/// Opens a damaged store and presents every key. Allowed: a clear error at
/// open, an error at verify, the right answer, or refusing a live key as
/// unknown (redb does not check page checksums on ordinary reads, so damage
/// inside a live page can read as a missing key: it fails closed).
/// Never allowed: a panic, accepting a revoked key, accepting a key as
/// another one.
fn present_keys_to_damaged_store(
    path: &Path,
    mode: Mode,
    secrets: &[(String, bool)],
    report: &mut DamageReport,
) {
    let store = match KeyStore::open(path, StoreOptions::new().mode(mode)) {
        Err(error) => {
            assert!(
                matches!(
                    error,
                    Error::Corrupted(_) | Error::Io(_) | Error::Storage(_)
                ),
                "{error:?}"
            );
            report.open_errors += 1;
            return;
        }
        Ok(store) => store,
    };
    for (secret, revoked) in secrets {
        match store.verify(secret) {
            Ok(verified) => {
                assert!(!revoked, "a revoked key was accepted from a damaged store");
                assert!(verified.name().starts_with("key "), "{verified:?}");
                report.keys_still_right += 1;
            }
            Err(VerifyError::Rejected(Rejection::Revoked)) if *revoked => {
                report.keys_still_right += 1
            }
            Err(VerifyError::Rejected(Rejection::NotFound)) => report.keys_refused_as_unknown += 1,
            Err(VerifyError::Failed(_)) => report.verify_errors += 1,
            Err(other) => panic!("a stored key got {other:?} from a damaged store"),
        }
    }
    // Listing and closing answer too, with a value.
    let _ = store.list(&Default::default());
    let _ = store.close();
}

/// The storage engine's panics on damaged pages are caught by the store and
/// become errors; the default hook would still print each with a backtrace.
/// Silence those (only those) so the test output stays readable.
fn quiet_storage_engine_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let from_redb = info
            .location()
            .is_some_and(|location| location.file().contains("/redb-"));
        if !from_redb {
            default(info);
        }
    }));
}

#[test]
fn a_store_overwritten_with_random_bytes_in_the_middle_never_panics_nor_accepts_a_revoked_key() {
    quiet_storage_engine_panics();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = support::seeded_rng("corrupt store");
    let mut report = DamageReport::default();
    let rounds = 60;
    let original = dir.path().join("original.redb");
    let secrets = real_store(&original);
    let pristine = std::fs::read(&original).expect("read");
    for round in 0..rounds {
        let path = dir.path().join(format!("corrupt{round}.redb"));
        let mut bytes = pristine.clone();
        let len = bytes.len();
        let start = len / 4 + (rng.next_u64() as usize) % (len / 2);
        let span = 1 + (rng.next_u64() as usize) % 4096;
        for byte in &mut bytes[start..(start + span).min(len)] {
            *byte = rng.next_u32() as u8;
        }
        std::fs::write(&path, &bytes).expect("write");
        for mode in [Mode::Exclusive, Mode::Shared] {
            present_keys_to_damaged_store(&path, mode, &secrets, &mut report);
        }
    }
    eprintln!("{rounds} corrupted files, opened in both modes: {report:?}");
}

#[test]
fn a_truncated_store_gives_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    real_store(&path);
    let full = std::fs::read(&path).expect("read");
    for keep in [1, 7, 100, 511, 4096, full.len() / 2, full.len() - 1] {
        let cut = dir.path().join(format!("cut{keep}.redb"));
        std::fs::write(&cut, &full[..keep]).expect("write");
        for mode in [Mode::Exclusive, Mode::Shared] {
            // A file cut at any length either opens with its keys or says why not.
            if let Ok(store) = KeyStore::open(&cut, StoreOptions::new().mode(mode)) {
                let listed = store.list(&Default::default());
                assert!(listed.is_err() || listed.expect("list").len() <= 200);
                continue;
            }
            let error = open_error(&cut, mode);
            assert!(
                matches!(
                    error,
                    Error::Corrupted(_) | Error::Io(_) | Error::Storage(_)
                ),
                "cut at {keep}: {error:?}"
            );
        }
    }
}

#[test]
fn foreign_files_give_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are notes, not a key store\n".repeat(100)).expect("write");
    let one_byte = dir.path().join("one.bin");
    std::fs::write(&one_byte, [0x42]).expect("write");
    let zeros = dir.path().join("zeros.bin");
    std::fs::write(&zeros, vec![0u8; 64 * 1024]).expect("write");
    for path in [&text, &one_byte, &zeros] {
        for mode in [Mode::Exclusive, Mode::Shared] {
            let error = open_error(path, mode);
            assert!(
                matches!(error, Error::Corrupted(_)),
                "{}: {error:?}",
                path.display()
            );
        }
    }
    // Refusing a file does not write to it.
    assert!(
        std::fs::read_to_string(&text).expect("read")
            == "these are notes, not a key store\n".repeat(100),
        "the text file was changed"
    );
    assert!(
        std::fs::read(&zeros).expect("read") == vec![0u8; 64 * 1024],
        "the zeros file was changed"
    );

    // A redb file of another application: refused, and left untouched.
    let other = dir.path().join("other.redb");
    {
        let db = redb_of_another_application(&other);
        drop(db);
    }
    for mode in [Mode::Exclusive, Mode::Shared] {
        let error = open_error(&other, mode);
        assert!(matches!(error, Error::Corrupted(_)), "{error:?}");
    }
    // The other application's data is intact and nothing of ours was added.
    let db = redb::Database::open(&other).expect("the other application's file still opens");
    let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
    let names: Vec<String> = txn
        .list_tables()
        .expect("tables")
        .map(|table| redb::TableHandle::name(&table).to_string())
        .collect();
    assert_eq!(names, ["inventory"]);
    let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("inventory");
    let apples = txn
        .open_table(table)
        .expect("table")
        .get("apples")
        .expect("get")
        .map(|v| v.value());
    assert_eq!(apples, Some(3));
}

/// A redb database with a table this library does not know.
fn redb_of_another_application(path: &Path) -> redb::Database {
    let db = redb::Database::create(path).expect("create");
    let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("inventory");
    let txn = db.begin_write().expect("write");
    txn.open_table(table)
        .expect("table")
        .insert("apples", &3)
        .expect("insert");
    txn.commit().expect("commit");
    db
}

#[test]
fn an_empty_file_becomes_a_new_store() {
    // Decision: an empty file is what `touch` or a deployment script leaves
    // before the first start; redb treats it as a new database, and so do we.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.redb");
    std::fs::write(&path, b"").expect("write");
    let store = KeyStore::open(&path, StoreOptions::new()).expect("an empty file opens");
    let key = store.generate(&NewKey::new("first")).expect("generate");
    store.close().expect("close");
    let store = KeyStore::open(&path, StoreOptions::new()).expect("reopen");
    assert!(store.verify(key.secret.expose_secret()).is_ok());
}

#[test]
fn a_directory_or_a_missing_parent_gives_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [Mode::Exclusive, Mode::Shared] {
        let error = open_error(dir.path(), mode);
        assert!(
            matches!(error, Error::InvalidArgument(_) | Error::Io(_)),
            "{error:?}"
        );
        let missing = dir.path().join("no/such/dir/keys.redb");
        let error = open_error(&missing, mode);
        assert!(matches!(error, Error::Io(_)), "{error:?}");
    }
}
