//! A throwaway database on the PostgreSQL server of `PG_URL` (scripts/test
//! starts one with scripts/lib/postgres.sh), for the PostgreSQL tests.
#![allow(dead_code)] // each test file uses part of it

use postgres::{Client, NoTls};

/// The server's URL, to its database `apikeys`.
pub fn server_url() -> String {
    std::env::var("PG_URL")
        .expect("PG_URL is not set: these tests need a PostgreSQL server (scripts/test starts one)")
}

/// A connection to the server's own database, to create and drop others.
pub fn admin() -> Client {
    Client::connect(&server_url(), NoTls).unwrap()
}

/// A random number for names that tests running at once must not share.
pub fn suffix() -> u32 {
    rand_core::RngCore::next_u32(&mut rand_core::OsRng)
}

/// A fresh database on the server, dropped (with its connections) at the
/// end of the test.
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    /// `apikeys_<kind>_<pid>_<random>`: tests running at once never share one.
    pub fn new(kind: &str) -> Database {
        let name = format!("apikeys_{kind}_{}_{}", std::process::id(), suffix());
        admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = format!("{}/{name}", server_url().rsplit_once('/').unwrap().0);
        Database { name, url }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&server_url(), NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
