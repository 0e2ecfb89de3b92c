//! `apikeys scanner-rules`: rules that let third-party secret scanners find
//! this deployment's keys (gitleaks, trufflehog, GitHub secret scanning,
//! secretlint, detect-secrets), built from the key format's regex for one
//! vendor prefix and, optionally, the env tags the deployment issues.
//!
//! Regexes cannot check a CRC, so every rule says how the checksum is made
//! where its format has room for text (GitHub's API body has none: the note
//! goes to standard error); the detect-secrets plugin, being Python,
//! checks it.

use std::fmt::Write as _;

use apikeys::{is_env_tag, is_vendor, Error, DEFAULT_VENDOR};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::Outcome;

/// The formats `scanner-rules` prints.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum RulesFormat {
    /// A gitleaks configuration (TOML) with one rule, extending the default rules.
    Gitleaks,
    /// A trufflehog configuration (YAML) with one custom regex detector.
    Trufflehog,
    /// A GitHub secret scanning custom pattern: the JSON body of the REST call
    /// that creates it (the UI form's fields).
    Github,
    /// A secretlint configuration (.secretlintrc.json) for @secretlint/secretlint-rule-pattern.
    Secretlint,
    /// A detect-secrets plugin (Python) that also checks the checksum.
    DetectSecrets,
}

#[derive(Args)]
pub(super) struct RulesArgs {
    /// The scanner the rules are for.
    #[arg(long, value_enum)]
    format: RulesFormat,
    /// The deployment's vendor prefix (StoreOptions::vendor).
    #[arg(long, default_value = DEFAULT_VENDOR)]
    vendor: String,
    /// An env tag the deployment issues (repeatable). Without it, keys with
    /// any env tag or none match.
    #[arg(long = "env")]
    envs: Vec<String>,
}

/// What every rule says of the checksum.
const CHECKSUM_NOTE: &str = "the last 6 characters are a checksum: CRC-32 (IEEE) of every character before them, in base62 (0-9A-Za-z), left-padded with 0; `apikeys scan` checks it offline and tells live keys from dead ones";

/// The regex pieces for one deployment.
struct Pattern {
    vendor: String,
    /// `vendor_sk_` + env part + body, without boundaries.
    body: String,
}

impl Pattern {
    fn new(args: &RulesArgs) -> Result<Pattern, Error> {
        if !is_vendor(&args.vendor) {
            return Err(Error::InvalidArgument(format!(
                "vendor {:?}: expected 2 to 8 of [a-z]",
                args.vendor
            )));
        }
        let mut envs = args.envs.clone();
        if let Some(bad) = envs.iter().find(|env| !is_env_tag(env)) {
            return Err(Error::InvalidArgument(format!(
                "env {bad:?}: expected 1 to 8 of [a-z0-9]"
            )));
        }
        envs.sort();
        envs.dedup();
        let env = if envs.is_empty() {
            "(?:[a-z0-9]{1,8}_)?".to_string()
        } else {
            format!("(?:{})_", envs.join("|"))
        };
        Ok(Pattern {
            vendor: args.vendor.clone(),
            body: format!("{}_sk_{env}[0-9A-Za-z]{{32}}", args.vendor),
        })
    }

    /// The README's regex for this deployment: word boundaries around it.
    fn bounded(&self) -> String {
        format!(r"\b{}\b", self.body)
    }

    fn keyword(&self) -> String {
        format!("{}_sk_", self.vendor)
    }

    fn id(&self) -> String {
        format!("apikeys-{}-secret-key", self.vendor)
    }

    fn description(&self) -> String {
        format!("apikeys secret key ({}…): {CHECKSUM_NOTE}", self.keyword())
    }
}

pub(super) fn run(args: &RulesArgs) -> Result<Outcome, Error> {
    let pattern = Pattern::new(args)?;
    if matches!(args.format, RulesFormat::Github) {
        // JSON has no comments, and the API's body no description field.
        eprintln!("note: the regex cannot check the key's checksum: {CHECKSUM_NOTE}");
    }
    let text = match args.format {
        RulesFormat::Gitleaks => gitleaks(&pattern),
        RulesFormat::Trufflehog => trufflehog(&pattern),
        RulesFormat::Github => github(&pattern),
        RulesFormat::Secretlint => secretlint(&pattern),
        RulesFormat::DetectSecrets => detect_secrets(&pattern),
    };
    print!("{text}");
    Ok(Outcome::Done)
}

/// A TOML basic string (escapes `"`, `\` and controls).
fn toml_string(text: &str) -> String {
    // JSON strings are TOML basic strings for this alphabet (no control
    // characters beyond what both escape the same way).
    serde_json::to_string(text).unwrap_or_default()
}

fn gitleaks(pattern: &Pattern) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# gitleaks rules for apikeys keys, from `apikeys scanner-rules --format gitleaks`.\n\
         # Save as .gitleaks.toml (or pass --config); the default rules stay on.\n\
         # The regex cannot check the key's checksum: {CHECKSUM_NOTE}.\n\
         title = \"apikeys {vendor} keys\"\n\n\
         [extend]\n\
         useDefault = true\n\n\
         [[rules]]\n\
         id = {id}\n\
         description = {description}\n\
         regex = '''{regex}'''\n\
         keywords = [{keyword}]\n\
         tags = [\"apikeys\", \"api-key\"]",
        vendor = pattern.vendor,
        id = toml_string(&pattern.id()),
        description = toml_string(&pattern.description()),
        regex = pattern.bounded(),
        keyword = toml_string(&pattern.keyword()),
    );
    out
}

/// A YAML single-quoted scalar.
fn yaml_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn trufflehog(pattern: &Pattern) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# trufflehog custom detector for apikeys keys, from\n\
         # `apikeys scanner-rules --format trufflehog`. Use:\n\
         #   trufflehog filesystem PATH --config this-file.yaml\n\
         # The regex cannot check the key's checksum: {CHECKSUM_NOTE}.\n\
         detectors:\n  \
           - name: {name}\n    \
             keywords:\n      \
               - {keyword}\n    \
             regex:\n      \
               key: {regex}",
        name = yaml_string(&pattern.id()),
        keyword = yaml_string(&pattern.keyword()),
        // The capture group is what trufflehog reports.
        regex = yaml_string(&format!(r"\b({})\b", pattern.body)),
    );
    out
}

fn github(pattern: &Pattern) -> String {
    // The body of GitHub's REST call that creates custom patterns (`POST
    // /repos/{owner}/{repo}/secret-scanning/custom-patterns`, and the same
    // under /orgs/{org} and /enterprises/{enterprise}); its fields are the
    // UI form's: secret format, before secret, after secret. The boundaries
    // go to the delimiters (Hyperscan has no \b); "_" counts as part of a
    // word there, as it does for \b.
    let value = json!({
        "patterns": [{
            "name": format!("apikeys {} secret key", pattern.vendor),
            "pattern": pattern.body,
            "start_delimiter": r"\A|[^0-9A-Za-z_]",
            "end_delimiter": r"\z|[^0-9A-Za-z_]",
        }],
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

fn secretlint(pattern: &Pattern) -> String {
    let value = json!({
        "rules": [{
            "id": "@secretlint/secretlint-rule-pattern",
            "options": {
                "patterns": [{
                    "name": format!("apikeys {} secret key", pattern.vendor),
                    "patterns": [format!("/{}/", pattern.bounded())],
                }],
            },
        }],
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

fn detect_secrets(pattern: &Pattern) -> String {
    let class = {
        let mut chars = pattern.vendor.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase());
        format!(
            "Apikeys{}{}KeyDetector",
            first.map(String::from).unwrap_or_default(),
            chars.as_str()
        )
    };
    format!(
        r#""""detect-secrets plugin: apikeys secret keys ({keyword}...), checksum checked.

From `apikeys scanner-rules --format detect-secrets`. Use:
    detect-secrets scan --plugin this_file.py PATH
A match is reported only when its checksum holds: {CHECKSUM_NOTE}.
"""
import re
import zlib

from detect_secrets.plugins.base import RegexBasedDetector

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _checksum(signed):
    value = zlib.crc32(signed.encode("ascii"))
    digits = ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits = _ALPHABET[digit] + digits
    return digits


class {class}(RegexBasedDetector):
    """apikeys {vendor} secret keys whose checksum holds."""

    secret_type = "apikeys {vendor} secret key"
    # ASCII: \b and the classes mean what they mean in the key format.
    denylist = (re.compile(r"{regex}", re.ASCII),)

    def analyze_string(self, string):
        for match in super().analyze_string(string):
            if match[-6:] == _checksum(match[:-6]):
                yield match
"#,
        keyword = pattern.keyword(),
        vendor = pattern.vendor,
        regex = pattern.bounded(),
    )
}
