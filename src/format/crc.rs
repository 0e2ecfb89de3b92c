//! CRC-32 (IEEE) of the short strings a key's checksum covers.
//!
//! Every verify checks a checksum over 32 to 47 bytes. crc32fast, used for
//! other lengths, works below 128 bytes one byte at a time: a chain of
//! dependent table lookups, which took about 25 ns of a 165 ns verify on the
//! benchmark machine (measured by leaving it out). On x86-64 with
//! carry-less multiplication, the input is instead read as three 16-byte
//! blocks, right-aligned (the first one shifted in registers, zeros ahead of
//! the input), folded twice and reduced (Intel, "Fast CRC Computation for
//! Generic Polynomials Using PCLMULQDQ Instruction", 2009): about thirty
//! instructions.
//!
//! Leading zero bits do not change a CRC computed from a zero state, which
//! is what makes the alignment free. The standard all-ones initial state
//! adds a term that depends only on the length (the CRC is linear), taken
//! from a table computed at compile time.

/// The input lengths the folding path takes.
#[cfg(target_arch = "x86_64")]
const FOLD_LENGTHS: core::ops::RangeInclusive<usize> = 32..=48;

/// CRC-32 (IEEE 802.3, as zlib and crc32fast compute it) of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if FOLD_LENGTHS.contains(&bytes.len()) && folds() {
            // SAFETY: the features the function is compiled for were just
            // detected on this processor, and the length is in range.
            return unsafe { fold::crc32(bytes) };
        }
    }
    crc32fast::hash(bytes)
}

/// Whether this processor takes the folding path.
#[cfg(target_arch = "x86_64")]
fn folds() -> bool {
    std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// The reflected polynomial, for the compile-time table.
const REFLECTED: u32 = 0xEDB8_8320;

/// `INITIAL[n]`: what the all-ones initial state adds to the state after
/// `n` bytes (the state reached from all ones over `n` zero bytes).
const INITIAL: [u32; 49] = {
    let mut table = [0u32; 49];
    let mut state = u32::MAX;
    let mut n = 0;
    while n < table.len() {
        table[n] = state;
        // One zero byte, bit by bit.
        let mut bit = 0;
        while bit < 8 {
            state = if state & 1 == 1 {
                (state >> 1) ^ REFLECTED
            } else {
                state >> 1
            };
            bit += 1;
        }
        n += 1;
    }
    table
};

#[cfg(target_arch = "x86_64")]
mod fold {
    use core::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_clmulepi64_si128, _mm_extract_epi32, _mm_loadu_si128,
        _mm_set_epi32, _mm_set_epi64x, _mm_shuffle_epi8, _mm_srli_si128, _mm_xor_si128,
    };

    use super::INITIAL;

    // Constants of the reflected polynomial 0x104C11DB7, as the paper
    // derives them: x^(128+32) and x^(128-32) mod P to fold 128 bits over
    // the next 128, x^64 mod P to fold 64 bits into 32, and the polynomial
    // with its Barrett quotient floor(x^64 / P), all bit-reflected.
    const FOLD_LOW: i64 = 0x1_7519_97d0;
    const FOLD_HIGH: i64 = 0x0_ccaa_009e;
    const FOLD_64: i64 = 0x1_63cd_6124;
    const POLY: i64 = 0x1_db71_0641;
    const QUOTIENT: i64 = 0x1_f701_1641;

    /// Byte-shuffle masks: the 16 bytes from `16 - k` move a register's
    /// bytes up by `k` places, zeros (0x80) coming in.
    static SHIFT_UP: [u8; 32] = [
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];

    /// # Safety
    ///
    /// The processor must support `pclmulqdq` and `sse4.1`;
    /// `bytes.len()` must be in `32..=48`.
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    pub(super) unsafe fn crc32(bytes: &[u8]) -> u32 {
        let n = bytes.len();
        let at = |offset: usize| {
            // SAFETY: offset + 16 <= n for every offset used below (n >= 32).
            unsafe { _mm_loadu_si128(bytes.as_ptr().add(offset).cast::<__m128i>()) }
        };
        // The three blocks of the input right-aligned in 48 bytes: the
        // first n - 32 bytes behind 48 - n zeros, then the last 32 bytes.
        let gap = 48 - n;
        // SAFETY: 16 - gap + 16 <= 32 bytes, within the table (gap <= 16).
        let shift = unsafe { _mm_loadu_si128(SHIFT_UP.as_ptr().add(16 - gap).cast::<__m128i>()) };
        let blocks = [_mm_shuffle_epi8(at(0), shift), at(n - 32), at(n - 16)];

        let fold = _mm_set_epi64x(FOLD_HIGH, FOLD_LOW);
        let mut x = blocks[0];
        for &block in &blocks[1..] {
            let low = _mm_clmulepi64_si128(x, fold, 0x00);
            let high = _mm_clmulepi64_si128(x, fold, 0x11);
            x = _mm_xor_si128(_mm_xor_si128(low, high), block);
        }
        let low32 = _mm_set_epi32(0, 0, 0, -1);
        // 128 bits to 64, then to 32 (plus 32 bits of quotient to discard).
        x = _mm_xor_si128(_mm_clmulepi64_si128(x, fold, 0x10), _mm_srli_si128(x, 8));
        let fold_64 = _mm_set_epi64x(0, FOLD_64);
        x = _mm_xor_si128(
            _mm_clmulepi64_si128(_mm_and_si128(x, low32), fold_64, 0x00),
            _mm_srli_si128(x, 4),
        );
        // Barrett reduction: the remainder of the last 64 bits modulo P.
        let barrett = _mm_set_epi64x(QUOTIENT, POLY);
        let quotient = _mm_clmulepi64_si128(_mm_and_si128(x, low32), barrett, 0x10);
        let product = _mm_clmulepi64_si128(_mm_and_si128(quotient, low32), barrett, 0x00);
        let state = _mm_extract_epi32(_mm_xor_si128(x, product), 1) as u32;
        !(state ^ INITIAL[n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // The standard check value, and a key's signed part.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let signed = b"flz_sk_prod_Ab3xQ9zLmN0pRsTuVwXyZa1b2c";
        assert_eq!(crc32(signed), crc32fast::hash(signed));
    }

    #[test]
    fn every_length_agrees_with_crc32fast() {
        let mut bytes = [0u8; 64];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        for len in 0..=bytes.len() {
            for input in [&bytes[..len], &[0u8; 64][..len], &[0xFF; 64][..len]] {
                assert_eq!(crc32(input), crc32fast::hash(input), "length {len}");
                #[cfg(target_arch = "x86_64")]
                if FOLD_LENGTHS.contains(&len) && folds() {
                    // SAFETY: the features were detected, the length is in range.
                    let folded = unsafe { fold::crc32(input) };
                    assert_eq!(folded, crc32fast::hash(input), "folded, length {len}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_crc32fast(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(crc32(&bytes), crc32fast::hash(&bytes));
        }
    }
}
