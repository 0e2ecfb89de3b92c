//! Authenticating API requests with apikeys: what a request handler does
//! with the `Authorization` header, and the answers it sends back.
//!
//! Run with `cargo run --example authenticate`.

use apikeys::http::{bearer_token, Answer};
use apikeys::{KeyStore, NewKey, StoreOptions, VerifiedKey};

/// What a handler does before serving a request that needs `scope`.
/// The verified key borrows the store: `into_owned()` detaches it.
fn authenticate<'store>(
    store: &'store KeyStore,
    authorization: Option<&str>,
    scope: &str,
) -> Result<VerifiedKey<'store>, Answer> {
    let token = bearer_token(authorization.unwrap_or("")).map_err(|_| Answer::UNAUTHORIZED)?;
    store
        .verify_with_scope(token, scope)
        .map_err(|error| Answer::for_error(&error))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path().join("apikeys.redb"), StoreOptions::new())?;

    let production = store.generate(&NewKey::new("Production").env("prod").scope("*"))?;
    let development = store.generate(&NewKey::new("Dev/Test").env("dev").scope("contacts:read"))?;
    println!(
        "generated {} and {}",
        production.info.hint, development.info.hint
    );

    let requests = [
        ("no header", None, "contacts:read"),
        (
            "basic auth",
            Some("Basic dXNlcjpwYXNz".to_string()),
            "contacts:read",
        ),
        (
            "production key",
            Some(format!("Bearer {}", production.secret.expose_secret())),
            "contacts:write",
        ),
        (
            "dev key, read",
            Some(format!("Bearer {}", development.secret.expose_secret())),
            "contacts:read",
        ),
        (
            "dev key, write",
            Some(format!("Bearer {}", development.secret.expose_secret())),
            "contacts:write",
        ),
        (
            "typo in key",
            Some("Bearer flz_sk_dev_0000000000000000000000000000000".to_string()),
            "contacts:read",
        ),
    ];
    for (label, header, scope) in &requests {
        match authenticate(&store, header.as_deref(), scope) {
            Ok(key) => println!(
                "{label:>16}: 200, served for key {} ({})",
                key.id(),
                key.name()
            ),
            Err(answer) => println!("{label:>16}: {} {}", answer.status, answer.body),
        }
    }

    store.revoke(production.id())?;
    let header = format!("Bearer {}", production.secret.expose_secret());
    match authenticate(&store, Some(&header), "contacts:read") {
        Ok(_) => println!("revoked key accepted: this is a bug"),
        Err(answer) => println!("{:>16}: {} {}", "revoked key", answer.status, answer.body),
    }
    store.close()?;
    Ok(())
}
