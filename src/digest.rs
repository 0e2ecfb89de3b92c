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

/// The 32-byte digest of a key. Compared in constant time; it has no `AsRef`
/// so that it cannot be compared with `==` on bytes by accident.
#[derive(Clone, Copy)]
pub struct Digest([u8; 32]);

impl Digest {
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    pub(crate) fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// A well-mixed 64-bit value for hash tables: the digest is already a
    /// keyed hash, so its first bytes serve.
    pub(crate) fn table_hash(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }

    /// Another well-mixed 64-bit value, independent of [`Digest::table_hash`]:
    /// to pick the index shard.
    pub(crate) fn shard_hash(&self) -> u64 {
        let mut second = [0u8; 8];
        second.copy_from_slice(&self.0[8..16]);
        u64::from_le_bytes(second)
    }
}

impl ConstantTimeEq for Digest {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Word by word: the differences are folded with OR, with no branch
        // on the data, and only the final word goes through `subtle`. Four
        // words cost a few instructions where subtle's byte loop over a
        // slice costs 32 optimization barriers, on every verify.
        let mut difference = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().unwrap_or_default());
            difference |= word(a) ^ word(b);
        }
        difference.ct_eq(&0)
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Digest {}

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
        Digest(*blake3::keyed_hash(&self.key, key.as_bytes()).as_bytes())
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
}
