//! HTTP helpers: read the key out of an `Authorization` header and turn a
//! verification outcome into the API's exact answers.
//!
//! Every failure of the key itself (missing, malformed, unknown, revoked,
//! expired) gets one 401 body, so a caller cannot tell which it was; a valid
//! key without the needed scope gets 403. A store failure is not the
//! caller's fault: it maps to 500, and the key is neither accepted nor
//! refused.
//!
//! ```
//! use apikeys::http::{bearer_token, Answer};
//! use apikeys::Rejection;
//!
//! assert_eq!(bearer_token("Bearer flz_sk_abc"), Ok("flz_sk_abc"));
//! let answer = Answer::for_rejection(Rejection::Revoked);
//! assert_eq!(answer.status, 401);
//! assert_eq!(
//!     answer.body,
//!     r#"{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}"#
//! );
//! ```

use crate::error::{Rejection, VerifyError};

/// 401 body: missing, malformed, unknown, revoked or expired key.
pub const UNAUTHORIZED_BODY: &str =
    r#"{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}"#;
/// 403 body: a valid key without the scope the request needs.
pub const FORBIDDEN_SCOPE_BODY: &str = r#"{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}"#;
/// 403 body for an account whose plan has no API access, as the API
/// documentation words it. The key store does not know plans: the host
/// answers this one itself.
pub const FORBIDDEN_PLAN_BODY: &str =
    r#"{"success":false,"error":{"code":"FORBIDDEN","message":"API access requires Pro plan"}}"#;
/// 500 body: the store failed; nothing is said about the key.
pub const INTERNAL_ERROR_BODY: &str = r#"{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}"#;

/// Why no key could be read from a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No header, or an empty one.
    Missing,
    /// Another scheme, such as `Basic`.
    NotBearer,
    /// `Bearer` with no token, or with more than one word.
    BadToken,
}

/// The token of an `Authorization: Bearer <token>` header value.
///
/// Following RFC 6750 and RFC 9110: the scheme is case-insensitive
/// (`bearer`, `BEARER`), separated from the token by one or more spaces;
/// the token is one word of `b64token` characters or `|` (Sanctum's tokens
/// are `id|secret`). Surrounding whitespace of the field value is ignored,
/// as HTTP parsers strip it. The token is
/// returned as sent: whether it is a key is [`crate::is_well_formed`]'s call.
pub fn bearer_token(header: &str) -> Result<&str, HeaderError> {
    bearer_token_bytes(header.as_bytes())
}

/// [`bearer_token`] on the header's raw bytes, for hosts that hold them
/// (the C ABI, a server's header map): the same answers for UTF-8 input,
/// and no UTF-8 decoding of the whole value first. Bytes that are not UTF-8
/// can only be part of a scheme that is not `Bearer` or of a token that is
/// not one word of token characters, so such a header never yields a token.
pub fn bearer_token_bytes(header: &[u8]) -> Result<&str, HeaderError> {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let Some(start) = header.iter().position(|b| !blank(b)) else {
        return Err(HeaderError::Missing);
    };
    let end = header
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    let value = &header[start..end];
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(HeaderError::NotBearer);
    }
    let token = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    // RFC 6750's b64token, and `|`: Laravel Sanctum's tokens are `id|secret`,
    // and the store verifies the keys it imported from Sanctum.
    let b64token = |b: u8| {
        b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'|')
    };
    let body = &token[..token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1)];
    // Every byte is checked, without an early exit, so the loop is
    // vectorized (a third of the instructions of `all`; callgrind).
    if body.is_empty() || !body.iter().fold(true, |ok, &b| ok & b64token(b)) {
        return Err(HeaderError::BadToken);
    }
    // Token characters and `=` are ASCII: this cannot fail.
    core::str::from_utf8(token).map_err(|_| HeaderError::BadToken)
}

/// An HTTP answer to send instead of serving the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// 401, 403 or 500.
    pub status: u16,
    /// The JSON body (`Content-Type: application/json`).
    pub body: &'static str,
    /// The `WWW-Authenticate` header to send with it (RFC 6750), if any.
    pub www_authenticate: Option<&'static str>,
}

impl Answer {
    /// 401, for a missing or unusable `Authorization` header.
    pub const UNAUTHORIZED: Answer = Answer {
        status: 401,
        body: UNAUTHORIZED_BODY,
        www_authenticate: Some("Bearer"),
    };
    /// 403, for a valid key lacking the required scope.
    pub const FORBIDDEN: Answer = Answer {
        status: 403,
        body: FORBIDDEN_SCOPE_BODY,
        www_authenticate: Some(r#"Bearer error="insufficient_scope""#),
    };
    /// 500, for a store failure.
    pub const INTERNAL_ERROR: Answer = Answer {
        status: 500,
        body: INTERNAL_ERROR_BODY,
        www_authenticate: None,
    };

    /// The answer to a rejected key.
    pub fn for_rejection(rejection: Rejection) -> Answer {
        match rejection {
            Rejection::InsufficientScope => Answer::FORBIDDEN,
            Rejection::Malformed
            | Rejection::NotFound
            | Rejection::Revoked
            | Rejection::Expired => Answer::UNAUTHORIZED,
        }
    }

    /// The answer to a failed verification.
    pub fn for_error(error: &VerifyError) -> Answer {
        match error {
            VerifyError::Rejected(rejection) => Answer::for_rejection(*rejection),
            VerifyError::Failed(_) => Answer::INTERNAL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_variants() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("BEARER  abc"), Ok("abc"));
        assert_eq!(bearer_token("  Bearer abc\t"), Ok("abc"));
        assert_eq!(bearer_token("Bearer abc=="), Ok("abc=="));
        // Imported keys: Sanctum's `id|secret`, DRF's `prefix.secret`.
        assert_eq!(bearer_token("Bearer 42|s3cret"), Ok("42|s3cret"));
        assert_eq!(
            bearer_token("Bearer Ab3dEf9h.s3cret"),
            Ok("Ab3dEf9h.s3cret")
        );
        assert_eq!(bearer_token(""), Err(HeaderError::Missing));
        assert_eq!(bearer_token("   "), Err(HeaderError::Missing));
        assert_eq!(
            bearer_token("Basic dXNlcjpwYXNz"),
            Err(HeaderError::NotBearer)
        );
        assert_eq!(bearer_token("Bearerabc"), Err(HeaderError::NotBearer));
        assert_eq!(bearer_token("Bearer"), Err(HeaderError::BadToken));
        assert_eq!(bearer_token("Bearer a b"), Err(HeaderError::BadToken));
        assert_eq!(bearer_token("Bearer ==="), Err(HeaderError::BadToken));
        assert_eq!(bearer_token("Bearer é"), Err(HeaderError::BadToken));
    }

    #[test]
    fn header_bytes_that_are_not_utf8_hold_no_token() {
        assert_eq!(bearer_token_bytes(b"Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token_bytes(b" \tBearer  abc== \t"), Ok("abc=="));
        assert_eq!(
            bearer_token_bytes(b"Bearer abc\xff"),
            Err(HeaderError::BadToken)
        );
        assert_eq!(
            bearer_token_bytes(b"\xffBearer abc"),
            Err(HeaderError::NotBearer)
        );
        assert_eq!(
            bearer_token_bytes(b"Bearer \xc3\xa9"),
            Err(HeaderError::BadToken)
        );
        assert_eq!(bearer_token_bytes(b"\t \t"), Err(HeaderError::Missing));
    }

    #[test]
    fn every_key_failure_gets_the_same_401() {
        for rejection in [
            Rejection::Malformed,
            Rejection::NotFound,
            Rejection::Revoked,
            Rejection::Expired,
        ] {
            assert_eq!(Answer::for_rejection(rejection), Answer::UNAUTHORIZED);
        }
        assert_eq!(
            Answer::for_rejection(Rejection::InsufficientScope).status,
            403
        );
    }
}
