//! What the store tells about keys: [`GeneratedKey`] (a new key, shown
//! once), [`KeyInfo`] and [`Status`] (as listed), [`VerifiedKey`] (what a
//! verify returns, borrowing the exclusive index's [`Details`] when it can),
//! and the [`ListFilter`] of a listing.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::key::digest::Digest;
use crate::key::SecretKey;
use crate::legacy::Source;
use crate::record::{KeyRecord, Usage};
use crate::scope::scopes_cover;
pub use crate::state::Status;
use crate::usage::UsageCell;

/// A key just generated: the secret, to show once, and its public id.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The plaintext key. Show it once; it is not stored and cannot be shown again.
    pub secret: SecretKey,
    /// Everything else about the key.
    pub info: KeyInfo,
}

impl GeneratedKey {
    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.info.id
    }
}

/// Everything known about a key, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Public id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Display hint: prefix and first four body characters.
    pub hint: String,
    /// Environment tag.
    pub env: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Owner, if set.
    pub owner: Option<String>,
    /// Metadata, if set.
    pub metadata: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// Last accepted use.
    pub last_used: Option<Timestamp>,
    /// Accepted uses.
    pub use_count: u64,
    /// Presentations after revocation or expiry (suspicious use).
    pub rejected_count: u64,
    /// Last such presentation.
    pub last_rejected: Option<Timestamp>,
    /// State when it was read.
    pub status: Status,
    /// The key store an imported key came from; `None` for a key made here.
    pub origin: Option<Source>,
    /// An imported key's id in its source (Sanctum's `id`, DRF's `prefix`,
    /// Unkey's `id`).
    pub source_id: Option<String>,
    /// The kind of digest its source kept (`sha256`, `sha512`,
    /// `pbkdf2_sha256`...) while an imported key is still verified against
    /// it; `None` once its first successful verify has re-digested it, and
    /// for a key made here.
    pub legacy_digest: Option<&'static str>,
}

impl KeyInfo {
    pub(super) fn new(record: KeyRecord, usage: Usage, now: Timestamp) -> Self {
        let (origin, source_id, legacy_digest) = match record.origin {
            None => (None, None, None),
            Some(origin) => (
                Some(origin.source),
                Some(origin.source_id),
                origin.legacy_digest.as_ref().map(|digest| digest.kind()),
            ),
        };
        KeyInfo {
            origin,
            source_id,
            legacy_digest,
            status: Status::of(record.revoked_at.is_some(), record.expires_at, now),
            id: record.id,
            name: record.name,
            hint: record.hint,
            env: record.env,
            scopes: record.scopes,
            owner: record.owner,
            metadata: record.metadata,
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            rotated_from: record.rotated_from,
            rotated_to: record.rotated_to,
            last_used: usage.last_used,
            use_count: usage.use_count,
            rejected_count: usage.rejected_count,
            last_rejected: usage.last_rejected,
        }
    }
}

/// What a successful verify tells about the key.
///
/// It borrows the key's details from the store (exclusive mode's index, or
/// the keys a shared or fleet process pinned), so that a verify reads
/// nothing beyond the key's entry: the details are read only when asked for. [`VerifiedKey::into_owned`] detaches it
/// from the store.
#[derive(Debug, Clone)]
pub struct VerifiedKey<'store> {
    pub(super) details: Held<'store>,
    pub(super) expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub(super) enum Held<'store> {
    /// Details held for as long as the store lives: by the exclusive index,
    /// or pinned by a shared or fleet process (`lookup/pinned.rs`).
    Indexed(&'store Details),
    /// Details shared with a cache that may drop them, or detached.
    Owned(Arc<Details>),
}

/// The parts of a key that verify returns, made once per key and shared, so
/// that a verify copies a pointer rather than strings.
#[derive(Debug)]
pub(super) struct Details {
    pub(super) id: Arc<str>,
    /// To find the key's index entry when flushing its usage.
    pub(super) digest: Digest,
    pub(super) name: String,
    pub(super) env: Option<String>,
    pub(super) owner: Option<String>,
    pub(super) scopes: Vec<String>,
    /// Exclusive mode: uses of the key while revoked or expired (accepted
    /// uses are counted in its index entry, which a verify touches anyway),
    /// and counts put back by a failed flush.
    pub(super) usage: UsageCell,
}

impl Details {
    pub(super) fn of(record: &KeyRecord) -> Self {
        Details {
            id: Arc::from(record.id.as_str()),
            digest: Digest::from_bytes(record.digest),
            name: record.name.clone(),
            env: record.env.clone(),
            owner: record.owner.clone(),
            scopes: record.scopes.clone(),
            usage: UsageCell::default(),
        }
    }

    /// A copy for a [`VerifiedKey`] that outlives the store's borrow.
    pub(super) fn detached(&self) -> Self {
        Details {
            id: self.id.clone(),
            digest: self.digest,
            name: self.name.clone(),
            env: self.env.clone(),
            owner: self.owner.clone(),
            scopes: self.scopes.clone(),
            usage: UsageCell::default(),
        }
    }

    /// Like [`Details::of`], moving the strings out of a record read only
    /// to make the details (a key's first verify) instead of copying them.
    pub(super) fn from_record(record: KeyRecord) -> Self {
        Details {
            id: Arc::from(record.id),
            digest: Digest::from_bytes(record.digest),
            name: record.name,
            env: record.env,
            owner: record.owner,
            scopes: record.scopes,
            usage: UsageCell::default(),
        }
    }
}

impl VerifiedKey<'_> {
    pub(super) fn details(&self) -> &Details {
        match &self.details {
            Held::Indexed(details) => details,
            Held::Owned(details) => details,
        }
    }

    /// The same key, no longer borrowing the store (a copy of its strings
    /// when it borrowed them).
    pub fn into_owned(self) -> VerifiedKey<'static> {
        VerifiedKey {
            details: Held::Owned(match self.details {
                Held::Indexed(details) => Arc::new(details.detached()),
                Held::Owned(details) => details,
            }),
            expires_at: self.expires_at,
        }
    }
}

impl VerifiedKey<'_> {
    /// Public id.
    pub fn id(&self) -> &str {
        &self.details().id
    }
    /// Human name.
    pub fn name(&self) -> &str {
        &self.details().name
    }
    /// Environment tag.
    pub fn env(&self) -> Option<&str> {
        self.details().env.as_deref()
    }
    /// Owner, if set.
    pub fn owner(&self) -> Option<&str> {
        self.details().owner.as_deref()
    }
    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.details().scopes
    }
    /// Expiry, if any (rotation may have set one).
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    /// Whether the key grants `scope` (wildcards included).
    pub fn has_scope(&self, scope: &str) -> bool {
        scopes_cover(&self.details().scopes, scope)
    }
}

/// Which keys [`KeyStore::list`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Every key.
    #[default]
    All,
    /// Only keys with this status.
    Only(Status),
}

/// Filters for [`KeyStore::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Keep keys of this status.
    pub status: StatusFilter,
    /// Keep keys unused since this time: last used before it, or never used
    /// and created before it (a key made yesterday is not "unused for 30 days").
    pub unused_since: Option<Timestamp>,
    /// Keep keys of this owner.
    pub owner: Option<String>,
}

impl ListFilter {
    pub(super) fn keeps(&self, info: &KeyInfo) -> bool {
        let status = match self.status {
            StatusFilter::All => true,
            StatusFilter::Only(status) => info.status == status,
        };
        let unused = match self.unused_since {
            None => true,
            Some(since) => info.last_used.unwrap_or(info.created_at) < since,
        };
        let owner = match &self.owner {
            None => true,
            Some(owner) => info.owner.as_deref() == Some(owner.as_str()),
        };
        status && unused && owner
    }
}
