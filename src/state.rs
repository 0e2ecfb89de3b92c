//! A key's state, in one place: [`KeyState`] (revoked, or accepted until an
//! expiry or forever), its encoding as one `i64` word (what the exclusive
//! index, the digest rows of the redb file and the shared index file hold),
//! and the [`Status`] it gives at a time, for verify and for listings.

use crate::clock::Timestamp;

/// The state word of a revoked key. Below every expiry, so that a minimum of
/// two words keeps the strictest state (revocation is forever, rotation only
/// shortens).
pub(crate) const REVOKED: i64 = i64::MIN;
/// The state word of a key that never expires.
pub(crate) const NEVER: i64 = i64::MAX;

/// A key's state: revoked, or accepted until its expiry (or forever), held as
/// its word: unix seconds of expiry, [`NEVER`], or [`REVOKED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyState(i64);

impl KeyState {
    /// The state of a key with this expiry and revocation.
    pub(crate) fn of(expires_at: Option<Timestamp>, revoked: bool) -> KeyState {
        KeyState(match expires_at {
            _ if revoked => REVOKED,
            // An expiry at REVOKED would read as a revocation: one second later
            // is the same instant for any clock (the key expired long ago).
            Some(at) => at.unix().max(REVOKED + 1),
            None => NEVER,
        })
    }

    /// The state a word stored by [`KeyState::word`] stands for.
    pub(crate) fn from_word(word: i64) -> KeyState {
        KeyState(word)
    }

    /// The state as one word, as it is stored.
    pub(crate) fn word(self) -> i64 {
        self.0
    }

    /// How verify finds a key in this state at `now`.
    pub(crate) fn status(self, now: Timestamp) -> Status {
        match self.0 {
            REVOKED => Status::Revoked,
            expires if now.unix() >= expires => Status::Expired,
            _ => Status::Active,
        }
    }

    /// The expiry a verify reports (meaningful for an accepted key).
    pub(crate) fn expires_at(self) -> Option<Timestamp> {
        (self.0 != NEVER).then(|| Timestamp::from_unix(self.0))
    }
}

/// A key's state at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Accepted by verify.
    Active,
    /// Revoked: rejected forever.
    Revoked,
    /// Past its expiry (or its rotation grace).
    Expired,
}

impl Status {
    /// `active`, `revoked` or `expired`. Stable: used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }

    /// The status of a record's fields at `now`, as listed. (Verify reads
    /// the [`KeyState`] word instead, which agrees except at the edges of
    /// the clock: a key that never expires reads as expired at
    /// `i64::MAX` seconds.)
    pub(crate) fn of(revoked: bool, expires_at: Option<Timestamp>, now: Timestamp) -> Status {
        if revoked {
            Status::Revoked
        } else if expires_at.is_some_and(|at| now >= at) {
            Status::Expired
        } else {
            Status::Active
        }
    }
}
