//! `Authorization` header parsing on arbitrary strings.
//!
//! Invariants checked: never a panic; an accepted token is a non-empty
//! single word of RFC 6750 `b64token` characters and Sanctum's `|` (`=` only
//! as padding at the end), found at the end of the header after a case-insensitive `Bearer`
//! and spaces; parsing `Bearer <token>` again gives the same token; the
//! error kinds match the header's shape; the answer is the one of a plain
//! `str` reading of the rules (`reference`, which the byte-level parser
//! replaced), so a valid header is never refused; bytes that are not UTF-8
//! never give a token (`bearer_token_bytes`, what the C ABI parses).
#![no_main]

use apikeys::http::{bearer_token, bearer_token_bytes, HeaderError};
use libfuzzer_sys::fuzz_target;

/// RFC 6750's `b64token` characters, and the `|` of Laravel Sanctum's
/// `id|secret` tokens, which imported keys keep (see "Moving in").
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'|')
}

/// The rules read on `str`, as `bearer_token` was written before it parsed
/// bytes: the differential oracle.
fn reference(header: &str) -> Result<&str, HeaderError> {
    let value = header.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(HeaderError::Missing);
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HeaderError::NotBearer);
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(is_token_char) {
        return Err(HeaderError::BadToken);
    }
    Ok(token)
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        assert!(bearer_token_bytes(data).is_err(), "{data:?}");
        return;
    };
    assert_eq!(bearer_token(header), reference(header), "{header:?}");
    let value = header.trim_matches([' ', '\t']);
    match bearer_token(header) {
        Ok(token) => {
            let body = token.trim_end_matches('=');
            assert!(!body.is_empty(), "{header:?}");
            assert!(body.bytes().all(is_token_char), "{header:?}");
            assert!(value.ends_with(token), "{header:?}");
            let before = &value[..value.len() - token.len()];
            let scheme = before.trim_end_matches(' ');
            assert!(
                scheme.len() < before.len(),
                "no space before the token: {header:?}"
            );
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{header:?}");
            assert_eq!(bearer_token(&format!("Bearer {token}")), Ok(token));
            assert_eq!(bearer_token(&format!("bearer\t{token}")).ok(), None);
            // Whether it is a key is a separate, panic-free question.
            let _ = apikeys::is_well_formed(token);
        }
        Err(HeaderError::Missing) => assert!(value.is_empty(), "{header:?}"),
        Err(HeaderError::NotBearer) => {
            let scheme = value.split(' ').next().unwrap_or("");
            assert!(!scheme.eq_ignore_ascii_case("bearer"), "{header:?}");
        }
        Err(HeaderError::BadToken) => {
            let scheme = value.split(' ').next().unwrap_or("");
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{header:?}");
        }
    }
});
