//! What the store keeps about a key and about what happened to it, and how
//! both are encoded: one format-version byte, then a postcard body.
//!
//! Decoding never trusts its input: unknown versions, truncated or extended
//! bytes and invalid UTF-8 are errors, never panics.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::legacy::{Origin, Source};
use crate::state::KeyState;

/// Version byte of the record encoding of a key made here (and of usage).
pub(crate) const RECORD_VERSION: u8 = 1;
/// Version byte of the record encoding of an imported key: version 1's body
/// followed by its [`Origin`]. Keys made here keep version 1, so that a
/// store without imported keys stays readable by the libraries before it.
pub(crate) const RECORD_VERSION_IMPORTED: u8 = 2;
/// Version byte of the event encoding of the kinds of the first format,
/// which older libraries read.
pub(crate) const EVENT_VERSION: u8 = 1;
/// Version byte of an event of a kind added after the first format
/// ([`EventKind::Leaked`], [`EventKind::Imported`], [`EventKind::Redigested`]).
/// Such an event is written at this version alone, so that a library that
/// predates it refuses it by its version ("unknown encoding version") rather
/// than misreading it, and every other event stays readable by it.
pub(crate) const EVENT_VERSION_LATER_KINDS: u8 = 2;

/// Everything stored about one key, except its usage figures and the key
/// itself (only its digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The public id.
    pub id: String,
    /// The digest of the key, the store's only trace of it.
    pub digest: [u8; 32],
    /// The display hint: prefix and first body characters.
    pub hint: String,
    /// Human name, such as "Production".
    pub name: String,
    /// Environment tag, such as `prod`.
    pub env: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Who the key belongs to (an account or user id of the host).
    pub owner: Option<String>,
    /// Free-form data of the host, such as JSON.
    pub metadata: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops being accepted, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// Where an imported key came from, and its digest there until its first
    /// successful verify; `None` for a key made by this store. Encoded after
    /// the other fields, in record version 2 only.
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// Decodes `bytes` written by [`encode`], checking the version byte and that
/// the body is consumed exactly.
pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    version: u8,
    what: &str,
) -> Result<T, Error> {
    match bytes.split_first() {
        Some((&found, body)) if found == version => {
            let (value, rest) = postcard::take_from_bytes::<T>(body)
                .map_err(|error| Error::Corrupted(format!("{what}: {error}")))?;
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(Error::Corrupted(format!(
                    "{what}: {} trailing bytes",
                    rest.len()
                )))
            }
        }
        Some((&found, _)) => Err(Error::Corrupted(format!(
            "{what}: unknown encoding version {found}"
        ))),
        None => Err(Error::Corrupted(format!("{what}: empty"))),
    }
}

/// Encodes `value` behind a version byte.
pub(crate) fn encode<T: Serialize>(value: &T, version: u8) -> Vec<u8> {
    // Serializing plain structs into a Vec cannot fail. Written behind the
    // version byte directly: one allocation, no copy.
    postcard::to_extend(value, vec![version]).unwrap_or_else(|_| vec![version])
}

impl KeyRecord {
    /// Decodes a stored record (either version); bad bytes are
    /// [`Error::Corrupted`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.first() {
            Some(&RECORD_VERSION_IMPORTED) => {
                let (mut record, rest) = take_body::<KeyRecord>(&bytes[1..])?;
                record.origin = Some(decode_origin(rest)?);
                Ok(record)
            }
            _ => decode_versioned(bytes, RECORD_VERSION, "key record"),
        }
    }

    /// Encodes the record for storage: version 1 for a key made here,
    /// version 2 (with its origin) for an imported one.
    pub fn encode(&self) -> Vec<u8> {
        match &self.origin {
            None => encode(self, RECORD_VERSION),
            Some(origin) => {
                let body = encode(self, RECORD_VERSION_IMPORTED);
                postcard::to_extend(origin, body).unwrap_or_else(|_| vec![RECORD_VERSION_IMPORTED])
            }
        }
    }
}

/// A record body of version 2 and the bytes after it.
fn take_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<(T, &'de [u8]), Error> {
    postcard::take_from_bytes::<T>(body)
        .map_err(|error| Error::Corrupted(format!("key record: {error}")))
}

/// The origin at the end of a version 2 record, which must end there.
fn decode_origin(bytes: &[u8]) -> Result<Origin, Error> {
    let (origin, rest) = postcard::take_from_bytes::<Origin>(bytes)
        .map_err(|error| Error::Corrupted(format!("key record origin: {error}")))?;
    if !rest.is_empty() {
        return Err(Error::Corrupted(format!(
            "key record: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(origin)
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// The key was created.
    Created,
    /// The key was revoked.
    Revoked,
    /// The key was replaced by `successor`, and expires at the end of its grace.
    Rotated {
        /// The id of the new key.
        successor: String,
    },
    /// A revoked key was presented, `count` times since the previous such event.
    RevokedKeyUsed {
        /// How many times.
        count: u64,
    },
    /// An expired key was presented, `count` times since the previous such event.
    ExpiredKeyUsed {
        /// How many times.
        count: u64,
    },
    /// The key was found where it should not be (by `apikeys scan`), and
    /// revoked in the same commit: `location` says where, such as
    /// `src/config.rs:12`. This kind and the ones after it were added after
    /// the first format: appended last, so the kinds before them keep their
    /// encoding (see [`EVENT_VERSION_LATER_KINDS`]).
    Leaked {
        /// Where the key was found: a file and line.
        location: String,
    },
    /// The key was imported from another key store.
    Imported {
        /// Which one.
        source: Source,
    },
    /// An imported key's first successful verify replaced the digest its
    /// source kept by this store's.
    Redigested,
}

impl EventKind {
    /// The encoding version of events of this kind: the first format's, or
    /// [`EVENT_VERSION_LATER_KINDS`] for a kind added after it.
    fn version(&self) -> u8 {
        match self {
            EventKind::Created
            | EventKind::Revoked
            | EventKind::Rotated { .. }
            | EventKind::RevokedKeyUsed { .. }
            | EventKind::ExpiredKeyUsed { .. } => EVENT_VERSION,
            EventKind::Leaked { .. } | EventKind::Imported { .. } | EventKind::Redigested => {
                EVENT_VERSION_LATER_KINDS
            }
        }
    }

    /// A short stable name: `created`, `revoked`, `rotated`,
    /// `revoked_key_used`, `expired_key_used`, `leaked`, `imported`, `redigested`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Revoked => "revoked",
            EventKind::Rotated { .. } => "rotated",
            EventKind::RevokedKeyUsed { .. } => "revoked_key_used",
            EventKind::ExpiredKeyUsed { .. } => "expired_key_used",
            EventKind::Leaked { .. } => "leaked",
            EventKind::Imported { .. } => "imported",
            EventKind::Redigested => "redigested",
        }
    }
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, from 1.
    pub sequence: u64,
    /// When it happened.
    pub at: Timestamp,
    /// The key concerned.
    pub key_id: String,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// Decodes a stored event; bad bytes are [`Error::Corrupted`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let version = match bytes.first() {
            Some(&EVENT_VERSION_LATER_KINDS) => EVENT_VERSION_LATER_KINDS,
            _ => EVENT_VERSION,
        };
        let event: Event = decode_versioned(bytes, version, "event")?;
        if event.kind.version() != version {
            return Err(Error::Corrupted(format!(
                "event: a {} event at encoding version {version}",
                event.kind.as_str()
            )));
        }
        Ok(event)
    }

    /// Encodes the event for storage, at the lowest version that has its kind.
    pub fn encode(&self) -> Vec<u8> {
        encode(self, self.kind.version())
    }
}

/// A key's usage figures, kept apart from its record so that counting uses
/// never rewrites records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Last accepted use.
    pub last_used: Option<Timestamp>,
    /// Accepted uses.
    pub use_count: u64,
    /// Presentations after revocation or expiry: the suspicious-use signal.
    pub rejected_count: u64,
    /// Last such presentation.
    pub last_rejected: Option<Timestamp>,
}

impl Usage {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_versioned(bytes, RECORD_VERSION, "usage")
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        encode(self, RECORD_VERSION)
    }

    /// Adds usage counted since the last flush.
    pub(crate) fn merge(&mut self, other: &Usage) {
        self.last_used = self.last_used.max(other.last_used);
        self.last_rejected = self.last_rejected.max(other.last_rejected);
        self.use_count = self.use_count.saturating_add(other.use_count);
        self.rejected_count = self.rejected_count.saturating_add(other.rejected_count);
    }
}

/// What the exclusive-mode index needs of a record when the store opens:
/// the digest and the two fields its [`KeyState`] is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredState {
    pub(crate) digest: [u8; 32],
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) revoked: bool,
}

impl StoredState {
    /// The key's state.
    pub(crate) fn state(&self) -> KeyState {
        KeyState::of(self.expires_at, self.revoked)
    }
}

/// A string of the encoding, checked (UTF-8) and dropped without allocating.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de str>::deserialize(deserializer).map(|_| Skipped)
    }
}

/// A list of strings, each checked and dropped without allocating.
struct SkippedList;

impl<'de> Deserialize<'de> for SkippedList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SkippedList;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SkippedList, A::Error> {
                while seq.next_element::<Skipped>()?.is_some() {}
                Ok(SkippedList)
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

/// [`KeyRecord`]'s encoding read field by field in the same order, keeping
/// only what [`StoredState`] needs. Loading a million keys at open then
/// allocates nothing per record, while checking the bytes exactly as
/// [`KeyRecord::decode`] does.
#[derive(Deserialize)]
#[allow(dead_code)] // Fields are read to validate the encoding, then dropped.
struct RecordState {
    id: Skipped,
    digest: [u8; 32],
    hint: Skipped,
    name: Skipped,
    env: Option<Skipped>,
    scopes: SkippedList,
    owner: Option<Skipped>,
    metadata: Option<Skipped>,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    rotated_from: Option<Skipped>,
    rotated_to: Option<Skipped>,
}

impl KeyRecord {
    /// This record's state.
    pub(crate) fn state(&self) -> KeyState {
        KeyState::of(self.expires_at, self.revoked_at.is_some())
    }
}

impl StoredState {
    /// Decodes the state of a stored record; bad bytes are [`Error::Corrupted`]
    /// exactly when [`KeyRecord::decode`] would fail on them.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let state: RecordState = match bytes.first() {
            Some(&RECORD_VERSION_IMPORTED) => {
                let (state, rest) = take_body::<RecordState>(&bytes[1..])?;
                decode_origin(rest)?;
                state
            }
            _ => decode_versioned(bytes, RECORD_VERSION, "key record")?,
        };
        Ok(StoredState {
            digest: state.digest,
            expires_at: state.expires_at,
            revoked: state.revoked_at.is_some(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn key_state_reads_the_same_bytes_as_the_full_record() {
        let mut record = sample();
        record.expires_at = Some(Timestamp::from_unix(99));
        record.revoked_at = Some(Timestamp::from_unix(50));
        record.scopes = vec!["a:read".into(), "b:*".into()];
        record.rotated_to = Some("next".into());
        let bytes = record.encode();
        assert_eq!(
            StoredState::decode(&bytes).unwrap(),
            StoredState {
                digest: [7; 32],
                expires_at: Some(Timestamp::from_unix(99)),
                revoked: true,
            }
        );
        // Every damage the full decoder rejects, the state decoder rejects.
        for cut in 0..bytes.len() {
            assert!(KeyRecord::decode(&bytes[..cut]).is_err());
            assert!(matches!(
                StoredState::decode(&bytes[..cut]),
                Err(Error::Corrupted(_))
            ));
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(matches!(
            StoredState::decode(&extended),
            Err(Error::Corrupted(_))
        ));
        let name_at = bytes.iter().position(|&b| b == b'P').unwrap();
        let mut bad_utf8 = bytes;
        bad_utf8[name_at] = 0xff;
        assert!(KeyRecord::decode(&bad_utf8).is_err());
        assert!(matches!(
            StoredState::decode(&bad_utf8),
            Err(Error::Corrupted(_))
        ));
    }

    /// A record for unit tests here and in `storage`.
    pub(crate) fn sample() -> KeyRecord {
        KeyRecord {
            id: "abc".into(),
            digest: [7; 32],
            hint: "flz_sk_Ab3x…".into(),
            name: "Production".into(),
            env: Some("prod".into()),
            scopes: vec!["*".into()],
            owner: None,
            metadata: Some("{}".into()),
            created_at: Timestamp::from_unix(1),
            expires_at: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            origin: None,
        }
    }

    #[test]
    fn events_of_the_first_format_decode_and_leaked_events_have_their_own_version() {
        // Bytes of a `rotated` event as the first format wrote them (version 1,
        // postcard: sequence 3, at 7, key "k", variant 2, successor "s").
        let old = [1, 3, 7, 1, b'k', 2, 1, b's'];
        let event = Event::decode(&old).unwrap();
        assert_eq!(
            event.kind,
            EventKind::Rotated {
                successor: "s".into()
            }
        );
        assert_eq!(event.encode(), old);
        let leaked = Event {
            sequence: 4,
            at: Timestamp::from_unix(8),
            key_id: "k".into(),
            kind: EventKind::Leaked {
                location: "src/config.rs:12".into(),
            },
        };
        let bytes = leaked.encode();
        assert_eq!(bytes[0], EVENT_VERSION_LATER_KINDS);
        assert_eq!(Event::decode(&bytes).unwrap(), leaked);
        // A kind at a version that never had it is damage.
        let mut relabelled = bytes.clone();
        relabelled[0] = EVENT_VERSION;
        assert!(matches!(
            Event::decode(&relabelled),
            Err(Error::Corrupted(_))
        ));
        let mut promoted = old.to_vec();
        promoted[0] = EVENT_VERSION_LATER_KINDS;
        assert!(matches!(Event::decode(&promoted), Err(Error::Corrupted(_))));
        for cut in 0..bytes.len() {
            assert!(Event::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn imported_records_carry_their_origin_in_version_2_and_version_1_still_decodes() {
        // A record made here keeps version 1's bytes: the libraries before
        // version 2 read it.
        let native = sample();
        let bytes = native.encode();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(KeyRecord::decode(&bytes).unwrap(), native);
        let mut imported = sample();
        imported.origin = Some(Origin {
            source: Source::Sanctum,
            source_id: "7".into(),
            legacy_digest: Some(crate::legacy::LegacyDigest::sanctum(&"ab".repeat(32)).unwrap()),
        });
        imported.revoked_at = Some(Timestamp::from_unix(5));
        let bytes = imported.encode();
        assert_eq!(bytes[0], RECORD_VERSION_IMPORTED);
        assert_eq!(KeyRecord::decode(&bytes).unwrap(), imported);
        assert_eq!(
            StoredState::decode(&bytes).unwrap().state(),
            imported.state()
        );
        // Version 2 without its origin, cut anywhere, or extended: refused.
        let mut no_origin = native.encode();
        no_origin[0] = RECORD_VERSION_IMPORTED;
        assert!(KeyRecord::decode(&no_origin).is_err());
        assert!(StoredState::decode(&no_origin).is_err());
        for cut in 0..bytes.len() {
            assert!(KeyRecord::decode(&bytes[..cut]).is_err());
            assert!(StoredState::decode(&bytes[..cut]).is_err());
        }
        let mut extended = bytes;
        extended.push(0);
        assert!(KeyRecord::decode(&extended).is_err());
        assert!(StoredState::decode(&extended).is_err());
    }

    #[test]
    fn record_round_trips_and_rejects_damage() {
        let bytes = sample().encode();
        assert_eq!(KeyRecord::decode(&bytes).unwrap(), sample());
        assert!(matches!(KeyRecord::decode(&[]), Err(Error::Corrupted(_))));
        assert!(matches!(
            KeyRecord::decode(&bytes[..bytes.len() - 1]),
            Err(Error::Corrupted(_))
        ));
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(matches!(
            KeyRecord::decode(&extended),
            Err(Error::Corrupted(_))
        ));
        let mut future = bytes;
        future[0] = 99;
        assert!(matches!(
            KeyRecord::decode(&future),
            Err(Error::Corrupted(_))
        ));
    }
}
