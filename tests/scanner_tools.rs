//! The rules `apikeys scanner-rules` prints, run in real secret scanners
//! over generated keys and near misses: secretlint (npm, with
//! `@secretlint/secretlint-rule-pattern`) and detect-secrets (PyPI, with the
//! printed plugin), side by side with `apikeys scan`.
//!
//! `scripts/install-test-deps` installs both under
//! `/var/cache/apikeys-test-deps` (`APIKEYS_SECRETLINT_DIR` and
//! `APIKEYS_DETECT_SECRETS` point elsewhere). When a scanner is missing the
//! test says so and passes, unless `APIKEYS_REQUIRE_SCANNERS` is set, as
//! `scripts/test` sets it: then a missing scanner fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use serde_json::Value;
use support::{broken_checksum, stray_key};

const BIN: &str = env!("CARGO_BIN_EXE_apikeys");
const CACHE: &str = "/var/cache/apikeys-test-deps";

/// Where a scanner is, or `None` (after saying so) when it is not installed
/// and the run does not require it.
fn tool(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{what} is not installed at {} (scripts/install-test-deps installs it)",
        path.display()
    );
    if std::env::var_os("APIKEYS_REQUIRE_SCANNERS").is_some() {
        panic!("{message}");
    }
    eprintln!("skipped: {message}");
    None
}

fn rules(format: &str, to: &Path) {
    let output = Command::new(BIN)
        .args(["scanner-rules", "--format", format])
        .output()
        .unwrap();
    assert!(output.status.success());
    std::fs::write(to, &output.stdout).unwrap();
}

/// Files of generated keys and near misses, and the lines of each that hold
/// a well-formed `flz` key, and those whose only match fails its checksum.
struct Corpus {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    keys: BTreeSet<(String, u64)>,
    bad_checksums: BTreeSet<(String, u64)>,
    secrets: Vec<String>,
}

fn corpus() -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    let prod = stray_key("flz", Some("prod"));
    let plain = stray_key("flz", None);
    let dev = stray_key("flz", Some("dev"));
    let other = stray_key("acme", Some("prod"));
    let live = [
        format!("FLZ_API_KEY={prod}"),
        "# a comment".to_string(),
        format!("  \"token\": \"{plain}\","),
        // A third key: detect-secrets reports a secret once per file.
        format!("curl -H 'Authorization: Bearer {dev}' https://api.example"),
    ];
    let near = [
        format!("bad checksum: {}", broken_checksum(&plain)),
        format!("truncated: {}", &prod[..prod.len() - 1]),
        format!("other vendor: {other}"),
        format!("inside a word: X{plain}"),
        format!("longer word: {plain}x"),
        format!("joined: {prod}_suffix"),
        format!("padded body: {plain}A"),
    ];
    let live_path = dir.path().join("live.env");
    let near_path = dir.path().join("near.txt");
    std::fs::write(&live_path, live.join("\n") + "\n").unwrap();
    std::fs::write(&near_path, near.join("\n") + "\n").unwrap();
    let name = |path: &Path| path.file_name().unwrap().to_string_lossy().into_owned();
    Corpus {
        files: vec![live_path.clone(), near_path.clone()],
        keys: [1, 3, 4].map(|line| (name(&live_path), line)).into(),
        bad_checksums: [(name(&near_path), 1)].into(),
        secrets: vec![prod, plain, dev, other],
        dir,
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Fails with the lines found, never the tool's raw output (it holds keys).
fn assert_found(tool: &str, found: &BTreeSet<(String, u64)>, expected: &BTreeSet<(String, u64)>) {
    assert_eq!(found, expected, "{tool} found other lines than expected");
}

fn assert_no_key_in(output: &Output, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains(secret.as_str())
                && !String::from_utf8_lossy(&output.stderr).contains(secret.as_str()),
            "a full key in the output"
        );
    }
}

#[test]
fn secretlint_with_the_printed_rule_finds_the_keys_and_what_only_a_checksum_rules_out() {
    let dir = std::env::var_os("APIKEYS_SECRETLINT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(CACHE).join("secretlint"));
    let Some(secretlint) = tool("secretlint", dir.join("node_modules/.bin/secretlint")) else {
        return;
    };
    let corpus = corpus();
    let config = corpus.dir.path().join(".secretlintrc.json");
    rules("secretlint", &config);
    let mut command = Command::new(&secretlint);
    command
        // The rule package is resolved from the install's node_modules.
        .current_dir(&dir)
        .arg("--secretlintrc")
        .arg(&config)
        .args(["--format", "json", "--maskSecrets"])
        .args(&corpus.files);
    let output = command.output().expect("secretlint runs");
    // 1: secrets were found.
    assert_eq!(
        output.status.code(),
        Some(1),
        "secretlint: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Its JSON carries each file's content (keys included), so it is read
    // here and never printed.
    let results: Value = serde_json::from_slice(&output.stdout).expect("secretlint's JSON");
    let mut found = BTreeSet::new();
    for file in results.as_array().unwrap() {
        let name = file_name(file["filePath"].as_str().unwrap());
        for message in file["messages"].as_array().unwrap() {
            assert_eq!(message["ruleId"], "@secretlint/secretlint-rule-pattern");
            found.insert((
                name.clone(),
                message["loc"]["start"]["line"].as_u64().unwrap(),
            ));
        }
    }
    // A regex cannot check a CRC: the bad checksum is found too. Nothing
    // else: not the truncated key, the other vendor's, or the ones inside
    // longer words.
    let expected = corpus.keys.union(&corpus.bad_checksums).cloned().collect();
    assert_found("secretlint", &found, &expected);
}

#[test]
fn detect_secrets_with_the_printed_plugin_finds_exactly_the_keys() {
    let path = std::env::var_os("APIKEYS_DETECT_SECRETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(CACHE).join("detect-secrets/bin/detect-secrets"));
    let Some(detect_secrets) = tool("detect-secrets", path) else {
        return;
    };
    let corpus = corpus();
    let plugin = corpus.dir.path().join("apikeys_flz.py");
    rules("detect-secrets", &plugin);
    let output = Command::new(&detect_secrets)
        .current_dir(corpus.dir.path())
        .arg("scan")
        .arg("--plugin")
        .arg(&plugin)
        .args(&corpus.files)
        .output()
        .expect("detect-secrets runs");
    assert!(
        output.status.success(),
        "detect-secrets: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_key_in(&output, &corpus.secrets);
    let baseline: Value = serde_json::from_slice(&output.stdout).expect("a baseline");
    let plugins: Vec<&str> = baseline["plugins_used"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(plugins.contains(&"ApikeysFlzKeyDetector"), "{plugins:?}");
    let mut found = BTreeSet::new();
    for (file, secrets) in baseline["results"].as_object().unwrap() {
        for secret in secrets.as_array().unwrap() {
            // Its other plugins (entropy, keywords) report what they like.
            if secret["type"] == "apikeys flz secret key" {
                found.insert((file_name(file), secret["line_number"].as_u64().unwrap()));
            }
        }
    }
    // The plugin checks the checksum: the bad one is left out.
    assert_found("detect-secrets", &found, &corpus.keys);
}

#[test]
fn apikeys_scan_agrees_on_the_same_corpus() {
    let corpus = corpus();
    let output = Command::new(BIN)
        .args([
            "scan",
            "--no-store",
            "--json",
            "--near-misses",
            "--vendor",
            "flz",
        ])
        .args(&corpus.files)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_no_key_in(&output, &corpus.secrets);
    let mut keys = BTreeSet::new();
    let mut near = BTreeSet::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let found: Value = serde_json::from_str(line).unwrap();
        let location = found["location"].as_str().unwrap();
        let (path, _) = location.rsplit_once(':').unwrap();
        let entry = (file_name(path), found["line"].as_u64().unwrap());
        match found["status"].as_str().unwrap() {
            "unchecked" => keys.insert(entry),
            "near_miss" => near.insert(entry),
            other => panic!("status {other}"),
        };
    }
    assert_found("apikeys scan", &keys, &corpus.keys);
    assert_found("apikeys scan (near misses)", &near, &corpus.bad_checksums);
}
