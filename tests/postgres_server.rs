//! Tests that change the server itself (feature `postgres-tests`), alone in
//! their binary and run one at a time (`--test-threads 1`) so that they hit
//! no other test: a restart under load (`PG_RESTART`, a command that restarts
//! the server in `PG_URL`; scripts/test gives `pg_ctl restart` as the
//! postgres user) and TLS (`PG_DIR`, the server's directory, where its
//! certificate goes). Without those variables they fail.
//!
//! Restart: while one handle writes and another verifies in a loop, the
//! server restarts. Checked: every error is `DatabaseUnavailable` (never a rejection
//! of a valid key, never an accept of a revoked one after the bound), every
//! write that returned Ok is there afterwards, and both handles resume by
//! themselves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::{Error, KeyStore, NewKey, Rejection, StoreOptions, VerifyError};

/// A key whose generate returned: id, secret, when its revoke returned.
type Written = (String, String, Option<Instant>);

#[test]
fn a_restart_under_load_loses_no_acknowledged_write_and_service_resumes() {
    let url =
        std::env::var("PG_URL").expect("PG_URL is not set: this test needs a PostgreSQL server");
    let restart = std::env::var("PG_RESTART")
        .expect("PG_RESTART is not set: the command that restarts the server");
    let database = format!("apikeys_restart_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .unwrap();
    drop(admin);
    let url = format!("{}/{database}", url.rsplit_once('/').unwrap().0);
    let bound = Duration::from_millis(500);
    let options = || {
        StoreOptions::new()
            .flush_interval(Duration::from_millis(100))
            .revocation_bound(bound)
    };
    let writer = KeyStore::open(&url, options()).unwrap();
    let reader = KeyStore::open(&url, options()).unwrap();
    let valid = writer.generate(&NewKey::new("stays valid")).unwrap();
    std::thread::sleep(bound);

    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledged writes: (id, revoked-at instant if revoked).
    let acknowledged: Arc<Mutex<Vec<Written>>> = Arc::default();
    let mut writer_errors = 0u32;
    let mut reader_errors = 0u32;
    let mut stale_accepts = 0u32;
    std::thread::scope(|scope| {
        let verifying = scope.spawn(|| {
            let mut errors = 0u32;
            let mut stale = 0u32;
            while !stop.load(Ordering::SeqCst) {
                match reader.verify(valid.secret.expose_secret()) {
                    Ok(_) => {}
                    Err(VerifyError::Failed(Error::DatabaseUnavailable(_))) => errors += 1,
                    Err(other) => panic!("the valid key got {other}"),
                }
                let written = acknowledged.lock().unwrap().clone();
                for (_, secret, revoked) in written.iter().rev().take(3) {
                    if let (Ok(_), Some(at)) = (reader.verify(secret), revoked) {
                        if at.elapsed() > bound {
                            stale += 1;
                        }
                    }
                }
            }
            (errors, stale)
        });
        let started = Instant::now();
        let mut restarted = false;
        while started.elapsed() < Duration::from_secs(6) {
            if !restarted && started.elapsed() > Duration::from_secs(1) {
                restarted = true;
                sh(&restart);
            }
            match writer.generate(&NewKey::new("under load")) {
                Ok(key) => {
                    let id = key.id().to_string();
                    let secret = key.secret.expose_secret().to_string();
                    acknowledged
                        .lock()
                        .unwrap()
                        .push((id.clone(), secret, None));
                    match writer.revoke(&id) {
                        Ok(_) => {
                            let mut all = acknowledged.lock().unwrap();
                            let last = all.len() - 1;
                            all[last].2 = Some(Instant::now());
                        }
                        Err(Error::DatabaseUnavailable(_)) => writer_errors += 1,
                        Err(other) => panic!("revoke: {other}"),
                    }
                }
                Err(Error::DatabaseUnavailable(_)) => writer_errors += 1,
                Err(other) => panic!("generate: {other}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
        (reader_errors, stale_accepts) = verifying.join().unwrap();
    });
    assert_eq!(
        stale_accepts, 0,
        "a revoked key was accepted after the bound"
    );
    // Everything acknowledged is there, as acknowledged, seen from a new handle.
    let check = KeyStore::open(&url, options()).unwrap();
    let written = acknowledged.lock().unwrap().clone();
    for (id, secret, revoked) in &written {
        let info = check.get(id).unwrap();
        match revoked {
            Some(_) => assert_eq!(
                check.verify(secret).map(|_| ()).unwrap_err().rejection(),
                Some(Rejection::Revoked),
                "{id}: an acknowledged revocation was lost"
            ),
            None => assert_eq!(info.id, *id),
        }
    }
    reader.verify(valid.secret.expose_secret()).unwrap();
    writer.generate(&NewKey::new("after")).unwrap();
    println!(
        "restart under load: {} writes acknowledged, {writer_errors} writer and {reader_errors} verify errors, all DatabaseUnavailable, none stale",
        written.len()
    );
}

/// Runs a shell command, failing the test if it fails.
fn sh(command: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .status()
        .unwrap();
    assert!(status.success(), "{command} failed");
}

/// Turns the server's TLS off again, even when the test fails.
struct TlsOff(String);

impl Drop for TlsOff {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.0, postgres::NoTls) {
            // One by one: ALTER SYSTEM refuses a transaction block.
            for statement in [
                "ALTER SYSTEM RESET ssl",
                "ALTER SYSTEM RESET ssl_cert_file",
                "ALTER SYSTEM RESET ssl_key_file",
                "SELECT pg_reload_conf()",
            ] {
                let _ = admin.batch_execute(statement);
            }
        }
    }
}

#[test]
fn tls_is_used_and_the_certificate_checked_against_sslrootcert() {
    let url =
        std::env::var("PG_URL").expect("PG_URL is not set: this test needs a PostgreSQL server");
    let pg_dir = std::env::var("PG_DIR")
        .expect("PG_DIR is not set: the server's directory (scripts/lib/postgres.sh)");
    let certs = format!("{pg_dir}/tls");
    // A certificate authority and a server certificate for `localhost`.
    sh(&format!(
        "set -e; mkdir -p {certs}; cd {certs}; \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=apikeys-test-ca 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null; \
         printf 'subjectAltName=DNS:localhost\\n' > san.ext; \
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null; \
         chown postgres server.key server.pem; chmod 600 server.key"
    ));
    let _off = TlsOff(url.clone());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{certs}/server.pem'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{certs}/server.key'"),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.batch_execute(&statement).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let database = format!("apikeys_tls_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .unwrap();
    let base = url
        .rsplit_once('/')
        .unwrap()
        .0
        .replace("127.0.0.1", "localhost");
    let tls_url = format!("{base}/{database}?sslmode=require&sslrootcert={certs}/ca.pem");
    let store = KeyStore::open(&tls_url, StoreOptions::new()).unwrap();
    let key = store.generate(&NewKey::new("over TLS")).unwrap();
    store.verify(key.secret.expose_secret()).unwrap();
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND s.ssl",
            &[&database],
        )
        .unwrap()
        .get(0);
    let all: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
            &[&database],
        )
        .unwrap()
        .get(0);
    assert_eq!((encrypted, all), (2, 2), "both connections use TLS");
    store.close().unwrap();
    // The system's roots do not know this authority: refused, not downgraded.
    let untrusted = KeyStore::open(
        format!("{base}/{database}?sslmode=require"),
        StoreOptions::new(),
    );
    assert!(
        untrusted.is_err(),
        "a certificate from an unknown authority was accepted"
    );
    println!("untrusted certificate: {}", untrusted.unwrap_err());
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
}
