//! An API whose routes are authenticated with apikeys.
//!
//! `cargo run -p apikeys-axum --example server` serves on 127.0.0.1:3000
//! (`APIKEYS_ADDR`), with the keys in `apikeys.redb` (`APIKEYS_DB`) and the
//! pepper in `APIKEYS_PEPPER`, if any: the command line's variables.

use std::sync::Arc;

use apikeys::{KeyStore, StoreOptions};
use apikeys_axum::{ApiKey, ApiKeyLayer, ApiKeyRejection};
use axum::extract::Path;
use axum::routing::{delete, get};
use axum::{Extension, Router};

/// Any valid key.
async fn whoami(key: ApiKey) -> String {
    format!("key {} ({})\n", key.id(), key.name())
}

/// Behind `ApiKeyLayer::scope("contacts:read")`: the key is in the
/// request's extensions.
async fn list_contacts(Extension(key): Extension<ApiKey>) -> String {
    format!("the contacts, for {}\n", key.name())
}

/// A scope checked in the handler.
async fn delete_contact(key: ApiKey, Path(id): Path<u64>) -> Result<String, ApiKeyRejection> {
    key.require("contacts:write")?;
    Ok(format!("contact {id} deleted by {}\n", key.name()))
}

fn app(store: Arc<KeyStore>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/whoami", get(whoami))
        .route(
            "/contacts",
            get(list_contacts).layer(ApiKeyLayer::new(store.clone()).scope("contacts:read")),
        )
        .route("/contacts/{id}", delete(delete_contact))
        .with_state(store)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("APIKEYS_DB").unwrap_or_else(|_| "apikeys.redb".into());
    let address = std::env::var("APIKEYS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    // Shared mode, so that `apikeys --shared generate/revoke/list` works on
    // the file while the server runs (exclusive mode is faster, but then
    // only this process can open the file).
    let mut options = StoreOptions::new().shared();
    if let Ok(pepper) = std::env::var("APIKEYS_PEPPER") {
        options = options.pepper(pepper);
    }
    let store = Arc::new(KeyStore::open(&path, options)?);

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{address}, keys in {path}");
    axum::serve(listener, app(store.clone()))
        .with_graceful_shutdown(shutdown())
        .await?;

    // Every request is done: write the last usage counts.
    if let Some(store) = Arc::into_inner(store) {
        store.close()?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
