//! Django's password hashers, as djangorestframework-api-key 1.x and 2.x
//! keep `hashed_key` (`make_password` of the whole key): each encoding is
//! read into a [`Stored`] digest at import, its cost bounded, and a key is
//! checked against it at verify, in constant time, with the cost bounded
//! again (a damaged record is no denial of service either).
//!
//! The encodings, as django/contrib/auth/hashers.py (5.2) writes them:
//!
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64>`, `pbkdf2_sha1$…`:
//!   PBKDF2-HMAC of the key, 32 (20) bytes.
//! - `argon2$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`:
//!   argon2-cffi's encoding behind `argon2`, salt and hash in base64
//!   without padding; older hashes are `argon2i`, the oldest without `v=`
//!   (version 0x10).
//! - `bcrypt_sha256$$2b$<cost>$<salt><hash>`: bcrypt of the lowercase hex
//!   SHA-256 of the key; `bcrypt$$2b$…`: bcrypt of the key.
//! - `scrypt$<N>$<salt>$<r>$<p>$<base64>`: scrypt of the key, 64 bytes.
//!
//! PBKDF2's and scrypt's salts are used as the text they are, Argon2's as
//! the bytes of its base64. Numbers are read only as Django writes them
//! (`%d`): a hash written otherwise never verifies in Django either.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    Argon2Type, Prf, Stored, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_WORK_KIB, MAX_BCRYPT_COST,
    MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK,
};

/// Why a hash is refused: its shape, or a cost over the bounds (said with
/// its figures, which are no secret).
enum Refused {
    Malformed,
    Cost(String),
}

use Refused::{Cost, Malformed};

/// Reads DRF's `hashed_key` as a Django password hash.
pub(super) fn parse(hashed_key: &str) -> Result<Stored, String> {
    let (algorithm, rest) = hashed_key.split_once('$').unwrap_or((hashed_key, ""));
    let stored = match algorithm {
        "pbkdf2_sha256" => pbkdf2(Prf::Sha256, rest),
        "pbkdf2_sha1" => pbkdf2(Prf::Sha1, rest),
        "argon2" => argon2(rest),
        "bcrypt_sha256" => bcrypt(true, rest),
        "bcrypt" => bcrypt(false, rest),
        "scrypt" => scrypt(rest),
        // The hasher's name is shown only when it looks like one: a
        // column holding something else (a plaintext key?) is not echoed.
        _ if hashed_key.contains('$')
            && (1..=32).contains(&algorithm.len())
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            return Err(format!("`hashed_key`: unknown hasher {algorithm:?}"));
        }
        _ => return Err("`hashed_key`: not a Django password hash".into()),
    };
    stored.map_err(|refused| match refused {
        Malformed => format!("`hashed_key`: a malformed {algorithm} hash"),
        Cost(why) => format!("`hashed_key`: {why}"),
    })
}

/// Whether `key` is the key of a Django hash read by [`parse`].
pub(super) fn matches(stored: &Stored, key: &str) -> bool {
    let key = key.as_bytes();
    match stored {
        Stored::Pbkdf2 {
            prf,
            iterations,
            salt,
            hash,
        } => {
            if pbkdf2_cost(*iterations).is_err() {
                return false;
            }
            let mut computed = vec![0u8; hash.len()];
            match prf {
                Prf::Sha256 => {
                    pbkdf2::pbkdf2_hmac::<Sha256>(key, salt.as_bytes(), *iterations, &mut computed)
                }
                Prf::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
                    key,
                    salt.as_bytes(),
                    *iterations,
                    &mut computed,
                ),
            }
            computed.ct_eq(hash).into()
        }
        Stored::Argon2 {
            kind,
            version,
            memory_kib,
            passes,
            lanes,
            salt,
            hash,
        } => {
            let (Ok(params), Ok(version)) = (
                argon2_params(*memory_kib, *passes, *lanes, hash.len()),
                argon2::Version::try_from(*version),
            ) else {
                return false;
            };
            let algorithm = match kind {
                Argon2Type::D => argon2::Algorithm::Argon2d,
                Argon2Type::I => argon2::Algorithm::Argon2i,
                Argon2Type::Id => argon2::Algorithm::Argon2id,
            };
            let mut computed = vec![0u8; hash.len()];
            argon2::Argon2::new(algorithm, version, params)
                .hash_password_into(key, salt, &mut computed)
                .is_ok()
                && bool::from(computed.ct_eq(hash))
        }
        Stored::Bcrypt {
            sha256,
            cost,
            salt,
            hash,
        } => {
            if bcrypt_cost(*cost).is_err() {
                return false;
            }
            let mut password = Zeroizing::new(if *sha256 {
                hex::encode(Sha256::digest(key)).into_bytes()
            } else {
                key.to_vec()
            });
            // bcrypt reads its password NUL-terminated, and at most 72
            // bytes of that (as the bcrypt crate's own hash does).
            password.push(0);
            password.truncate(72);
            bcrypt::bcrypt(*cost, *salt, &password)[..23]
                .ct_eq(hash)
                .into()
        }
        Stored::Scrypt {
            log_n,
            block_size,
            parallelism,
            salt,
            hash,
        } => {
            let Ok(params) = scrypt_params(*log_n, *block_size, *parallelism) else {
                return false;
            };
            let mut computed = vec![0u8; hash.len()];
            scrypt::scrypt(key, salt.as_bytes(), &params, &mut computed).is_ok()
                && bool::from(computed.ct_eq(hash))
        }
        // Not Django's.
        Stored::Sha256OfSecret(_) | Stored::Sha256OfKey(_) | Stored::Sha512OfKey(_) => false,
    }
}

fn pbkdf2(prf: Prf, rest: &str) -> Result<Stored, Refused> {
    let [iterations, salt, hash] = fields(rest)?;
    let iterations = decimal(iterations)?;
    pbkdf2_cost(iterations)?;
    let hash = STANDARD.decode(hash).map_err(|_| Malformed)?;
    let expected = match prf {
        Prf::Sha256 => 32,
        Prf::Sha1 => 20,
    };
    if hash.len() != expected || !is_salt(salt) {
        return Err(Malformed);
    }
    Ok(Stored::Pbkdf2 {
        prf,
        iterations,
        salt: salt.to_string(),
        hash,
    })
}

fn argon2(rest: &str) -> Result<Stored, Refused> {
    let parts: Vec<&str> = rest.split('$').collect();
    let (kind, version, costs, salt, hash) = match parts[..] {
        [kind, version, costs, salt, hash] => {
            let version = decimal(version.strip_prefix("v=").ok_or(Malformed)?)?;
            (kind, version, costs, salt, hash)
        }
        [kind, costs, salt, hash] => (kind, 0x10, costs, salt, hash),
        _ => return Err(Malformed),
    };
    let kind = match kind {
        "argon2id" => Argon2Type::Id,
        "argon2i" => Argon2Type::I,
        "argon2d" => Argon2Type::D,
        _ => return Err(Malformed),
    };
    let costs: Vec<&str> = costs.split(',').collect();
    let [memory_kib, passes, lanes] = costs[..] else {
        return Err(Malformed);
    };
    let named = |text: &str, name| decimal(text.strip_prefix(name).ok_or(Malformed)?);
    let (memory_kib, passes, lanes) = (
        named(memory_kib, "m=")?,
        named(passes, "t=")?,
        named(lanes, "p=")?,
    );
    let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| Malformed)?;
    let hash = STANDARD_NO_PAD.decode(hash).map_err(|_| Malformed)?;
    if !matches!(version, 0x10 | 0x13)
        || !(8..=128).contains(&salt.len())
        || !(16..=64).contains(&hash.len())
    {
        return Err(Malformed);
    }
    argon2_params(memory_kib, passes, lanes, hash.len())?;
    Ok(Stored::Argon2 {
        kind,
        version,
        memory_kib,
        passes,
        lanes,
        salt,
        hash,
    })
}

fn bcrypt(sha256: bool, rest: &str) -> Result<Stored, Refused> {
    // "$2b$12$": the version (any of bcrypt's, as Django's bcrypt library
    // takes: the same for keys, which are ASCII), a two-digit cost, then 22
    // characters of salt and 31 of hash in bcrypt's base64.
    let ["", "2a" | "2b" | "2x" | "2y", cost, salt_and_hash] = fields(rest)? else {
        return Err(Malformed);
    };
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed);
    }
    let cost = cost.parse().map_err(|_| Malformed)?;
    bcrypt_cost(cost)?;
    let (salt, hash) = salt_and_hash
        .split_at_checked(22)
        .filter(|(_, hash)| hash.len() == 31)
        .ok_or(Malformed)?;
    let decode = |text| bcrypt::BASE_64.decode(text).map_err(|_| Malformed);
    let salt = decode(salt)?.try_into().map_err(|_| Malformed)?;
    let hash = decode(hash)?.try_into().map_err(|_| Malformed)?;
    Ok(Stored::Bcrypt {
        sha256,
        cost,
        salt,
        hash,
    })
}

fn scrypt(rest: &str) -> Result<Stored, Refused> {
    let [n, salt, block_size, parallelism, hash] = fields(rest)?;
    let n: u64 = decimal(n)?;
    if n < 2 || !n.is_power_of_two() {
        return Err(Malformed);
    }
    let log_n = n.trailing_zeros() as u8;
    let (block_size, parallelism) = (decimal(block_size)?, decimal(parallelism)?);
    scrypt_params(log_n, block_size, parallelism)?;
    let hash = STANDARD.decode(hash).map_err(|_| Malformed)?;
    if hash.len() != 64 || !is_salt(salt) {
        return Err(Malformed);
    }
    Ok(Stored::Scrypt {
        log_n,
        block_size,
        parallelism,
        salt: salt.to_string(),
        hash,
    })
}

fn pbkdf2_cost(iterations: u32) -> Result<(), Refused> {
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(Cost(format!(
            "{iterations} PBKDF2 iterations (at most {MAX_PBKDF2_ITERATIONS})"
        )));
    }
    Ok(())
}

fn argon2_params(
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    hash_len: usize,
) -> Result<argon2::Params, Refused> {
    if memory_kib > MAX_ARGON2_MEMORY_KIB
        || u64::from(memory_kib) * u64::from(passes) > MAX_ARGON2_WORK_KIB
    {
        return Err(Cost(format!(
            "Argon2 with m={memory_kib} KiB and t={passes} (at most m={MAX_ARGON2_MEMORY_KIB}, \
             and m × t at most {MAX_ARGON2_WORK_KIB})"
        )));
    }
    argon2::Params::new(memory_kib, passes, lanes, Some(hash_len)).map_err(|_| Malformed)
}

fn bcrypt_cost(cost: u32) -> Result<(), Refused> {
    match cost {
        // bcrypt's least cost.
        ..4 => Err(Malformed),
        4..=MAX_BCRYPT_COST => Ok(()),
        _ => Err(Cost(format!(
            "bcrypt with cost {cost} (at most {MAX_BCRYPT_COST})"
        ))),
    }
}

fn scrypt_params(log_n: u8, block_size: u32, parallelism: u32) -> Result<scrypt::Params, Refused> {
    // Memory is 128·N·r bytes; each of the p passes fills it.
    let memory = (log_n < 64).then(|| (128 * u128::from(block_size)) << log_n);
    if memory.is_none_or(|memory| {
        memory > u128::from(MAX_SCRYPT_MEMORY)
            || memory * u128::from(parallelism) > u128::from(MAX_SCRYPT_WORK)
    }) {
        return Err(Cost(format!(
            "scrypt with N=2^{log_n}, r={block_size}, p={parallelism} (at most {} MiB for \
             128·N·r, and {} MiB times p)",
            MAX_SCRYPT_MEMORY >> 20,
            MAX_SCRYPT_WORK >> 20
        )));
    }
    scrypt::Params::new(log_n, block_size, parallelism, 64).map_err(|_| Malformed)
}

/// Exactly `N` fields between `$`s.
fn fields<const N: usize>(text: &str) -> Result<[&str; N], Refused> {
    text.split('$')
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| Malformed)
}

/// A number as Django writes it (`%d`): digits, no sign, no leading zero.
fn decimal<T: core::str::FromStr>(text: &str) -> Result<T, Refused> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse().ok())
        .flatten()
        .ok_or(Malformed)
}

/// PBKDF2's and scrypt's salt: Django's is 22 characters.
fn is_salt(salt: &str) -> bool {
    (1..=128).contains(&salt.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::LegacyDigest;

    /// The key every fixture below is a hash of.
    const KEY: &str = "Ab3dEf9h.q8Wm2Xn5Zr3kd8QmVt6Lp0Yc1Bs7Ju4Ha9";

    // Made by Django 5.2.19 (argon2-cffi 25.1.0, bcrypt 5.0.0):
    // `make_password(KEY, hasher=...)` with each hasher, the cheap ones
    // subclasses with lower costs, checked there with `check_password`.
    const CHEAP: [(&str, &str); 6] = [
        ("argon2", "argon2$argon2id$v=19$m=64,t=1,p=2$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco"),
        ("argon2", "argon2$argon2i$v=19$m=32,t=2,p=1$WnNlT3JXcmQ3OFdYYmJXYXZWak5jTA$lW0ZU4lzdEFaSeaeSocwjUBR0Wo3aM8F8Sc429IDQs4"),
        ("bcrypt_sha256", "bcrypt_sha256$$2b$04$z6U8cb47rljLfCJ.5d1zQu.36.Zk6cDHG.JT8G6.ODDiNss9Eilqi"),
        ("bcrypt", "bcrypt$$2b$05$uXoA7jwuaULY1uzrnhhPOOJqqrxjC88m9HU6Ex27VTLoyBEEh7sEa"),
        ("scrypt", "scrypt$1024$E5hvoZx48rUlQBRyt46P6p$8$2$5KV9zBbXnPYjQM8yjOrU0oSIZESARdb4ey0mmhirYd/1r66zr/OSZ2RSh5BvyM6WU1e7CjBjSipFSttb82rMRA=="),
        ("pbkdf2_sha1", "pbkdf2_sha1$1000$tKwx3RPvMQ9lqvvlmDKQ5l$oo35CrDyvQBMawuzVhnTyv65I4w="),
    ];

    // The same with Django 5.2's default costs: Argon2id m=102400, t=2,
    // p=8; bcrypt 12; scrypt N=2^14, r=8, p=5.
    const DEFAULTS: [&str; 3] = [
        "argon2$argon2id$v=19$m=102400,t=2,p=8$aTlkb0RkREo3MERtN2RYRUlMZzZuVw$AaMEQNE3aA7jwjBp4ls/NuCCcKBVbNM4imQjsW7MKGw",
        "bcrypt_sha256$$2b$12$xCI7OdByfL5kPC1gr85D9.l8M6HOBeBnb6/5FmLvvAE9X/MLAAlHu",
        "scrypt$16384$fgu7688xc75WUaQvNO7UYC$8$5$FXs9N66Lxb6uZMqssUsAH5GsWQPJj3QHBVIJ8jCxmyvF+Qas/MssgvNfAzOc1UbnfQcrKmptk6RVx/L3SNh1ig==",
    ];

    // Argon2 version 0x10, from argon2-cffi's low level (`version=0x10`),
    // with its `v=16`, and without it as the oldest argon2-cffi wrote it;
    // Django 5.2's check_password takes both.
    const VERSION_16: [&str; 2] = [
        "argon2$argon2i$v=16$m=16,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$WL+RcRV5fF43KWSmrGVrLzPMtBByoQtJdcQNu4rHTN4",
        "argon2$argon2i$m=16,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$WL+RcRV5fF43KWSmrGVrLzPMtBByoQtJdcQNu4rHTN4",
    ];

    fn drf(hashed_key: &str) -> LegacyDigest {
        LegacyDigest::drf(hashed_key).unwrap_or_else(|why| panic!("{hashed_key}: {why}"))
    }

    #[test]
    fn hashes_made_by_django_match_their_key_and_no_other() {
        for (kind, hashed_key) in CHEAP.into_iter().chain(VERSION_16.map(|h| ("argon2", h))) {
            let digest = drf(hashed_key);
            assert_eq!(digest.kind(), kind);
            assert!(digest.matches(KEY), "{hashed_key}");
            for wrong in [
                "Ab3dEf9h.q8Wm2Xn5Zr3kd8QmVt6Lp0Yc1Bs7Ju4Ha8",
                "Ab3dEf9h.q8Wm2Xn5Zr3kd8QmVt6Lp0Yc1Bs7Ju4Ha",
                "Ab3dEf9h.q8Wm2Xn5Zr3kd8QmVt6Lp0Yc1Bs7Ju4Ha9x",
                "Ab3dEf9h",
            ] {
                assert!(!digest.matches(wrong), "{hashed_key} took {wrong}");
            }
        }
        for hashed_key in DEFAULTS {
            assert!(drf(hashed_key).matches(KEY), "{hashed_key}");
        }
        // bcrypt_sha256 is bcrypt of the SHA-256 hex, not of the key.
        let sha256 = CHEAP[2].1;
        assert!(!drf(&sha256.replacen("bcrypt_sha256$", "bcrypt$", 1)).matches(KEY));
        // Any of bcrypt's versions, as Django's bcrypt library takes them.
        for version in ["2a", "2x", "2y"] {
            let other = CHEAP[3].1.replacen("$2b$", &format!("${version}$"), 1);
            assert!(drf(&other).matches(KEY), "{other}");
        }
    }

    #[test]
    fn malformed_hashes_are_refused_as_such() {
        let argon2 = "argon2$argon2id$v=19$m=64,t=1,p=2$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco";
        let bcrypt = "bcrypt$$2b$05$uXoA7jwuaULY1uzrnhhPOOJqqrxjC88m9HU6Ex27VTLoyBEEh7sEa";
        let pbkdf2 = "pbkdf2_sha1$1000$tKwx3RPvMQ9lqvvlmDKQ5l$oo35CrDyvQBMawuzVhnTyv65I4w=";
        let scrypt = "scrypt$1024$E5hvoZx48rUlQBRyt46P6p$8$2$5KV9zBbXnPYjQM8yjOrU0oSIZESARdb4ey0mmhirYd/1r66zr/OSZ2RSh5BvyM6WU1e7CjBjSipFSttb82rMRA==";
        let edits = [
            (argon2, "argon2id", "argon2x"),
            (argon2, "$argon2id$", "$$argon2id$"),
            (argon2, "v=19", "v=18"),
            (argon2, "v=19", "v=019"),
            (argon2, "m=64,t=1,p=2", "t=1,m=64,p=2"),
            (argon2, "m=64,t=1,p=2", "m=64,t=1"),
            (argon2, "m=64,t=1,p=2", "m=64,t=0,p=2"),
            (argon2, "m=64,t=1,p=2", "m=64,t=1,p=0"),
            (argon2, "m=64,t=1,p=2", "m=15,t=1,p=2"),
            (argon2, "m=64", "m=+64"),
            (argon2, "m=64", "m=064"),
            (
                argon2,
                "$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ$",
                "$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ==$",
            ),
            (argon2, "$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ$", "$c2FsdA$"),
            (
                argon2,
                "$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco",
                "$aVN0D0e1lab9IWKf",
            ),
            (
                argon2,
                "$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco",
                "$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco$",
            ),
            (bcrypt, "$$2b$", "$2b$"),
            (bcrypt, "$2b$", "$2c$"),
            (bcrypt, "$05$", "$5$"),
            (bcrypt, "$05$", "$03$"),
            (bcrypt, "$05$", "$+5$"),
            (bcrypt, "Ea", "E"),
            (bcrypt, "Ea", "Eaa"),
            (bcrypt, "uXoA", "uX#A"),
            // Bits past the 16 bytes of salt set: not bcrypt's own base64.
            (bcrypt, "uXoA7jwuaULY1uzrnhhPOO", "uXoA7jwuaULY1uzrnhhPOP"),
            (scrypt, "$1024$", "$1000$"),
            (scrypt, "$1024$", "$1$"),
            (scrypt, "$1024$", "$18446744073709551616$"),
            (scrypt, "$8$2$", "$0$2$"),
            (scrypt, "$8$2$", "$8$0$"),
            (scrypt, "$8$2$", "$8$$"),
            (scrypt, "$E5hvoZx48rUlQBRyt46P6p$", "$$"),
            (scrypt, "RA==", "RA"),
            (
                scrypt,
                "ZESARdb4ey0mmhirYd/1r66zr/OSZ2RSh5BvyM6WU1e7CjBjSipFSttb82rMRA==",
                "ZA==",
            ),
            (pbkdf2, "$1000$", "$+1000$"),
            (pbkdf2, "$1000$", "$01000$"),
            (pbkdf2, "I4w=", "I4w"),
        ];
        for (good, from, to) in edits {
            assert!(good.contains(from), "{from} in {good}");
            let bad = good.replacen(from, to, 1);
            let algorithm = bad.split('$').next().unwrap();
            let why = LegacyDigest::drf(&bad).unwrap_err();
            assert_eq!(
                why,
                format!("`hashed_key`: a malformed {algorithm} hash"),
                "{bad}"
            );
        }
        for empty in ["argon2$", "bcrypt$", "bcrypt_sha256$$", "scrypt$", "argon2"] {
            assert!(LegacyDigest::drf(empty).is_err(), "{empty}");
        }
    }

    #[test]
    fn costs_over_the_bounds_are_refused_with_their_figures() {
        let salt = "$SzFKY29sc0l4WWp5Nm1wTTEwbWh6VQ$aVN0D0e1lab9IWKf/p7cfHHqfhpQ/BEDGSGcY4JZuco";
        let argon2 =
            |costs: &str| LegacyDigest::drf(&format!("argon2$argon2id$v=19${costs}{salt}"));
        // At the bounds: read (not run here).
        assert!(argon2("m=262144,t=8,p=8").is_ok());
        assert!(argon2("m=1024,t=2048,p=1").is_ok());
        for over in [
            "m=262145,t=1,p=1",
            "m=262144,t=9,p=8",
            "m=1024,t=2049,p=1",
            "m=4294967295,t=4294967295,p=1",
        ] {
            let why = argon2(over).unwrap_err();
            assert!(
                why.contains("Argon2 with m=") && why.contains("at most m=262144"),
                "{over}: {why}"
            );
        }

        let bcrypt = |cost: &str| {
            LegacyDigest::drf(&format!(
                "bcrypt_sha256$$2b${cost}$uXoA7jwuaULY1uzrnhhPOOJqqrxjC88m9HU6Ex27VTLoyBEEh7sEa"
            ))
        };
        assert!(bcrypt("15").is_ok());
        for over in ["16", "31", "99"] {
            let why = bcrypt(over).unwrap_err();
            assert!(
                why.contains(&format!("bcrypt with cost {over} (at most 15)")),
                "{why}"
            );
        }

        let scrypt = |n: u64, r: u32, p: u32| {
            LegacyDigest::drf(&format!(
                "scrypt${n}$E5hvoZx48rUlQBRyt46P6p${r}${p}$5KV9zBbXnPYjQM8yjOrU0oSIZESARdb4ey0mmhirYd/1r66zr/OSZ2RSh5BvyM6WU1e7CjBjSipFSttb82rMRA=="
            ))
        };
        assert!(scrypt(1 << 18, 8, 4).is_ok()); // 256 MiB, 1 GiB in all
        assert!(scrypt(1 << 14, 8, 64).is_ok());
        for (n, r, p) in [
            (1 << 18, 8, 5),
            (1 << 19, 8, 1),
            (1 << 14, 8, 65),
            (1 << 63, 8, 1),
            (1 << 14, u32::MAX, 1),
        ] {
            let why = scrypt(n, r, p).unwrap_err();
            assert!(
                why.contains("scrypt with N=2^") && why.contains("at most 256 MiB"),
                "{n} {r} {p}: {why}"
            );
        }

        let many = format!("pbkdf2_sha256${}$s$AAAA", MAX_PBKDF2_ITERATIONS + 1);
        assert!(LegacyDigest::drf(&many).unwrap_err().contains("iterations"));
    }

    #[test]
    fn a_damaged_record_s_costs_are_bounded_at_verify_too() {
        // Stored forms no import makes, as a damaged or forged store holds
        // them: refused at once, without running the hash or panicking.
        let damaged = [
            Stored::Pbkdf2 {
                prf: Prf::Sha256,
                iterations: u32::MAX,
                salt: "s".into(),
                hash: vec![0; 32],
            },
            Stored::Argon2 {
                kind: Argon2Type::Id,
                version: 0x13,
                memory_kib: u32::MAX,
                passes: 1,
                lanes: 1,
                salt: vec![0; 16],
                hash: vec![0; 32],
            },
            Stored::Argon2 {
                kind: Argon2Type::Id,
                version: 7,
                memory_kib: 64,
                passes: 1,
                lanes: 1,
                salt: vec![0; 16],
                hash: vec![0; 32],
            },
            Stored::Bcrypt {
                sha256: false,
                cost: 31,
                salt: [0; 16],
                hash: [0; 23],
            },
            Stored::Bcrypt {
                sha256: false,
                cost: 99,
                salt: [0; 16],
                hash: [0; 23],
            },
            Stored::Scrypt {
                log_n: 200,
                block_size: 8,
                parallelism: 1,
                salt: "s".into(),
                hash: vec![0; 64],
            },
            Stored::Scrypt {
                log_n: 14,
                block_size: 8,
                parallelism: u32::MAX,
                salt: "s".into(),
                hash: vec![0; 64],
            },
        ];
        let started = std::time::Instant::now();
        for stored in damaged {
            assert!(!LegacyDigest(stored).matches(KEY));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
