//! Why a request was not authenticated, and the answer it gets: the core's
//! exact bodies ([`apikeys::http::Answer`]) as an axum response.

use std::fmt;
use std::sync::Arc;

use apikeys::http::{Answer, HeaderError};
use apikeys::{Rejection, VerifyError};
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why [`ApiKey`](crate::ApiKey) or [`ApiKeyLayer`](crate::ApiKeyLayer)
/// refused a request.
///
/// As a response it is the core's answer ([`ApiKeyRejection::answer`]):
/// 401 with `WWW-Authenticate: Bearer` for every failure of the header or
/// the key, so the caller cannot tell which; 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope"` for a valid key
/// without the scope; 500, with nothing said about the key, when the store
/// failed. The body is JSON (`content-type: application/json`).
///
/// The response also carries the rejection itself in its extensions, so a
/// layer outside (logging, metrics) can tell a revoked key from a missing
/// header, or see the store's error, without the caller seeing it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiKeyRejection {
    /// No usable `Authorization: Bearer` header (401): none, another
    /// scheme, no token or a token that is not one word, a value that is not
    /// visible ASCII, or more than one `Authorization` header.
    Header(HeaderError),
    /// The store refused the key (401), or the key lacks the scope (403).
    Key(Rejection),
    /// The store could not answer (500). The key was neither accepted nor
    /// refused.
    Store(Arc<apikeys::Error>),
}

impl ApiKeyRejection {
    /// The core's answer to this rejection: status, body, `WWW-Authenticate`.
    pub fn answer(&self) -> Answer {
        match self {
            ApiKeyRejection::Header(_) => Answer::UNAUTHORIZED,
            ApiKeyRejection::Key(rejection) => Answer::for_rejection(*rejection),
            ApiKeyRejection::Store(_) => Answer::INTERNAL_ERROR,
        }
    }

    /// 401, 403 or 500.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.answer().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<VerifyError> for ApiKeyRejection {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => ApiKeyRejection::Key(rejection),
            VerifyError::Failed(error) => ApiKeyRejection::Store(Arc::new(error)),
        }
    }
}

impl IntoResponse for ApiKeyRejection {
    fn into_response(self) -> Response {
        let answer = self.answer();
        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = answer.www_authenticate {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl fmt::Display for ApiKeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKeyRejection::Header(HeaderError::Missing) => f.write_str("no Authorization header"),
            ApiKeyRejection::Header(HeaderError::NotBearer) => {
                f.write_str("the Authorization header is not of the Bearer scheme")
            }
            ApiKeyRejection::Header(HeaderError::BadToken) => {
                f.write_str("the Authorization header has no usable Bearer token")
            }
            ApiKeyRejection::Key(rejection) => write!(f, "API key refused: {rejection}"),
            ApiKeyRejection::Store(error) => write!(f, "the key store failed: {error}"),
        }
    }
}

impl std::error::Error for ApiKeyRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiKeyRejection::Header(_) => None,
            ApiKeyRejection::Key(rejection) => Some(rejection),
            ApiKeyRejection::Store(error) => Some(&**error),
        }
    }
}
