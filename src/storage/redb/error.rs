//! How redb's errors become this crate's [`Error`]: the `From` impls that let
//! `?` work on every redb call, and the mapping of an open's failure (locked,
//! damaged, permission denied). The crate's error type names no engine type.

use std::io::ErrorKind;
use std::path::Path;

use redb::DatabaseError;

use crate::error::Error;

impl From<redb::StorageError> for Error {
    fn from(error: redb::StorageError) -> Self {
        match error {
            redb::StorageError::Io(error) => Error::Io(error),
            redb::StorageError::Corrupted(why) => Error::Corrupted(why),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for Error {
    fn from(error: redb::TransactionError) -> Self {
        match error {
            redb::TransactionError::Storage(error) => error.into(),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<redb::TableError> for Error {
    fn from(error: redb::TableError) -> Self {
        match error {
            redb::TableError::Storage(error) => error.into(),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for Error {
    fn from(error: redb::CommitError) -> Self {
        match error {
            redb::CommitError::Storage(error) => error.into(),
            other => Error::Storage(other.to_string()),
        }
    }
}

/// The error for a failed open of the file at `path`.
pub(super) fn open_error(error: DatabaseError, path: &Path) -> Error {
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Locked {
            path: path.to_path_buf(),
        },
        DatabaseError::UpgradeRequired(version) => Error::UnsupportedVersion(u32::from(version)),
        DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() == ErrorKind::InvalidData =>
        {
            Error::Corrupted(error.to_string())
        }
        DatabaseError::Storage(redb::StorageError::Io(error)) => {
            crate::ownership::io_error(error, path)
        }
        DatabaseError::Storage(error) => error.into(),
        other => Error::Storage(other.to_string()),
    }
}
