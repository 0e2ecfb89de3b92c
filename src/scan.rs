//! Finding leaked keys in text: the scanner regex of the key format, matched
//! by hand over bytes, with each candidate's checksum checked offline.
//!
//! [`candidates`] finds every match of
//! `\b[a-z]{2,8}_sk_(?:[a-z0-9]{1,8}_)?[0-9A-Za-z]{32}\b` in a byte slice,
//! with ASCII word boundaries (`[0-9A-Za-z_]` are word bytes, everything else,
//! non-ASCII bytes included, is not), as Go's RE2 and so gitleaks and
//! trufflehog read `\b`. [`scan_reader`] runs it over a stream in a window
//! of bounded size, whatever the length of the stream's lines, and reports
//! each candidate with its line and column; it skips binary streams.
//!
//! A candidate that matches the regex but fails its checksum is a *near
//! miss* (a made-up example, a key edited by hand, noise of the right
//! shape): [`Candidate::well_formed`] tells them apart.

use std::io::{self, Read};
use std::ops::Range;

use zeroize::Zeroizing;

use crate::key::{self, SecretKey, BODY_LEN, KIND, MAX_KEY_LEN};

/// The regex of the key format, as the README gives it: any vendor, any or
/// no environment tag.
pub const KEY_REGEX: &str = r"\b[a-z]{2,8}_sk_(?:[a-z0-9]{1,8}_)?[0-9A-Za-z]{32}\b";

/// How much of a stream is read at a time.
const CHUNK: usize = 64 * 1024;
/// A stream with a NUL byte in its first `BINARY_SNIFF` bytes is binary.
const BINARY_SNIFF: usize = 8 * 1024;

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The length of the match of the key regex that starts at `at` (a word
/// boundary already checked), if one does.
fn match_at(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = &bytes[at..];
    let vendor = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if !(2..=8).contains(&vendor) {
        return None;
    }
    let after_vendor = &rest[vendor..];
    if !after_vendor.starts_with(b"_") || !after_vendor[1..].starts_with(KIND.as_bytes()) {
        return None;
    }
    let head = vendor + 1 + KIND.len();
    if rest.get(head) != Some(&b'_') {
        return None;
    }
    let head = head + 1;
    // The body: 32 alphanumerics, then a word boundary (the end, or a
    // non-word byte).
    let body_at = |from: usize| -> Option<usize> {
        let body = rest.get(from..from + BODY_LEN)?;
        if !body.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        match rest.get(from + BODY_LEN) {
            Some(&next) if is_word(next) => None,
            _ => Some(from + BODY_LEN),
        }
    };
    // With an env tag first (the regex's `?` is greedy): the tag is the run
    // of [a-z0-9] up to the next "_", as no tag character is "_".
    let tag = rest[head..]
        .iter()
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        .count();
    if (1..=8).contains(&tag) && rest.get(head + tag) == Some(&b'_') {
        if let Some(end) = body_at(head + tag + 1) {
            return Some(end);
        }
    }
    body_at(head)
}

/// Every match of [`KEY_REGEX`] in `bytes`, left to right, not overlapping.
/// `before` is the byte just before `bytes` (for the word boundary of a
/// match at its start), if there is one.
pub fn candidates(bytes: &[u8], before: Option<u8>) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let previous = if at == 0 { before } else { Some(bytes[at - 1]) };
        if bytes[at].is_ascii_lowercase() && !previous.is_some_and(is_word) {
            if let Some(len) = match_at(bytes, at) {
                found.push(at..at + len);
                at += len;
                continue;
            }
        }
        at += 1;
    }
    found
}

/// One match of the key regex in a stream.
#[derive(Debug)]
pub struct Candidate {
    /// The matched text. Not necessarily a key: see [`Candidate::well_formed`].
    pub text: SecretKey,
    /// Line number, from 1.
    pub line: u64,
    /// Byte column in its line, from 1.
    pub column: u64,
    /// Byte offset in the stream, from 0.
    pub offset: u64,
    /// Whether its checksum holds (a key of this format), or it is a near
    /// miss: the right shape and a wrong checksum.
    pub well_formed: bool,
}

impl Candidate {
    /// The display hint: the prefix and the first four body characters,
    /// as listings show it. Safe to print.
    pub fn hint(&self) -> String {
        self.text.hint()
    }
}

/// What [`scan_reader`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// The whole stream was read: this many bytes.
    Text {
        /// Bytes read.
        bytes: u64,
    },
    /// The stream looks binary (a NUL byte in its first 8 KiB): not scanned.
    Binary,
}

/// Scans a stream for the key regex, calling `found` for every candidate in
/// order. Memory stays bounded (about 64 KiB) whatever the stream's size
/// and line lengths. A stream with a NUL byte in its first 8 KiB is not
/// scanned ([`Scanned::Binary`]). Read errors end the scan with that error
/// (candidates before it have been reported).
pub fn scan_reader(mut reader: impl Read, mut found: impl FnMut(Candidate)) -> io::Result<Scanned> {
    // The window holds the bytes not yet searched, plus the byte before
    // them (for the word boundary) as `before`.
    // Both buffers hold what was read (keys, maybe), and are wiped when
    // dropped; the window's capacity is never exceeded, so it is never
    // moved (leaving a copy behind).
    let mut window = Zeroizing::new(Vec::<u8>::with_capacity(CHUNK + MAX_KEY_LEN + 1));
    let mut before: Option<u8> = None;
    // Stream offset of window[0]; line number and its start's offset there.
    let mut base: u64 = 0;
    let mut line: u64 = 1;
    let mut line_start: u64 = 0;
    let mut sniffed = false;
    let mut chunk = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        window.extend_from_slice(&chunk[..read]);
        if !sniffed && (read == 0 || window.len() >= BINARY_SNIFF) {
            sniffed = true;
            if window[..window.len().min(BINARY_SNIFF)].contains(&0) {
                return Ok(Scanned::Binary);
            }
        }
        let end_of_stream = read == 0;
        if !sniffed {
            continue;
        }
        // A match starting before `limit` lies in the window whole, with
        // the byte after it: the rest waits for the next read.
        let limit = if end_of_stream {
            window.len()
        } else {
            window.len().saturating_sub(MAX_KEY_LEN + 1)
        };
        let mut searched = 0;
        let mut counted = 0;
        for range in candidates(&window[..], before) {
            if range.start >= limit {
                break;
            }
            for (i, &b) in window[counted..range.start].iter().enumerate() {
                if b == b'\n' {
                    line += 1;
                    line_start = base + (counted + i) as u64 + 1;
                }
            }
            counted = range.start;
            let offset = base + range.start as u64;
            // The matched bytes are ASCII by construction.
            let text = String::from_utf8_lossy(&window[range.clone()]).into_owned();
            let well_formed = key::is_well_formed(&text);
            found(Candidate {
                text: SecretKey::from_string(text),
                line,
                column: offset - line_start + 1,
                offset,
                well_formed,
            });
            searched = range.end;
        }
        let keep_from = limit.max(searched).min(window.len());
        for (i, &b) in window[counted..keep_from].iter().enumerate() {
            if b == b'\n' {
                line += 1;
                line_start = base + (counted + i) as u64 + 1;
            }
        }
        if end_of_stream {
            return Ok(Scanned::Text {
                bytes: base + window.len() as u64,
            });
        }
        if keep_from > 0 {
            before = Some(window[keep_from - 1]);
            // Wipe what leaves the window: it may hold keys.
            window[..keep_from].fill(0);
            window.drain(..keep_from);
            base += keep_from as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(vendor: &str, env: Option<&str>) -> String {
        key::generate(vendor, env)
            .unwrap()
            .expose_secret()
            .to_string()
    }

    #[test]
    fn finds_keys_at_word_boundaries_only() {
        let a = key("flz", Some("prod"));
        let b = key("ab", None);
        let text = format!("x={a}\n\"{b}\" X{a} {a}9 _{b}");
        let found: Vec<_> = candidates(text.as_bytes(), None)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(found, [a.as_str(), b.as_str()]);
    }

    #[test]
    fn a_window_boundary_splits_no_key_and_lines_are_counted() {
        let k = key("flz", None);
        // Keys straddling every chunk boundary, on long lines.
        let mut text = Vec::new();
        let mut expected = Vec::new();
        let mut line = 1;
        while text.len() < 3 * CHUNK {
            text.extend(std::iter::repeat_n(b'.', 997));
            let at = text.len();
            let line_start = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            text.extend_from_slice(k.as_bytes());
            expected.push((line, (at - line_start + 1) as u64, at as u64));
            if expected.len() % 7 == 0 {
                text.push(b'\n');
                line += 1;
            }
        }
        let mut seen = Vec::new();
        let outcome = scan_reader(&text[..], |c| {
            assert!(c.well_formed);
            assert_eq!(c.text.expose_secret(), k);
            seen.push((c.line, c.column, c.offset));
        })
        .unwrap();
        assert_eq!(seen, expected);
        assert_eq!(
            outcome,
            Scanned::Text {
                bytes: text.len() as u64
            }
        );
    }

    #[test]
    fn binary_streams_are_skipped() {
        let mut text = key("flz", None).into_bytes();
        text.push(0);
        assert_eq!(
            scan_reader(&text[..], |_| panic!("no candidate")).unwrap(),
            Scanned::Binary
        );
    }
}
