//! Answering a leak: how a key found somewhere stands, read without counting
//! a use ([`KeyStore::peek`]), and its revocation with an event that says
//! where it was found ([`KeyStore::revoke_leaked`]). `apikeys scan` is built
//! on both.

use crate::error::Error;
use crate::key;
use crate::record::EventKind;
use crate::storage::{Change, Storage, Target};

use super::info::KeyInfo;
use super::KeyStore;

/// Longest location recorded in a [`EventKind::Leaked`] event, in bytes;
/// a longer one is cut (at a character boundary) and marked with `…`.
pub const MAX_LOCATION_LEN: usize = 1024;

impl KeyStore {
    /// How the key stands (its details and [`Status`](crate::Status) now),
    /// read from the latest commit of the store, **without counting a use**:
    /// unlike [`verify`](KeyStore::verify), it changes no usage figure, no
    /// last use, no rejected-use count, and logs no event, whatever the
    /// key's state. For tools that look at keys found elsewhere (a leak
    /// scanner), not for authenticating requests.
    ///
    /// `Ok(None)` for a well-formed key this store does not hold; a
    /// malformed key is [`Error::InvalidArgument`] (no storage is read).
    pub fn peek(&self, key: &str) -> Result<Option<KeyInfo>, Error> {
        let inner = self.inner()?;
        if key::parse(key).is_none() {
            return Err(Error::InvalidArgument("not a well-formed key".into()));
        }
        let digest = inner.hasher.digest(key);
        let Some(record) = inner.storage.by_digest(&digest)? else {
            return Ok(None);
        };
        // The usage as listings show it: stored plus counted in this process.
        let mut usage = inner
            .storage
            .by_id(&record.id)?
            .map(|(_, usage)| usage)
            .unwrap_or_default();
        usage.merge(&inner.pending_usage(&record));
        Ok(Some(KeyInfo::new(record, usage, inner.clock.now())))
    }

    /// Revokes a key found where it should not be, as [`revoke_key`]
    /// does, and logs where it was found: the commit that revokes it
    /// appends a [`EventKind::Revoked`] event and a [`EventKind::Leaked`]
    /// one carrying `location` (such as `src/config.rs:12`; control
    /// characters become `?`, and it is cut at [`MAX_LOCATION_LEN`] bytes).
    ///
    /// Returns `true` when this call revoked it, `false` when it already
    /// was revoked (then nothing is written). A malformed key is
    /// [`Error::InvalidArgument`]; an unknown one [`Error::UnknownKey`].
    ///
    /// [`revoke_key`]: KeyStore::revoke_key
    pub fn revoke_leaked(&self, key: &str, location: &str) -> Result<bool, Error> {
        let inner = self.inner()?;
        if key::parse(key).is_none() {
            return Err(Error::InvalidArgument("not a well-formed key".into()));
        }
        let location = clean_location(location);
        let digest = inner.hasher.digest(key);
        let now = inner.clock.now();
        let changed = inner
            .storage
            .change(Target::Digest(&digest), now, &mut |record| {
                if record.revoked_at.is_some() {
                    return Ok(Change::none());
                }
                record.revoked_at = Some(now);
                Ok(Change::write(vec![
                    EventKind::Revoked,
                    EventKind::Leaked {
                        location: location.clone(),
                    },
                ]))
            })?;
        inner.cache(&changed.record);
        Ok(changed.changed)
    }
}

/// A location fit for the event log: no control characters, bounded.
fn clean_location(location: &str) -> String {
    let mut clean = String::with_capacity(location.len().min(MAX_LOCATION_LEN));
    for c in location.chars() {
        let c = if c.is_control() { '?' } else { c };
        if clean.len() + c.len_utf8() > MAX_LOCATION_LEN - '…'.len_utf8() {
            clean.push('…');
            break;
        }
        clean.push(c);
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_lose_control_characters_and_stay_bounded() {
        assert_eq!(clean_location("a\nb\u{1b}c.rs:3"), "a?b?c.rs:3");
        let long = "é".repeat(MAX_LOCATION_LEN);
        let clean = clean_location(&long);
        assert!(clean.len() <= MAX_LOCATION_LEN);
        assert!(clean.ends_with('…'));
    }
}
