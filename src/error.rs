//! Errors: [`Error`] for anything that goes wrong with the store or a call,
//! [`Rejection`] for the reasons a presented key is not accepted, and
//! [`VerifyError`], which is one or the other.

use core::fmt;
use std::path::PathBuf;

/// Why a presented key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a well-formed key: wrong syntax or checksum. Storage was not read.
    Malformed,
    /// Well-formed, but no such key in this store.
    NotFound,
    /// The key was revoked.
    Revoked,
    /// The key has expired (or its rotation grace period is over).
    Expired,
    /// The key is valid but lacks the scope the request needs.
    InsufficientScope,
}

impl Rejection {
    /// A short lowercase name: `malformed`, `not_found`, `revoked`,
    /// `expired`, `insufficient_scope`. Stable: used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::NotFound => "not_found",
            Rejection::Revoked => "revoked",
            Rejection::Expired => "expired",
            Rejection::InsufficientScope => "insufficient_scope",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Malformed => "the key is not well-formed",
            Rejection::NotFound => "no such key",
            Rejection::Revoked => "the key was revoked",
            Rejection::Expired => "the key has expired",
            Rejection::InsufficientScope => "the key lacks the required scope",
        })
    }
}

impl std::error::Error for Rejection {}

/// At most 64 characters of `text`, for messages that echo caller input: a
/// 1 MiB argument must not come back as a 1 MiB message.
pub(crate) fn excerpt(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Anything that goes wrong opening or using a store.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An argument was refused; the message says which and why.
    InvalidArgument(String),
    /// No key has this id.
    UnknownKey(String),
    /// Another process holds the store file.
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The store was created with another pepper.
    WrongPepper,
    /// The file is not an apikeys store, or its contents are damaged.
    Corrupted(String),
    /// The store was written by a newer version of this library.
    UnsupportedVersion(u32),
    /// This handle was opened before a `fork()`: open a new one in the child.
    UsedAfterFork,
    /// The handle was closed.
    Closed,
    /// The operating system's random generator failed.
    Random(String),
    /// This process may not open the store file (or create it in its
    /// directory); the detail names the file's owner and mode and this
    /// process's user.
    PermissionDenied {
        /// The file refused.
        path: PathBuf,
        /// Who owns it, its mode, who this process runs as, and what to do.
        detail: String,
    },
    /// An input/output error.
    Io(std::io::Error),
    /// Any other storage engine error.
    Storage(String),
    /// The database server (PostgreSQL) cannot be reached, or this machine
    /// could not confirm within its revocation bound that it is current.
    /// Neither an accept nor a rejection: a service answers 500, never 401.
    DatabaseUnavailable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Error::UnknownKey(id) => write!(f, "no key has the id {:?}", excerpt(id)),
            Error::Locked { path } => write!(
                f,
                "the store {} is open in another process; to share it between processes, open it in shared mode in every one of them",
                path.display()
            ),
            Error::WrongPepper => f.write_str(
                "the store was created with a different pepper; open it with the pepper it was created with",
            ),
            Error::Corrupted(why) => write!(f, "the store file is corrupted or not an apikeys store: {why}"),
            Error::UnsupportedVersion(version) => write!(
                f,
                "the store has format version {version}, newer than this library supports; upgrade apikeys"
            ),
            Error::UsedAfterFork => f.write_str(
                "this store handle was opened before fork(); open the store again in the child process",
            ),
            Error::Closed => f.write_str("the store handle is closed"),
            Error::Random(why) => write!(f, "the operating system's random generator failed: {why}"),
            Error::PermissionDenied { path, detail } => {
                write!(f, "permission denied opening {}: {detail}", path.display())
            }
            Error::Io(error) => write!(f, "input/output error: {error}"),
            Error::Storage(why) => write!(f, "storage error: {why}"),
            Error::DatabaseUnavailable(why) => write!(f, "the database is unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error)
    }
}

impl From<rand_core::Error> for Error {
    fn from(error: rand_core::Error) -> Self {
        Error::Random(error.to_string())
    }
}

/// The outcome of a failed verification: the key was rejected, or the store
/// could not answer.
///
/// An HTTP service answers 401 or 403 to a rejection and 500 to a failure:
/// see [`crate::http`].
#[derive(Debug)]
pub enum VerifyError {
    /// The key is not accepted, for this reason.
    Rejected(Rejection),
    /// The store failed; the key was neither accepted nor rejected.
    Failed(Error),
}

impl VerifyError {
    /// The rejection, if this is one.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            VerifyError::Rejected(rejection) => Some(*rejection),
            VerifyError::Failed(_) => None,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Rejected(rejection) => write!(f, "key rejected: {rejection}"),
            VerifyError::Failed(error) => write!(f, "verification failed: {error}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<Rejection> for VerifyError {
    fn from(rejection: Rejection) -> Self {
        VerifyError::Rejected(rejection)
    }
}

impl<E: Into<Error>> From<E> for VerifyError {
    fn from(error: E) -> Self {
        VerifyError::Failed(error.into())
    }
}
