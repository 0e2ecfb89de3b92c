//! [`ApiKey`], the verified key a request carries, and how a request is
//! authenticated: the `Authorization` header read, the key verified against
//! a store, the scopes checked. The extractor and the layer share it.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use apikeys::http::{bearer_token, HeaderError};
use apikeys::{KeyStore, Rejection, VerifiedKey};
use axum::http::header::AUTHORIZATION;
use axum::http::{Extensions, HeaderMap};

use crate::ApiKeyRejection;

/// The key a request was authenticated with: owned, `'static`, cheap to
/// clone. It dereferences to [`VerifiedKey`] (`id()`, `name()`, `env()`,
/// `owner()`, `scopes()`, `has_scope()`, `expires_at()`).
///
/// Take it as an extractor (see the [crate] docs), or as
/// `Extension<ApiKey>` behind an [`ApiKeyLayer`](crate::ApiKeyLayer).
#[derive(Clone)]
pub struct ApiKey {
    key: VerifiedKey<'static>,
    /// The store that verified it: a key found in a request's extensions
    /// stands for another extractor or layer of the same store only.
    verified_by: Weak<KeyStore>,
}

impl ApiKey {
    /// `Ok` when the key grants `scope` (`*` and `prefix:*` wildcards
    /// included, as the core defines them), else the 403 rejection.
    ///
    /// For a handler whose scope depends on the request; a route that
    /// always needs the same scope can say so with
    /// [`ApiKeyLayer::scope`](crate::ApiKeyLayer::scope) instead.
    ///
    /// ```
    /// use apikeys_axum::{ApiKey, ApiKeyRejection};
    ///
    /// async fn delete_contact(key: ApiKey) -> Result<&'static str, ApiKeyRejection> {
    ///     key.require("contacts:write")?;
    ///     Ok("deleted")
    /// }
    /// ```
    pub fn require(&self, scope: &str) -> Result<(), ApiKeyRejection> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiKeyRejection::Key(Rejection::InsufficientScope))
        }
    }

    /// The verified key itself.
    pub fn into_verified(self) -> VerifiedKey<'static> {
        self.key
    }
}

impl Deref for ApiKey {
    type Target = VerifiedKey<'static>;

    fn deref(&self) -> &VerifiedKey<'static> {
        &self.key
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKey").field(&self.key).finish()
    }
}

/// The token of the request's one `Authorization: Bearer` header.
fn token(headers: &HeaderMap) -> Result<&str, HeaderError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(HeaderError::Missing)?;
    // Two headers are ambiguous (a proxy may have checked the other one).
    if values.next().is_some() {
        return Err(HeaderError::BadToken);
    }
    // A key is ASCII: a value that is not visible ASCII holds none.
    let value = value.to_str().map_err(|_| HeaderError::BadToken)?;
    bearer_token(value)
}

/// Whether the request carries any `Authorization` header.
pub(crate) fn has_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
}

/// Authenticates a request against `store`, requiring every one of `scopes`.
///
/// A key already verified by the same store for this request (by a layer
/// outside, or another extractor) is reused: checked against `scopes`, not
/// verified again, so that one request counts as one use.
pub(crate) fn authenticate(
    store: &Arc<KeyStore>,
    headers: &HeaderMap,
    extensions: &Extensions,
    scopes: &[String],
) -> Result<ApiKey, ApiKeyRejection> {
    if let Some(done) = extensions.get::<ApiKey>() {
        if core::ptr::eq(done.verified_by.as_ptr(), Arc::as_ptr(store)) {
            for scope in scopes {
                done.require(scope)?;
            }
            return Ok(done.clone());
        }
    }
    let token = token(headers).map_err(ApiKeyRejection::Header)?;
    let verified = match scopes.split_first() {
        None => store.verify(token)?,
        Some((first, rest)) => {
            let verified = store.verify_with_scope(token, first)?;
            if !rest.iter().all(|scope| verified.has_scope(scope)) {
                return Err(ApiKeyRejection::Key(Rejection::InsufficientScope));
            }
            verified
        }
    };
    Ok(ApiKey {
        key: verified.into_owned(),
        verified_by: Arc::downgrade(store),
    })
}
