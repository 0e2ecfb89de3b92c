//! A key's public id: 16 base62 characters, of which the first
//! [`NUMBER_CHARS`] hold the key's number in the store (so that ids sort by
//! creation and find their record without an index) and the rest stay
//! random. [`new_id`] draws one; the storage stamps the number in.

use crate::error::Error;
use crate::key::base62;

/// Length of a key id.
pub const ID_LEN: usize = 16;

/// How many leading characters of a key id hold the key's number: six base62
/// digits hold every `u32`. The id's other characters stay random.
pub(crate) const NUMBER_CHARS: usize = 6;

/// A new key id: 16 random base62 characters, the first six of which the
/// storage replaces with the key's number when it files it (ids sort by
/// creation and find their record without an index); 10 random characters,
/// 59 bits, remain.
pub(crate) fn new_id(rng: &mut impl rand_core::RngCore) -> Result<String, Error> {
    let mut id = [0u8; ID_LEN];
    super::fill_random_chars(rng, &mut id)?;
    Ok(id.iter().map(|&b| b as char).collect())
}

/// Writes `number` in base62 over the first [`NUMBER_CHARS`] characters of
/// `id`, most significant digit first, so that ids sort by number.
pub(crate) fn stamp_number(id: &str, number: u32) -> Result<String, Error> {
    let mut bytes = id.as_bytes().to_vec();
    if bytes.len() <= NUMBER_CHARS || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Error::Storage("a new key has no valid id".into()));
    }
    base62::write_digits(u64::from(number), &mut bytes[..NUMBER_CHARS]);
    // Base62 characters are ASCII.
    String::from_utf8(bytes).map_err(|_| Error::Storage("a new key has no valid id".into()))
}

/// The number in an id, or `None` when the id cannot be one of this store's.
pub(crate) fn id_number(id: &str) -> Option<u32> {
    let bytes = id.as_bytes();
    // The alphabet is exactly the ASCII alphanumerics.
    if bytes.len() != ID_LEN || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    u32::try_from(base62::value_of(&bytes[..NUMBER_CHARS])).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_number_and_sort_by_it() {
        let random = "Zz9aB3xQ7pLm2Kd0";
        let mut previous = String::new();
        for number in [1, 2, 61, 62, 3843, 1 << 20, u32::MAX - 1, u32::MAX] {
            let id = stamp_number(random, number).unwrap();
            assert_eq!(id.len(), ID_LEN);
            assert_eq!(&id[NUMBER_CHARS..], &random[NUMBER_CHARS..]);
            assert_eq!(id_number(&id), Some(number));
            assert!(id > previous, "{id} sorts after {previous}");
            previous = id;
        }
        // Not an id of this store: wrong length, characters, number too big.
        assert_eq!(id_number("abc"), None);
        assert_eq!(id_number("0000000000000-00"), None);
        assert_eq!(id_number("zzzzzz0000000000"), None);
        assert!(stamp_number("short", 1).is_err());
    }
}
