//! Leaked keys: `apikeys scan` over files and directories (checksums,
//! states read without counting a use, `--revoke` and its `leaked` event,
//! shared mode, no store, bad input, huge files), `KeyStore::peek` and
//! `KeyStore::revoke_leaked` through the Rust API, and `apikeys
//! scanner-rules` parsed as TOML, YAML and JSON with its regex checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use apikeys::{
    EventKind, KeyStore, ManualClock, Mode, NewKey, Rejection, Status, StoreOptions, Timestamp,
    VerifyError,
};
use serde_json::Value;
mod support;
use support::{broken_checksum, stray_key};

const BIN: &str = env!("CARGO_BIN_EXE_apikeys");

fn apikeys(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("APIKEYS_DB")
        .env_remove("APIKEYS_PEPPER")
        .output()
        .expect("the apikeys binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that none of `keys` appears in the command's output.
fn assert_no_key_printed(output: &Output, keys: &[&str]) {
    let (out, err) = (stdout(output), stderr(output));
    for key in keys {
        assert!(!out.contains(key), "a full key on stdout");
        assert!(!err.contains(key), "a full key on stderr");
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let db = root.join("keys.redb");
        Fixture {
            _dir: dir,
            root,
            db,
        }
    }

    fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join("tree").join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    fn tree(&self) -> PathBuf {
        self.root.join("tree")
    }
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn scan_reports_each_key_by_hint_file_and_line_with_its_state_in_the_store() {
    let fixture = Fixture::new();
    let clock = ManualClock::new(Timestamp::from_unix(1_000_000_000));
    let store = KeyStore::open(&fixture.db, StoreOptions::new().clock(clock.clone())).unwrap();
    let active = store
        .generate(&NewKey::new("Production").env("prod"))
        .unwrap();
    let revoked = store.generate(&NewKey::new("Old")).unwrap();
    store.revoke(revoked.id()).unwrap();
    let expiring = store
        .generate(&NewKey::new("Trial").expires_in(Duration::from_secs(60)))
        .unwrap();
    store.close().unwrap();
    let (a, r, e) = (
        active.secret.expose_secret(),
        revoked.secret.expose_secret(),
        expiring.secret.expose_secret(),
    );
    let unknown = stray_key("flz", None);
    fixture.write(
        "app/config.env",
        format!("# keys\nAPI_KEY={a}\nOLD=\"{r}\"\n"),
    );
    fixture.write("app/deep/trial.json", format!("{{\"key\": \"{e}\"}}\n"));
    fixture.write("notes.md", format!("someone else's: `{unknown}`\n"));
    // Let the trial key expire (the CLI reads the system clock, long after).
    let output = apikeys(
        &fixture.db,
        &["scan", fixture.tree().to_str().unwrap(), "--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_no_key_printed(&output, &[a, r, e, &unknown]);
    let found = json_lines(&output);
    let tree = fixture.tree();
    let summary: Vec<(String, String, String)> = found
        .iter()
        .map(|f| {
            (
                f["location"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
                f["hint"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = |relative: &str, line: u32| format!("{}:{line}", tree.join(relative).display());
    assert_eq!(
        summary,
        [
            (
                at("app/config.env", 2),
                "active".into(),
                active.info.hint.clone()
            ),
            (
                at("app/config.env", 3),
                "revoked".into(),
                revoked.info.hint.clone()
            ),
            (
                at("app/deep/trial.json", 1),
                "expired".into(),
                expiring.info.hint.clone()
            ),
            (
                at("notes.md", 1),
                "unknown".into(),
                format!("{}…", &unknown[..11])
            ),
        ]
    );
    assert_eq!(found[0]["id"], active.id());
    assert_eq!(found[0]["name"], "Production");
    assert_eq!(found[0]["column"], 9);
    assert_eq!(found[3]["id"], Value::Null);

    // Text output: the same, one line each.
    let output = apikeys(&fixture.db, &["scan", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "{}: {} active id={} name=\"Production\"",
            at("app/config.env", 2),
            active.info.hint,
            active.id()
        )),
        "{text}"
    );
    assert_no_key_printed(&output, &[a, r, e, &unknown]);

    // No live key: exit 0.
    std::fs::remove_file(tree.join("app/config.env")).unwrap();
    fixture.write("app/config.env", format!("OLD={r}\n"));
    let output = apikeys(&fixture.db, &["scan", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn scanning_counts_no_use_and_logs_no_event() {
    let fixture = Fixture::new();
    let store = KeyStore::open(&fixture.db, StoreOptions::new()).unwrap();
    let used = store.generate(&NewKey::new("Used")).unwrap();
    let revoked = store.generate(&NewKey::new("Revoked")).unwrap();
    store.verify(used.secret.expose_secret()).unwrap();
    store.revoke(revoked.id()).unwrap();
    assert!(store.verify(revoked.secret.expose_secret()).is_err());
    store.close().unwrap();
    fixture.write(
        "leak.txt",
        format!(
            "{} {}\n",
            used.secret.expose_secret(),
            revoked.secret.expose_secret()
        ),
    );
    let before = apikeys(&fixture.db, &["list", "--json"]);
    let events_before = apikeys(&fixture.db, &["events", "--json"]);
    for _ in 0..3 {
        let output = apikeys(&fixture.db, &["scan", fixture.tree().to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
    }
    assert_eq!(
        stdout(&apikeys(&fixture.db, &["list", "--json"])),
        stdout(&before)
    );
    assert_eq!(
        stdout(&apikeys(&fixture.db, &["events", "--json"])),
        stdout(&events_before)
    );
    let listed: Value = serde_json::from_str(&stdout(&before)).unwrap();
    assert_eq!(listed[0]["use_count"], 1);
    assert_eq!(listed[1]["rejected_count"], 1);
}

#[test]
fn peek_reads_a_keys_state_without_counting_a_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("k.redb"), StoreOptions::new()).unwrap();
    let key = store.generate(&NewKey::new("A")).unwrap();
    let secret = key.secret.expose_secret();
    store.verify(secret).unwrap();
    let info = store.peek(secret).unwrap().unwrap();
    assert_eq!((info.status, info.use_count), (Status::Active, 1));
    store.revoke(key.id()).unwrap();
    for _ in 0..5 {
        let info = store.peek(secret).unwrap().unwrap();
        assert_eq!(info.status, Status::Revoked);
    }
    store.flush().unwrap();
    let info = store.get(key.id()).unwrap();
    assert_eq!((info.use_count, info.rejected_count), (1, 0));
    assert_eq!(store.events(0, 100).unwrap().len(), 2, "created, revoked");
    assert!(store.peek(&stray_key("flz", None)).unwrap().is_none());
    assert!(matches!(
        store.peek("flz_sk_not-a-key"),
        Err(apikeys::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.peek(&broken_checksum(secret)),
        Err(apikeys::Error::InvalidArgument(_))
    ));
}

#[test]
fn near_misses_are_counted_and_listed_on_request_and_never_count_as_live() {
    let fixture = Fixture::new();
    KeyStore::open(&fixture.db, StoreOptions::new())
        .unwrap()
        .close()
        .unwrap();
    let key = stray_key("flz", Some("prod"));
    let other = stray_key("acme", None);
    let lines = [
        format!("bad checksum {}", broken_checksum(&key)),
        format!("truncated {}", &key[..key.len() - 1]),
        format!("longer word {key}x"),
        format!("prefixed word X{key}"),
        format!("joined by underscore {key}_tail"),
        format!("another vendor {other}"),
    ];
    fixture.write("near.txt", lines.join("\n"));
    let tree = fixture.tree();
    let output = apikeys(&fixture.db, &["scan", tree.to_str().unwrap(), "--json"]);
    // The other vendor's key is the only key: it is not in this store.
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let found = json_lines(&output);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["line"], 6);
    assert_eq!(found[0]["status"], "unknown");
    assert!(
        stderr(&output).contains("near misses: 1"),
        "{}",
        stderr(&output)
    );

    let output = apikeys(
        &fixture.db,
        &[
            "scan",
            tree.to_str().unwrap(),
            "--json",
            "--near-misses",
            "--vendor",
            "flz",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    let found = json_lines(&output);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["line"], 1);
    assert_eq!(found[0]["status"], "near_miss");
    assert_eq!(found[0]["checksum_ok"], false);
    assert_no_key_printed(&output, &[&key, &broken_checksum(&key), &other]);
}

#[test]
fn revoke_revokes_live_keys_with_a_leaked_event_naming_the_file() {
    let fixture = Fixture::new();
    let store = KeyStore::open(&fixture.db, StoreOptions::new()).unwrap();
    let live = store.generate(&NewKey::new("Live")).unwrap();
    let gone = store.generate(&NewKey::new("Gone")).unwrap();
    store.revoke(gone.id()).unwrap();
    store.close().unwrap();
    let secret = live.secret.expose_secret();
    let first = fixture.write("a/first.rs", format!("\n\nlet key = \"{secret}\";\n"));
    fixture.write(
        "b/again.txt",
        format!("{secret}\n{}\n", gone.secret.expose_secret()),
    );
    let tree = fixture.tree();
    let output = apikeys(&fixture.db, &["scan", "--revoke", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].ends_with(", revoked now"), "{text}");
    assert!(lines[0].contains(" active "), "{text}");
    assert!(
        lines[1].contains(&format!(
            "revoked now (found first at {}:3)",
            first.display()
        )),
        "{text}"
    );
    assert!(
        lines[2].contains(" revoked ") && !lines[2].contains("now"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("revoked now: 1"),
        "{}",
        stderr(&output)
    );
    assert_no_key_printed(&output, &[secret]);

    let events: Value =
        serde_json::from_str(&stdout(&apikeys(&fixture.db, &["events", "--json"]))).unwrap();
    let events = events.as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["created", "created", "revoked", "revoked", "leaked"]
    );
    assert_eq!(events[4]["key_id"], live.id());
    assert_eq!(
        events[4]["location"],
        format!("{}:3", std::path::absolute(&first).unwrap().display())
    );
    let text = stdout(&apikeys(&fixture.db, &["events"]));
    assert!(text.contains("leaked location="), "{text}");

    // The store refuses it now; a second scan finds nothing live.
    let store = KeyStore::open(&fixture.db, StoreOptions::new()).unwrap();
    assert!(matches!(
        store.verify(secret),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
    store.close().unwrap();
    let output = apikeys(&fixture.db, &["scan", "--revoke", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn revoke_leaked_through_the_api_writes_both_events_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("k.redb"), StoreOptions::new()).unwrap();
    let key = store.generate(&NewKey::new("A")).unwrap();
    let secret = key.secret.expose_secret();
    assert!(store.revoke_leaked(secret, "ci/log.txt:7\n").unwrap());
    assert!(!store.revoke_leaked(secret, "elsewhere:1").unwrap());
    let kinds: Vec<EventKind> = store
        .events(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::Revoked,
            EventKind::Leaked {
                location: "ci/log.txt:7?".into()
            }
        ]
    );
    assert!(matches!(
        store.revoke_leaked(&stray_key("flz", None), "x:1"),
        Err(apikeys::Error::UnknownKey(_))
    ));
    assert!(matches!(
        store.revoke_leaked("nope", "x:1"),
        Err(apikeys::Error::InvalidArgument(_))
    ));
}

#[test]
fn scan_revokes_in_shared_mode_beside_a_running_worker() {
    let fixture = Fixture::new();
    let worker = KeyStore::open(&fixture.db, StoreOptions::new().mode(Mode::Shared)).unwrap();
    let key = worker.generate(&NewKey::new("Worker's")).unwrap();
    let secret = key.secret.expose_secret();
    worker.verify(secret).unwrap();
    fixture.write("leak.log", format!("Authorization: Bearer {secret}\n"));
    let tree = fixture.tree();
    // Exclusive mode is refused while the worker holds the store.
    let output = apikeys(&fixture.db, &["scan", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("shared mode"),
        "{}",
        stderr(&output)
    );
    let output = apikeys(
        &fixture.db,
        &["--shared", "scan", "--revoke", tree.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stdout(&output).contains("revoked now"));
    assert!(matches!(
        worker.verify(secret),
        Err(VerifyError::Rejected(Rejection::Revoked))
    ));
    worker.close().unwrap();
}

#[test]
fn without_a_store_every_well_formed_key_counts_as_live() {
    let fixture = Fixture::new();
    let key = stray_key("flz", None);
    fixture.write("x.txt", format!("{key}\n{}\n", broken_checksum(&key)));
    let tree = fixture.tree();
    let output = apikeys(&fixture.db, &["scan", "--no-store", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains(":1: flz_sk_"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains(" unchecked"));
    assert_eq!(stdout(&output).lines().count(), 1);
    assert!(!fixture.db.exists());
    // A store that is not there is an error, and is not created.
    let output = apikeys(&fixture.db, &["scan", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--no-store"),
        "{}",
        stderr(&output)
    );
    assert!(!fixture.db.exists());
    // Nothing well-formed: 0.
    std::fs::write(tree.join("x.txt"), broken_checksum(&key)).unwrap();
    let output = apikeys(&fixture.db, &["scan", "--no-store", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    // --revoke needs a store.
    let output = apikeys(
        &fixture.db,
        &["scan", "--no-store", "--revoke", tree.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn bad_input_is_skipped_or_reported_and_the_rest_is_scanned() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    let key = stray_key("flz", None);
    // Invalid UTF-8 around a key, and a file name that is not UTF-8.
    let mut bytes = b"\xff\xfe garbage \xc3(".to_vec();
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(b"\xff\n");
    fixture.write("latin1.txt", &bytes);
    let odd_name = std::ffi::OsStr::from_bytes(b"odd-\xff.txt");
    std::fs::write(fixture.tree().join(odd_name), format!("{key}\n")).unwrap();
    // A file name that would forge an output line.
    let forged = "evil\nfake.txt:9: flz_sk_fake… active";
    std::fs::write(fixture.tree().join(forged), format!("{key}\n")).unwrap();
    // A binary file holding a key is skipped.
    let mut binary = vec![0u8; 16];
    binary.extend_from_slice(key.as_bytes());
    fixture.write("blob.bin", binary);
    // Symbolic links inside the tree: a loop and one to a file; neither followed.
    std::os::unix::fs::symlink("..", fixture.tree().join("loop")).unwrap();
    std::os::unix::fs::symlink("latin1.txt", fixture.tree().join("link.txt")).unwrap();
    let tree = fixture.tree();
    let output = apikeys(&fixture.db, &["scan", "--no-store", tree.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("latin1.txt:1: flz_sk_"), "{text}");
    assert!(
        text.contains("evil?fake.txt:9: flz_sk_fake… active:1: flz_sk_"),
        "{text}"
    );
    assert!(text.contains("odd-\u{fffd}.txt:1: flz_sk_"), "{text}");
    assert!(
        stderr(&output).contains("1 binary and 2 other entries skipped"),
        "{}",
        stderr(&output)
    );
    assert_no_key_printed(&output, &[&key]);

    // Paths that cannot be read: reported, the rest scanned, exit 2 when
    // nothing live was found, 1 when something was.
    let a = fixture.root.join("a");
    let b = fixture.root.join("b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let missing = fixture.root.join("missing");
    let output = apikeys(
        &fixture.db,
        &[
            "scan",
            "--no-store",
            a.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(&format!("{}: ", a.display())), "{err}");
    assert!(err.contains(&format!("{}: ", missing.display())), "{err}");
    let output = apikeys(
        &fixture.db,
        &[
            "scan",
            "--no-store",
            missing.to_str().unwrap(),
            tree.join("link.txt").to_str().unwrap(),
        ],
    );
    // A link named on the command line is followed.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[test]
fn a_huge_one_line_file_is_scanned_in_bounded_memory() {
    let fixture = Fixture::new();
    let key = stray_key("flz", Some("prod"));
    let path = fixture.root.join("huge.min.js");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let filler = [b'a'; 1 << 16];
        for _ in 0..(48 << 20) / filler.len() {
            file.write_all(&filler).unwrap();
            // Spaces every 64 KiB, so the key after them starts a word.
            file.write_all(b" ").unwrap();
        }
        file.write_all(key.as_bytes()).unwrap();
        file.write_all(b";").unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let mut child = Command::new(BIN)
        .args(["scan", "--no-store", "--json"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The child's peak resident memory (VmHWM), read while it runs: its own
    // address space's, unlike the rusage of a child started by vfork, which
    // counts this test process's memory from before the exec.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
                let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(peak_kib > 0, "the child's memory was read");
    let found: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(found["line"], 1);
    assert_eq!(found["column"].as_u64().unwrap(), size - key.len() as u64);
    // Far below the 48 MiB file.
    assert!(peak_kib < 24 * 1024, "peak resident memory {peak_kib} KiB");
}

fn rules(format: &str, extra: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(["scanner-rules", "--format", format])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Keys a rule for vendor `flz` must find, and strings it must not.
fn probes() -> (Vec<String>, Vec<String>) {
    let key = stray_key("flz", Some("prod"));
    let plain = stray_key("flz", None);
    let hits = vec![
        key.clone(),
        plain.clone(),
        format!("\"{key}\""),
        format!("x={plain};"),
    ];
    let misses = vec![
        key[..key.len() - 1].to_string(),
        format!("{key}x"),
        format!("X{plain}"),
        format!("{plain}_"),
        stray_key("acme", None),
    ];
    (hits, misses)
}

fn assert_regex_finds_keys_and_no_near_miss(regex: &str) {
    let regex = regex::Regex::new(regex).unwrap();
    let (hits, misses) = probes();
    for hit in &hits {
        assert!(regex.is_match(hit), "{regex} misses a key");
    }
    for miss in &misses {
        assert!(!regex.is_match(miss), "{regex} matches a near miss");
    }
}

#[test]
fn gitleaks_rules_are_toml_with_one_rule_whose_regex_finds_keys() {
    let text = rules("gitleaks", &[]);
    let config: toml::Table = text.parse().expect("valid TOML");
    assert_eq!(config["extend"]["useDefault"].as_bool(), Some(true));
    let rule = &config["rules"].as_array().unwrap()[0];
    assert_eq!(rule["id"].as_str(), Some("apikeys-flz-secret-key"));
    assert_eq!(
        rule["keywords"].as_array().unwrap()[0].as_str(),
        Some("flz_sk_")
    );
    assert!(rule["description"].as_str().unwrap().contains("CRC-32"));
    let regex = rule["regex"].as_str().unwrap();
    assert_eq!(regex, apikeys::scan::KEY_REGEX.replace("[a-z]{2,8}", "flz"));
    assert_regex_finds_keys_and_no_near_miss(regex);
}

#[test]
fn trufflehog_rules_are_yaml_with_a_detector_capturing_the_key() {
    let yaml = rules(
        "trufflehog",
        &["--vendor", "acme", "--env", "prod", "--env", "dev"],
    );
    assert!(yaml.contains("CRC-32"), "the checksum is noted");
    let docs = yaml_rust2::YamlLoader::load_from_str(&yaml).expect("valid YAML");
    let detector = &docs[0]["detectors"][0];
    assert_eq!(detector["name"].as_str(), Some("apikeys-acme-secret-key"));
    assert_eq!(detector["keywords"][0].as_str(), Some("acme_sk_"));
    let regex = regex::Regex::new(detector["regex"]["key"].as_str().unwrap()).unwrap();
    let key = stray_key("acme", Some("dev"));
    let text = format!("token: {key}\n");
    assert_eq!(&regex.captures(&text).unwrap()[1], key);
    for miss in [
        stray_key("acme", Some("stag")),
        stray_key("acme", None),
        stray_key("flz", Some("dev")),
    ] {
        assert!(!regex.is_match(&miss));
    }
}

#[test]
fn github_pattern_is_the_json_body_of_the_api_call_and_its_parts_find_keys() {
    let output = Command::new(BIN)
        .args(["scanner-rules", "--format", "github"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stderr(&output).contains("CRC-32"), "the checksum is noted");
    let body: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let patterns = body["patterns"].as_array().unwrap();
    assert_eq!(patterns.len(), 1);
    let pattern = patterns[0].as_object().unwrap();
    let mut fields: Vec<&str> = pattern.keys().map(String::as_str).collect();
    fields.sort();
    // Only fields of the API's custom pattern to create.
    assert_eq!(
        fields,
        ["end_delimiter", "name", "pattern", "start_delimiter"]
    );
    let whole = format!(
        "(?:{})({})(?:{})",
        pattern["start_delimiter"].as_str().unwrap(),
        pattern["pattern"].as_str().unwrap(),
        pattern["end_delimiter"].as_str().unwrap()
    );
    let regex = regex::Regex::new(&whole).unwrap();
    let (hits, misses) = probes();
    for hit in &hits {
        assert!(regex.is_match(hit), "misses a key");
    }
    for miss in &misses {
        assert!(!regex.is_match(miss), "matches a near miss");
    }
}

#[test]
fn secretlint_and_detect_secrets_outputs_parse() {
    let config: Value = serde_json::from_str(&rules("secretlint", &[])).expect("valid JSON");
    let rule = &config["rules"][0];
    assert_eq!(rule["id"], "@secretlint/secretlint-rule-pattern");
    let pattern = rule["options"]["patterns"][0]["patterns"][0]
        .as_str()
        .unwrap();
    let regex = pattern
        .strip_prefix('/')
        .unwrap()
        .strip_suffix('/')
        .unwrap();
    assert_regex_finds_keys_and_no_near_miss(regex);
    let plugin = rules("detect-secrets", &[]);
    assert!(plugin.contains("class ApikeysFlzKeyDetector(RegexBasedDetector):"));
}

#[test]
fn scanner_rules_refuse_a_bad_vendor_or_env() {
    for args in [["--vendor", "Flz"], ["--env", "Prod"], ["--vendor", "a"]] {
        let output = Command::new(BIN)
            .args(["scanner-rules", "--format", "gitleaks"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("expected"), "{}", stderr(&output));
    }
}

#[test]
fn the_matcher_finds_what_the_readme_regex_finds_with_ascii_word_boundaries() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let regex = regex::bytes::Regex::new(&format!("(?-u){}", apikeys::scan::KEY_REGEX)).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let keys = [
        stray_key("flz", None),
        stray_key("flz", Some("prod")),
        stray_key("abcdefgh", Some("a1b2c3d4")),
        stray_key("ab", Some("x")),
    ];
    let pieces: [&[u8]; 14] = [
        b"_",
        b"sk",
        b"_sk_",
        b"a",
        b"Z",
        b"0",
        b"\xc3\xa9",
        b" ",
        b"\n",
        b"prod_",
        b"flz",
        b"\xff",
        b"-",
        b"abcdefghi",
    ];
    let mut matched = 0;
    for round in 0..10_000 {
        let mut text = Vec::new();
        for _ in 0..(1 + rng.next_u32() % 6) {
            match rng.next_u32() % 4 {
                0 => {
                    let key = keys[(rng.next_u32() % 4) as usize].as_bytes();
                    // Sometimes a piece of a key only.
                    let cut = if rng.next_u32() % 3 == 0 {
                        (rng.next_u32() as usize) % key.len()
                    } else {
                        key.len()
                    };
                    text.extend_from_slice(&key[..cut]);
                }
                _ => text.extend_from_slice(pieces[(rng.next_u32() % 14) as usize]),
            }
        }
        let expected: Vec<_> = regex.find_iter(&text).map(|m| m.range()).collect();
        matched += expected.len();
        assert_eq!(
            apikeys::scan::candidates(&text, None),
            expected,
            "round {round}: {:?}",
            String::from_utf8_lossy(&text)
        );
    }
    assert!(matched > 1000, "the rounds hold keys: {matched}");
}
