//! A server that forks its workers after opening the store (the mistake
//! the core's docs warn about) answers 500 in every worker, never 401 and
//! never an accept: the handle used after `fork()` fails every verify with
//! `Error::UsedAfterFork`, and the parent's handle keeps working.
//!
//! One test function, so that no other test thread of this binary is
//! running when it forks; the child runs no async runtime (no threads):
//! the routes' futures complete when first polled.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use apikeys::{Error, KeyStore, NewKey, StoreOptions};
use apikeys_axum::{ApiKey, ApiKeyLayer, ApiKeyRejection};
use axum::body::to_bytes;
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceExt;

use support::{request, INTERNAL_ERROR_BODY};

/// What the child found wrong, one exit code each.
const CHILD_OK: i32 = 0;
const NOT_READY: i32 = 10;
const NOT_500: i32 = 11;
const WRONG_BODY: i32 = 12;
const NOT_JSON: i32 = 13;
const A_CHALLENGE: i32 = 14;
const NOT_USED_AFTER_FORK: i32 = 15;

/// Polls `future` a few times without a runtime.
fn run<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    (0..100).find_map(|_| match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    })
}

/// `(status, rejection, content type, challenge, body)`, or `None` if not ready.
fn get_whoami(
    app: &Router,
    authorization: &str,
) -> Option<(u16, Option<ApiKeyRejection>, String, bool, String)> {
    let response = run(app.clone().oneshot(request("/whoami", &[authorization])))?.ok()?;
    let status = response.status().as_u16();
    let rejection = response.extensions().get::<ApiKeyRejection>().cloned();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    let challenge = response.headers().contains_key(WWW_AUTHENTICATE);
    let body = run(to_bytes(response.into_body(), 1 << 16))?.ok()?;
    Some((
        status,
        rejection,
        content_type,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn child_checks(apps: &[Router], authorization: &str) -> i32 {
    for app in apps {
        let Some((status, rejection, content_type, challenge, body)) =
            get_whoami(app, authorization)
        else {
            return NOT_READY;
        };
        if status != 500 {
            return NOT_500;
        }
        if body != INTERNAL_ERROR_BODY {
            return WRONG_BODY;
        }
        if content_type != "application/json" {
            return NOT_JSON;
        }
        if challenge {
            return A_CHALLENGE;
        }
        match rejection {
            Some(ApiKeyRejection::Store(error)) if matches!(*error, Error::UsedAfterFork) => {}
            _ => return NOT_USED_AFTER_FORK,
        }
    }
    CHILD_OK
}

#[test]
fn a_worker_forked_after_the_store_was_opened_answers_500_and_the_parent_still_serves() {
    async fn whoami(key: ApiKey) -> String {
        key.name().to_string()
    }
    async fn behind_layer(Extension(key): Extension<ApiKey>) -> String {
        key.name().to_string()
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // The default options: a background usage-flush thread is running.
    let store =
        Arc::new(KeyStore::open(dir.path().join("keys.redb"), StoreOptions::new()).expect("open"));
    let key = store
        .generate(&NewKey::new("Production").scope("*"))
        .expect("generate");
    let authorization = format!("Bearer {}", key.secret.expose_secret());
    let apps = [
        Router::new()
            .route("/whoami", get(whoami))
            .with_state(store.clone()),
        Router::new().route(
            "/whoami",
            get(behind_layer).layer(ApiKeyLayer::new(store.clone())),
        ),
    ];
    for app in &apps {
        let (status, ..) = get_whoami(app, &authorization).expect("ready");
        assert_eq!(status, 200, "before the fork");
    }

    // SAFETY: the child only makes the calls under test, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child_checks(&apps, &authorization);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(libc::WEXITSTATUS(status), CHILD_OK, "child's check failed");

    for app in &apps {
        let (status, _, _, _, body) = get_whoami(app, &authorization).expect("ready");
        assert_eq!(
            (status, body.as_str()),
            (200, "Production"),
            "the parent after the fork"
        );
    }
}
