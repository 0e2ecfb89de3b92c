//! The key format: shape, checksum, uniformity of the random characters, and
//! offline rejection of damaged keys.

use apikeys::{
    fill_random_chars, generate_with, is_well_formed, parse, ALPHABET, BODY_LEN, RANDOM_LEN,
};
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regex::Regex;

/// The scanner's pattern from DESIGN.md, anchored.
fn key_pattern() -> Regex {
    Regex::new(r"^[a-z]{2,8}_sk_(?:[a-z0-9]{1,8}_)?[0-9A-Za-z]{32}$").unwrap()
}

/// The chi-square critical value for 61 degrees of freedom at p = 0.001.
const CHI_SQUARE_61_P001: f64 = 100.9;

/// Chi-square statistic of character counts against the uniform distribution.
fn chi_square(chars: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &c in chars {
        counts[c as usize] += 1;
    }
    let expected = chars.len() as f64 / 62.0;
    ALPHABET
        .iter()
        .map(|&c| {
            let diff = counts[c as usize] as f64 - expected;
            diff * diff / expected
        })
        .sum()
}

#[test]
fn every_generated_key_matches_the_scanner_pattern_and_checksum() {
    let pattern = key_pattern();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for env in [
        None,
        Some("prod"),
        Some("stag"),
        Some("dev"),
        Some("a1b2c3d4"),
    ] {
        for vendor in ["flz", "ab", "abcdefgh"] {
            for _ in 0..500 {
                let key = generate_with(&mut rng, vendor, env).unwrap();
                let text = key.expose_secret();
                assert!(pattern.is_match(text), "{text}");
                let parsed = parse(text).unwrap();
                assert_eq!((parsed.vendor, parsed.env), (vendor, env));
                assert_eq!(parsed.body.len(), BODY_LEN);
            }
        }
    }
}

#[test]
fn operating_system_keys_match_the_pattern() {
    let pattern = key_pattern();
    for _ in 0..1000 {
        let key = generate_with(&mut OsRng, "flz", Some("prod")).unwrap();
        assert!(pattern.is_match(key.expose_secret()));
        assert!(is_well_formed(key.expose_secret()));
    }
}

#[test]
fn random_characters_are_uniform_with_a_seeded_generator() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut chars = vec![0u8; 124_000];
    fill_random_chars(&mut rng, &mut chars).unwrap();
    let statistic = chi_square(&chars);
    assert!(statistic < CHI_SQUARE_61_P001, "chi-square {statistic:.1}");
}

#[test]
fn key_bodies_are_uniform_with_a_seeded_generator() {
    // The random part of real keys, as generated: 4,000 keys x 26 characters.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut chars = Vec::new();
    for _ in 0..4_000 {
        let key = generate_with(&mut rng, "flz", None).unwrap();
        let body = parse(key.expose_secret()).unwrap().body;
        chars.extend_from_slice(&body.as_bytes()[..RANDOM_LEN]);
    }
    assert!(chars.len() >= 100_000);
    let statistic = chi_square(&chars);
    assert!(statistic < CHI_SQUARE_61_P001, "chi-square {statistic:.1}");
}

#[test]
fn random_characters_are_uniform_with_the_operating_system_generator() {
    let mut chars = vec![0u8; 124_000];
    fill_random_chars(&mut OsRng, &mut chars).unwrap();
    let statistic = chi_square(&chars);
    // Fails once in a thousand runs on a perfect generator; a biased
    // sampler (see below) lands far above it.
    assert!(statistic < CHI_SQUARE_61_P001, "chi-square {statistic:.1}");
}

#[test]
fn the_uniformity_check_catches_modulo_bias() {
    // The mistake rejection sampling avoids: byte % 62 favours 0..=7.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut bytes = vec![0u8; 124_000];
    rng.fill_bytes(&mut bytes);
    let biased: Vec<u8> = bytes.iter().map(|b| ALPHABET[(*b % 62) as usize]).collect();
    let statistic = chi_square(&biased);
    assert!(
        statistic > CHI_SQUARE_61_P001,
        "chi-square {statistic:.1} did not detect the bias"
    );
}

#[test]
fn every_single_character_change_truncation_and_extension_is_malformed() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for env in [None, Some("prod")] {
        let key = generate_with(&mut rng, "flz", env).unwrap();
        let text = key.expose_secret();
        assert!(is_well_formed(text));
        let printable: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        let mut tried = 0;
        for (at, original) in text.char_indices() {
            for &replacement in &printable {
                if replacement == original {
                    continue;
                }
                let mut mutant = text.to_string();
                mutant.replace_range(at..at + 1, &replacement.to_string());
                assert!(!is_well_formed(&mutant), "{mutant}");
                tried += 1;
            }
        }
        for end in 0..text.len() {
            assert!(!is_well_formed(&text[..end]), "truncated to {end}");
            assert!(
                !is_well_formed(&text[text.len() - end..]),
                "front cut to {end}"
            );
        }
        for extra in printable.iter().chain(['é', '\0', '\n'].iter()) {
            assert!(!is_well_formed(&format!("{text}{extra}")));
            assert!(!is_well_formed(&format!("{extra}{text}")));
        }
        assert!(tried > 3_000);
    }
}

#[test]
fn look_alikes_case_changes_and_whitespace_are_malformed() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let key = generate_with(&mut rng, "flz", Some("prod")).unwrap();
    let text = key.expose_secret();
    let candidates = [
        text.replacen("flz", "FLZ", 1),
        text.replacen("_sk_", "_SK_", 1),
        text.replacen("_sk_", "_ѕk_", 1), // Cyrillic dze
        text.replacen("prod", "PROD", 1),
        format!(" {text}"),
        format!("{text} "),
        format!("{text}\n"),
        text.replacen("_sk_", "_pk_", 1),
        text.replacen('_', "-", 1),
    ];
    for candidate in &candidates {
        assert!(!is_well_formed(candidate), "{candidate}");
    }
}
