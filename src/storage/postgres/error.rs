//! The client's errors as [`Error`]: a server that cannot be reached, a
//! connection lost, a server shutting down or refusing connections are
//! [`Error::DatabaseUnavailable`] (a 500, never a rejection); anything else
//! the server says is [`Error::Storage`] with its message.

use postgres::error::SqlState;

use crate::error::Error;

pub(super) fn from_postgres(error: postgres::Error) -> Error {
    if error.code().is_none() {
        // No answer from the server: a lost or refused connection (an I/O
        // error underneath) is an outage; anything else (a value that does
        // not fit a column) is this library's.
        let mut source = std::error::Error::source(&error);
        let mut io = false;
        // The causes too: "error performing TLS handshake" alone does not
        // say that the certificate's authority is unknown.
        let mut message = error.to_string();
        while let Some(cause) = source {
            io |= cause.is::<std::io::Error>();
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        if io || error.is_closed() || message.contains("TLS") {
            return Error::DatabaseUnavailable(message);
        }
        return Error::Storage(format!("PostgreSQL client: {error}"));
    }
    if let Some(code) = error.code() {
        let unavailable = code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::QUERY_CANCELED,
            ]
            .contains(code);
        if !unavailable {
            // The server's words: the client's own text is only "db error".
            // Not its DETAIL, which quotes the values of a refused row.
            return Error::Storage(match error.as_db_error() {
                Some(db) => format!("PostgreSQL: {}: {}", db.severity(), db.message()),
                None => format!("PostgreSQL: {error}"),
            });
        }
    }
    Error::DatabaseUnavailable(error.to_string())
}

impl From<postgres::Error> for Error {
    fn from(error: postgres::Error) -> Self {
        from_postgres(error)
    }
}

/// The error of a statement that writes a key's digest: the digest's
/// unique index refusing it is a repeated digest, as every backend says.
pub(super) fn of_digest_write(error: postgres::Error) -> Error {
    let repeated = error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some("apikeys_keys_digest_key")
    });
    if repeated {
        crate::storage::repeated_digest()
    } else {
        error.into()
    }
}
