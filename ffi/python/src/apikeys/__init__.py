"""apikeys for Python: generate, verify, revoke and list API keys.

A thin ctypes wrapper over libapikeys (the C ABI of the Rust crate). The
library is found through the APIKEYS_LIB environment variable, else next to
this package, else in the Cargo workspace's target/release, else by the
system loader.
"""

from .errors import (
    ApiKeysError,
    Forbidden,
    InvalidArgument,
    NativePanic,
    RandomFailure,
    StorageError,
    StoreClosed,
    StoreCorrupted,
    StoreLocked,
    Unauthorized,
    UnknownKey,
    UnsupportedVersion,
    UsedAfterFork,
    WrongPepper,
)
from ._native import LibraryNotFound
from .store import (
    GeneratedKey,
    KeyInfo,
    KeyStore,
    VerifiedKey,
    http_answer,
    is_well_formed,
    version,
)

__all__ = [
    "ApiKeysError",
    "Forbidden",
    "GeneratedKey",
    "InvalidArgument",
    "KeyInfo",
    "KeyStore",
    "LibraryNotFound",
    "NativePanic",
    "RandomFailure",
    "StorageError",
    "StoreClosed",
    "StoreCorrupted",
    "StoreLocked",
    "Unauthorized",
    "UnknownKey",
    "UnsupportedVersion",
    "UsedAfterFork",
    "VerifiedKey",
    "WrongPepper",
    "http_answer",
    "is_well_formed",
    "version",
]
