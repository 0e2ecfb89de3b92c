//! axum and tower integration of [`apikeys`]: authenticate
//! `Authorization: Bearer` API keys against a [`KeyStore`], with per-route
//! scopes, answering refused requests with the core's exact bodies.
//!
//! Two ways in, which mix:
//!
//! - [`ApiKey`], an extractor: the handler gets the verified key (owned,
//!   `'static`; it dereferences to [`apikeys::VerifiedKey`]). The store
//!   comes from the router's state, as an `Arc<KeyStore>` or any state
//!   with `Arc<KeyStore>: FromRef<S>`. [`ApiKey::require`] checks a scope
//!   in the handler. `Option<ApiKey>` serves anonymous callers too.
//! - [`ApiKeyLayer`], a tower layer: `ApiKeyLayer::new(store).scope("contacts:read")`
//!   on a route (or `route_layer` on a router) authenticates every request
//!   before it reaches the handler, and puts the key in the request's
//!   extensions (`Extension<ApiKey>`, or the `ApiKey` extractor, which
//!   takes it from there without verifying again).
//!
//! Every refusal is an [`ApiKeyRejection`], answered as
//! [`apikeys::http::Answer`] says, with `content-type: application/json`:
//!
//! | outcome | status | `WWW-Authenticate` | body `error.code` |
//! |---|---|---|---|
//! | no header, not `Bearer`, malformed, unknown, revoked or expired key | 401 | `Bearer` | `UNAUTHORIZED` |
//! | valid key without the required scope | 403 | `Bearer error="insufficient_scope"` | `FORBIDDEN` |
//! | the store failed | 500 | none | `INTERNAL_ERROR` |
//!
//! ```
//! use std::sync::Arc;
//!
//! use apikeys::{KeyStore, NewKey, StoreOptions};
//! use apikeys_axum::{ApiKey, ApiKeyLayer, ApiKeyRejection};
//! use axum::body::Body;
//! use axum::http::{header::AUTHORIZATION, Request, StatusCode};
//! use axum::routing::get;
//! use axum::{Extension, Router};
//! use tower::ServiceExt; // oneshot
//!
//! // The extractor: any valid key, then a scope checked in the handler.
//! async fn whoami(key: ApiKey) -> String {
//!     format!("{} ({})", key.name(), key.id())
//! }
//! async fn export(key: ApiKey) -> Result<&'static str, ApiKeyRejection> {
//!     key.require("contacts:export")?; // 403 without it
//!     Ok("a,b,c")
//! }
//! // Behind the layer, which already required `contacts:read`.
//! async fn contacts(Extension(key): Extension<ApiKey>) -> String {
//!     format!("contacts of {}", key.name())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(KeyStore::open(dir.path().join("keys.redb"), StoreOptions::new())?);
//! let key = store.generate(&NewKey::new("Production").scope("contacts:read"))?;
//!
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/export", get(export))
//!     .route(
//!         "/contacts",
//!         get(contacts).layer(ApiKeyLayer::new(store.clone()).scope("contacts:read")),
//!     )
//!     .with_state(store.clone());
//!
//! let bearer = format!("Bearer {}", key.secret.expose_secret());
//! let get = |path: &str, authorization: Option<&str>| {
//!     let mut request = Request::get(path);
//!     if let Some(value) = authorization {
//!         request = request.header(AUTHORIZATION, value);
//!     }
//!     request.body(Body::empty()).unwrap()
//! };
//! let status = |response: axum::response::Response| response.status();
//!
//! assert_eq!(status(app.clone().oneshot(get("/contacts", Some(&bearer))).await?), StatusCode::OK);
//! assert_eq!(status(app.clone().oneshot(get("/whoami", Some(&bearer))).await?), StatusCode::OK);
//! assert_eq!(status(app.clone().oneshot(get("/export", Some(&bearer))).await?), StatusCode::FORBIDDEN);
//! assert_eq!(status(app.clone().oneshot(get("/whoami", None)).await?), StatusCode::UNAUTHORIZED);
//!
//! store.revoke(key.id())?; // refused from the very next request on
//! assert_eq!(status(app.oneshot(get("/contacts", Some(&bearer))).await?), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! Verification is synchronous and runs on the request's task: in
//! exclusive mode it is served from the store's memory, in shared mode it
//! is one read of the file's latest commit, and it never waits on a disk
//! write (usage is counted in memory and flushed in the background).
//!
//! [`KeyStore`]: apikeys::KeyStore
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod extract;
mod key;
mod layer;
mod rejection;

pub use key::ApiKey;
pub use layer::{ApiKeyLayer, ApiKeyService, ResponseFuture};
pub use rejection::ApiKeyRejection;
