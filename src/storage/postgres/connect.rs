//! Connecting to the server as libpq users expect: the URL (without this
//! library's own `apikeys_*` parameters, read by [`split_url`]), a password
//! from the URL, `PGPASSWORD` or the password file (`PGPASSFILE`, else
//! `~/.pgpass`, ignored unless owner-only, as libpq does), and TLS through
//! rustls with the system's roots unless `sslmode=disable` or every host is
//! a Unix socket. rustls always verifies the server's certificate and name:
//! stricter than libpq's `require`, which accepts any certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};

use crate::error::Error;

/// How long a connection attempt may take unless the URL says otherwise
/// (`connect_timeout=`): an unreachable server is an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed server address, ready to connect (as often as needed).
#[derive(Clone)]
pub(crate) struct Server {
    config: Config,
    tls: bool,
    /// `sslrootcert=`: the certificates (PEM) to trust instead of the
    /// system's, as libpq reads it.
    root_certificates: Option<PathBuf>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the password.
        f.debug_struct("Server")
            .field("hosts", &self.config.get_hosts())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages and [`crate::KeyStore::path`].
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// Splits this library's parameters (`apikeys_<name>=<value>`) off the URL:
/// the server's client would refuse them as unknown options.
pub(crate) fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut ours = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.strip_prefix("apikeys_") {
            Some(option) => {
                let (name, value) = option.split_once('=').unwrap_or((option, ""));
                ours.push((name.to_string(), value.to_string()));
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, ours)
}

impl Server {
    /// Parses a `postgres://` URL (without `apikeys_*` parameters) and finds
    /// its password.
    pub(crate) fn parse(url: &str) -> Result<Server, Error> {
        // The client does not know libpq's `sslrootcert`: read it here.
        let (url, root_certificates) = take_parameter(url, "sslrootcert");
        let mut config: Config = url.parse().map_err(|error| {
            // The parser's message never contains the password.
            Error::InvalidArgument(format!("not a usable PostgreSQL URL: {error}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_password().is_none() {
            if let Some(password) = password_from_environment(&config) {
                config.password(password);
            }
        }
        let all_sockets = config
            .get_hosts()
            .iter()
            .all(|host| matches!(host, Host::Unix(_)));
        let tls = config.get_ssl_mode() != SslMode::Disable && !all_sockets;
        Ok(Server {
            config,
            tls,
            root_certificates: root_certificates.map(PathBuf::from),
        })
    }

    /// A new connection. Failing to reach the server is
    /// [`Error::DatabaseUnavailable`].
    pub(crate) fn connect(&self) -> Result<Client, Error> {
        let connected = if self.tls {
            self.config
                .connect(tls_connector(self.root_certificates.as_deref())?)
        } else {
            self.config.connect(NoTls)
        };
        connected.map_err(super::error::from_postgres)
    }
}

/// Removes `name=value` from the URL's query, returning the value.
fn take_parameter(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, found)) if key == name => {
                value = Some(found.to_string());
                false
            }
            _ => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, value)
}

fn tls_connector(
    root_certificates: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match root_certificates {
        Some(file) => {
            let certificates = CertificateDer::pem_file_iter(file).map_err(|error| {
                Error::InvalidArgument(format!("sslrootcert {}: {error}", file.display()))
            })?;
            for certificate in certificates {
                let certificate = certificate.map_err(|error| {
                    Error::InvalidArgument(format!("sslrootcert {}: {error}", file.display()))
                })?;
                roots.add(certificate).map_err(|error| {
                    Error::InvalidArgument(format!("sslrootcert {}: {error}", file.display()))
                })?;
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                // One the store cannot parse is skipped, as browsers do.
                let _ = roots.add(certificate);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Storage(format!("TLS set-up failed: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `PGPASSWORD`, else the password file's line for this server.
fn password_from_environment(config: &Config) -> Option<Vec<u8>> {
    if let Some(password) = std::env::var_os("PGPASSWORD") {
        return Some(password.into_encoded_bytes());
    }
    let file = match std::env::var_os("PGPASSFILE") {
        Some(file) => PathBuf::from(file),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        // libpq matches a socket connection against `localhost`.
        Some(Host::Unix(_)) | None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())?;
    let dbname = config.get_dbname().unwrap_or(&user).to_string();
    password_file_entry(&file, [&host, &port, &dbname, &user])
}

/// The password of the first line of a libpq password file matching
/// `host:port:database:user` (`*` matches anything, `\` escapes).
fn password_file_entry(file: &Path, wanted: [&str; 4]) -> Option<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // libpq ignores a file others may read: so do we.
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_password_line(line);
        if fields.len() != 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want);
        if matches {
            return Some(fields[4].clone().into_bytes());
        }
    }
    None
}

fn split_password_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => {
                if let Some(field) = fields.last_mut() {
                    field.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_librarys_parameters_are_split_off_the_url() {
        let (url, ours) =
            split_url("postgres://u@h/db?sslmode=disable&apikeys_bound_ms=250&apikeys_strict");
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(
            ours,
            vec![
                ("bound_ms".to_string(), "250".to_string()),
                ("strict".to_string(), String::new())
            ]
        );
        assert_eq!(
            split_url("postgres://h/db?apikeys_strict=1").0,
            "postgres://h/db"
        );
    }

    #[test]
    fn the_password_file_is_read_as_libpq_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:nope\nlocalhost:5432:app:alice:se\\:cret\n*:*:*:*:any\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let entry =
            |wanted| password_file_entry(&file, wanted).map(|p| String::from_utf8(p).unwrap());
        assert_eq!(
            entry(["localhost", "5432", "app", "alice"]).as_deref(),
            Some("se:cret")
        );
        assert_eq!(entry(["db", "6432", "x", "bob"]).as_deref(), Some("any"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(entry(["localhost", "5432", "app", "alice"]), None);
        }
    }
}
