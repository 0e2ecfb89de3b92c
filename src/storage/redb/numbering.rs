//! Key numbers: the redb backend files each record under a number it hands
//! out in order (so new records are appended), written in base62 over the
//! first [`NUMBER_CHARS`] characters of the key's id, so that ids sort by
//! creation and `by_id` finds a record without an index.

use redb::ReadableTable;

use crate::error::Error;
use crate::format::ALPHABET;
use crate::record::KeyRecord;

/// How many leading characters of a key id hold the key's number: six base62
/// digits hold every `u32`. The id's other characters stay random.
pub(crate) const NUMBER_CHARS: usize = 6;

/// Writes `number` in base62 over the first [`NUMBER_CHARS`] characters of
/// `id`, most significant digit first, so that ids sort by number.
pub(crate) fn stamp_number(id: &str, number: u32) -> Result<String, Error> {
    let mut bytes = id.as_bytes().to_vec();
    if bytes.len() <= NUMBER_CHARS || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Error::Storage("a new key has no valid id".into()));
    }
    let mut value = number;
    for slot in bytes[..NUMBER_CHARS].iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    // Base62 characters are ASCII.
    String::from_utf8(bytes).map_err(|_| Error::Storage("a new key has no valid id".into()))
}

/// The number in an id, or `None` when the id cannot be one of this store's.
pub(crate) fn id_number(id: &str) -> Option<u32> {
    let bytes = id.as_bytes();
    // The alphabet is exactly the ASCII alphanumerics.
    if bytes.len() != crate::store::ID_LEN || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in &bytes[..NUMBER_CHARS] {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            _ => byte - b'a' + 36,
        };
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

/// Hands out key numbers in a write transaction: one more than the highest
/// stored.
pub(super) struct Numbers {
    next: u64,
}

impl Numbers {
    pub(super) fn new(records: &impl ReadableTable<u32, &'static [u8]>) -> Result<Numbers, Error> {
        let next = match records.last()? {
            Some((last, _)) => u64::from(last.value()) + 1,
            None => 1,
        };
        Ok(Numbers { next })
    }

    /// Numbers `record`, writing the number into its id.
    pub(super) fn assign(&mut self, record: &mut KeyRecord) -> Result<(), Error> {
        let number = u32::try_from(self.next)
            .map_err(|_| Error::Storage("the store holds as many keys as it can".into()))?;
        record.id = stamp_number(&record.id, number)?;
        self.next += 1;
        Ok(())
    }
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
            assert_eq!(id.len(), crate::store::ID_LEN);
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
