//! Reading the sources' tables as they are exported, with their own column
//! names: CSV with a header line (as `COPY … TO … CSV HEADER` or `\copy`
//! write it) or JSON lines (one object per line). Each row becomes a
//! [`Row`], or a [`BadRow`] with its line and a reason that never quotes a
//! digest or any other value that could be a secret.
//!
//! The columns read, by source (others are ignored):
//!
//! - `sanctum` (`personal_access_tokens`): `id`, `token` (required), `name`,
//!   `abilities` (JSON list), `tokenable_type`, `tokenable_id` (the owner),
//!   `created_at`, `last_used_at`, `expires_at`.
//! - `drf-api-key` (`rest_framework_api_key_apikey`): `prefix`, `hashed_key`
//!   (required), `id`, `name`, `created`, `revoked`, `expiry_date`.
//! - `unkey` (`keys`): `hash` (required), `id`, `start`, `name`, `owner_id`,
//!   `meta`, `created_at` or `created_at_m`, `expires`, `enabled`,
//!   `deleted_at` or `deleted_at_m` (a deleted key is imported revoked),
//!   `last_used_at`.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::{handle, is_drf_prefix, sanctum_id, LegacyDigest, Source};
use crate::clock::Timestamp;
use crate::error::Error;

/// Longest field read from an import file, in bytes.
pub const MAX_FIELD_LEN: usize = 65_536;

/// One row of a source's table, read and checked for its shape; the store
/// checks it against its own limits (name, scopes) when importing.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) source: Source,
    pub(crate) handle: Vec<u8>,
    pub(crate) source_id: String,
    pub(crate) digest: LegacyDigest,
    pub(crate) hint: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) owner: Option<String>,
    pub(crate) metadata: Option<String>,
    pub(crate) created_at: Option<Timestamp>,
    pub(crate) last_used: Option<Timestamp>,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) revoked: bool,
}

/// A row that was not imported: its line in the file (from 1, the header
/// line included) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Line of the file where the row starts.
    pub line: u64,
    /// Why it was not imported (never quotes a digest or a key).
    pub reason: String,
}

/// A row's fields by column name: `None` for NULL (an empty CSV field,
/// `\N`, JSON `null`) and for a missing column.
struct Fields<'a> {
    get: &'a dyn Fn(&str) -> Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn get(&self, column: &str) -> Option<&'a str> {
        (self.get)(column)
    }

    fn required(&self, column: &str) -> Result<&'a str, String> {
        self.get(column)
            .ok_or_else(|| format!("`{column}` is empty"))
    }

    fn time(&self, column: &str) -> Result<Option<Timestamp>, String> {
        self.get(column)
            .map(|text| parse_time(text).map_err(|why| format!("`{column}`: {why}")))
            .transpose()
    }

    fn flag(&self, column: &str) -> Result<Option<bool>, String> {
        self.get(column)
            .map(|text| match text.to_ascii_lowercase().as_str() {
                "t" | "true" | "1" | "y" | "yes" => Ok(true),
                "f" | "false" | "0" | "n" | "no" => Ok(false),
                _ => Err(format!("`{column}`: expected a boolean")),
            })
            .transpose()
    }
}

/// The columns a source's file must have.
fn required_columns(source: Source) -> &'static [&'static str] {
    match source {
        Source::Sanctum => &["id", "token"],
        Source::DrfApiKey => &["prefix", "hashed_key"],
        Source::Unkey => &["hash"],
    }
}

/// Reads every row of `input`, a source's table as CSV with a header or as
/// JSON lines (told apart by the first character: `{`). A file that is
/// neither, or lacks a required column, is an error; rows that do not fit
/// are returned apart.
pub(crate) fn read_rows(source: Source, input: &[u8]) -> Result<(Vec<Row>, Vec<BadRow>), Error> {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    if start == input.len() {
        // An empty file: nothing to import, nothing wrong.
        return Ok((Vec::new(), Vec::new()));
    }
    if input.get(start) == Some(&b'{') {
        read_json_lines(source, input)
    } else {
        read_csv(source, input)
    }
}

fn read_csv(source: Source, input: &[u8]) -> Result<(Vec<Row>, Vec<BadRow>), Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let header = reader
        .byte_headers()
        .map_err(|error| Error::InvalidArgument(format!("the header line: {error}")))?
        .clone();
    let mut columns = HashMap::new();
    for (at, name) in header.iter().enumerate() {
        let name = core::str::from_utf8(name)
            .map_err(|_| Error::InvalidArgument("the header line is not UTF-8".into()))?;
        columns
            .entry(
                name.trim()
                    .trim_start_matches('\u{feff}')
                    .to_ascii_lowercase(),
            )
            .or_insert(at);
    }
    check_columns(source, |column| columns.contains_key(column))?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map_or(line, |at| at.line());
                let reason = match error.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    _ => "not a CSV row".to_string(),
                };
                bad.push(BadRow { line, reason });
                if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                    return Err(Error::InvalidArgument(format!(
                        "line {line}: the file could not be read"
                    )));
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |at| at.line());
        let mut text = Vec::with_capacity(record.len());
        let mut refused = None;
        for (at, field) in record.iter().enumerate() {
            if field.len() > MAX_FIELD_LEN {
                refused = Some(format!(
                    "field {} is longer than {MAX_FIELD_LEN} bytes",
                    at + 1
                ));
                break;
            }
            match core::str::from_utf8(field) {
                Ok(field) => text.push(field),
                Err(_) => {
                    refused = Some(format!("field {} is not UTF-8", at + 1));
                    break;
                }
            }
        }
        if let Some(reason) = refused {
            bad.push(BadRow { line, reason });
            continue;
        }
        let get = |column: &str| {
            let field = *text.get(*columns.get(column)?)?;
            (!field.is_empty() && field != "\\N").then_some(field)
        };
        match to_row(source, line, &Fields { get: &get }) {
            Ok(row) => rows.push(row),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
    }
    Ok((rows, bad))
}

fn check_columns(source: Source, has: impl Fn(&str) -> bool) -> Result<(), Error> {
    for column in required_columns(source) {
        if !has(column) {
            return Err(Error::InvalidArgument(format!(
                "a {} export needs a `{column}` column",
                source.as_str()
            )));
        }
    }
    Ok(())
}

fn read_json_lines(source: Source, input: &[u8]) -> Result<(Vec<Row>, Vec<BadRow>), Error> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut columns_seen = false;
    for (at, line_bytes) in input.split(|&b| b == b'\n').enumerate() {
        let line = at as u64 + 1;
        if line_bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line_bytes.len() > 16 * MAX_FIELD_LEN {
            bad.push(BadRow {
                line,
                reason: format!("longer than {} bytes", 16 * MAX_FIELD_LEN),
            });
            continue;
        }
        let Ok(text) = core::str::from_utf8(line_bytes) else {
            bad.push(BadRow {
                line,
                reason: "not UTF-8".into(),
            });
            continue;
        };
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                bad.push(BadRow {
                    line,
                    reason: "not a JSON object".into(),
                });
                continue;
            }
            Err(error) => {
                bad.push(BadRow {
                    line,
                    reason: format!("not JSON (column {})", error.column()),
                });
                continue;
            }
        };
        // Every field as text, as a CSV export holds it (lists and objects
        // as their JSON).
        let fields: HashMap<String, String> = object
            .into_iter()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::Null => return None,
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                Some((name.to_ascii_lowercase(), text))
            })
            .collect();
        if !columns_seen {
            // The first object names the columns, as a CSV header would.
            let missing = required_columns(source)
                .iter()
                .find(|column| !fields.contains_key(**column));
            if let Some(column) = missing {
                return Err(Error::InvalidArgument(format!(
                    "line {line}: a {} export needs a `{column}` field",
                    source.as_str()
                )));
            }
            columns_seen = true;
        }
        if let Some(long) = fields.iter().find(|(_, text)| text.len() > MAX_FIELD_LEN) {
            bad.push(BadRow {
                line,
                reason: format!("`{}` is longer than {MAX_FIELD_LEN} bytes", excerpt(long.0)),
            });
            continue;
        }
        let get = |column: &str| {
            fields
                .get(column)
                .map(String::as_str)
                .filter(|t| !t.is_empty())
        };
        match to_row(source, line, &Fields { get: &get }) {
            Ok(row) => rows.push(row),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
    }
    Ok((rows, bad))
}

/// A column name as shown in a reason: at most 32 characters.
fn excerpt(name: &str) -> String {
    name.chars().take(32).collect()
}

fn to_row(source: Source, line: u64, fields: &Fields<'_>) -> Result<Row, String> {
    match source {
        Source::Sanctum => sanctum_row(line, fields),
        Source::DrfApiKey => drf_row(line, fields),
        Source::Unkey => unkey_row(line, fields),
    }
}

fn sanctum_row(line: u64, fields: &Fields<'_>) -> Result<Row, String> {
    let id = sanctum_id(fields.required("id")?)
        .ok_or("`id`: expected a positive whole number")?
        .to_string();
    let digest = LegacyDigest::sanctum(fields.required("token")?)?;
    let scopes = match fields.get("abilities") {
        None => Vec::new(),
        Some(abilities) => serde_json::from_str::<Vec<String>>(abilities)
            .map_err(|_| "`abilities`: expected a JSON list of strings")?,
    };
    let metadata = fields
        .get("tokenable_type")
        .map(|kind| serde_json::json!({ "tokenable_type": kind }).to_string());
    Ok(Row {
        line,
        source: Source::Sanctum,
        handle: handle(Source::Sanctum, id.as_bytes()),
        hint: format!("{id}|…"),
        name: fields.get("name").unwrap_or_default().to_string(),
        source_id: id,
        digest,
        scopes,
        owner: fields.get("tokenable_id").map(str::to_string),
        metadata,
        created_at: fields.time("created_at")?,
        last_used: fields.time("last_used_at")?,
        expires_at: fields.time("expires_at")?,
        revoked: false,
    })
}

fn drf_row(line: u64, fields: &Fields<'_>) -> Result<Row, String> {
    let prefix = fields.required("prefix")?;
    if !is_drf_prefix(prefix) {
        return Err("`prefix`: expected 1 to 32 ASCII letters and digits".into());
    }
    let digest = LegacyDigest::drf(fields.required("hashed_key")?)?;
    Ok(Row {
        line,
        source: Source::DrfApiKey,
        handle: handle(Source::DrfApiKey, prefix.as_bytes()),
        source_id: prefix.to_string(),
        hint: format!("{prefix}.…"),
        digest,
        name: fields.get("name").unwrap_or_default().to_string(),
        scopes: Vec::new(),
        owner: None,
        metadata: None,
        created_at: fields.time("created")?,
        last_used: None,
        expires_at: fields.time("expiry_date")?,
        revoked: fields.flag("revoked")?.unwrap_or(false),
    })
}

fn unkey_row(line: u64, fields: &Fields<'_>) -> Result<Row, String> {
    let hash = fields.required("hash")?;
    let digest = LegacyDigest::unkey(hash)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .map_err(|_| "`hash`: expected the base64 of a SHA-256")?;
    let id = fields.get("id").unwrap_or_default();
    let start = fields.get("start").unwrap_or_default();
    if !start.bytes().all(|b| b.is_ascii_graphic()) || start.len() > 16 {
        return Err("`start`: expected at most 16 printable ASCII characters".into());
    }
    let name = match fields.get("name") {
        Some(name) => name.to_string(),
        None if !start.is_empty() => format!("Unkey key {start}…"),
        None => "Unkey key".to_string(),
    };
    let created_at = match fields.time("created_at")? {
        Some(at) => Some(at),
        None => fields.time("created_at_m")?,
    };
    let deleted = fields.get("deleted_at").is_some() || fields.get("deleted_at_m").is_some();
    let enabled = fields.flag("enabled")?.unwrap_or(true);
    Ok(Row {
        line,
        source: Source::Unkey,
        handle: handle(Source::Unkey, &raw),
        source_id: id.to_string(),
        hint: format!("{start}…"),
        digest,
        name,
        scopes: Vec::new(),
        owner: fields.get("owner_id").map(str::to_string),
        metadata: fields.get("meta").map(str::to_string),
        created_at,
        last_used: fields.time("last_used_at")?,
        expires_at: fields.time("expires")?,
        revoked: deleted || !enabled,
    })
}

/// A time as the sources' exports write it: `2024-05-06 07:08:09` (UTC when
/// no zone is given, as Laravel and Django store by default), with an
/// optional `T`, fraction, `Z` or `±HH[:MM]`; or unix seconds, or unix
/// milliseconds (Unkey's `*_m` columns) for numbers past the year 5138.
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, &'static str> {
    const BAD: &str = "expected a time such as 2024-05-06 07:08:09";
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let number: i64 = text.parse().map_err(|_| BAD)?;
        let seconds = if number > 100_000_000_000 {
            number / 1000
        } else {
            number
        };
        return Ok(Timestamp::from_unix(seconds));
    }
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = bytes.get(from..from + len).ok_or(BAD)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(BAD);
        }
        core::str::from_utf8(part)
            .ok()
            .and_then(|part| part.parse().ok())
            .ok_or(BAD)
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return Err(BAD);
    }
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    let mut at = 10;
    if matches!(bytes.get(10), Some(b' ' | b'T' | b't')) {
        hour = digits(11, 2)?;
        if bytes.get(13) != Some(&b':') {
            return Err(BAD);
        }
        minute = digits(14, 2)?;
        at = 16;
        if bytes.get(16) == Some(&b':') {
            second = digits(17, 2)?;
            at = 19;
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
        }
    }
    let offset = match &bytes[at..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] => {
            let hours = digits(at + 1, 2)?;
            let minutes = match bytes.len() - at {
                3 => 0,
                5 => digits(at + 3, 2)?,
                6 if bytes[at + 3] == b':' => digits(at + 4, 2)?,
                _ => return Err(BAD),
            };
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return Err(BAD),
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(BAD);
    }
    if second > 60 {
        return Err(BAD);
    }
    let days = days_from_civil(year, month, day);
    Ok(Timestamp::from_unix(
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_exports_write_them() {
        let at = |text| parse_time(text).map(Timestamp::unix);
        assert_eq!(at("1970-01-01 00:00:00"), Ok(0));
        assert_eq!(at("2024-05-06 07:08:09"), Ok(1_714_979_289));
        assert_eq!(at("2024-05-06T07:08:09.123456Z"), Ok(1_714_979_289));
        assert_eq!(at("2024-05-06 09:08:09+02"), Ok(1_714_979_289));
        assert_eq!(at("2024-05-06 02:38:09-04:30"), Ok(1_714_979_289));
        assert_eq!(at("2024-05-06"), Ok(1_714_953_600));
        assert_eq!(at("1714979289"), Ok(1_714_979_289));
        assert_eq!(at("1714979289123"), Ok(1_714_979_289));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-05-06 25:00:00",
            "2024-05-06 07:08:09 UTC",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
