//! Scopes: strings such as `contacts:read` that a key grants.
//!
//! A granted `*` covers every scope; a granted `contacts:*` covers every scope
//! under `contacts:` (`contacts:read`, `contacts:notes:write`); anything else
//! covers only itself.

use crate::error::{excerpt, Error};

/// Longest accepted scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;
/// Most scopes on one key.
pub const MAX_SCOPES: usize = 64;

/// Whether `granted` covers the `required` scope.
pub fn scope_covers(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) if prefix.ends_with(':') => {
            required.starts_with(prefix) && required.len() > prefix.len()
        }
        _ => false,
    }
}

/// Whether any of `granted` covers `required`.
pub fn scopes_cover<S: AsRef<str>>(granted: &[S], required: &str) -> bool {
    granted.iter().any(|g| scope_covers(g.as_ref(), required))
}

/// Checks one scope: 1 to 64 of `[A-Za-z0-9:._-]`, with `*` only as the whole
/// scope or as the last segment after a `:`.
pub fn check_scope(scope: &str) -> Result<(), Error> {
    let valid_chars = scope
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'*'));
    let star_placed = match scope.find('*') {
        None => true,
        Some(at) => at + 1 == scope.len() && (at == 0 || scope.as_bytes()[at - 1] == b':'),
    };
    let segments_nonempty = scope.split(':').all(|segment| !segment.is_empty());
    if scope.is_empty()
        || scope.len() > MAX_SCOPE_LEN
        || !valid_chars
        || !star_placed
        || !segments_nonempty
    {
        return Err(Error::InvalidArgument(format!(
            "scope {:?}: expected 1 to {MAX_SCOPE_LEN} of [A-Za-z0-9:._-] such as \"contacts:read\", with * only as \"*\" or a last segment (\"contacts:*\")",
            excerpt(scope)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_what_they_should_and_no_more() {
        assert!(scope_covers("*", "contacts:read"));
        assert!(scope_covers("contacts:*", "contacts:read"));
        assert!(scope_covers("contacts:*", "contacts:notes:write"));
        assert!(!scope_covers("contacts:*", "contacts:"));
        assert!(!scope_covers("contacts:*", "contactsx:read"));
        assert!(!scope_covers("contacts:read", "contacts:write"));
        assert!(scope_covers("contacts:read", "contacts:read"));
    }

    #[test]
    fn scope_syntax_is_checked() {
        for good in ["*", "contacts:read", "contacts:*", "a.b-c_d"] {
            assert!(check_scope(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "con*",
            "*:read",
            "a b",
            "a::b",
            ":a",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_scope(bad).is_err(), "{bad}");
        }
    }
}
