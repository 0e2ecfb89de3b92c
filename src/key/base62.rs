//! Base62, the digits of every key body and id: the alphabet (`0-9A-Za-z`,
//! in digit order) and fixed-width numbers written in it (a key's checksum,
//! the key number at the start of an id).

/// The 62 characters of a key body, in checksum-digit order.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Writes `value` in base62 over `out`, most significant digit first, so
/// that equal-width numbers sort as their text; digits past `out`'s width
/// are dropped (the value modulo 62 to that width).
#[inline]
pub(crate) fn write_digits(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
}

/// The value of base62 digits already known to be ASCII alphanumeric (the
/// alphabet is exactly those); at most 10 digits, which fit in a `u64`.
#[inline]
pub(crate) fn value_of(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |value, &digit| {
        let offset = match digit {
            b'a'..=b'z' => b'a' - 36,
            b'A'..=b'Z' => b'A' - 10,
            _ => b'0',
        };
        value * 62 + u64::from(digit.wrapping_sub(offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_read_back_as_their_value_and_sort_by_it() {
        let mut previous = [b'0'; 6];
        for value in [0u64, 1, 61, 62, 3843, 1 << 20, 62u64.pow(6) - 1] {
            let mut digits = [0u8; 6];
            write_digits(value, &mut digits);
            assert_eq!(value_of(&digits), value);
            assert!(value == 0 || digits > previous);
            previous = digits;
        }
        for (at, &digit) in ALPHABET.iter().enumerate() {
            assert_eq!(value_of(&[digit]), at as u64);
        }
    }
}
