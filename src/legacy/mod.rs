//! Moving in: keys made by other key stores, imported with the digests those
//! stores kept, verified against those digests until their first successful
//! verify re-digests them to this store's keyed BLAKE3.
//!
//! This file owns what a legacy key is: its [`Source`], the [`Origin`] kept
//! in its record, its [`LegacyDigest`] (read from the source's stored form,
//! compared in constant time), and how a presented string is told to be a
//! candidate of a source ([`Candidate`]) and found by its handle (Sanctum's
//! id, DRF's prefix, Unkey's hash) before any costly hash is computed.
//! `import` reads the sources' tables.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq;

mod django;
pub(crate) mod import;

/// Longest legacy key a verify considers, in bytes: longer strings are
/// malformed (Sanctum's tokens are 40 to 50 characters after the id, DRF's
/// 41, Unkey's under 64). Below the C ABI's scan bound for NUL-terminated keys.
pub const MAX_LEGACY_KEY_LEN: usize = 255;

// The most an imported Django password hash may ask of one verify: a row
// asking for more is refused at import, since every verify of its key would
// be a denial of service. About ten times the work of Django 5.2's defaults,
// and at most 256 MiB of memory.

/// Most PBKDF2 iterations an imported digest may ask for. Django 5.2 uses
/// 1,000,000.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Most memory an imported Argon2 digest may ask for, in KiB (its `m`):
/// 256 MiB. Django 5.2 uses 102,400 (100 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 262_144;

/// Most work an imported Argon2 digest may ask for: its memory in KiB times
/// its passes (`m × t`). Django 5.2's is 102,400 × 2.
pub const MAX_ARGON2_WORK_KIB: u64 = 2_097_152;

/// Most memory an imported scrypt digest may ask for, in bytes (128·N·r):
/// 256 MiB. Django 5.2's is 16 MiB (N = 2^14, r = 8).
pub const MAX_SCRYPT_MEMORY: u64 = 256 << 20;

/// Most work an imported scrypt digest may ask for, in bytes: its memory
/// times its parallelism `p` (1 GiB). Django 5.2's is 16 MiB × 5.
pub const MAX_SCRYPT_WORK: u64 = 1 << 30;

/// Highest bcrypt cost (log2 of its rounds) an imported digest may have.
/// Django 5.2 uses 12.
pub const MAX_BCRYPT_COST: u32 = 15;

/// The key store a key was imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// Laravel Sanctum's `personal_access_tokens`: keys `{id}|{secret}`.
    Sanctum,
    /// djangorestframework-api-key's `rest_framework_api_key_apikey`: keys
    /// `{prefix}.{secret}`.
    DrfApiKey,
    /// Unkey's `keys`: any string, found by the SHA-256 of the whole key.
    Unkey,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 3] = [Source::Sanctum, Source::DrfApiKey, Source::Unkey];

    /// The name used on the command line and in listings: `sanctum`,
    /// `drf-api-key`, `unkey`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sanctum => "sanctum",
            Source::DrfApiKey => "drf-api-key",
            Source::Unkey => "unkey",
        }
    }

    /// The source of a name given by [`Source::as_str`].
    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == name)
    }

    /// The first byte of this source's handles, and its bit in
    /// [`Sources`].
    pub(crate) fn tag(self) -> u8 {
        match self {
            Source::Sanctum => 1,
            Source::DrfApiKey => 2,
            Source::Unkey => 3,
        }
    }

    fn bit(self) -> u8 {
        1 << self.tag()
    }
}

/// A set of sources: which ones have keys in a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sources(pub(crate) u8);

impl Sources {
    pub(crate) fn with(self, source: Source) -> Sources {
        Sources(self.0 | source.bit())
    }
    pub(crate) fn has(self, source: Source) -> bool {
        self.0 & source.bit() != 0
    }
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Where an imported key came from, kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The key store it was made by.
    pub source: Source,
    /// Its id there (Sanctum's and Unkey's `id`, DRF's `prefix`).
    pub source_id: String,
    /// The digest the source kept, until the key's first successful verify
    /// re-digests it; `None` from then on.
    pub legacy_digest: Option<LegacyDigest>,
}

/// A digest as another key store kept it. Compared in constant time; prints
/// as `LegacyDigest { .. }`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyDigest(Stored);

impl core::fmt::Debug for LegacyDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LegacyDigest { .. }")
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Stored {
    /// Sanctum: SHA-256 of the text after `|`.
    Sha256OfSecret([u8; 32]),
    /// Unkey: SHA-256 of the whole key.
    Sha256OfKey([u8; 32]),
    /// djangorestframework-api-key 3: SHA-512 of the whole key (64 bytes).
    Sha512OfKey(Vec<u8>),
    /// Django's `make_password` with PBKDF2 (djangorestframework-api-key
    /// 1 and 2): of the whole key.
    Pbkdf2 {
        prf: Prf,
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    // The kinds below were added after the first ones: appended, so that
    // every kind before them keeps its encoding (its variant index).
    /// Django's Argon2PasswordHasher: of the whole key.
    Argon2 {
        kind: Argon2Type,
        /// 0x10 or 0x13.
        version: u32,
        memory_kib: u32,
        passes: u32,
        lanes: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Django's BCryptSHA256PasswordHasher (`sha256`: of the hex SHA-256 of
    /// the whole key) and BCryptPasswordHasher (of the whole key).
    Bcrypt {
        sha256: bool,
        cost: u32,
        salt: [u8; 16],
        hash: [u8; 23],
    },
    /// Django's ScryptPasswordHasher: of the whole key, 64 bytes.
    Scrypt {
        log_n: u8,
        block_size: u32,
        parallelism: u32,
        salt: String,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Prf {
    Sha256,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Argon2Type {
    D,
    I,
    Id,
}

impl LegacyDigest {
    /// Sanctum's `token` column: 64 hex digits.
    pub(crate) fn sanctum(token: &str) -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(token, &mut bytes)
            .map_err(|_| "`token`: expected the 64 hex digits of a SHA-256".to_string())?;
        Ok(LegacyDigest(Stored::Sha256OfSecret(bytes)))
    }

    /// Unkey's `hash` column: base64 (standard alphabet) of a SHA-256.
    pub(crate) fn unkey(hash: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(hash)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| "`hash`: expected the base64 of a SHA-256".to_string())?;
        Ok(LegacyDigest(Stored::Sha256OfKey(bytes)))
    }

    /// DRF's `hashed_key` column: `sha512$$<hex>` (3.x) or a Django
    /// password hash (1.x, 2.x: PBKDF2, Argon2, bcrypt, scrypt; see
    /// `django`). Hashers this library cannot verify are refused with their
    /// name, costs over the bounds with their figures.
    pub(crate) fn drf(hashed_key: &str) -> Result<Self, String> {
        if let Some(hex_digest) = hashed_key.strip_prefix("sha512$$") {
            let bytes = hex::decode(hex_digest)
                .ok()
                .filter(|bytes| bytes.len() == 64)
                .ok_or("`hashed_key`: sha512 with a digest that is not 128 hex digits")?;
            return Ok(LegacyDigest(Stored::Sha512OfKey(bytes)));
        }
        django::parse(hashed_key).map(LegacyDigest)
    }

    /// Whether `key`, as presented, is the key of this digest. Constant
    /// time in the digest's bytes.
    pub(crate) fn matches(&self, key: &str) -> bool {
        match &self.0 {
            Stored::Sha256OfSecret(stored) => match key.split_once('|') {
                Some((_, secret)) => Sha256::digest(secret.as_bytes()).ct_eq(stored).into(),
                None => false,
            },
            Stored::Sha256OfKey(stored) => Sha256::digest(key.as_bytes()).ct_eq(stored).into(),
            Stored::Sha512OfKey(stored) => Sha512::digest(key.as_bytes())
                .as_slice()
                .ct_eq(stored)
                .into(),
            Stored::Pbkdf2 { .. }
            | Stored::Argon2 { .. }
            | Stored::Bcrypt { .. }
            | Stored::Scrypt { .. } => django::matches(&self.0, key),
        }
    }

    /// A short name of the digest's kind, for listings: `sha256`, `sha512`,
    /// or the name of Django's hasher: `pbkdf2_sha256`, `pbkdf2_sha1`,
    /// `argon2`, `bcrypt_sha256`, `bcrypt`, `scrypt`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            Stored::Sha256OfSecret(_) | Stored::Sha256OfKey(_) => "sha256",
            Stored::Sha512OfKey(_) => "sha512",
            Stored::Pbkdf2 {
                prf: Prf::Sha256, ..
            } => "pbkdf2_sha256",
            Stored::Pbkdf2 { prf: Prf::Sha1, .. } => "pbkdf2_sha1",
            Stored::Argon2 { .. } => "argon2",
            Stored::Bcrypt { sha256: true, .. } => "bcrypt_sha256",
            Stored::Bcrypt { sha256: false, .. } => "bcrypt",
            Stored::Scrypt { .. } => "scrypt",
        }
    }
}

/// The handle an imported key is filed under: its source's tag, then its id
/// there (Sanctum's id in decimal, DRF's prefix) or, for Unkey, the SHA-256
/// of the key. It is also the key's identity in its source, which makes an
/// import idempotent.
pub(crate) fn handle(source: Source, id: &[u8]) -> Vec<u8> {
    let mut handle = Vec::with_capacity(1 + id.len());
    handle.push(source.tag());
    handle.extend_from_slice(id);
    handle
}

/// A presented string that has the shape of the keys of a source the
/// store holds: which source, and what its handle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate<'a> {
    /// `{id}|{secret}`.
    Sanctum(u64),
    /// `{prefix}.{secret}`.
    DrfApiKey(&'a str),
    /// Anything else printable: Unkey finds a key by the SHA-256 of it.
    Unkey(&'a str),
}

impl Candidate<'_> {
    /// The handle to find the key by: Sanctum's id and DRF's prefix as they
    /// are, one SHA-256 for Unkey. Never a PBKDF2, which runs only against
    /// the digest of a key found by its handle.
    pub(crate) fn handle(self) -> Vec<u8> {
        match self {
            Candidate::Sanctum(id) => handle(Source::Sanctum, id.to_string().as_bytes()),
            Candidate::DrfApiKey(prefix) => handle(Source::DrfApiKey, prefix.as_bytes()),
            Candidate::Unkey(key) => handle(Source::Unkey, &Sha256::digest(key.as_bytes())),
        }
    }
}

/// Whether `key` has the shape of the keys of a source in `present`.
/// Allocates nothing and hashes nothing.
pub(crate) fn candidate(key: &str, present: Sources) -> Option<Candidate<'_>> {
    if key.is_empty()
        || key.len() > MAX_LEGACY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    if present.has(Source::Sanctum) {
        if let Some((id, secret)) = key.split_once('|') {
            if let (Some(id), false) = (sanctum_id(id), secret.is_empty()) {
                return Some(Candidate::Sanctum(id));
            }
        }
    }
    if present.has(Source::DrfApiKey) {
        if let Some((prefix, secret)) = key.split_once('.') {
            if is_drf_prefix(prefix) && !secret.is_empty() {
                return Some(Candidate::DrfApiKey(prefix));
            }
        }
    }
    if present.has(Source::Unkey) {
        return Some(Candidate::Unkey(key));
    }
    None
}

/// A Sanctum id: a positive decimal number (leading zeros are the same id,
/// as in SQL).
pub(crate) fn sanctum_id(id: &str) -> Option<u64> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok().filter(|&id| id > 0)
}

/// A DRF prefix: 1 to 32 ASCII letters and digits (8 with the library's
/// default generator).
pub(crate) fn is_drf_prefix(prefix: &str) -> bool {
    (1..=32).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stored_form_matches_its_key_and_no_other() {
        let sanctum =
            LegacyDigest::sanctum(&hex::encode(Sha256::digest(b"s3cretTokenText"))).unwrap();
        assert!(sanctum.matches("7|s3cretTokenText"));
        assert!(!sanctum.matches("7|s3cretTokenTexu"));
        assert!(!sanctum.matches("s3cretTokenText"));

        let unkey_hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"sk_abc"));
        let unkey = LegacyDigest::unkey(&unkey_hash).unwrap();
        assert!(unkey.matches("sk_abc") && !unkey.matches("sk_abd"));

        let drf3 = LegacyDigest::drf(&format!(
            "sha512$${}",
            hex::encode(Sha512::digest(b"Ab3dEf9h.secret"))
        ))
        .unwrap();
        assert!(drf3.matches("Ab3dEf9h.secret") && !drf3.matches("Ab3dEf9h.secreT"));

        // Django's make_password("Ab3dEf9h.secret", salt="saltsalt", hasher
        // pbkdf2_sha256 with 1000 iterations), computed with hashlib.
        let mut hash = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"Ab3dEf9h.secret", b"saltsalt", 1000, &mut hash);
        let b64 = base64::engine::general_purpose::STANDARD.encode(hash);
        let drf2 = LegacyDigest::drf(&format!("pbkdf2_sha256$1000$saltsalt${b64}")).unwrap();
        assert_eq!(drf2.kind(), "pbkdf2_sha256");
        assert!(drf2.matches("Ab3dEf9h.secret") && !drf2.matches("Ab3dEf9h.secres"));
        assert_eq!(format!("{drf2:?}"), "LegacyDigest { .. }");
    }

    #[test]
    fn stored_forms_that_do_not_fit_are_refused_with_a_reason() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            assert!(LegacyDigest::sanctum(bad).is_err());
        }
        assert!(LegacyDigest::unkey("not base64!").is_err());
        assert!(LegacyDigest::unkey("AAAA").is_err());
        let unknown = LegacyDigest::drf("md5$salt$4f6c3b8e").unwrap_err();
        assert!(unknown.contains("unknown hasher \"md5\""), "{unknown}");
        let truncated = LegacyDigest::drf("bcrypt_sha256$$2b$12$abc").unwrap_err();
        assert!(truncated.contains("malformed bcrypt_sha256"), "{truncated}");
        assert!(LegacyDigest::drf("sha512$$abcd").is_err());
        assert!(LegacyDigest::drf("pbkdf2_sha256$0$salt$AAAA").is_err());
        assert!(LegacyDigest::drf("pbkdf2_sha256$99999999999$s$AAAA").is_err());
        assert!(LegacyDigest::drf("pbkdf2_sha256$1000$salt").is_err());
        let many = format!("pbkdf2_sha256${}$s$AAAA", MAX_PBKDF2_ITERATIONS + 1);
        assert!(LegacyDigest::drf(&many).unwrap_err().contains("iterations"));
    }

    #[test]
    fn the_first_kinds_keep_their_encoding_and_later_ones_round_trip() {
        // As records written before Django's other hashers hold them:
        // postcard's variant index, then the fields.
        let decode = |bytes: &[u8]| postcard::from_bytes::<LegacyDigest>(bytes).unwrap();
        let sanctum = LegacyDigest::sanctum(&"ab".repeat(32)).unwrap();
        assert_eq!(decode(&[&[0][..], &[0xab; 32]].concat()), sanctum);
        let unkey = LegacyDigest::unkey(&base64::engine::general_purpose::STANDARD.encode([7; 32]));
        assert_eq!(decode(&[&[1][..], &[7; 32]].concat()), unkey.unwrap());
        let drf3 = LegacyDigest::drf(&format!("sha512$${}", "cd".repeat(64))).unwrap();
        assert_eq!(decode(&[&[2, 64][..], &[0xcd; 64]].concat()), drf3);
        let b64 = base64::engine::general_purpose::STANDARD.encode([9; 32]);
        let drf2 = LegacyDigest::drf(&format!("pbkdf2_sha256$1000$saltsalt${b64}")).unwrap();
        let old = [&[3, 0, 0xe8, 0x07, 8][..], b"saltsalt", &[32], &[9; 32]].concat();
        assert_eq!(decode(&old), drf2);
        let b64 = base64::engine::general_purpose::STANDARD.encode([9; 20]);
        let sha1 = LegacyDigest::drf(&format!("pbkdf2_sha1$1000$saltsalt${b64}")).unwrap();
        let old = [&[3, 1, 0xe8, 0x07, 8][..], b"saltsalt", &[20], &[9; 20]].concat();
        assert_eq!(decode(&old), sha1);
        // The kinds added later: after them.
        for (index, hashed_key) in [
            (4, "argon2$argon2i$v=19$m=32,t=2,p=1$WnNlT3JXcmQ3OFdYYmJXYXZWak5jTA$lW0ZU4lzdEFaSeaeSocwjUBR0Wo3aM8F8Sc429IDQs4"),
            (5, "bcrypt_sha256$$2b$04$z6U8cb47rljLfCJ.5d1zQu.36.Zk6cDHG.JT8G6.ODDiNss9Eilqi"),
            (6, "scrypt$1024$E5hvoZx48rUlQBRyt46P6p$8$2$5KV9zBbXnPYjQM8yjOrU0oSIZESARdb4ey0mmhirYd/1r66zr/OSZ2RSh5BvyM6WU1e7CjBjSipFSttb82rMRA=="),
        ] {
            let digest = LegacyDigest::drf(hashed_key).unwrap();
            let bytes = postcard::to_allocvec(&digest).unwrap();
            assert_eq!(bytes[0], index, "{hashed_key}");
            assert_eq!(decode(&bytes), digest);
        }
    }

    #[test]
    fn candidates_need_a_source_present_and_its_shape() {
        let all = Source::ALL
            .into_iter()
            .fold(Sources::default(), Sources::with);
        let sanctum = Sources::default().with(Source::Sanctum);
        assert!(candidate("42|abc", Sources::default()).is_none());
        assert_eq!(
            candidate("042|abc", sanctum).unwrap().handle(),
            handle(Source::Sanctum, b"42")
        );
        for not_sanctum in ["0|abc", "x|abc", "42|", "|abc", "42 |abc", "4é|abc"] {
            assert!(candidate(not_sanctum, sanctum).is_none(), "{not_sanctum}");
        }
        let drf = Sources::default().with(Source::DrfApiKey);
        assert_eq!(
            candidate("Ab3dEf9h.secret", drf).unwrap().handle(),
            handle(Source::DrfApiKey, b"Ab3dEf9h")
        );
        assert!(candidate("Ab-d.secret", drf).is_none());
        assert!(candidate("abc", drf).is_none());
        // Unkey: anything printable of a bounded length.
        assert!(candidate("sk_anything", all).is_some());
        assert!(candidate(&"a".repeat(MAX_LEGACY_KEY_LEN + 1), all).is_none());
        assert!(candidate("has space", all).is_none());
    }
}
