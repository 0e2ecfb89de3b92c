"""apikeys for Python: generate, verify, revoke and list API keys.

A thin ctypes wrapper over libapikeys (the C ABI of the Rust crate). The
library is found through the APIKEYS_LIB environment variable, else next to
this package (where the wheel puts it), else in the Cargo workspace's
target/release, else by the system loader.

Framework integrations, each imported on its own so that none pulls in a
framework the application does not use: apikeys.wsgi, apikeys.asgi,
apikeys.flask, apikeys.fastapi, apikeys.django (settings, manage.py
apikeys) and apikeys.drf. A server worker gets its store from
apikeys.shared_store(path, ...): opened once per process, after the fork.
"""

from .errors import (
    ApiKeysError,
    Forbidden,
    InvalidArgument,
    NativePanic,
    PermissionDenied,
    RandomFailure,
    StorageError,
    DatabaseUnavailable,
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
    HttpAnswer,
    KeyInfo,
    KeyStore,
    VerifiedKey,
    http_answer,
    is_well_formed,
    scope_covers,
    scopes_cover,
    version,
)
from .process import close_shared_stores, shared_store

__all__ = [
    "ApiKeysError",
    "Forbidden",
    "GeneratedKey",
    "HttpAnswer",
    "InvalidArgument",
    "KeyInfo",
    "KeyStore",
    "LibraryNotFound",
    "NativePanic",
    "PermissionDenied",
    "RandomFailure",
    "StorageError",
    "DatabaseUnavailable",
    "StoreClosed",
    "StoreCorrupted",
    "StoreLocked",
    "Unauthorized",
    "UnknownKey",
    "UnsupportedVersion",
    "UsedAfterFork",
    "VerifiedKey",
    "WrongPepper",
    "close_shared_stores",
    "http_answer",
    "is_well_formed",
    "scope_covers",
    "scopes_cover",
    "shared_store",
    "version",
]
