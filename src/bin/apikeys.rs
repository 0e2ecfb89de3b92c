//! `apikeys`: the admin command line of an apikeys store.
//!
//! Keys are read from standard input, never from arguments (arguments leak
//! into shell history and `ps`). The pepper comes from `APIKEYS_PEPPER` for
//! the same reason. Exit status: 0 success (for `verify`: the key is valid),
//! 1 the key was rejected, 2 any error.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use apikeys::{
    parse_duration, set_owner_and_mode, Clock, Error, Event, EventKind, GeneratedKey,
    ImportOptions, KeyInfo, KeyStore, ListFilter, Mode, NewKey, Rejection, Source, Status,
    StatusFilter, StoreOptions, SystemClock, Timestamp, VerifyError, ALLOWED_MODES, OWNER_ONLY,
};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use zeroize::Zeroizing;

// --- leaked keys (issue 14, part 4): `scan` and `scanner-rules` ---
#[path = "apikeys/rules.rs"]
mod rules;
#[path = "apikeys/scan.rs"]
mod scan;
// --- end leaked keys ---

#[derive(Parser)]
#[command(
    name = "apikeys",
    version,
    about = "Manage an apikeys store: generate, verify, revoke, rotate and list API keys"
)]
struct Cli {
    /// The store: a file, or a PostgreSQL URL (postgres://user@host/db).
    #[arg(
        long,
        env = "APIKEYS_DB",
        default_value = "./apikeys.redb",
        global = true
    )]
    db: PathBuf,
    /// Open in shared mode, alongside the worker processes of a running service.
    #[arg(long, global = true)]
    shared: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the store (or keep the existing one) and set its owner and mode,
    /// for workers that run as another user than the admin.
    Init {
        /// Give the file to this user (and group): www-data, www-data:www-data,
        /// :www-data. Needs root to give it to another user.
        #[arg(long)]
        owner: Option<String>,
        /// The file's mode: 600 (owner only, the default for a new store), 640
        /// or 660 (the owner's group too).
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u32>,
    },
    /// Generate keys and print them once.
    Generate {
        /// Name shown in listings, such as "Production".
        #[arg(long)]
        name: String,
        /// Environment tag in the key, such as prod, stag, dev.
        #[arg(long)]
        env: Option<String>,
        /// Granted scope (repeatable): contacts:read, contacts:*, *.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Owner of the key (an account or user id).
        #[arg(long)]
        owner: Option<String>,
        /// Lifetime, such as 90d or 12h.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
        /// How many keys to generate (in one transaction).
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Print one JSON object per key, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Verify a key read from standard input; exit 0 only if it is valid.
    Verify {
        /// A scope the key must grant.
        #[arg(long)]
        scope: Option<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id, or the key read from standard input.
    Revoke {
        /// The key's id.
        #[arg(required_unless_present = "key_stdin", conflicts_with = "key_stdin")]
        id: Option<String>,
        /// Read the key itself from standard input (a leaked key).
        #[arg(long)]
        key_stdin: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key by a new one; the old one keeps working for the grace period.
    Rotate {
        /// The key's id.
        id: String,
        /// How long the old key stays valid, such as 24h (never past its own expiry).
        #[arg(long, value_parser = parse_duration, default_value = "24h")]
        grace: Duration,
        /// Print the new key as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys with creation and last-use dates.
    List {
        /// Which keys.
        #[arg(long, value_enum, default_value_t = StatusArg::All)]
        status: StatusArg,
        /// Only keys not used for this long, such as 30d.
        #[arg(long, value_parser = parse_duration)]
        unused_since: Option<Duration>,
        /// Only keys of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show the event log: creations, revocations, rotations, uses of revoked or expired keys.
    Events {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    // --- leaked keys (issue 14, part 4) ---
    /// Find keys in files and directories: checksum checked offline, state
    /// read from the store without counting a use; exit 1 if a live key is found.
    Scan(scan::ScanArgs),
    /// Print rules that let a secret scanner (gitleaks, trufflehog, GitHub,
    /// secretlint, detect-secrets) find this deployment's keys.
    ScannerRules(rules::RulesArgs),
    // --- end leaked keys ---
    /// Copy every key, its usage and every event into an empty store, such as
    /// a file into PostgreSQL or back. Keys keep working with the same pepper.
    Migrate {
        /// The store to copy (a file or a postgres:// URL).
        #[arg(long)]
        from: PathBuf,
        /// The empty store to fill (created if it is a file that does not exist).
        #[arg(long)]
        to: PathBuf,
    },
    // Moving in (see `import` at the end of this file).
    /// Import the keys of another key store from its table, exported as CSV
    /// with a header line or as JSON lines, with its own column names.
    Import {
        /// The key store the table comes from.
        #[arg(long = "from", value_enum)]
        from: SourceArg,
        /// The exported table.
        file: PathBuf,
        /// Import the rows that fit and report the others (without it, a
        /// file with any bad row imports nothing).
        #[arg(long)]
        skip_bad_rows: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusArg {
    All,
    Active,
    Revoked,
    Expired,
}

/// How a command ended, short of an error.
enum Outcome {
    Done,
    Rejected,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{text:?} is not an octal mode such as 600 or 660"))?;
    if ALLOWED_MODES.contains(&mode) {
        Ok(mode)
    } else {
        Err(format!(
            "mode {text} would let other users read the store: use 600, 640 or 660"
        ))
    }
}

fn open(cli: &Cli) -> Result<KeyStore, Error> {
    open_with(cli, |options| options)
}

fn open_with(
    cli: &Cli,
    configure: impl FnOnce(StoreOptions) -> StoreOptions,
) -> Result<KeyStore, Error> {
    let mut options = StoreOptions::new().mode(if cli.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    });
    if let Some(pepper) = std::env::var_os("APIKEYS_PEPPER") {
        options = options.pepper(Zeroizing::new(pepper.into_encoded_bytes()).as_slice());
    }
    KeyStore::open(&cli.db, configure(options))
}

/// Reads one line from standard input, without its line ending. `None`
/// when the line is not UTF-8, which no key is.
fn read_key() -> Result<Option<Zeroizing<String>>, Error> {
    let mut line = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|error| {
            Error::InvalidArgument(format!("reading the key from standard input: {error}"))
        })?;
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    match String::from_utf8(core::mem::take(&mut *line)) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(error) => {
            Zeroizing::new(error.into_bytes());
            Ok(None)
        }
    }
}

fn run(cli: Cli) -> Result<Outcome, Error> {
    if let Command::Init { ref owner, mode } = cli.command {
        // Created with the mode asked for (the umask cannot narrow it), in
        // shared mode so that its index exists too (workers may not create
        // files in the store's directory), then both are given away; an
        // existing store keeps what it has unless told.
        open_with(&cli, |options| {
            options
                .file_mode(mode.unwrap_or(OWNER_ONLY))
                .mode(Mode::Shared)
        })?
        .close()?;
        set_owner_and_mode(&cli.db, owner.as_deref(), mode)?;
        println!("store ready: {}", cli.db.display());
        return Ok(Outcome::Done);
    }
    // --- leaked keys (issue 14, part 4) ---
    match &cli.command {
        Command::Scan(args) => return scan::run(&cli, args),
        Command::ScannerRules(args) => return rules::run(args),
        _ => {}
    }
    // --- end leaked keys ---
    if let Command::Migrate { ref from, ref to } = cli.command {
        let options = || {
            let mut options = StoreOptions::new().flush_interval(Duration::ZERO);
            if let Some(pepper) = std::env::var_os("APIKEYS_PEPPER") {
                options = options.pepper(Zeroizing::new(pepper.into_encoded_bytes()).as_slice());
            }
            options
        };
        let source = KeyStore::open(from, options())?;
        let destination = KeyStore::open(to, options())?;
        let copied = source.copy_to(&destination)?;
        destination.close()?;
        source.close()?;
        println!(
            "copied {} and {} from {} to {}",
            counted(copied.keys, "key", "keys"),
            counted(copied.events, "event", "events"),
            source_name(from),
            source_name(to)
        );
        return Ok(Outcome::Done);
    }
    let store = open(&cli)?;
    let outcome = match cli.command {
        Command::Init { .. } | Command::Migrate { .. } => unreachable!("handled above"),
        Command::Scan(_) | Command::ScannerRules(_) => unreachable!("handled above"),
        Command::Generate {
            ref name,
            ref env,
            ref scopes,
            ref owner,
            expires_in,
            count,
            json,
        } => {
            let mut request = NewKey::new(name.as_str()).scopes(scopes.iter().cloned());
            if let Some(env) = env {
                request = request.env(env.as_str());
            }
            if let Some(owner) = owner {
                request = request.owner(owner.as_str());
            }
            if let Some(after) = expires_in {
                request = request.expires_in(after);
            }
            if count == 0 {
                return Err(Error::InvalidArgument("--count must be at least 1".into()));
            }
            let keys = store.generate_batch(&vec![request; count])?;
            print_generated(&keys, json);
            Outcome::Done
        }
        Command::Verify { ref scope, json } => {
            let result = match (read_key()?, scope) {
                (None, _) => Err(VerifyError::Rejected(Rejection::Malformed)),
                (Some(key), Some(scope)) => store.verify_with_scope(&key, scope),
                (Some(key), None) => store.verify(&key),
            };
            match result {
                Ok(verified) => {
                    if json {
                        println!(
                            "{}",
                            json!({
                                "valid": true,
                                "id": verified.id(),
                                "name": verified.name(),
                                "env": verified.env(),
                                "owner": verified.owner(),
                                "scopes": verified.scopes(),
                                "expires_at": verified.expires_at().map(|t| t.to_string()),
                            })
                        );
                    } else {
                        println!("valid: {} ({})", verified.id(), verified.name());
                    }
                    Outcome::Done
                }
                Err(VerifyError::Rejected(rejection)) => {
                    if json {
                        println!(
                            "{}",
                            json!({ "valid": false, "reason": rejection.as_str() })
                        );
                    } else {
                        println!("rejected: {rejection}");
                    }
                    Outcome::Rejected
                }
                Err(VerifyError::Failed(error)) => return Err(error),
            }
        }
        Command::Revoke {
            ref id,
            key_stdin,
            json,
        } => {
            let (newly, label) = match id {
                Some(id) if !key_stdin => (store.revoke(id)?, id.clone()),
                _ => {
                    let key = read_key()?
                        .ok_or_else(|| Error::InvalidArgument("not a well-formed key".into()))?;
                    (store.revoke_key(&key)?, "the key".to_string())
                }
            };
            if json {
                println!("{}", json!({ "revoked": true, "newly_revoked": newly }));
            } else if newly {
                println!("revoked {label}");
            } else {
                println!("{label} was already revoked");
            }
            Outcome::Done
        }
        Command::Rotate {
            ref id,
            grace,
            json,
        } => {
            let key = store.rotate(id, grace)?;
            print_generated(core::slice::from_ref(&key), json);
            Outcome::Done
        }
        Command::List {
            status,
            unused_since,
            ref owner,
            json,
        } => {
            let filter = ListFilter {
                status: match status {
                    StatusArg::All => StatusFilter::All,
                    StatusArg::Active => StatusFilter::Only(Status::Active),
                    StatusArg::Revoked => StatusFilter::Only(Status::Revoked),
                    StatusArg::Expired => StatusFilter::Only(Status::Expired),
                },
                unused_since: unused_since.map(|age| SystemClock.now().before(age)),
                owner: owner.clone(),
            };
            let keys = store.list(&filter)?;
            if json {
                let array: Vec<Value> = keys.iter().map(info_json).collect();
                println!("{}", Value::Array(array));
            } else {
                print_table(&keys);
            }
            Outcome::Done
        }
        Command::Events { after, limit, json } => {
            let events = store.events(after, limit)?;
            if json {
                let array: Vec<Value> = events.iter().map(event_json).collect();
                println!("{}", Value::Array(array));
            } else {
                for event in &events {
                    println!("{}", event_line(event));
                }
            }
            Outcome::Done
        }
        Command::Import {
            from,
            ref file,
            skip_bad_rows,
            json,
        } => import(&store, from, file, skip_bad_rows, json)?,
    };
    store.close()?;
    Ok(outcome)
}

/// A store's name for messages: a URL without its password.
fn source_name(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    match (text.split_once("://"), text.find('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (credentials, host) = rest.split_once('@').unwrap_or(("", rest));
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => text,
    }
}

fn opt_time(time: Option<Timestamp>) -> Value {
    time.map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn info_json(info: &KeyInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "hint": info.hint,
        "env": info.env,
        "scopes": info.scopes,
        "owner": info.owner,
        "status": info.status.as_str(),
        "created_at": info.created_at.to_string(),
        "expires_at": opt_time(info.expires_at),
        "revoked_at": opt_time(info.revoked_at),
        "last_used": opt_time(info.last_used),
        "use_count": info.use_count,
        "rejected_count": info.rejected_count,
        "last_rejected": opt_time(info.last_rejected),
        "rotated_from": info.rotated_from,
        "rotated_to": info.rotated_to,
        "origin": info.origin.map(Source::as_str),
        "source_id": info.source_id,
        "legacy_digest": info.legacy_digest,
    })
}

fn print_generated(keys: &[GeneratedKey], json: bool) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for key in keys {
            let mut object = info_json(&key.info);
            object["key"] = Value::String(key.secret.expose_secret().to_string());
            let _ = writeln!(out, "{object}");
        }
    } else {
        for key in keys {
            let _ = writeln!(
                out,
                "{}\tid={} name={:?}{}",
                key.secret.expose_secret(),
                key.info.id,
                key.info.name,
                key.info
                    .expires_at
                    .map(|t| format!(" expires={t}"))
                    .unwrap_or_default()
            );
        }
    }
    let _ = out.flush();
    eprintln!(
        "warning: copy the key{} now: {} not stored and will not be shown again.",
        if keys.len() == 1 { "" } else { "s" },
        if keys.len() == 1 { "it is" } else { "they are" }
    );
}

/// `YYYY-MM-DD` of a timestamp, or `never`.
fn day(time: Option<Timestamp>) -> String {
    match time {
        Some(t) => t.to_string().chars().take(10).collect(),
        None => "never".into(),
    }
}

fn print_table(keys: &[KeyInfo]) {
    let rows: Vec<[String; 10]> = keys
        .iter()
        .map(|k| {
            [
                k.name.clone(),
                day(Some(k.created_at)),
                day(k.last_used),
                k.status.as_str().to_string(),
                k.id.clone(),
                k.hint.clone(),
                k.env.clone().unwrap_or_else(|| "-".into()),
                if k.scopes.is_empty() {
                    "-".into()
                } else {
                    k.scopes.join(",")
                },
                k.use_count.to_string(),
                origin_cell(k),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "CREATED",
        "LAST USED",
        "STATUS",
        "ID",
        "HINT",
        "ENV",
        "SCOPES",
        "USES",
        "ORIGIN",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
}

fn event_json(event: &Event) -> Value {
    let mut object = json!({
        "sequence": event.sequence,
        "at": event.at.to_string(),
        "key_id": event.key_id,
        "kind": event.kind.as_str(),
    });
    match &event.kind {
        EventKind::Rotated { successor } => object["successor"] = json!(successor),
        EventKind::Imported { source } => object["from"] = json!(source.as_str()),
        EventKind::RevokedKeyUsed { count } | EventKind::ExpiredKeyUsed { count } => {
            object["count"] = json!(count)
        }
        EventKind::Leaked { location } => object["location"] = json!(location),
        _ => {}
    }
    object
}

fn event_line(event: &Event) -> String {
    let detail = match &event.kind {
        EventKind::Rotated { successor } => format!(" successor={successor}"),
        EventKind::Imported { source } => format!(" from={}", source.as_str()),
        EventKind::RevokedKeyUsed { count } | EventKind::ExpiredKeyUsed { count } => {
            format!(" count={count}")
        }
        EventKind::Leaked { location } => format!(" location={location}"),
        _ => String::new(),
    };
    format!(
        "{}\t{}\t{}\t{}{}",
        event.sequence,
        event.at,
        event.key_id,
        event.kind.as_str(),
        detail
    )
}

// Moving in: `apikeys import` and the listing's origin column.

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    Sanctum,
    DrfApiKey,
    Unkey,
}

impl SourceArg {
    fn source(self) -> Source {
        match self {
            SourceArg::Sanctum => Source::Sanctum,
            SourceArg::DrfApiKey => Source::DrfApiKey,
            SourceArg::Unkey => Source::Unkey,
        }
    }
}

/// `apikeys import`: exit 0 when every row was imported (or had been), 1
/// when rows did not fit (imported without them with `--skip-bad-rows`,
/// else nothing imported), 2 for a file that is not such a table.
fn import(
    store: &KeyStore,
    from: SourceArg,
    file: &std::path::Path,
    skip_bad_rows: bool,
    json: bool,
) -> Result<Outcome, Error> {
    let options = ImportOptions::new().skip_bad_rows(skip_bad_rows);
    let report = store.import_file(from.source(), file, &options)?;
    if json {
        let bad: Vec<Value> = report
            .bad_rows
            .iter()
            .map(|bad| json!({ "line": bad.line, "reason": bad.reason }))
            .collect();
        println!(
            "{}",
            json!({
                "imported": report.imported,
                "already_imported": report.already_imported,
                "committed": report.committed,
                "bad_rows": bad,
            })
        );
    } else {
        for bad in &report.bad_rows {
            eprintln!("{}:{}: {}", file.display(), bad.line, bad.reason);
        }
        if report.committed {
            println!(
                "imported {} from {} ({} already imported, {} skipped)",
                counted(report.imported as u64, "key", "keys"),
                from.source().as_str(),
                report.already_imported,
                counted(report.bad_rows.len() as u64, "row", "rows")
            );
        } else {
            println!(
                "nothing imported: {} not fit (--skip-bad-rows imports the others)",
                match report.bad_rows.len() {
                    1 => "1 row does".to_string(),
                    n => format!("{n} rows do"),
                }
            );
        }
    }
    Ok(if report.bad_rows.is_empty() {
        Outcome::Done
    } else {
        Outcome::Rejected
    })
}

/// The listing's origin: `-` for a key made here, the source for an
/// imported one, with the digest it is still verified against in brackets.
fn origin_cell(info: &KeyInfo) -> String {
    match (info.origin, info.legacy_digest) {
        (None, _) => "-".into(),
        (Some(source), None) => source.as_str().into(),
        (Some(source), Some(digest)) => format!("{}[{digest}]", source.as_str()),
    }
}

/// `1 key`, `2 keys`: a count and its noun.
fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
