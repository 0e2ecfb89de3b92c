//! Helpers shared by the adversarial suites (crash, concurrency, processes,
//! fork, hostile input): child processes that re-run the test binary in a
//! role, line protocols over pipes, seeded randomness.
#![allow(dead_code)] // each test file uses part of it

pub mod hostile_table;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Environment variable telling a re-executed test binary which role to play.
pub const ROLE_VAR: &str = "APIKEYS_TEST_ROLE";
/// Environment variable carrying the store path to a child.
pub const STORE_VAR: &str = "APIKEYS_TEST_STORE";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Starts this test binary again, running only the test `entry` (which
/// reads [`role`]), with piped stdin and stdout.
pub fn spawn_role(entry: &str, role: &str, store: &Path, extra: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([entry, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_VAR, role)
        .env(STORE_VAR, store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in extra {
        command.env(name, value);
    }
    // Starting a process can fail for a moment on a loaded machine (EAGAIN,
    // ETXTBSY); that is not what these tests are about, so try again a few
    // times, saying so, before giving up.
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Ok(child) => return child,
            Err(error) if attempt < 5 => {
                eprintln!("starting the child failed ({error}); trying again");
                std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
                attempt += 1;
            }
            Err(error) => panic!("the child test process does not start: {error}"),
        }
    }
}

/// The store path a child was given.
pub fn child_store() -> PathBuf {
    PathBuf::from(std::env::var(STORE_VAR).expect("the parent passes the store path"))
}

/// A child's side of the line protocol: every message is one line starting
/// with `@ `, written and flushed at once, so that the parent can tell them
/// from the test harness's own output and never sees half a message as whole.
pub fn send(line: &str) {
    let mut out = std::io::stdout().lock();
    // A parent that went away (or killed us) is not an error worth a panic.
    let _ = writeln!(out, "@ {line}");
    let _ = out.flush();
}

/// The parent's side: reads the child's messages.
pub struct Messages {
    reader: BufReader<ChildStdout>,
}

impl Messages {
    pub fn new(child: &mut Child) -> Messages {
        Messages {
            reader: BufReader::new(child.stdout.take().expect("piped stdout")),
        }
    }

    /// The next complete message, or `None` at end of stream. A last line
    /// cut short by a kill (no newline) is dropped: it was never fully said.
    pub fn next(&mut self) -> Option<String> {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let complete = line.strip_suffix('\n')?;
            if let Some(message) = complete.strip_prefix("@ ") {
                return Some(message.to_string());
            }
        }
    }

    /// The next message, which must exist.
    pub fn expect(&mut self) -> String {
        self.next().expect("the child sends a message")
    }
}

/// Sends a command line to a child's stdin.
pub fn tell(stdin: &mut ChildStdin, line: &str) {
    writeln!(stdin, "{line}").expect("the child reads its stdin");
    stdin.flush().expect("the child reads its stdin");
}

/// Commands a child reads from its stdin, one a line, until end of input.
pub fn commands() -> impl Iterator<Item = String> {
    std::io::stdin().lines().map_while(Result::ok)
}

/// A seeded generator: the seed comes from `TEST_SEED` when set (to replay a
/// failure), else from the OS; it is printed so a failure can be replayed.
pub fn seeded_rng(what: &str) -> ChaCha8Rng {
    let seed = match std::env::var("TEST_SEED") {
        Ok(seed) => seed.parse().expect("TEST_SEED is a number"),
        Err(_) => rand_chacha::rand_core::OsRng.next_u64(),
    };
    eprintln!("{what}: TEST_SEED={seed}");
    ChaCha8Rng::seed_from_u64(seed)
}

/// A number in `0..bound` (bound > 0); the tiny bias of a modulo does not
/// matter for picking test actions.
pub fn below(rng: &mut impl RngCore, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// An environment variable read as a count, with a default.
pub fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A well-formed key (valid checksum) that no store holds.
pub fn stray_key(vendor: &str, env: Option<&str>) -> String {
    apikeys::generate_with(&mut rand_core::OsRng, vendor, env)
        .unwrap()
        .expose_secret()
        .to_string()
}

/// `key` with its last character changed: the checksum fails.
pub fn broken_checksum(key: &str) -> String {
    let mut text = key.to_string();
    let last = text.pop().unwrap();
    text.push(if last == 'A' { 'B' } else { 'A' });
    text
}
