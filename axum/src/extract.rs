//! [`ApiKey`] as an axum extractor, with the store taken from the router's
//! state (`Arc<KeyStore>: FromRef<S>`).

use std::sync::Arc;

use apikeys::KeyStore;
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::key::{authenticate, has_authorization};
use crate::{ApiKey, ApiKeyRejection};

/// Authenticates the request with its `Authorization: Bearer` key, or
/// rejects it (401, or 500 when the store fails).
///
/// The key is kept in the request's extensions, so that extracting it
/// again (a `middleware::from_fn` and then the handler) neither verifies
/// it twice nor counts two uses; a key put there by an [`ApiKeyLayer`]
/// of the same store is taken as it is.
///
/// [`ApiKeyLayer`]: crate::ApiKeyLayer
impl<S> FromRequestParts<S> for ApiKey
where
    Arc<KeyStore>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiKeyRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let store = Arc::<KeyStore>::from_ref(state);
        let key = authenticate(&store, &parts.headers, &parts.extensions, &[])?;
        parts.extensions.insert(key.clone());
        Ok(key)
    }
}

/// `Option<ApiKey>`, for a route that serves anonymous callers too: `None`
/// when the request has no `Authorization` header at all. A header that is
/// there but does not authenticate is still rejected (401), as is a store
/// failure (500): a caller who sent a key must learn that it was refused.
impl<S> OptionalFromRequestParts<S> for ApiKey
where
    Arc<KeyStore>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiKeyRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !has_authorization(&parts.headers) && parts.extensions.get::<ApiKey>().is_none() {
            return Ok(None);
        }
        <ApiKey as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}
