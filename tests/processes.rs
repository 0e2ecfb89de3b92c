//! Several processes on one store in shared mode: a revocation made by one
//! process is seen by the very next verify in another, and processes
//! generating and revoking at once lose no key and no revocation.

mod support;

use std::collections::{HashMap, HashSet};

use apikeys::{
    EventKind, KeyStore, ListFilter, NewKey, Rejection, Status, StoreOptions, VerifyError,
};
use support::{below, child_store, commands, role, send, spawn_role, tell, Messages};

fn outcome_name(outcome: Result<apikeys::VerifiedKey, VerifyError>) -> String {
    match outcome {
        Ok(_) => "accepted".into(),
        Err(VerifyError::Rejected(rejection)) => rejection.as_str().into(),
        Err(VerifyError::Failed(error)) => format!("failed: {error}"),
    }
}

/// Child roles. `peer`: obeys `revoke <id>` and `verify <secret>` from stdin,
/// answering each. `worker`: waits for `go` with the pool ids before it, then
/// generates and revokes as fast as it can, acknowledging each call.
#[test]
fn process_child_entry_point() {
    // Run by the tests below as a child process; alone it does nothing.
    let Some(role) = role() else { return };
    let store = KeyStore::open(child_store(), StoreOptions::new().shared()).expect("child opens");
    match role.as_str() {
        "peer" => {
            send("ready");
            for command in commands() {
                match command.split_once(' ') {
                    Some(("revoke", id)) => {
                        let newly = store.revoke(id).expect("revoke");
                        send(&format!("revoked {id} {newly}"));
                    }
                    Some(("verify", secret)) => send(&outcome_name(store.verify(secret))),
                    _ => panic!("unknown command {command:?}"),
                }
            }
        }
        "worker" => {
            let operations = support::count_from_env("WORKER_OPERATIONS", 40);
            let mut pool = Vec::new();
            send("ready");
            for command in commands() {
                if command == "go" {
                    break;
                }
                pool.push(command);
            }
            let mut rng = support::seeded_rng("worker");
            for i in 0..operations {
                let key = store
                    .generate(&NewKey::new(format!("worker {}", std::process::id())))
                    .expect("generate");
                send(&format!(
                    "generated {} {}",
                    key.id(),
                    key.secret.expose_secret()
                ));
                if i % 3 == 0 {
                    let newly = store.revoke(key.id()).expect("revoke own");
                    send(&format!("revoked {} {newly}", key.id()));
                }
                let target = &pool[below(&mut rng, pool.len() as u64) as usize];
                let newly = store.revoke(target).expect("revoke pooled");
                send(&format!("revoked {target} {newly}"));
            }
            store.close().expect("close");
            send("done");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_revocation_in_one_process_is_seen_by_the_next_verify_in_another() {
    if role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.redb");
    let store = KeyStore::open(&path, StoreOptions::new().shared()).expect("open");
    let requests: Vec<NewKey> = (0..100).map(|i| NewKey::new(format!("key {i}"))).collect();
    let keys = store.generate_batch(&requests).expect("generate");
    let mut child = spawn_role("process_child_entry_point", "peer", &path, &[]);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut messages = Messages::new(&mut child);
    assert_eq!(messages.expect(), "ready");
    let (theirs, ours) = keys.split_at(keys.len() / 2);

    // The other process revokes; our next verify refuses the key.
    for key in theirs {
        let secret = key.secret.expose_secret();
        assert!(store.verify(secret).is_ok(), "active before the revocation");
        tell(&mut stdin, &format!("revoke {}", key.id()));
        assert_eq!(messages.expect(), format!("revoked {} true", key.id()));
        assert!(
            matches!(
                store.verify(secret),
                Err(VerifyError::Rejected(Rejection::Revoked))
            ),
            "a revocation acknowledged by another process was not seen"
        );
    }
    // We revoke; the other process's next verify refuses the key.
    for key in ours {
        let secret = key.secret.expose_secret();
        tell(&mut stdin, &format!("verify {secret}"));
        assert_eq!(messages.expect(), "accepted");
        assert!(store.revoke(key.id()).expect("revoke"));
        tell(&mut stdin, &format!("verify {secret}"));
        assert_eq!(
            messages.expect(),
            "revoked",
            "our revocation was not seen by the other process"
        );
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    eprintln!(
        "{} cross-process revocations, each seen by the next verify on the other side",
        keys.len()
    );
}

#[test]
fn processes_generating_and_revoking_at_once_lose_no_key_and_no_revocation() {
    if role().is_some() {
        return;
    }
    const WORKERS: usize = 4;
    let operations = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.redb");
    let store = KeyStore::open(&path, StoreOptions::new().shared()).expect("open");
    let pool = store
        .generate_batch(
            &(0..30)
                .map(|i| NewKey::new(format!("pool {i}")))
                .collect::<Vec<_>>(),
        )
        .expect("pool");

    let mut children = Vec::new();
    for _ in 0..WORKERS {
        let mut child = spawn_role(
            "process_child_entry_point",
            "worker",
            &path,
            &[("WORKER_OPERATIONS", operations.to_string())],
        );
        let stdin = child.stdin.take().expect("stdin");
        let mut messages = Messages::new(&mut child);
        assert_eq!(messages.expect(), "ready");
        children.push((child, stdin, messages));
    }
    // Start them together, then collect what each acknowledged.
    for (_, stdin, _) in &mut children {
        for key in &pool {
            tell(stdin, key.id());
        }
        tell(stdin, "go");
    }
    let readers: Vec<_> = children
        .into_iter()
        .map(|(child, stdin, mut messages)| {
            std::thread::spawn(move || {
                let mut said = Vec::new();
                while let Some(message) = messages.next() {
                    said.push(message);
                }
                drop(stdin);
                (child, said)
            })
        })
        .collect();

    let mut generated: HashMap<String, String> = HashMap::new();
    let mut revoked: HashSet<String> = HashSet::new();
    let mut newly_revoked: HashMap<String, usize> = HashMap::new();
    let mut acknowledged = 0;
    for reader in readers {
        let (mut child, said) = reader.join().expect("reader");
        assert!(child.wait().expect("wait").success(), "a worker failed");
        assert_eq!(said.last().map(String::as_str), Some("done"));
        for message in &said[..said.len() - 1] {
            let parts: Vec<&str> = message.split(' ').collect();
            match parts.as_slice() {
                ["generated", id, secret] => {
                    generated.insert(id.to_string(), secret.to_string());
                }
                ["revoked", id, newly] => {
                    revoked.insert(id.to_string());
                    if *newly == "true" {
                        *newly_revoked.entry(id.to_string()).or_default() += 1;
                    }
                }
                other => panic!("unexpected message {other:?}"),
            }
            acknowledged += 1;
        }
    }
    assert_eq!(generated.len(), WORKERS * operations);

    let check = |store: &KeyStore| {
        let listed: HashMap<String, apikeys::KeyInfo> = store
            .list(&ListFilter::default())
            .expect("list")
            .into_iter()
            .map(|info| (info.id.clone(), info))
            .collect();
        assert_eq!(
            listed.len(),
            pool.len() + generated.len(),
            "a key was lost or invented"
        );
        for (id, secret) in &generated {
            let outcome = store.verify(secret);
            if revoked.contains(id) {
                assert!(
                    matches!(outcome, Err(VerifyError::Rejected(Rejection::Revoked))),
                    "{id}"
                );
            } else {
                assert_eq!(outcome.expect("an acknowledged key verifies").id(), id);
            }
        }
        for key in &pool {
            let status = listed[key.id()].status;
            assert_eq!(
                status == Status::Revoked,
                revoked.contains(key.id()),
                "{}",
                key.id()
            );
        }
        let events = store.events(0, usize::MAX).expect("events");
        let created = events
            .iter()
            .filter(|e| e.kind == EventKind::Created)
            .count();
        let revocations: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == EventKind::Revoked)
            .map(|e| e.key_id.as_str())
            .collect();
        assert_eq!(created, pool.len() + generated.len());
        assert_eq!(
            revocations.len(),
            revoked.len(),
            "one Revoked event per revoked key"
        );
        assert_eq!(
            revocations.iter().copied().collect::<HashSet<_>>().len(),
            revoked.len()
        );
    };
    // Every revoked key was newly revoked by exactly one call, in whichever process.
    for id in &revoked {
        assert_eq!(newly_revoked.get(id), Some(&1), "{id}");
    }
    check(&store);
    store.close().expect("close");
    check(&KeyStore::open(&path, StoreOptions::new().shared()).expect("reopen"));
    eprintln!(
        "{WORKERS} processes: {acknowledged} acknowledged operations at once ({} keys, {} revoked), nothing lost",
        generated.len(),
        revoked.len()
    );
}
