//! The one table of hostile inputs, with the outcome each must get.
//!
//! Shared by the Rust API and command-line suite (`tests/hostile.rs`) and
//! the C ABI suite (`ffi/tests/hostile_abi.rs`, which includes this file by
//! path), so that every interface is held to the same answers. It depends
//! on no crate: it builds its own well-formed variants with a CRC-32 written
//! here, independently of the library.

/// What an input is presented as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key, as given to verify (bytes for the C ABI and the command line).
    Key,
    /// The value of an `Authorization` header.
    Header,
}

/// The defined outcome of presenting an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The real key: accepted.
    Accepted,
    /// Rejected before any storage read: not a well-formed key.
    Malformed,
    /// Well-formed, but no such key.
    NotFound,
    /// A header with no usable bearer token (missing, another scheme,
    /// no token, more than one word, characters outside RFC 6750's b64token).
    BadHeader,
    /// Not UTF-8: not a key. The C ABI and the command line reject it as
    /// malformed (a header: no token); a Rust `&str` cannot hold it.
    NotUtf8,
}

/// One hostile input.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub kind: Kind,
    pub input: Vec<u8>,
    /// Through the Rust API and the C ABI.
    pub expect: Expect,
    /// Through `apikeys verify`, which reads one line of standard input and
    /// drops its line ending: differs from `expect` only for line endings.
    pub command_line: Expect,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `signed` followed by its six base62 checksum digits.
pub fn with_checksum(signed: &str) -> String {
    let mut value = crc32(signed.as_bytes());
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    format!("{signed}{}", std::str::from_utf8(&digits).expect("ascii"))
}

/// The 26 random characters of a key (its body without the checksum).
fn random_part(key: &str) -> &str {
    &key[key.len() - 32..key.len() - 6]
}

fn case(name: &str, kind: Kind, input: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        kind,
        input: input.into(),
        expect,
        command_line: expect,
    }
}

/// A key case whose command-line outcome differs (line endings).
fn line_case(name: &str, input: impl Into<Vec<u8>>, expect: Expect, command_line: Expect) -> Case {
    Case {
        command_line,
        ..case(name, Kind::Key, input, expect)
    }
}

/// Every hostile input, given the store's real key (`flz_sk_prod_...`, shape
/// checked here) and a well-formed key the store does not hold.
pub fn cases(valid: &str, stranger: &str) -> Vec<Case> {
    use Expect::*;
    use Kind::*;
    assert!(
        valid.starts_with("flz_sk_prod_") && valid.len() == 44,
        "{valid}"
    );
    let random = random_part(valid);
    let body = &valid[12..];
    let mib = 1 << 20;
    let swapped_case: String = body
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let changed_checksum = {
        let mut bytes = valid.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        bytes
    };
    let mut nul_inside = valid.as_bytes().to_vec();
    nul_inside[20] = 0;
    let mut invalid_last = valid.as_bytes().to_vec();
    let last = invalid_last.len() - 1;
    invalid_last[last] = 0xFF;
    let mut huge_then_key = vec![b'a'; mib];
    huge_then_key.extend_from_slice(valid.as_bytes());
    let fullwidth_first: String = format!(
        "flz_sk_prod_{}{}",
        char::from_u32(0xFF10 + u32::from(body.as_bytes()[0] % 10)).expect("fullwidth digit"),
        &body[1..]
    );
    let fullwidth_env = valid.replacen("prod", "ｐｒｏｄ", 1);

    let mut table = vec![
        // Plain garbage.
        case("empty", Key, "", Malformed),
        case("one MiB of letters", Key, vec![b'a'; mib], Malformed),
        case(
            "one MiB of alphanumerics then the key",
            Key,
            huge_then_key,
            Malformed,
        ),
        case("a NUL byte", Key, "\0", Malformed),
        case("the key then NUL", Key, format!("{valid}\0"), Malformed),
        case("NUL then the key", Key, format!("\0{valid}"), Malformed),
        case("NUL inside the key", Key, nul_inside, Malformed),
        case("invalid UTF-8", Key, vec![0xFF, 0xFE, 0xFD], NotUtf8),
        case(
            "the key with its last byte 0xFF",
            Key,
            invalid_last,
            NotUtf8,
        ),
        case(
            "the key then a lone continuation byte",
            Key,
            [valid.as_bytes(), &[0x80]].concat(),
            NotUtf8,
        ),
        case("the prefix only", Key, "flz_sk_prod_", Malformed),
        // Lookalikes: each looks like the key to a human.
        case(
            "Cyrillic s in sk",
            Key,
            valid.replacen("_sk_", "_\u{0455}k_", 1),
            Malformed,
        ),
        case(
            "Cyrillic ze for z in the vendor",
            Key,
            valid.replacen("flz", "fl\u{0437}", 1),
            Malformed,
        ),
        case(
            "fullwidth first body character",
            Key,
            fullwidth_first,
            Malformed,
        ),
        case("fullwidth env tag", Key, fullwidth_env, Malformed),
        case(
            "zero-width space inside",
            Key,
            format!("{}\u{200B}{}", &valid[..20], &valid[20..]),
            Malformed,
        ),
        // Surrounding whitespace: the key is exact.
        case("leading space", Key, format!(" {valid}"), Malformed),
        case("trailing space", Key, format!("{valid} "), Malformed),
        case("leading tab", Key, format!("\t{valid}"), Malformed),
        case(
            "no-break space after",
            Key,
            format!("{valid}\u{00A0}"),
            Malformed,
        ),
        line_case(
            "trailing newline",
            format!("{valid}\n"),
            Malformed,
            Accepted,
        ),
        line_case("trailing CRLF", format!("{valid}\r\n"), Malformed, Accepted),
        line_case(
            "the key, newline, junk",
            format!("{valid}\njunk"),
            Malformed,
            Accepted,
        ),
        line_case(
            "newline before the key",
            format!("\n{valid}"),
            Malformed,
            Malformed,
        ),
        // Case changes.
        case(
            "uppercase vendor",
            Key,
            valid.replacen("flz_", "FLZ_", 1),
            Malformed,
        ),
        case(
            "uppercase kind",
            Key,
            valid.replacen("_sk_", "_SK_", 1),
            Malformed,
        ),
        case(
            "uppercase env",
            Key,
            valid.replacen("_prod_", "_PROD_", 1),
            Malformed,
        ),
        case(
            "whole key uppercase",
            Key,
            valid.to_ascii_uppercase(),
            Malformed,
        ),
        case(
            "body case swapped",
            Key,
            format!("flz_sk_prod_{swapped_case}"),
            Malformed,
        ),
        // Checksum.
        case("wrong checksum", Key, changed_checksum, Malformed),
        case(
            "checksum missing",
            Key,
            &valid[..valid.len() - 6],
            Malformed,
        ),
        case(
            "checksum of zeros",
            Key,
            format!("{}000000", &valid[..valid.len() - 6]),
            Malformed,
        ),
        // Truncation and extension.
        case(
            "last character cut",
            Key,
            &valid[..valid.len() - 1],
            Malformed,
        ),
        case("first character cut", Key, &valid[1..], Malformed),
        case("one character added", Key, format!("{valid}0"), Malformed),
        case("key twice", Key, format!("{valid}{valid}"), Malformed),
        case(
            "env separator doubled",
            Key,
            valid.replacen("prod_", "prod__", 1),
            Malformed,
        ),
        // Well-formed neighbours, checksums recomputed: the shape rules bite.
        case(
            "kind pk with a valid checksum",
            Key,
            with_checksum(&format!("flz_pk_prod_{random}")),
            Malformed,
        ),
        case(
            "nine-letter vendor with a valid checksum",
            Key,
            with_checksum(&format!("abcdefghi_sk_prod_{random}")),
            Malformed,
        ),
        case(
            "nine-character env with a valid checksum",
            Key,
            with_checksum(&format!("flz_sk_prod12345_{random}")),
            Malformed,
        ),
        case(
            "uppercase env with a valid checksum",
            Key,
            with_checksum(&format!("flz_sk_PROD_{random}")),
            Malformed,
        ),
        case(
            "empty env with a valid checksum",
            Key,
            with_checksum(&format!("flz_sk__{random}")),
            Malformed,
        ),
        case(
            "short random part with a valid checksum",
            Key,
            with_checksum(&format!("flz_sk_prod_{}", &random[1..])),
            Malformed,
        ),
        // Well-formed, but not this store's key.
        case(
            "another env, same random part",
            Key,
            with_checksum(&format!("flz_sk_dev_{random}")),
            NotFound,
        ),
        case(
            "no env, same random part",
            Key,
            with_checksum(&format!("flz_sk_{random}")),
            NotFound,
        ),
        case(
            "another vendor, same rest",
            Key,
            with_checksum(&format!("acme_sk_prod_{random}")),
            NotFound,
        ),
        case("a stranger's key", Key, stranger, NotFound),
        case("the real key", Key, valid, Accepted),
    ];

    let headers = [
        (
            "Bearer and the key",
            format!("Bearer {valid}").into_bytes(),
            Accepted,
        ),
        (
            "lowercase bearer",
            format!("bearer {valid}").into_bytes(),
            Accepted,
        ),
        (
            "uppercase BEARER",
            format!("BEARER {valid}").into_bytes(),
            Accepted,
        ),
        (
            "two spaces after Bearer",
            format!("Bearer  {valid}").into_bytes(),
            Accepted,
        ),
        (
            "surrounding spaces and tabs",
            format!(" \tBearer {valid}\t ").into_bytes(),
            Accepted,
        ),
        ("empty header", Vec::new(), BadHeader),
        ("spaces only", b"   ".to_vec(), BadHeader),
        ("Bearer alone", b"Bearer".to_vec(), BadHeader),
        ("Bearer and a space", b"Bearer ".to_vec(), BadHeader),
        ("bearer x y", b"Bearer x y".to_vec(), BadHeader),
        (
            "key then another word",
            format!("Bearer {valid} extra").into_bytes(),
            BadHeader,
        ),
        (
            "tab after Bearer",
            format!("Bearer\t{valid}").into_bytes(),
            BadHeader,
        ),
        (
            "no space after Bearer",
            format!("Bearer{valid}").into_bytes(),
            BadHeader,
        ),
        (
            "Basic credentials",
            b"Basic dXNlcjpwYXNz".to_vec(),
            BadHeader,
        ),
        (
            "Basic with the key",
            format!("Basic {valid}").into_bytes(),
            BadHeader,
        ),
        (
            "Token scheme",
            format!("Token {valid}").into_bytes(),
            BadHeader,
        ),
        (
            "whole header line",
            format!("Authorization: Bearer {valid}").into_bytes(),
            BadHeader,
        ),
        (
            "NUL after the key",
            format!("Bearer {valid}\0").into_bytes(),
            BadHeader,
        ),
        (
            "Cyrillic s in the token",
            format!("Bearer {}", valid.replacen("_sk_", "_\u{0455}k_", 1)).into_bytes(),
            BadHeader,
        ),
        (
            "comma-separated tokens",
            format!("Bearer {valid},{valid}").into_bytes(),
            BadHeader,
        ),
        (
            "quoted token",
            format!("Bearer \"{valid}\"").into_bytes(),
            BadHeader,
        ),
        (
            "invalid UTF-8 header",
            [b"Bearer ".as_slice(), &[0xC3, 0x28]].concat(),
            NotUtf8,
        ),
        ("bearer garbage token", b"bearer x".to_vec(), Malformed),
        (
            "one MiB token",
            [b"Bearer ".as_slice(), &vec![b'a'; mib]].concat(),
            Malformed,
        ),
        (
            "padding after the key",
            format!("Bearer {valid}==").into_bytes(),
            Malformed,
        ),
        (
            "truncated key",
            format!("Bearer {}", &valid[..valid.len() - 1]).into_bytes(),
            Malformed,
        ),
        (
            "stranger's key",
            format!("Bearer {stranger}").into_bytes(),
            NotFound,
        ),
    ];
    for (name, input, expect) in headers {
        table.push(case(name, Header, input, expect));
    }
    table
}
