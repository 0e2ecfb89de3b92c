//! [`ApiKeyLayer`]: a tower layer that authenticates every request of the
//! routes it wraps, with the scopes they need, and hands the verified key
//! to handlers in the request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apikeys::KeyStore;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::key::authenticate;

/// Authenticates every request of the routes it wraps against a store,
/// requiring the scopes given with [`ApiKeyLayer::scope`].
///
/// A request that passes goes on with its [`ApiKey`](crate::ApiKey) in its
/// extensions (`Extension<ApiKey>` in a handler, or the `ApiKey` extractor,
/// which takes it from there rather than verifying again). Any other gets
/// the [`ApiKeyRejection`](crate::ApiKeyRejection) response and never
/// reaches the route.
///
/// Put it on the routes that need it with `route_layer` (or a method
/// router's `layer`): `Router::layer` also wraps the fallback, so a request
/// for a path that does not exist would get 401 instead of 404.
///
/// Layers nest: a layer without scopes on a whole router and one with
/// `scope("contacts:write")` on a route verify the key once and check the
/// scope on the key already verified.
#[derive(Clone, Debug)]
pub struct ApiKeyLayer {
    store: Arc<KeyStore>,
    scopes: Arc<[String]>,
}

impl ApiKeyLayer {
    /// A layer verifying keys against `store`, requiring no scope yet.
    pub fn new(store: impl Into<Arc<KeyStore>>) -> Self {
        ApiKeyLayer {
            store: store.into(),
            scopes: Arc::from([]),
        }
    }

    /// Requires `scope` too: a request passes when its key grants every
    /// scope given (`*` and `prefix:*` wildcards included, as the core
    /// defines them), else it gets 403.
    ///
    /// # Panics
    ///
    /// When `scope` is not a scope (`apikeys::check_scope`): 1 to 64 of
    /// `[A-Za-z0-9:._-]`, `*` only as the last segment. A misspelt scope
    /// would refuse every request, so it is refused when the router is
    /// built, as axum refuses an invalid route.
    pub fn scope(self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        if let Err(error) = apikeys::check_scope(&scope) {
            panic!("ApiKeyLayer::scope({scope:?}): {error}");
        }
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope);
        ApiKeyLayer {
            store: self.store,
            scopes: scopes.into(),
        }
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;

    fn layer(&self, inner: S) -> ApiKeyService<S> {
        ApiKeyService {
            inner,
            store: self.store.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// The service [`ApiKeyLayer`] wraps around a route.
#[derive(Clone, Debug)]
pub struct ApiKeyService<S> {
    inner: S,
    store: Arc<KeyStore>,
    scopes: Arc<[String]>,
}

impl<S, B> Service<Request<B>> for ApiKeyService<S>
where
    S: Service<Request<B>>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Verify is in memory (exclusive mode) or one read of the file's
        // latest commit (shared mode) and never waits on a write: it runs
        // here, as a header check would, not on a blocking thread.
        match authenticate(
            &self.store,
            request.headers(),
            request.extensions(),
            &self.scopes,
        ) {
            Ok(key) => {
                request.extensions_mut().insert(key);
                ResponseFuture {
                    state: State::Route {
                        future: self.inner.call(request),
                    },
                }
            }
            Err(rejection) => ResponseFuture {
                state: State::Refused {
                    response: Some(rejection.into_response()),
                },
            },
        }
    }
}

pin_project! {
    /// The response of an [`ApiKeyService`]: the route's, or the rejection.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Route { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Route { future } => {
                future.poll(cx).map_ok(IntoResponse::into_response)
            }
            StateProjection::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after it completed"))),
        }
    }
}
