//! Moving in, on the store's side: [`KeyStore::import`] (a source's table
//! into the store, all or nothing unless told otherwise, idempotent), and
//! the verify of a presented key that is not a well-formed native one:
//! found by its handle, checked against the digest its source kept, then
//! re-digested to keyed BLAKE3 in one durable commit, so that its next
//! verify is a native one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use rand_core::RngCore;

use crate::clock::Timestamp;
use crate::error::{Error, Rejection, VerifyError};
use crate::key::digest::Digest;
use crate::key::id::new_id;
use crate::key::OsRandomPool;
use crate::legacy::import::{read_rows, BadRow, Row};
use crate::legacy::{self, Origin, Source, Sources};
use crate::record::KeyRecord;
use crate::scope::{check_scope, MAX_SCOPES};
use crate::state::Status;
use crate::storage::{ImportedKey, Storage};

use super::info::VerifiedKey;
use super::lookup::Found;
use super::options::Mode;
use super::write::{check_text, MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN};
use super::{Inner, KeyStore};

/// How [`KeyStore::import`] treats rows that do not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    skip_bad_rows: bool,
}

impl ImportOptions {
    /// All or nothing: a file with any bad row imports nothing.
    pub fn new() -> Self {
        ImportOptions::default()
    }

    /// Imports the rows that fit and reports the others, instead of
    /// importing nothing when any row does not fit.
    pub fn skip_bad_rows(mut self, skip: bool) -> Self {
        self.skip_bad_rows = skip;
        self
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Keys imported by this run.
    pub imported: usize,
    /// Rows whose key an earlier run had imported (left as they are).
    pub already_imported: usize,
    /// Rows that were not imported, with their line and why.
    pub bad_rows: Vec<BadRow>,
    /// Whether the good rows were committed: false when bad rows made an
    /// all-or-nothing import import nothing.
    pub committed: bool,
}

/// Which sources have keys in the store, as this process knows it.
pub(super) struct LegacySources {
    known: AtomicU8,
    /// Unix second of the last look at the store (when others import).
    looked_at: AtomicI64,
    /// Whether other processes may import into the store (shared mode, a
    /// store on a server): then it looks again, at most once a second.
    others_import: bool,
}

impl LegacySources {
    /// What an exclusive handle reads at open, and a handle of a store on a
    /// server (`on_server`: the backend read them with its schema, on the
    /// connection of its open). A shared one reads nothing yet: its store
    /// file may not be open (a valid shared index is all a native verify
    /// needs), so the first verify of a key of no native shape looks.
    pub(super) fn load(
        storage: &dyn Storage,
        now: Timestamp,
        mode: Mode,
        on_server: bool,
    ) -> Result<Self, Error> {
        let (known, looked_at) = if mode == Mode::Exclusive || on_server {
            (storage.legacy_sources()?.0, now.unix())
        } else {
            (0, i64::MIN)
        };
        Ok(LegacySources {
            known: AtomicU8::new(known),
            looked_at: AtomicI64::new(looked_at),
            others_import: mode == Mode::Shared || on_server,
        })
    }

    pub(super) fn add(&self, sources: Sources) {
        self.known.fetch_or(sources.0, Ordering::SeqCst);
    }
}

impl KeyStore {
    /// Imports the keys of another key store from its table, as exported
    /// with its own column names: CSV with a header line (as `COPY … TO …
    /// CSV HEADER` writes it) or JSON lines. The columns read per source
    /// are listed in the README ("Moving in").
    ///
    /// Each key keeps working as it is: its name, creation, last use, expiry,
    /// revocation, owner and abilities (as scopes) are carried over, and the
    /// digest its source kept is verified until the key's first successful
    /// verify re-digests it. A row that does not fit (a name too long, an
    /// ability outside the scope grammar, an unknown hasher, a malformed
    /// digest, the same key twice) is reported with its line; with any such
    /// row nothing is imported, unless [`ImportOptions::skip_bad_rows`].
    /// Durable before it returns, in one commit. Rows imported by an earlier
    /// run are left as they are: running an import twice imports nothing
    /// the second time. A file that is not such a table (no header, a
    /// required column missing) is [`Error::InvalidArgument`].
    pub fn import(
        &self,
        source: Source,
        file: &[u8],
        options: &ImportOptions,
    ) -> Result<ImportReport, Error> {
        let inner = self.inner()?;
        let now = inner.clock.now();
        let (rows, mut bad_rows) = read_rows(source, file)?;
        let mut random = OsRandomPool::new(rows.len().max(1) * 64);
        let mut keys = Vec::with_capacity(rows.len());
        let mut lines: HashMap<Vec<u8>, u64> = HashMap::with_capacity(rows.len());
        for row in rows {
            let line = row.line;
            if let Some(first) = lines.get(&row.handle) {
                bad_rows.push(BadRow {
                    line,
                    reason: format!("the same key as line {first}"),
                });
                continue;
            }
            match imported_key(row, now, &mut random) {
                Ok(key) => {
                    lines.insert(key.handle.clone(), line);
                    keys.push(key);
                }
                Err(reason) => bad_rows.push(BadRow { line, reason }),
            }
        }
        bad_rows.sort_by_key(|bad| bad.line);
        if !bad_rows.is_empty() && !options.skip_bad_rows {
            return Ok(ImportReport {
                imported: 0,
                already_imported: 0,
                bad_rows,
                committed: false,
            });
        }
        let offered = keys.len();
        let inserted = inner.storage.import_legacy(keys, now)?;
        let mut sources = Sources::default();
        for record in &inserted {
            inner.cache(record);
            if let Some(origin) = &record.origin {
                sources = sources.with(origin.source);
            }
        }
        inner.legacy.add(sources);
        Ok(ImportReport {
            imported: inserted.len(),
            already_imported: offered - inserted.len(),
            bad_rows,
            committed: true,
        })
    }

    /// [`KeyStore::import`] of the file at `path`.
    pub fn import_file(
        &self,
        source: Source,
        path: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<ImportReport, Error> {
        let path = path.as_ref();
        let file = std::fs::read(path).map_err(|error| {
            Error::InvalidArgument(format!("cannot read {}: {error}", path.display()))
        })?;
        self.import(source, &file, options)
    }
}

/// A row as the key it imports, checked against the store's limits.
fn imported_key(
    row: Row,
    now: Timestamp,
    random: &mut impl RngCore,
) -> Result<ImportedKey, String> {
    let refuse = |error: Error| match error {
        Error::InvalidArgument(reason) => reason,
        other => other.to_string(),
    };
    check_text("name", &row.name, MAX_NAME_LEN, false).map_err(refuse)?;
    if let Some(owner) = &row.owner {
        check_text("owner", owner, MAX_OWNER_LEN, false).map_err(refuse)?;
    }
    if row
        .metadata
        .as_ref()
        .is_some_and(|m| m.len() > MAX_METADATA_LEN)
    {
        return Err(format!("metadata is longer than {MAX_METADATA_LEN} bytes"));
    }
    if row.scopes.len() > MAX_SCOPES {
        return Err(format!("more than {MAX_SCOPES} abilities"));
    }
    let mut scopes: Vec<String> = Vec::with_capacity(row.scopes.len());
    for scope in row.scopes {
        check_scope(&scope).map_err(|error| format!("ability: {}", refuse(error)))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if row.source_id.len() > MAX_OWNER_LEN || row.source_id.chars().any(char::is_control) {
        return Err(format!(
            "the source's id is longer than {MAX_OWNER_LEN} bytes or has control characters"
        ));
    }
    // Never a digest any presented key hashes to: 256 random bits, until the
    // key's first verify gives it its own.
    let mut placeholder = [0u8; 32];
    random.fill_bytes(&mut placeholder);
    let record = KeyRecord {
        id: new_id(random).map_err(refuse)?,
        digest: placeholder,
        hint: row.hint,
        name: row.name.trim().to_string(),
        env: None,
        scopes,
        owner: row.owner,
        metadata: row.metadata,
        created_at: row.created_at.unwrap_or(now),
        expires_at: row.expires_at,
        revoked_at: row.revoked.then_some(now),
        rotated_from: None,
        rotated_to: None,
        origin: Some(Origin {
            source: row.source,
            source_id: row.source_id,
            legacy_digest: Some(row.digest),
        }),
    };
    Ok(ImportedKey {
        handle: row.handle,
        record,
        last_used: row.last_used,
    })
}

impl Inner {
    /// Which sources have keys in the store. In shared mode and on a server
    /// another process may have imported since this one looked: it looks
    /// again, at most once a second, when a presented key is not a native one.
    fn legacy_sources(&self, now: Timestamp) -> Result<Sources, Error> {
        let known = Sources(self.legacy.known.load(Ordering::SeqCst));
        if self.legacy.others_import && self.legacy.looked_at.load(Ordering::SeqCst) < now.unix() {
            self.legacy.looked_at.store(now.unix(), Ordering::SeqCst);
            let stored = self.storage.legacy_sources()?;
            self.legacy.add(stored);
            return Ok(Sources(known.0 | stored.0));
        }
        Ok(known)
    }
}

impl KeyStore {
    /// Verify of a key that is not a well-formed native one: malformed
    /// unless it has the shape of the keys of a source the store holds;
    /// then its keyed digest is looked up as any key's (it has one once
    /// re-digested), and only then its handle and the digest its source
    /// kept. Its first successful verify re-digests it; a verify that meets
    /// another's re-digest (of any process) finds the key under its new
    /// digest.
    pub(super) fn verify_legacy<'store>(
        &'store self,
        inner: &'store Inner,
        key: &str,
        scope: Option<&str>,
    ) -> Result<VerifiedKey<'store>, VerifyError> {
        let now = inner.clock.now();
        let sources = inner.legacy_sources(now)?;
        if sources.is_empty() {
            return Err(Rejection::Malformed.into());
        }
        let candidate = legacy::candidate(key, sources).ok_or(Rejection::Malformed)?;
        // Re-digested already: a native verify.
        let digest = inner.hasher.digest(key);
        match inner
            .lookup
            .find(inner, &digest, now, inner.lookup.started())
        {
            Err(VerifyError::Rejected(Rejection::NotFound)) => {}
            found => return decide(found?, scope),
        }
        if !inner.lookup.may_read_unknown() {
            return Err(Rejection::NotFound.into());
        }
        let record = inner
            .storage
            .by_handle(&candidate.handle())?
            .ok_or(Rejection::NotFound)?;
        if Digest::from_bytes(record.digest) == digest {
            // Re-digested by another verify (of any process) since its
            // keyed digest was looked up.
            return decide(
                inner
                    .lookup
                    .find(inner, &digest, now, inner.lookup.started())?,
                scope,
            );
        }
        let matches = record
            .origin
            .as_ref()
            .and_then(|origin| origin.legacy_digest.as_ref())
            .is_some_and(|legacy| legacy.matches(key));
        if !matches {
            return Err(Rejection::NotFound.into());
        }
        // Its state and use, as for any key, under its placeholder digest.
        let placeholder = Digest::from_bytes(record.digest);
        let found = match inner
            .lookup
            .find(inner, &placeholder, now, inner.lookup.started())
        {
            Ok(found) if found.1 != Status::Revoked => found,
            // Revoked, or re-digested by another verify (of any process)
            // since its record was read, which retires the placeholder here
            // and replaces it in storage: then it is under its new digest.
            placeholder_found => {
                match inner
                    .lookup
                    .find(inner, &digest, now, inner.lookup.started())
                {
                    Err(VerifyError::Rejected(Rejection::NotFound)) => placeholder_found?,
                    found => return decide(found?, scope),
                }
            }
        };
        if found.1 == Status::Active {
            // The key is valid whether or not this commit succeeds: if it
            // fails (a full disk), the next verify tries again.
            if let Ok(Some(moved)) = inner
                .storage
                .redigest(&record.id, &placeholder, &digest, now)
            {
                inner.cache(&moved);
                // The placeholder's entry refused from now on.
                let mut retired = moved;
                retired.digest = placeholder.to_bytes();
                retired.revoked_at = Some(now);
                inner.cache(&retired);
            }
        }
        decide(found, scope)
    }
}

impl KeyStore {
    /// The id of the imported key that `key` is, found as a verify finds it
    /// (by its keyed digest once re-digested, else by its handle and its
    /// source's digest) without counting a use or re-digesting it. `None`
    /// when `key` has no source's shape; [`Error::UnknownKey`] when it has
    /// one but is no stored key.
    pub(super) fn imported_key_id(
        &self,
        inner: &Inner,
        key: &str,
    ) -> Result<Option<String>, Error> {
        let sources = inner.legacy_sources(inner.clock.now())?;
        let Some(candidate) = legacy::candidate(key, sources) else {
            return Ok(None);
        };
        let unknown = || Error::UnknownKey("(the presented key)".into());
        if let Some(record) = inner.storage.by_digest(&inner.hasher.digest(key))? {
            return Ok(Some(record.id));
        }
        let record = inner
            .storage
            .by_handle(&candidate.handle())?
            .ok_or_else(unknown)?;
        let matches = record
            .origin
            .as_ref()
            .and_then(|origin| origin.legacy_digest.as_ref())
            .is_some_and(|legacy| legacy.matches(key));
        if matches {
            Ok(Some(record.id))
        } else {
            Err(unknown())
        }
    }
}

/// The outcome of a verify that found a key: its state, then its scope.
pub(super) fn decide<'store>(
    (verified, status): Found<'store>,
    scope: Option<&str>,
) -> Result<VerifiedKey<'store>, VerifyError> {
    match status {
        Status::Revoked => Err(Rejection::Revoked.into()),
        Status::Expired => Err(Rejection::Expired.into()),
        Status::Active => match scope {
            Some(scope) if !verified.has_scope(scope) => Err(Rejection::InsufficientScope.into()),
            _ => Ok(verified),
        },
    }
}
