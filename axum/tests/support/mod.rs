//! What the tests share: a store, requests sent through a real axum
//! router with `oneshot`, and the exact answers every refusal must get.
#![allow(dead_code)] // each test binary uses its own part

use std::sync::Arc;
use std::time::Duration;

use apikeys::{GeneratedKey, KeyStore, ManualClock, NewKey, StoreOptions, Timestamp};
use axum::body::{to_bytes, Body};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// The seed's bodies, written out here rather than taken from the core, so
/// that a change to either is caught.
pub const UNAUTHORIZED_BODY: &str =
    r#"{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}"#;
pub const FORBIDDEN_BODY: &str = r#"{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}"#;
pub const INTERNAL_ERROR_BODY: &str = r#"{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}"#;

/// A store in a temporary folder, on a clock the test moves.
pub struct TestStore {
    pub store: Arc<KeyStore>,
    pub clock: ManualClock,
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// 2025-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp::from_unix(1_735_689_600);

pub fn options(clock: &ManualClock) -> StoreOptions {
    // No background flush: the tests flush when they read usage.
    StoreOptions::new()
        .clock(clock.clone())
        .flush_interval(Duration::ZERO)
}

pub fn test_store(shared: bool) -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.redb");
    let clock = ManualClock::new(START);
    let mut options = options(&clock);
    if shared {
        options = options.shared();
    }
    let store = Arc::new(KeyStore::open(&path, options).expect("open"));
    TestStore {
        store,
        clock,
        path,
        _dir: dir,
    }
}

impl TestStore {
    pub fn key(&self, new: NewKey) -> GeneratedKey {
        self.store.generate(&new).expect("generate")
    }

    /// The key's accepted uses, written to the file first.
    pub fn use_count(&self, id: &str) -> u64 {
        self.store.flush().expect("flush");
        self.store.get(id).expect("get").use_count
    }
}

pub fn bearer(key: &GeneratedKey) -> String {
    format!("Bearer {}", key.secret.expose_secret())
}

/// What came back, body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub rejection: Option<apikeys_axum::ApiKeyRejection>,
}

pub fn request(path: &str, authorization: &[&str]) -> Request<Body> {
    let mut request = Request::get(path);
    for value in authorization {
        request = request.header(AUTHORIZATION, *value);
    }
    request.body(Body::empty()).expect("request")
}

pub async fn send_request(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let rejection = response
        .extensions()
        .get::<apikeys_axum::ApiKeyRejection>()
        .cloned();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        rejection,
    }
}

/// GET `path` with these `Authorization` headers (none, one or several).
pub async fn send(app: &Router, path: &str, authorization: &[&str]) -> Reply {
    send_request(app, request(path, authorization)).await
}

fn json(reply: &Reply) -> Option<&HeaderValue> {
    reply.headers.get(CONTENT_TYPE)
}

pub fn assert_unauthorized(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
    assert_eq!(reply.body, UNAUTHORIZED_BODY, "{what}");
    assert_eq!(
        json(reply),
        Some(&HeaderValue::from_static("application/json")),
        "{what}"
    );
    let challenges: Vec<_> = reply.headers.get_all(WWW_AUTHENTICATE).iter().collect();
    assert_eq!(challenges, [HeaderValue::from_static("Bearer")], "{what}");
}

pub fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {reply:?}");
    assert_eq!(reply.body, FORBIDDEN_BODY, "{what}");
    assert_eq!(
        json(reply),
        Some(&HeaderValue::from_static("application/json")),
        "{what}"
    );
    let challenges: Vec<_> = reply.headers.get_all(WWW_AUTHENTICATE).iter().collect();
    assert_eq!(
        challenges,
        [HeaderValue::from_static(
            r#"Bearer error="insufficient_scope""#
        )],
        "{what}"
    );
}

pub fn assert_internal_error(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: {reply:?}"
    );
    assert_eq!(reply.body, INTERNAL_ERROR_BODY, "{what}");
    assert_eq!(
        json(reply),
        Some(&HeaderValue::from_static("application/json")),
        "{what}"
    );
    assert!(reply.headers.get(WWW_AUTHENTICATE).is_none(), "{what}");
}

pub fn assert_ok(reply: &Reply, body: &str, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
    assert_eq!(reply.body, body, "{what}");
    assert!(reply.rejection.is_none(), "{what}");
}
