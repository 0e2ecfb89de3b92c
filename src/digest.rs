//! Key digests: a keyed BLAKE3 hash of the whole key string, under a key
//! derived from the deployment's optional pepper.
//!
//! Only digests are stored. The store also keeps a fingerprint of the derived
//! key, so that opening it with another pepper is a clear error rather than
//! every key silently failing to verify.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Context of the derivation from pepper to hashing key. Changing it changes
/// every digest: it is part of the storage format.
const DIGEST_CONTEXT: &str = "apikeys 2026-11-27 key digest v1";
/// Context of the fingerprint of the hashing key kept in the store.
const FINGERPRINT_CONTEXT: &str = "apikeys 2026-11-27 pepper fingerprint v1";

/// The 32-byte digest of a key.
///
/// It is a [`blake3::Hash`], so `==` is blake3's constant-time comparison
/// (`constant_time_eq`), and like `Hash` it has no `AsRef<[u8]>`, `Deref` or
/// comparison with raw bytes: two digests can only be compared as digests.
/// The bytes leave and enter only through [`Digest::to_bytes`] and
/// [`Digest::from_bytes`], for storage.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(blake3::Hash);

impl Digest {
    /// A digest read back from storage.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(blake3::Hash::from_bytes(bytes))
    }

    /// The bytes to store. Never compare them: compare the digests.
    pub(crate) fn to_bytes(self) -> [u8; 32] {
        *self.0.as_bytes()
    }

    /// A well-mixed 64-bit value for hash tables: the digest is already a
    /// keyed hash, so its first bytes serve.
    pub(crate) fn table_hash(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    /// Another well-mixed 64-bit value, independent of [`Digest::table_hash`]:
    /// to pick the index shard.
    pub(crate) fn shard_hash(&self) -> u64 {
        let mut second = [0u8; 8];
        second.copy_from_slice(&self.0.as_bytes()[8..16]);
        u64::from_le_bytes(second)
    }
}

impl core::fmt::Debug for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Digest { .. }")
    }
}

/// The hashing key derived from the pepper. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Hasher {
    key: [u8; 32],
}

impl Hasher {
    /// Derives the hashing key from `pepper` (empty when there is none).
    pub(crate) fn new(pepper: &[u8]) -> Self {
        Hasher {
            key: blake3::derive_key(DIGEST_CONTEXT, pepper),
        }
    }

    /// The digest of a whole key string.
    pub(crate) fn digest(&self, key: &str) -> Digest {
        Digest(blake3::keyed_hash(&self.key, key.as_bytes()))
    }

    /// A fingerprint of the hashing key, safe to store: it reveals neither
    /// the pepper nor the key, and tells whether two peppers are the same.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let key = Zeroizing::new(self.key);
        blake3::derive_key(FINGERPRINT_CONTEXT, key.as_slice())
    }
}

/// Whether two stored fingerprints are equal, in constant time.
pub(crate) fn fingerprints_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pepper_changes_digest_and_fingerprint() {
        let plain = Hasher::new(b"");
        let peppered = Hasher::new(b"pepper");
        assert!(plain.digest("flz_sk_x") != peppered.digest("flz_sk_x"));
        assert!(plain.digest("flz_sk_x") == Hasher::new(b"").digest("flz_sk_x"));
        assert!(!fingerprints_match(
            &plain.fingerprint(),
            &peppered.fingerprint()
        ));
        assert!(fingerprints_match(
            &plain.fingerprint(),
            &Hasher::new(b"").fingerprint()
        ));
    }

    #[test]
    fn digests_round_trip_through_their_stored_bytes_and_print_redacted() {
        let digest = Hasher::new(b"pepper").digest("flz_sk_x");
        let stored = digest.to_bytes();
        assert!(Digest::from_bytes(stored) == digest);
        for at in [0, 7, 8, 31] {
            let mut other = stored;
            other[at] ^= 1;
            assert!(Digest::from_bytes(other) != digest, "byte {at}");
        }
        assert_eq!(format!("{digest:?}"), "Digest { .. }");
        assert_eq!(
            digest.table_hash(),
            u64::from_le_bytes(stored[..8].try_into().unwrap())
        );
        assert_eq!(
            digest.shard_hash(),
            u64::from_le_bytes(stored[8..16].try_into().unwrap())
        );
    }
}
