//! Tables of Laravel Sanctum, djangorestframework-api-key and Unkey as each
//! exports them, with keys made by each source's documented algorithm: what
//! tests/import.rs and tests/postgres_import.rs import.
#![allow(dead_code)] // each test file uses part of it

use base64::Engine as _;
use sha2::{Digest as _, Sha256, Sha512};

/// Laravel Sanctum's token, as `HasApiTokens::createToken` makes it
/// (Sanctum 4: 40 random characters and their CRC-32 in hex, after an
/// optional prefix); the table keeps the SHA-256 hex of it; the client gets
/// `{id}|{token}`.
pub fn sanctum_token(seed: u32) -> String {
    let entropy: String = (0..40)
        .map(|i| {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            alphabet[((seed as usize + 1) * 7919 + i * 104_729) % alphabet.len()] as char
        })
        .collect();
    format!("{entropy}{:08x}", crc32fast::hash(entropy.as_bytes()))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A Sanctum `personal_access_tokens` export with three tokens: active with
/// two abilities, `*`, and one expired; and the keys their clients hold.
pub fn sanctum_export() -> (String, Vec<String>) {
    let mut csv = String::from(
        "id,tokenable_type,tokenable_id,name,token,abilities,last_used_at,expires_at,created_at,updated_at\n",
    );
    let mut keys = Vec::new();
    let rows = [
        (
            7,
            "CI deploy",
            r#"["servers:read","servers:update"]"#,
            "",
            "2030-01-02 03:04:05",
        ),
        (8, "Admin", r#"["*"]"#, "2026-03-04 05:06:07", ""),
        (9, "Old", r#"["*"]"#, "", "2020-01-01 00:00:00"),
    ];
    for (id, name, abilities, last_used, expires) in rows {
        let token = sanctum_token(id);
        csv.push_str(&format!(
            "{id},App\\Models\\User,42,{name},{},\"{}\",{last_used},{expires},2025-12-01 10:00:00,2025-12-01 10:00:00\n",
            sha256_hex(&token),
            abilities.replace('"', "\"\"")
        ));
        keys.push(format!("{id}|{token}"));
    }
    (csv, keys)
}

/// A djangorestframework-api-key 3 export (`sha512$$`), with one revoked key.
pub fn drf3_export() -> (String, Vec<String>) {
    let mut csv = String::from("id,created,name,revoked,expiry_date,hashed_key,prefix\n");
    let mut keys = Vec::new();
    for (i, revoked) in [(1, "f"), (2, "t")] {
        let prefix = format!("Pre{i}fix{i}");
        let key = format!("{prefix}.SecretPartNumber{i}abcdefghijklmnop");
        let hashed = format!("sha512$${}", hex::encode(Sha512::digest(key.as_bytes())));
        csv.push_str(&format!(
            "{prefix}.{hashed},2025-11-30 08:00:00.123456+00,Service {i},{revoked},,{hashed},{prefix}\n"
        ));
        keys.push(key);
    }
    (csv, keys)
}

/// A djangorestframework-api-key 2 row as Django's `make_password` writes it
/// (`pbkdf2_sha256$iterations$salt$base64`), with few iterations to keep
/// the test fast (the real library's 1,000,000 are in the Python test).
pub fn drf2_export(iterations: u32) -> (String, String) {
    let key = "Old2pre9.AnotherSecretOf32Charactersxx".to_string();
    let mut hash = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(key.as_bytes(), b"Nq3saltsalt", iterations, &mut hash);
    let encoded = base64::engine::general_purpose::STANDARD.encode(hash);
    let hashed = format!("pbkdf2_sha256${iterations}$Nq3saltsalt${encoded}");
    let json = serde_json::json!({
        "id": format!("Old2pre9.{hashed}"),
        "created": "2024-02-03T04:05:06Z",
        "name": "Legacy integration",
        "revoked": false,
        "expiry_date": null,
        "hashed_key": hashed,
        "prefix": "Old2pre9",
    });
    (format!("{json}\n"), key)
}

/// An Unkey `keys` export as JSON lines: the hash is base64 of the SHA-256
/// of the whole key.
pub fn unkey_export() -> (String, Vec<String>) {
    let mut lines = String::new();
    let mut keys = Vec::new();
    for (i, enabled) in [(1, true), (2, false)] {
        let key = format!("sk_3ZbFUq9aWmVh2Kx{i}Tn8Rq");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.as_bytes()));
        let row = serde_json::json!({
            "id": format!("key_{i}abc"),
            "hash": hash,
            "start": "sk_3Zb",
            "name": null,
            "owner_id": format!("user_{i}"),
            "meta": "{\"plan\":\"pro\"}",
            "created_at_m": 1_760_000_000_123u64,
            "expires": null,
            "enabled": enabled,
            "deleted_at_m": null,
        });
        lines.push_str(&format!("{row}\n"));
        keys.push(key);
    }
    (lines, keys)
}
