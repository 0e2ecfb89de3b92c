//! `Authorization` header parsing on arbitrary strings.
//!
//! Invariants checked: never a panic; an accepted token is a non-empty
//! single word of RFC 6750 `b64token` characters and Sanctum's `|` (`=` only
//! as padding at the end), found at the end of the header after a case-insensitive `Bearer`
//! and spaces; parsing `Bearer <token>` again gives the same token; the
//! error kinds match the header's shape.
#![no_main]

use apikeys::http::{bearer_token, HeaderError};
use libfuzzer_sys::fuzz_target;

/// RFC 6750's `b64token` characters, and the `|` of Laravel Sanctum's
/// `id|secret` tokens, which imported keys keep (see "Moving in").
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'|')
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
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
