//! An embedded API-key store.
//!
//! Keys look like `flz_sk_prod_` followed by 32 alphanumeric characters
//! (26 random, 6 checksum). The store keeps only keyed BLAKE3 digests of
//! them, in a redb file; verification compares digests in constant time;
//! plaintext keys are wiped from memory when dropped.
//!
//! ```
//! use apikeys::{KeyStore, NewKey, Rejection, StoreOptions, VerifyError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = KeyStore::open(dir.path().join("keys.redb"), StoreOptions::new())?;
//!
//! // Generate: the secret is shown once, only its digest is stored.
//! let key = store.generate(&NewKey::new("Production").env("prod").scope("contacts:*"))?;
//! let secret = key.secret.expose_secret();
//! assert!(secret.starts_with("flz_sk_prod_"));
//!
//! // Verify, with the scope the request needs.
//! let verified = store.verify_with_scope(secret, "contacts:read")?;
//! assert_eq!(verified.name(), "Production");
//!
//! // Revoke: immediate, durable, irreversible.
//! store.revoke(key.id())?;
//! assert!(matches!(store.verify(secret), Err(VerifyError::Rejected(Rejection::Revoked))));
//! store.close()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod background;
mod clock;
mod error;
pub mod http;
mod key;
mod legacy;
mod memory;
mod ownership;
mod record;
pub mod scan;
mod scope;
mod state;
mod storage;
mod store;
mod usage;

/// The README's Rust examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

pub use clock::{parse_duration, Clock, ManualClock, SystemClock, Timestamp};
pub use error::{Error, Rejection, VerifyError};
pub use key::id::ID_LEN;
pub use key::{
    fill_random_chars, generate_with, is_env_tag, is_vendor, is_well_formed, parse, sample_char,
    ParsedKey, SecretKey, ALPHABET, BODY_LEN, CHECKSUM_LEN, DEFAULT_VENDOR, MAX_KEY_LEN,
    RANDOM_LEN,
};
pub use legacy::import::{BadRow, MAX_FIELD_LEN};
pub use legacy::{
    LegacyDigest, Origin, Source, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_WORK_KIB, MAX_BCRYPT_COST,
    MAX_LEGACY_KEY_LEN, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK,
};
pub use ownership::{set_owner_and_mode, ALLOWED_MODES, OWNER_ONLY};
pub use record::{Event, EventKind, KeyRecord};
pub use scope::{check_scope, scope_covers, scopes_cover, MAX_SCOPES, MAX_SCOPE_LEN};
pub use store::{
    Copied, GeneratedKey, ImportOptions, ImportReport, KeyInfo, KeyStore, ListFilter, LocalDir,
    MemoryStore, Mode, NewKey, NotCurrent, Status, StatusFilter, StoreOptions, VerifiedKey,
    DEFAULT_IDLE_CLOSE, DEFAULT_MISS_READS, DEFAULT_REVOCATION_BOUND, MAX_BATCH, MAX_LOCATION_LEN,
    MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN,
};
