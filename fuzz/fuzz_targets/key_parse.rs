//! Key parsing on arbitrary bytes.
//!
//! Invariants checked:
//! - `parse` and `is_well_formed` never panic and agree;
//! - a parsed key matches the published scanner pattern, has a length within
//!   bounds, reassembles from its parts, and carries the CRC-32/base62
//!   checksum recomputed here independently;
//! - a key generated from the fuzz input with any single byte changed is
//!   rejected (CRC-32 catches every single-byte change, and six base62
//!   digits hold every CRC-32 value, so no change can slip through).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::{impls, Error, RngCore};

/// The scanner pattern of the key format,
/// `[a-z]{2,8}_sk_(?:[a-z0-9]{1,8}_)?[0-9A-Za-z]{32}`, matched over the
/// whole text by hand (no regex engine: it keeps the fuzz build short).
fn has_key_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let vendor_len = bytes.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if !(2..=8).contains(&vendor_len) || !text[vendor_len..].starts_with("_sk_") {
        return false;
    }
    let rest = &bytes[vendor_len + 4..];
    let body_ok = |body: &[u8]| body.len() == 32 && body.iter().all(u8::is_ascii_alphanumeric);
    if body_ok(rest) {
        return true;
    }
    let env_len = rest
        .iter()
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        .count();
    // The env tag is followed by "_", which no body character is.
    (1..=8).contains(&env_len) && rest.get(env_len) == Some(&b'_') && body_ok(&rest[env_len + 1..])
}

/// Checksum written independently of the library: CRC-32 in base62, six digits.
fn expected_checksum(signed: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = u64::from(crc32fast::hash(signed.as_bytes()));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// Random bytes taken from the fuzz input, then zeros: makes generation
/// deterministic for a given input.
struct InputRng<'a> {
    bytes: &'a [u8],
}

impl RngCore for InputRng<'_> {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest.iter_mut() {
            match self.bytes.split_first() {
                Some((&first, rest)) => {
                    *byte = first;
                    self.bytes = rest;
                }
                // Zero is below the rejection limit: generation always ends.
                None => *byte = 0,
            }
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

fn check_arbitrary(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = apikeys::parse(text);
    assert_eq!(apikeys::is_well_formed(text), parsed.is_some());
    let shaped = has_key_shape(text);
    let checksum_ok = text.len() >= 6
        && text.is_char_boundary(text.len() - 6)
        && expected_checksum(&text[..text.len() - 6]) == text[text.len() - 6..];
    // Accepted exactly when the shape and the checksum are right.
    assert_eq!(parsed.is_some(), shaped && checksum_ok, "{text:?}");
    if let Some(parsed) = parsed {
        assert!(text.len() >= 2 + 4 + apikeys::BODY_LEN && text.len() <= apikeys::MAX_KEY_LEN);
        assert_eq!(parsed.body.len(), apikeys::BODY_LEN);
        let rebuilt = match parsed.env {
            Some(env) => format!("{}_sk_{env}_{}", parsed.vendor, parsed.body),
            None => format!("{}_sk_{}", parsed.vendor, parsed.body),
        };
        assert_eq!(rebuilt, text);
    }
}

fn check_single_byte_changes(data: &[u8]) {
    // Input layout: [vendor choice, env choice, position, new byte, random...].
    let [vendor_pick, env_pick, position, replacement, random @ ..] = data else {
        return;
    };
    let vendors = ["flz", "ab", "abcdefgh", "sk"];
    let envs = [None, Some("prod"), Some("a"), Some("12345678"), Some("sk")];
    let vendor = vendors[usize::from(*vendor_pick) % vendors.len()];
    let env = envs[usize::from(*env_pick) % envs.len()];
    let key = apikeys::generate_with(&mut InputRng { bytes: random }, vendor, env)
        .expect("generation from a byte stream cannot fail");
    let text = key.expose_secret();
    assert!(apikeys::is_well_formed(text), "generated key rejected");
    assert!(has_key_shape(text));
    let mut changed = text.as_bytes().to_vec();
    let at = usize::from(*position) % changed.len();
    if changed[at] == *replacement {
        return;
    }
    changed[at] = *replacement;
    if let Ok(changed) = std::str::from_utf8(&changed) {
        assert!(
            !apikeys::is_well_formed(changed),
            "a one-byte change was accepted: {changed:?}"
        );
    }
    // Truncation and extension by one byte are rejected too.
    assert!(!apikeys::is_well_formed(&text[..text.len() - 1]));
    let mut extended = text.to_string();
    extended.push(char::from(b'0' + replacement % 10));
    assert!(!apikeys::is_well_formed(&extended));
}

fuzz_target!(|data: &[u8]| {
    check_arbitrary(data);
    check_single_byte_changes(data);
});
