//! The extractor and the layer in a real axum router: every way a request
//! is refused gets the exact answer (status, body, content type,
//! `WWW-Authenticate`), and an accepted one reaches the handler with its key.
//!
//! Each behaviour is checked on the same small API built both ways: with
//! the `ApiKey` extractor (scopes by `ApiKey::require`), and with
//! `ApiKeyLayer` on each route (scopes by `ApiKeyLayer::scope`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use apikeys::http::HeaderError;
use apikeys::{KeyStore, NewKey, Rejection};
use apikeys_axum::{ApiKey, ApiKeyLayer, ApiKeyRejection};
use axum::extract::FromRef;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderValue;
use axum::routing::get;
use axum::{Extension, Router};

use support::*;

/// What the handlers answer: what they can see of the key.
fn describe(key: &ApiKey) -> String {
    format!(
        "id={} name={} env={} owner={} scopes={}",
        key.id(),
        key.name(),
        key.env().unwrap_or("-"),
        key.owner().unwrap_or("-"),
        key.scopes().join(",")
    )
}

/// The API with the extractor: `/whoami` any key, `/contacts` needs
/// `contacts:read`, `/billing` needs `billing:read`.
fn extractor_app(store: &Arc<KeyStore>) -> Router {
    async fn whoami(key: ApiKey) -> String {
        describe(&key)
    }
    async fn contacts(key: ApiKey) -> Result<String, ApiKeyRejection> {
        key.require("contacts:read")?;
        Ok(describe(&key))
    }
    async fn billing(key: ApiKey) -> Result<String, ApiKeyRejection> {
        key.require("billing:read")?;
        Ok(describe(&key))
    }
    Router::new()
        .route("/whoami", get(whoami))
        .route("/contacts", get(contacts))
        .route("/billing", get(billing))
        .with_state(store.clone())
}

/// The same API with the layer on each route and `Extension<ApiKey>`.
fn layer_app(store: &Arc<KeyStore>) -> Router {
    async fn handler(Extension(key): Extension<ApiKey>) -> String {
        describe(&key)
    }
    let layer = ApiKeyLayer::new(store.clone());
    Router::new()
        .route("/whoami", get(handler).layer(layer.clone()))
        .route(
            "/contacts",
            get(handler).layer(layer.clone().scope("contacts:read")),
        )
        .route("/billing", get(handler).layer(layer.scope("billing:read")))
}

fn apps(store: &Arc<KeyStore>) -> [(&'static str, Router); 2] {
    [
        ("extractor", extractor_app(store)),
        ("layer", layer_app(store)),
    ]
}

#[tokio::test]
async fn a_request_without_a_usable_bearer_header_gets_the_401_and_its_challenge() {
    let keys = test_store(false);
    let valid = bearer(&keys.key(NewKey::new("valid").scope("*")));
    let cases: &[(&str, &[&str], HeaderError)] = &[
        ("no header", &[], HeaderError::Missing),
        ("empty header", &[""], HeaderError::Missing),
        ("basic", &["Basic dXNlcjpwYXNz"], HeaderError::NotBearer),
        ("another scheme", &["Token abc"], HeaderError::NotBearer),
        ("no space", &["Bearerflz_sk_x"], HeaderError::NotBearer),
        ("no token", &["Bearer"], HeaderError::BadToken),
        (
            "two words",
            &["Bearer flz_sk_a flz_sk_b"],
            HeaderError::BadToken,
        ),
        ("not a token", &["Bearer {key}"], HeaderError::BadToken),
        // Two headers, even both valid: ambiguous, refused.
        ("two headers", &[&valid, &valid], HeaderError::BadToken),
    ];
    for (name, app) in apps(&keys.store) {
        for (what, headers, why) in cases {
            for path in ["/whoami", "/contacts"] {
                let reply = send(&app, path, headers).await;
                let what = format!("{name} {path} {what}");
                assert_unauthorized(&reply, &what);
                assert!(
                    matches!(reply.rejection, Some(ApiKeyRejection::Header(got)) if got == *why),
                    "{what}: {:?}",
                    reply.rejection
                );
            }
        }
        // A header value that is not visible ASCII holds no key.
        let mut request = request("/whoami", &[]);
        let opaque = HeaderValue::from_bytes(b"Bearer flz_sk_\xe9t\xe9").expect("opaque value");
        request.headers_mut().insert(AUTHORIZATION, opaque);
        let reply = send_request(&app, request).await;
        assert_unauthorized(&reply, &format!("{name}: non-ASCII header"));
        // The valid key alone passes, so the refusals above were the header's.
        assert_eq!(send(&app, "/whoami", &[&valid]).await.status, 200, "{name}");
    }
}

#[tokio::test]
async fn a_malformed_key_is_refused_with_the_same_401() {
    let keys = test_store(false);
    let key = keys.key(NewKey::new("real").env("prod").scope("*"));
    let secret = key.secret.expose_secret();
    let last = secret.chars().last().expect("a key");
    let typo = format!(
        "{}{}",
        &secret[..secret.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    let cases = [
        "Bearer flz_sk_short".to_string(),
        format!("Bearer {typo}"),
        format!("Bearer {}", &secret[..secret.len() - 1]),
        format!("Bearer {}", secret.to_uppercase()),
        format!("Bearer {secret}x"),
    ];
    for (name, app) in apps(&keys.store) {
        for header in &cases {
            let reply = send(&app, "/contacts", &[header]).await;
            assert_unauthorized(&reply, &format!("{name}: {header}"));
            assert!(
                matches!(
                    reply.rejection,
                    Some(ApiKeyRejection::Key(Rejection::Malformed))
                ),
                "{name}: {header}: {:?}",
                reply.rejection
            );
        }
    }
}

#[tokio::test]
async fn a_key_of_another_store_is_unknown() {
    let keys = test_store(false);
    let elsewhere = test_store(false);
    let foreign = elsewhere.key(NewKey::new("foreign").scope("*"));
    for (name, app) in apps(&keys.store) {
        let reply = send(&app, "/whoami", &[&bearer(&foreign)]).await;
        assert_unauthorized(&reply, name);
        assert!(
            matches!(
                reply.rejection,
                Some(ApiKeyRejection::Key(Rejection::NotFound))
            ),
            "{name}: {:?}",
            reply.rejection
        );
    }
}

#[tokio::test]
async fn a_key_revoked_while_the_server_runs_is_refused_by_the_very_next_request() {
    let keys = test_store(false);
    for (name, app) in apps(&keys.store) {
        let by_id = keys.key(NewKey::new("by id").scope("contacts:read"));
        let leaked = keys.key(NewKey::new("leaked").scope("contacts:read"));
        for key in [&by_id, &leaked] {
            assert_eq!(send(&app, "/contacts", &[&bearer(key)]).await.status, 200);
        }
        assert!(keys.store.revoke(by_id.id()).expect("revoke"));
        assert!(keys
            .store
            .revoke_key(leaked.secret.expose_secret())
            .expect("revoke key"));
        for key in [&by_id, &leaked] {
            for path in ["/contacts", "/whoami"] {
                let reply = send(&app, path, &[&bearer(key)]).await;
                assert_unauthorized(&reply, &format!("{name} {path}"));
                assert!(
                    matches!(
                        reply.rejection,
                        Some(ApiKeyRejection::Key(Rejection::Revoked))
                    ),
                    "{name}: {:?}",
                    reply.rejection
                );
            }
        }
    }
}

#[tokio::test]
async fn a_key_revoked_by_another_handle_of_a_shared_store_is_refused_by_the_next_request() {
    // The server opens the store in shared mode so that the command line
    // (`apikeys --shared revoke ID`) can revoke keys while it runs: another
    // handle on the same file stands for it here.
    let keys = test_store(true);
    let admin = KeyStore::open(&keys.path, options(&keys.clock).shared()).expect("second handle");
    for (name, app) in apps(&keys.store) {
        let key = admin
            .generate(&NewKey::new("made by the admin").scope("contacts:read"))
            .expect("generate");
        assert_eq!(send(&app, "/contacts", &[&bearer(&key)]).await.status, 200);
        assert!(admin.revoke(key.id()).expect("revoke"));
        let reply = send(&app, "/contacts", &[&bearer(&key)]).await;
        assert_unauthorized(&reply, name);
        assert!(matches!(
            reply.rejection,
            Some(ApiKeyRejection::Key(Rejection::Revoked))
        ));
    }
    admin.close().expect("close");
}

#[tokio::test]
async fn a_key_is_refused_from_the_second_it_expires() {
    let keys = test_store(false);
    for (name, app) in apps(&keys.store) {
        let key = keys.key(
            NewKey::new("an hour")
                .scope("contacts:read")
                .expires_in(Duration::from_secs(3600)),
        );
        assert_eq!(send(&app, "/contacts", &[&bearer(&key)]).await.status, 200);
        keys.clock.advance(Duration::from_secs(3599));
        assert_eq!(send(&app, "/contacts", &[&bearer(&key)]).await.status, 200);
        keys.clock.advance(Duration::from_secs(1));
        let reply = send(&app, "/contacts", &[&bearer(&key)]).await;
        assert_unauthorized(&reply, name);
        assert!(
            matches!(
                reply.rejection,
                Some(ApiKeyRejection::Key(Rejection::Expired))
            ),
            "{name}: {:?}",
            reply.rejection
        );
    }
}

#[tokio::test]
async fn a_valid_key_without_the_routes_scope_gets_the_403() {
    let keys = test_store(false);
    let reader = keys.key(NewKey::new("reader").scope("contacts:read"));
    let unscoped = keys.key(NewKey::new("no scope"));
    let writer = keys.key(NewKey::new("writer").scope("contacts:write"));
    for (name, app) in apps(&keys.store) {
        for (key, path) in [
            (&reader, "/billing"),
            (&unscoped, "/contacts"),
            (&writer, "/contacts"),
        ] {
            let reply = send(&app, path, &[&bearer(key)]).await;
            assert_forbidden(&reply, &format!("{name} {path}"));
            assert!(matches!(
                reply.rejection,
                Some(ApiKeyRejection::Key(Rejection::InsufficientScope))
            ));
        }
        // The same keys authenticate where no scope is needed.
        for key in [&reader, &unscoped, &writer] {
            assert_eq!(send(&app, "/whoami", &[&bearer(key)]).await.status, 200);
        }
    }
}

#[tokio::test]
async fn wildcard_scopes_grant_what_the_core_says() {
    let keys = test_store(false);
    let everything = keys.key(NewKey::new("all").scope("*"));
    let contacts = keys.key(NewKey::new("contacts").scope("contacts:*"));
    let both = keys.key(NewKey::new("both").scopes(["billing:*", "contacts:read"]));
    for (name, app) in apps(&keys.store) {
        for (key, path, granted) in [
            (&everything, "/contacts", true),
            (&everything, "/billing", true),
            (&contacts, "/contacts", true),
            (&contacts, "/billing", false),
            (&both, "/contacts", true),
            (&both, "/billing", true),
        ] {
            let reply = send(&app, path, &[&bearer(key)]).await;
            let what = format!("{name} {path} {}", key.info.name);
            if granted {
                assert_eq!(reply.status, 200, "{what}: {reply:?}");
            } else {
                assert_forbidden(&reply, &what);
            }
        }
    }
}

#[tokio::test]
async fn the_handler_sees_the_keys_id_name_and_details() {
    let keys = test_store(false);
    let key = keys.key(
        NewKey::new("Production")
            .env("prod")
            .owner("team-42")
            .scopes(["contacts:read", "billing:*"]),
    );
    let expected = format!(
        "id={} name=Production env=prod owner=team-42 scopes=contacts:read,billing:*",
        key.id()
    );
    for (name, app) in apps(&keys.store) {
        for path in ["/whoami", "/contacts", "/billing"] {
            let reply = send(&app, path, &[&bearer(&key)]).await;
            assert_ok(&reply, &expected, &format!("{name} {path}"));
        }
        // The scheme is case-insensitive and spaces around the value are not
        // part of it (RFC 9110).
        let secret = key.secret.expose_secret();
        for header in [format!("bearer {secret}"), format!("BEARER   {secret}")] {
            let reply = send(&app, "/contacts", &[&header]).await;
            assert_ok(&reply, &expected, &format!("{name} {header}"));
        }
    }
}

#[tokio::test]
async fn when_the_store_fails_the_answer_is_500_never_401() {
    // A shared-mode store whose file is cut away under the running server
    // (a disk or a volume lost): every verify reads the file and fails.
    let keys = test_store(true);
    let key = keys.key(NewKey::new("fine until the disk went").scope("*"));
    let apps = apps(&keys.store);
    for (_, app) in &apps {
        assert_eq!(send(app, "/contacts", &[&bearer(&key)]).await.status, 200);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&keys.path)
        .expect("open the file")
        .set_len(0)
        .expect("truncate");
    for (name, app) in &apps {
        for path in ["/whoami", "/contacts"] {
            let reply = send(app, path, &[&bearer(&key)]).await;
            assert_internal_error(&reply, &format!("{name} {path}"));
            assert!(
                matches!(reply.rejection, Some(ApiKeyRejection::Store(_))),
                "{name}: {:?}",
                reply.rejection
            );
        }
        // A request without a key is still the caller's fault: 401.
        assert_unauthorized(&send(app, "/whoami", &[]).await, name);
    }
}

#[tokio::test]
async fn one_request_counts_one_use_however_many_layers_and_extractors_see_it() {
    let keys = test_store(false);
    let key = keys.key(NewKey::new("counted").scope("contacts:*"));
    async fn twice(first: ApiKey, second: ApiKey, Extension(third): Extension<ApiKey>) -> String {
        assert_eq!(first.id(), second.id());
        assert_eq!(first.id(), third.id());
        describe(&first)
    }
    let layer = ApiKeyLayer::new(keys.store.clone());
    let app = Router::new()
        .route(
            "/contacts",
            get(twice).layer(layer.clone().scope("contacts:write")),
        )
        .route_layer(layer.scope("contacts:read"))
        .with_state(keys.store.clone());
    for served in 1..=3 {
        assert_eq!(send(&app, "/contacts", &[&bearer(&key)]).await.status, 200);
        assert_eq!(keys.use_count(key.id()), served);
    }
    // The inner layer checks its scope on the key the outer one verified.
    let reader = keys.key(NewKey::new("reader").scope("contacts:read"));
    assert_forbidden(&send(&app, "/contacts", &[&bearer(&reader)]).await, "inner");
    assert_eq!(keys.use_count(reader.id()), 1);
}

#[tokio::test]
async fn a_key_verified_by_another_store_does_not_pass_for_this_one() {
    // An outer layer of the customers' store and an admin route whose
    // extractor verifies against the admins' store.
    let customers = test_store(false);
    let admins = test_store(false);
    let customer = customers.key(NewKey::new("customer").scope("*"));
    let admin = admins.key(NewKey::new("admin").scope("*"));
    async fn handler(key: ApiKey) -> String {
        key.name().to_string()
    }
    let app = Router::new()
        .route("/admin", get(handler))
        .with_state(admins.store.clone())
        .layer(ApiKeyLayer::new(customers.store.clone()));
    let reply = send(&app, "/admin", &[&bearer(&customer)]).await;
    assert_unauthorized(&reply, "a customer key on the admins' route");
    // An admin key is not a customer key: the outer layer refuses it.
    assert_unauthorized(&send(&app, "/admin", &[&bearer(&admin)]).await, "outer");
}

#[tokio::test]
async fn a_layer_with_several_scopes_requires_every_one() {
    let keys = test_store(false);
    async fn handler(Extension(key): Extension<ApiKey>) -> String {
        key.name().to_string()
    }
    let app = Router::new().route(
        "/sync",
        get(handler).layer(
            ApiKeyLayer::new(keys.store.clone())
                .scope("contacts:read")
                .scope("contacts:write"),
        ),
    );
    let reader = keys.key(NewKey::new("reader").scope("contacts:read"));
    let writer = keys.key(NewKey::new("writer").scope("contacts:write"));
    let both = keys.key(NewKey::new("both").scopes(["contacts:read", "contacts:write"]));
    let wildcard = keys.key(NewKey::new("wildcard").scope("contacts:*"));
    assert_forbidden(&send(&app, "/sync", &[&bearer(&reader)]).await, "reader");
    assert_forbidden(&send(&app, "/sync", &[&bearer(&writer)]).await, "writer");
    assert_ok(
        &send(&app, "/sync", &[&bearer(&both)]).await,
        "both",
        "both",
    );
    assert_ok(
        &send(&app, "/sync", &[&bearer(&wildcard)]).await,
        "wildcard",
        "wildcard",
    );
}

#[test]
#[should_panic(expected = "ApiKeyLayer::scope(\"contacts read\")")]
fn a_misspelt_scope_is_refused_when_the_router_is_built() {
    let keys = test_store(false);
    let _ = ApiKeyLayer::new(keys.store.clone()).scope("contacts read");
}

#[tokio::test]
async fn an_optional_key_lets_anonymous_callers_in_but_refuses_a_bad_key() {
    let keys = test_store(false);
    async fn greet(key: Option<ApiKey>) -> String {
        match key {
            Some(key) => format!("hello {}", key.name()),
            None => "hello stranger".to_string(),
        }
    }
    let app = Router::new()
        .route("/hello", get(greet))
        .with_state(keys.store.clone());
    let key = keys.key(NewKey::new("Ada"));
    assert_ok(&send(&app, "/hello", &[]).await, "hello stranger", "none");
    assert_ok(
        &send(&app, "/hello", &[&bearer(&key)]).await,
        "hello Ada",
        "key",
    );
    for header in ["Bearer flz_sk_nonsense", "Basic dXNlcjpwYXNz", ""] {
        assert_unauthorized(&send(&app, "/hello", &[header]).await, header);
    }
    keys.store.revoke(key.id()).expect("revoke");
    assert_unauthorized(&send(&app, "/hello", &[&bearer(&key)]).await, "revoked");
}

#[tokio::test]
async fn the_extractor_finds_the_store_in_an_application_state() {
    #[derive(Clone)]
    struct AppState {
        keys: Arc<KeyStore>,
        greeting: &'static str,
    }
    impl FromRef<AppState> for Arc<KeyStore> {
        fn from_ref(state: &AppState) -> Self {
            state.keys.clone()
        }
    }
    async fn handler(
        axum::extract::State(state): axum::extract::State<AppState>,
        key: ApiKey,
    ) -> String {
        format!("{} {}", state.greeting, key.name())
    }
    let keys = test_store(false);
    let app = Router::new().route("/", get(handler)).with_state(AppState {
        keys: keys.store.clone(),
        greeting: "hi",
    });
    let key = keys.key(NewKey::new("Grace"));
    assert_ok(
        &send(&app, "/", &[&bearer(&key)]).await,
        "hi Grace",
        "state",
    );
    assert_unauthorized(&send(&app, "/", &[]).await, "state, no key");
}

#[tokio::test]
async fn a_router_wide_layer_also_wraps_the_fallback_and_route_layer_does_not() {
    let keys = test_store(false);
    async fn handler() -> &'static str {
        "ok"
    }
    let layer = ApiKeyLayer::new(keys.store.clone());
    let wide = Router::new().route("/x", get(handler)).layer(layer.clone());
    let routes_only = Router::new().route("/x", get(handler)).route_layer(layer);
    assert_unauthorized(&send(&wide, "/missing", &[]).await, "layer");
    assert_eq!(send(&routes_only, "/missing", &[]).await.status, 404);
    assert_unauthorized(&send(&routes_only, "/x", &[]).await, "route_layer");
}

#[test]
fn the_readme_shows_the_example_server_as_it_is() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/server.rs");
    assert!(
        readme.contains(example),
        "axum/README.md must include examples/server.rs verbatim"
    );
}
