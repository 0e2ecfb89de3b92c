//! Security properties: the store file holds no key material, it is created
//! owner-only, secrets print redacted, and the secret type wipes itself.
//! See SECURITY.md for the threat model these back.

use std::path::Path;
use std::time::Duration;

use apikeys::{KeyStore, Mode, NewKey, SecretKey, StoreOptions};

/// Every file under `dir`, concatenated.
fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).expect("read"));
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Generates, rotates, verifies, revokes (by id and by key), flushes and
/// closes; returns every secret that ever existed.
fn exercise(path: &Path, options: StoreOptions) -> Vec<String> {
    let store = KeyStore::open(path, options).expect("open");
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for i in 0..30 {
        let mut request = NewKey::new(format!("key {i}"))
            .scope("contacts:read")
            .owner("acct_1");
        if i % 2 == 0 {
            request = request.env("prod");
        }
        let key = store.generate(&request).expect("generate");
        ids.push(key.id().to_string());
        secrets.push(key.secret.expose_secret().to_string());
    }
    for id in &ids[..10] {
        let new = store.rotate(id, Duration::from_secs(3600)).expect("rotate");
        secrets.push(new.secret.expose_secret().to_string());
    }
    for secret in &secrets {
        let _ = store.verify(secret);
    }
    for id in &ids[10..15] {
        store.revoke(id).expect("revoke");
    }
    for secret in &secrets[15..20] {
        store.revoke_key(secret).expect("revoke by key");
    }
    // Presenting revoked keys writes suspicious-use events: still no secret.
    for secret in &secrets[10..20] {
        let _ = store.verify(secret);
    }
    store.flush().expect("flush");
    store.close().expect("close");
    secrets
}

fn assert_no_key_material(bytes: &[u8], secrets: &[String]) {
    assert!(!bytes.is_empty());
    let mut windows = 0;
    for secret in secrets {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "a whole key is in the file"
        );
        let body = &secret.as_bytes()[secret.len() - apikeys::BODY_LEN..];
        for window in body.windows(8) {
            assert!(
                !contains(bytes, window),
                "8 characters of a key body are in the file"
            );
            windows += 1;
        }
    }
    eprintln!(
        "{} keys, {windows} body fragments searched: none in the file",
        secrets.len()
    );
}

#[test]
fn the_store_file_holds_no_key_material_in_either_mode() {
    for (mode, pepper) in [
        (Mode::Exclusive, None),
        (Mode::Shared, None),
        (Mode::Exclusive, Some("Zx81qLmv-deployment-spice")),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = StoreOptions::new().mode(mode);
        if let Some(pepper) = pepper {
            options = options.pepper(pepper);
        }
        let secrets = exercise(&dir.path().join("keys.redb"), options);
        let bytes = all_bytes_under(dir.path());
        assert_no_key_material(&bytes, &secrets);
        if let Some(pepper) = pepper {
            assert!(
                !contains(&bytes, pepper.as_bytes()),
                "the pepper is in the file"
            );
        }
    }
}

#[test]
fn the_command_line_prints_no_key_except_at_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.redb");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_apikeys"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("apikeys runs");
        assert!(output.status.success(), "{output:?}");
        [output.stdout, output.stderr].concat()
    };
    let generated = String::from_utf8(run(&[
        "generate", "--name", "ci", "--env", "prod", "--json",
    ]))
    .expect("utf-8");
    let key: serde_json::Value =
        serde_json::from_str(generated.lines().next().expect("a line")).expect("json");
    let secret = key["key"].as_str().expect("key").to_string();
    let id = key["id"].as_str().expect("id").to_string();
    run(&["rotate", &id, "--grace", "1h"]);
    run(&["revoke", &id]);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["events"],
        &["events", "--json"],
    ] {
        let printed = run(args);
        assert_no_key_material(&printed, std::slice::from_ref(&secret));
    }
    assert_no_key_material(&all_bytes_under(dir.path()), &[secret]);
}

#[test]
fn the_store_file_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [Mode::Exclusive, Mode::Shared] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.redb");
        KeyStore::open(&path, StoreOptions::new().mode(mode))
            .expect("open")
            .close()
            .expect("close");
        let permissions = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(permissions & 0o777, 0o600, "{mode:?}: {permissions:o}");
    }
}

#[test]
fn secrets_print_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::open(
        dir.path().join("keys.redb"),
        StoreOptions::new().pepper("hunter2"),
    )
    .expect("open");
    let key = store
        .generate(&NewKey::new("printed").env("prod"))
        .expect("generate");
    let secret = key.secret.expose_secret().to_string();
    let body = &secret[secret.len() - apikeys::BODY_LEN..];
    let verified = store.verify(&secret).expect("verify");
    let printed = [
        format!("{:?}", key.secret),
        format!("{}", key.secret),
        format!("{key:?}"),
        format!("{:?}", key.info),
        format!("{verified:?}"),
        format!("{store:?}"),
        format!("{:?}", StoreOptions::new().pepper("hunter2")),
    ];
    for text in &printed {
        // Nothing beyond the four characters of the public hint.
        for window in body.as_bytes().windows(5) {
            assert!(
                !contains(text.as_bytes(), window),
                "key material printed: {text}"
            );
        }
        assert!(!text.contains("hunter2"), "the pepper printed: {text}");
    }
    assert!(
        printed[0].contains("flz_sk_prod_"),
        "the redacted form keeps the prefix: {}",
        printed[0]
    );
    // Errors about a presented key never repeat it.
    let wrong = format!("{}x", &secret[..secret.len() - 1]);
    for error in [
        store.revoke_key(&wrong).unwrap_err().to_string(),
        format!("{:?}", store.verify(&wrong)),
    ] {
        assert!(!error.contains(&wrong[12..]), "{error}");
    }
}

#[test]
fn the_secret_type_wipes_itself() {
    // Soundly, without reading freed memory: the type carries zeroize's
    // `ZeroizeOnDrop` marker (implemented only by the derive that calls
    // `zeroize()` in `Drop`), and its `zeroize()` clears the key text.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<SecretKey>();

    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::open(dir.path().join("keys.redb"), StoreOptions::new()).expect("open");
    let key = store.generate(&NewKey::new("wiped")).expect("generate");
    let mut copy = key.secret.clone();
    assert_eq!(copy.expose_secret(), key.secret.expose_secret());
    zeroize::Zeroize::zeroize(&mut copy);
    assert_eq!(copy.expose_secret(), "", "zeroize() left key text behind");
}
