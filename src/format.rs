//! The key format: generation of uniform random keys, the CRC-32/base62
//! checksum, parsing, and the [`SecretKey`] type that holds a plaintext key.
//!
//! ```text
//! key    = vendor "_" kind "_" [ env "_" ] body
//! vendor = 2..8 of [a-z]          default "flz"
//! kind   = "sk"
//! env    = 1..8 of [a-z0-9]
//! body   = 32 of [0-9A-Za-z]      26 random characters + 6 checksum characters
//! ```
//!
//! The checksum is CRC-32 (IEEE) of every character before it, written in
//! base62 (`0-9A-Za-z`), left-padded with `0` to six characters. It lets
//! `verify` reject typos and truncations without touching storage, and lets a
//! secret scanner tell a real key from noise offline.

use core::fmt;

use rand_core::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The 62 characters of a key body, in checksum-digit order.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The vendor prefix used when the store is not told otherwise.
pub const DEFAULT_VENDOR: &str = "flz";
/// The kind of every key this library issues: a secret key.
pub const KIND: &str = "sk";
/// Number of random characters in a body (154 bits).
pub const RANDOM_LEN: usize = 26;
/// Number of checksum characters at the end of a body.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a body: random part plus checksum.
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
/// The longest well-formed key: 8-letter vendor, 8-character env tag.
pub const MAX_KEY_LEN: usize = 8 + 1 + KIND.len() + 1 + 8 + 1 + BODY_LEN;
/// Number of body characters shown in a key's display hint.
pub const HINT_BODY_LEN: usize = 4;

/// The largest multiple of 62 that fits in a byte: bytes at or above it are
/// rejected so that every character is equally likely.
const REJECTION_LIMIT: u8 = 62 * 4;

/// A plaintext key. It is wiped from memory when dropped, prints as
/// `SecretKey(flz_sk_…)` in `Debug` and `Display`, and is read only through
/// [`SecretKey::expose_secret`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    text: String,
}

impl SecretKey {
    /// The key itself. Show it to its owner once; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The prefix and the first body characters, safe to display.
    pub fn hint(&self) -> String {
        hint_of(&self.text)
    }

    pub(crate) fn from_string(text: String) -> Self {
        SecretKey { text }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", redacted_prefix(&self.text))
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redacted_prefix(&self.text))?;
        f.write_str("…")
    }
}

/// `vendor_sk_[env_]`, the part of a key that carries no secret.
fn redacted_prefix(key: &str) -> &str {
    match key.rfind('_') {
        Some(i) => &key[..=i],
        None => "",
    }
}

/// The display hint: prefix plus the first four body characters and `…`.
pub(crate) fn hint_of(key: &str) -> String {
    let prefix = redacted_prefix(key);
    let body = &key[prefix.len()..];
    let shown = body.get(..HINT_BODY_LEN).unwrap_or("");
    format!("{prefix}{shown}…")
}

/// The parts of a well-formed key, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The vendor prefix, such as `flz`.
    pub vendor: &'a str,
    /// The environment tag, such as `prod`, if the key has one.
    pub env: Option<&'a str>,
    /// The 32-character body, checksum included.
    pub body: &'a str,
}

/// Parses a key, checking its syntax and checksum. No storage is touched.
///
/// Returns `None` for anything that is not a well-formed key: wrong length,
/// wrong characters, wrong kind, surrounding whitespace, bad checksum.
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let bytes = key.as_bytes();
    // A key is ASCII; checking it first also keeps the byte-index splits
    // below on character boundaries (a multi-byte character there panicked).
    if bytes.len() < 2 + 4 + BODY_LEN || bytes.len() > MAX_KEY_LEN || !key.is_ascii() {
        return None;
    }
    // One pass over bytes rather than string searches: verify parses every
    // presented key, and a malformed one must be rejected in tens of ns.
    let body_at = bytes.len() - BODY_LEN;
    // Every body byte is checked, without an early exit, so the loop is
    // vectorized.
    let body_ok = bytes[body_at..]
        .iter()
        .fold(true, |ok, &b| ok & b.is_ascii_alphanumeric());
    if !body_ok {
        return None;
    }
    // head = vendor "_sk_" [env "_"]. The vendor is the run of lowercase
    // letters the key starts with: the "_" after it cannot be part of it.
    let head = &bytes[..body_at];
    let vendor_len = head.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if !(2..=8).contains(&vendor_len) {
        return None;
    }
    let vendor = key.get(..vendor_len)?;
    let env = match &head[vendor_len..] {
        b"_sk_" => None,
        [b'_', b's', b'k', b'_', .., b'_'] => Some(key.get(vendor_len + 4..body_at - 1)?),
        _ => return None,
    };
    if env.is_some_and(|env| !is_env_tag(env)) {
        return None;
    }
    let body = key.get(body_at..)?;
    let (signed, checksum) = key.split_at(key.len() - CHECKSUM_LEN);
    // The digits are read as a number and compared with the CRC: six
    // multiply-adds instead of six divisions. Base62 numbers of six digits
    // have one spelling each, so equal values mean equal digits.
    //
    // crc32fast folds the 32-47 signed bytes with PCLMULQDQ. A hand-written
    // fold of exactly these lengths (three right-aligned blocks, 174 lines of
    // intrinsics) parsed a key 4.4-5.8 ns faster (33 against 38 ns, valid or
    // bad checksum, interleaved rounds on an AMD EPYC, crc32fast 1.5.5), and
    // was removed for that: see the commit that removed src/format/crc.rs.
    if checksum_value(checksum.as_bytes()) != u64::from(crc32fast::hash(signed.as_bytes())) {
        return None;
    }
    Some(ParsedKey { vendor, env, body })
}

/// Whether `key` is a well-formed key: syntax and checksum, offline.
///
/// ```
/// assert!(!apikeys::is_well_formed("flz_sk_abc123"));
/// ```
pub fn is_well_formed(key: &str) -> bool {
    parse(key).is_some()
}

/// Whether `tag` is a valid environment tag: 1 to 8 of `[a-z0-9]`.
pub fn is_env_tag(tag: &str) -> bool {
    (1..=8).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `vendor` is a valid vendor prefix: 2 to 8 of `[a-z]`.
pub fn is_vendor(vendor: &str) -> bool {
    (2..=8).contains(&vendor.len()) && vendor.bytes().all(|b| b.is_ascii_lowercase())
}

/// The six base62 checksum digits of `signed` (everything before them).
fn checksum_digits(signed: &str) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(signed.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits
}

/// The value of base62 digits already known to be alphanumeric.
fn checksum_value(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |value, &digit| {
        let offset = match digit {
            b'a'..=b'z' => b'a' - 36,
            b'A'..=b'Z' => b'A' - 10,
            _ => b'0',
        };
        value * 62 + u64::from(digit.wrapping_sub(offset))
    })
}

/// Draws one character uniformly from [`ALPHABET`] out of a stream of random
/// bytes, by rejection: bytes 248..=255 are thrown away.
pub fn sample_char(rng: &mut impl RngCore) -> Result<u8, rand_core::Error> {
    let mut buffer = [0u8; 1];
    loop {
        rng.try_fill_bytes(&mut buffer)?;
        if buffer[0] < REJECTION_LIMIT {
            return Ok(ALPHABET[(buffer[0] % 62) as usize]);
        }
    }
}

/// Fills `out` with characters drawn uniformly from [`ALPHABET`].
pub fn fill_random_chars(rng: &mut impl RngCore, out: &mut [u8]) -> Result<(), rand_core::Error> {
    // One byte per missing character, then again for the ones rejected
    // (8 in 256): about 27 bytes for 26 characters, in one call to the
    // generator and rarely a second of a byte or two.
    let mut pool = [0u8; 64];
    let mut filled = 0;
    while filled < out.len() {
        let draw = &mut pool[..(out.len() - filled).min(64)];
        rng.try_fill_bytes(draw)?;
        for &byte in draw.iter() {
            if byte < REJECTION_LIMIT {
                out[filled] = ALPHABET[(byte % 62) as usize];
                filled += 1;
            }
        }
    }
    pool.zeroize();
    Ok(())
}

/// Random bytes from the operating system's generator, fetched in blocks:
/// a batch of keys costs a few `getrandom` calls instead of two per key.
/// Every byte handed out still comes from the OS (no user-space generator);
/// bytes are wiped as they are handed out and when the pool is dropped.
pub(crate) struct OsRandomPool {
    buffer: zeroize::Zeroizing<Vec<u8>>,
    used: usize,
}

impl OsRandomPool {
    /// A pool that fetches `block` bytes at a time.
    pub(crate) fn new(block: usize) -> OsRandomPool {
        let block = block.clamp(64, 1 << 20);
        OsRandomPool {
            buffer: zeroize::Zeroizing::new(vec![0; block]),
            used: block,
        }
    }
}

impl RngCore for OsRandomPool {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // As `OsRng::fill_bytes` does: no value can stand for failed randomness.
        if let Err(error) = self.try_fill_bytes(dest) {
            panic!("the operating system's random generator failed: {error}");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        let mut filled = 0;
        while filled < dest.len() {
            if self.used == self.buffer.len() {
                rand_core::OsRng.try_fill_bytes(&mut self.buffer)?;
                self.used = 0;
            }
            let take = (dest.len() - filled).min(self.buffer.len() - self.used);
            let source = &mut self.buffer[self.used..self.used + take];
            dest[filled..filled + take].copy_from_slice(source);
            source.zeroize();
            self.used += take;
            filled += take;
        }
        Ok(())
    }
}

/// Builds a new key `vendor_sk_[env_]` + 26 random characters + checksum.
///
/// `vendor` and `env` must already be valid (see [`is_vendor`], [`is_env_tag`]).
pub fn generate_with(
    rng: &mut impl RngCore,
    vendor: &str,
    env: Option<&str>,
) -> Result<SecretKey, rand_core::Error> {
    let mut text = String::with_capacity(MAX_KEY_LEN);
    text.push_str(vendor);
    text.push('_');
    text.push_str(KIND);
    text.push('_');
    if let Some(env) = env {
        text.push_str(env);
        text.push('_');
    }
    let mut random = [0u8; RANDOM_LEN];
    fill_random_chars(rng, &mut random)?;
    // The alphabet is ASCII, so this cannot fail.
    text.push_str(core::str::from_utf8(&random).unwrap_or_default());
    random.zeroize();
    let checksum = checksum_digits(&text);
    text.push_str(core::str::from_utf8(&checksum).unwrap_or_default());
    Ok(SecretKey::from_string(text))
}

/// Builds a new key with the operating system's random generator.
#[cfg(test)]
pub fn generate(vendor: &str, env: Option<&str>) -> Result<SecretKey, rand_core::Error> {
    generate_with(&mut rand_core::OsRng, vendor, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_with_their_parts() {
        let key = generate("flz", Some("prod")).unwrap();
        let parsed = parse(key.expose_secret()).unwrap();
        assert_eq!(parsed.vendor, "flz");
        assert_eq!(parsed.env, Some("prod"));
        assert_eq!(parsed.body.len(), BODY_LEN);
        let key = generate("flz", None).unwrap();
        assert_eq!(key.expose_secret().len(), 7 + BODY_LEN);
        assert_eq!(parse(key.expose_secret()).unwrap().env, None);
    }

    #[test]
    fn secret_key_is_redacted_when_printed() {
        let key = generate("flz", Some("dev")).unwrap();
        let body = &key.expose_secret()[11..];
        for printed in [format!("{key:?}"), format!("{key}")] {
            assert!(printed.contains("flz_sk_dev_"), "{printed}");
            assert!(!printed.contains(body), "{printed}");
        }
        assert_eq!(key.hint().chars().count(), 11 + HINT_BODY_LEN + 1);
    }

    /// The string-search parser `parse` replaced, kept as the reference.
    fn parse_by_splitting(key: &str) -> Option<ParsedKey<'_>> {
        let bytes = key.as_bytes();
        if bytes.len() < 2 + 4 + BODY_LEN || bytes.len() > MAX_KEY_LEN || !key.is_ascii() {
            return None;
        }
        let (head, body) = key.split_at(key.len() - BODY_LEN);
        let head = head.strip_suffix('_')?;
        let (vendor, env) = match head.split_once("_sk") {
            Some((vendor, "")) => (vendor, None),
            Some((vendor, rest)) => (vendor, Some(rest.strip_prefix('_')?)),
            None => return None,
        };
        if !is_vendor(vendor) || env.is_some_and(|env| !is_env_tag(env)) {
            return None;
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (signed, checksum) = key.split_at(key.len() - CHECKSUM_LEN);
        (checksum.as_bytes() == checksum_digits(signed).as_slice()).then_some(ParsedKey {
            vendor,
            env,
            body,
        })
    }

    #[test]
    fn parse_agrees_with_the_splitting_parser_on_mutated_keys() {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let pieces = [
            "_", "sk", "_sk_", "a", "Z", "0", "é", " ", "__", "prod_", "flz",
        ];
        for (vendor, env) in [
            ("flz", None),
            ("ab", Some("prod")),
            ("abcdefgh", Some("a1b2c3d4")),
        ] {
            for _ in 0..300 {
                let key = generate_with(&mut rng, vendor, env).unwrap();
                let key = key.expose_secret();
                assert_eq!(parse(key), parse_by_splitting(key));
                assert!(parse(key).is_some());
                for at in 0..=key.len() {
                    for piece in pieces {
                        let inserted = format!("{}{piece}{}", &key[..at], &key[at..]);
                        assert_eq!(
                            parse(&inserted),
                            parse_by_splitting(&inserted),
                            "{inserted}"
                        );
                        if at < key.len() {
                            let replaced = format!("{}{piece}{}", &key[..at], &key[at + 1..]);
                            assert_eq!(
                                parse(&replaced),
                                parse_by_splitting(&replaced),
                                "{replaced}"
                            );
                        }
                    }
                    let cut = &key[..at];
                    assert_eq!(parse(cut), parse_by_splitting(cut));
                }
                // The same mutations of the signed part with a checksum
                // recomputed, so that the syntax alone decides.
                let signed = &key[..key.len() - CHECKSUM_LEN];
                for at in 0..=signed.len() {
                    for piece in pieces {
                        for mutant in [
                            format!("{}{piece}{}", &signed[..at], &signed[at..]),
                            format!(
                                "{}{piece}{}",
                                &signed[..at],
                                signed.get(at + 1..).unwrap_or("")
                            ),
                        ] {
                            let digits = checksum_digits(&mutant);
                            let mutant =
                                format!("{mutant}{}", core::str::from_utf8(&digits).unwrap());
                            assert_eq!(parse(&mutant), parse_by_splitting(&mutant), "{mutant}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn checksum_is_crc32_ieee_in_base62() {
        // The standard check value of CRC-32 (IEEE), and a key's signed part
        // (both computed with zlib).
        assert_eq!(&checksum_digits("123456789"), b"3jZRME");
        assert_eq!(
            &checksum_digits("flz_sk_prod_Ab3xQ9zLmN0pRsTuVwXyZa1b2c"),
            b"1ZWDy3"
        );
        assert!(is_well_formed(
            "flz_sk_prod_Ab3xQ9zLmN0pRsTuVwXyZa1b2c1ZWDy3"
        ));
        assert!(!is_well_formed(
            "flz_sk_prod_Ab3xQ9zLmN0pRsTuVwXyZa1b2c1ZWDy4"
        ));
    }

    #[test]
    fn checksum_is_left_padded_base62() {
        assert_eq!(&checksum_digits(""), b"000000");
    }

    #[test]
    fn checksum_digits_read_back_as_their_value() {
        for value in [0u32, 1, 61, 62, 3_843, 1 << 31, u32::MAX] {
            let mut digits = [b'0'; CHECKSUM_LEN];
            let mut rest = value;
            for slot in digits.iter_mut().rev() {
                *slot = ALPHABET[(rest % 62) as usize];
                rest /= 62;
            }
            assert_eq!(checksum_value(&digits), u64::from(value));
        }
        assert_eq!(checksum_value(b"zzzzzz"), 62u64.pow(6) - 1);
        for (at, &digit) in ALPHABET.iter().enumerate() {
            assert_eq!(checksum_value(&[digit]), at as u64);
        }
    }
}
