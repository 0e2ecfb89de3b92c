//! `apikeys scan PATH…`: finds keys in files and directories, checks each
//! checksum offline, tells for each whether it is live in the store (read
//! with `KeyStore::peek`, which counts no use), and with `--revoke` revokes
//! the live ones with a `leaked` event naming the file and line.
//!
//! Walking: directories are read recursively in name order; symbolic links
//! met inside a directory are not followed (no loops, no scanning outside
//! the tree), those named on the command line are; anything but regular
//! files and directories (FIFOs, sockets, devices) is skipped, as are
//! binary files (a NUL byte in the first 8 KiB). Each file is read through
//! a window of about 64 KiB, whatever its size or line lengths.
//!
//! Output: one line per match, `path:line: hint status …`, never the key.
//! Matches whose checksum fails (near misses) are not keys: they are counted
//! in the summary and listed only with `--near-misses`.
//!
//! Exit status: 1 when a live key was found (active in the store before the
//! scan, even if `--revoke` revoked it: the file still holds it), or, with
//! `--no-store`, when any well-formed key was found; otherwise 2 when some
//! path could not be read; otherwise 0.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use apikeys::scan::{scan_reader, Candidate, Scanned};
use apikeys::{Error, KeyStore, Status};
use clap::Args;
use serde_json::{json, Value};

use super::{Cli, Outcome};

#[derive(Args)]
pub(super) struct ScanArgs {
    /// Files and directories to scan.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Revoke every live key found, logging where it was found.
    #[arg(long, conflicts_with = "no_store")]
    revoke: bool,
    /// Check checksums only, without a store: every well-formed key counts as live.
    #[arg(long)]
    no_store: bool,
    /// Only keys of this vendor prefix (default: every vendor).
    #[arg(long)]
    vendor: Option<String>,
    /// Also list matches of the regex whose checksum fails.
    #[arg(long)]
    near_misses: bool,
    /// One JSON object per match, one per line.
    #[arg(long)]
    json: bool,
}

/// How a match stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Its checksum fails: not a key.
    NearMiss,
    /// Well-formed; no store was asked.
    Unchecked,
    /// Well-formed; not in this store.
    Unknown,
    /// In the store, in this state before the scan touched it.
    Stored(Status),
}

impl Standing {
    fn as_str(self) -> &'static str {
        match self {
            Standing::NearMiss => "near_miss",
            Standing::Unchecked => "unchecked",
            Standing::Unknown => "unknown",
            Standing::Stored(status) => status.as_str(),
        }
    }
}

#[derive(Default)]
struct Totals {
    files: u64,
    binary: u64,
    skipped: u64,
    errors: u64,
    near_misses: u64,
    by_standing: HashMap<&'static str, u64>,
    live: u64,
    revoked: u64,
}

struct Scan<'a> {
    args: &'a ScanArgs,
    store: Option<KeyStore>,
    /// Keys this scan revoked: id -> where it was revoked for.
    revoked_here: HashMap<String, String>,
    totals: Totals,
    out: std::io::StdoutLock<'static>,
}

pub(super) fn run(cli: &Cli, args: &ScanArgs) -> Result<Outcome, Error> {
    if let Some(vendor) = &args.vendor {
        if !apikeys::is_vendor(vendor) {
            return Err(Error::InvalidArgument(format!(
                "vendor {vendor:?}: expected 2 to 8 of [a-z]"
            )));
        }
    }
    let store = if args.no_store {
        None
    } else {
        // Never create a store here: a mistyped --db must not look like a
        // store without keys.
        if !cli.db.exists() {
            return Err(Error::InvalidArgument(format!(
                "no store at {}: give it with --db (or APIKEYS_DB), or pass --no-store to check checksums only",
                cli.db.display()
            )));
        }
        Some(super::open(cli)?)
    };
    let mut scan = Scan {
        args,
        store,
        revoked_here: HashMap::new(),
        totals: Totals::default(),
        out: std::io::stdout().lock(),
    };
    for path in &args.paths {
        scan.walk(path)?;
    }
    let _ = scan.out.flush();
    let totals = &scan.totals;
    let mut standings: Vec<_> = totals.by_standing.iter().collect();
    standings.sort();
    let keys = if standings.is_empty() {
        "none".to_string()
    } else {
        standings
            .iter()
            .map(|(name, count)| format!("{count} {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "scanned {} files ({} binary and {} other entries skipped, {} unreadable); keys: {keys}; near misses: {}{}",
        totals.files,
        totals.binary,
        totals.skipped,
        totals.errors,
        totals.near_misses,
        if args.revoke {
            format!("; revoked now: {}", totals.revoked)
        } else {
            String::new()
        }
    );
    let (live, errors) = (totals.live, totals.errors);
    if let Some(store) = scan.store.take() {
        store.close()?;
    }
    if live > 0 {
        Ok(Outcome::Rejected)
    } else if errors > 0 {
        Err(Error::Io(std::io::Error::other(format!(
            "{errors} paths could not be scanned (see above); the rest was"
        ))))
    } else {
        Ok(Outcome::Done)
    }
}

/// A path as printed: control characters (a newline or a terminal escape in
/// a file name) become `?`, so that a name cannot forge output lines.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Scan<'_> {
    /// Scans a path named on the command line (symbolic links followed),
    /// then everything below it (links not followed).
    fn walk(&mut self, top: &Path) -> Result<(), Error> {
        let mut pending = vec![(top.to_path_buf(), true)];
        while let Some((path, named)) = pending.pop() {
            let metadata = if named {
                std::fs::metadata(&path)
            } else {
                std::fs::symlink_metadata(&path)
            };
            let metadata = match metadata {
                Ok(metadata) => metadata,
                Err(error) => {
                    self.unreadable(&path, &error);
                    continue;
                }
            };
            if metadata.is_dir() {
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(error) => {
                        self.unreadable(&path, &error);
                        continue;
                    }
                };
                let mut children = Vec::new();
                for entry in entries {
                    match entry {
                        Ok(entry) => children.push(entry.path()),
                        Err(error) => self.unreadable(&path, &error),
                    }
                }
                children.sort();
                // Popped in name order.
                pending.extend(children.into_iter().rev().map(|child| (child, false)));
            } else if metadata.is_file() {
                self.file(&path)?;
            } else {
                self.totals.skipped += 1;
            }
        }
        Ok(())
    }

    fn unreadable(&mut self, path: &Path, error: &std::io::Error) {
        self.totals.errors += 1;
        eprintln!(
            "apikeys scan: {}: {error}",
            printable(&path.display().to_string())
        );
    }

    fn file(&mut self, path: &Path) -> Result<(), Error> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) => {
                self.unreadable(path, &error);
                return Ok(());
            }
        };
        // Candidates are handled as they come, but store errors end the
        // scan: they are kept for after the read.
        let mut failure = None;
        let outcome = scan_reader(file, |candidate| {
            if failure.is_none() {
                if let Err(error) = self.candidate(path, &candidate) {
                    failure = Some(error);
                }
            }
        });
        if let Some(error) = failure {
            return Err(error);
        }
        match outcome {
            Ok(Scanned::Text { .. }) => self.totals.files += 1,
            Ok(Scanned::Binary) => self.totals.binary += 1,
            Err(error) => self.unreadable(path, &error),
        }
        Ok(())
    }

    fn candidate(&mut self, path: &Path, candidate: &Candidate) -> Result<(), Error> {
        let key = candidate.text.expose_secret();
        // A match starts with its vendor and "_" (no vendor has one).
        if let Some(vendor) = &self.args.vendor {
            if !key
                .strip_prefix(vendor.as_str())
                .is_some_and(|rest| rest.starts_with('_'))
            {
                return Ok(());
            }
        }
        let location = printable(&format!("{}:{}", path.display(), candidate.line));
        if !candidate.well_formed {
            self.totals.near_misses += 1;
            if self.args.near_misses {
                self.report(candidate, &location, Standing::NearMiss, None, None);
            }
            return Ok(());
        }
        let mut detail = None;
        let mut revoked_now = None;
        let standing = match &self.store {
            None => Standing::Unchecked,
            Some(store) => match store.peek(key)? {
                None => Standing::Unknown,
                Some(info) => {
                    let mut standing = Standing::Stored(info.status);
                    if let Some(first) = self.revoked_here.get(&info.id) {
                        // Revoked by this scan at an earlier match: it was live.
                        standing = Standing::Stored(Status::Active);
                        revoked_now = Some(first.clone());
                    } else if info.status == Status::Active && self.args.revoke {
                        let absolute =
                            std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                        let event_location = format!("{}:{}", absolute.display(), candidate.line);
                        store.revoke_leaked(key, &event_location)?;
                        self.totals.revoked += 1;
                        self.revoked_here.insert(info.id.clone(), location.clone());
                        revoked_now = Some(location.clone());
                    }
                    detail = Some(info);
                    standing
                }
            },
        };
        if matches!(
            standing,
            Standing::Unchecked | Standing::Stored(Status::Active)
        ) {
            self.totals.live += 1;
        }
        *self
            .totals
            .by_standing
            .entry(standing.as_str())
            .or_default() += 1;
        self.report(
            candidate,
            &location,
            standing,
            detail.as_ref(),
            revoked_now.as_deref(),
        );
        Ok(())
    }

    fn report(
        &mut self,
        candidate: &Candidate,
        location: &str,
        standing: Standing,
        info: Option<&apikeys::KeyInfo>,
        revoked_now: Option<&str>,
    ) {
        let hint = candidate.hint();
        if self.args.json {
            let mut object = json!({
                "location": location,
                "line": candidate.line,
                "column": candidate.column,
                "hint": hint,
                "checksum_ok": candidate.well_formed,
                "status": standing.as_str(),
                "id": info.map(|info| info.id.clone()),
                "name": info.map(|info| info.name.clone()),
                "revoked_by_scan": revoked_now.is_some(),
            });
            if let Some(first) = revoked_now {
                object["revoked_for"] = Value::String(first.to_string());
            }
            let _ = writeln!(self.out, "{object}");
            return;
        }
        let mut line = format!("{location}: {hint} {}", standing.as_str());
        if let Some(info) = info {
            let _ = write!(line, " id={} name={:?}", info.id, info.name);
        }
        match revoked_now {
            Some(first) if first == location => line.push_str(", revoked now"),
            Some(first) => {
                let _ = write!(line, ", revoked now (found first at {first})");
            }
            None => {}
        }
        if standing == Standing::NearMiss {
            line.push_str(" (checksum fails: not a key)");
        }
        let _ = writeln!(self.out, "{line}");
    }
}
