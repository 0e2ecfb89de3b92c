"""Exceptions: one class per kind of failure, each carrying the C status.

`Unauthorized` (401) and `Forbidden` (403) are what a request handler
catches; everything else is the server's problem (500) or a caller's bug.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from . import _native as n


class ApiKeysError(Exception):
    """Base of every error this package raises.

    `status` is the C ABI status number (None for errors found by this
    wrapper before calling the library, such as a closed store) and
    `detail` the library's message for this failure.
    """

    status: Optional[int]
    detail: str

    def __init__(self, detail: str, status: Optional[int] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Unauthorized(ApiKeysError):
    """The key is missing, malformed, unknown, revoked or expired (HTTP 401).

    `reason` says which, for logs: "malformed", "not_found", "revoked",
    "expired" or "bad_header". Never tell the client: the 401 body is the
    same for all of them on purpose.
    """

    reason: str

    def __init__(self, detail: str, status: Optional[int] = None) -> None:
        super().__init__(detail, status)
        self.reason = _REASONS.get(status if status is not None else -1, "malformed")


class Forbidden(ApiKeysError):
    """A valid key that lacks the required scope (HTTP 403)."""


class InvalidArgument(ApiKeysError, ValueError):
    """A bad argument: empty or oversize name, bad scope, invalid UTF-8..."""


class UnknownKey(ApiKeysError, LookupError):
    """No key has this id (revoke, rotate) or this secret (revoke by key)."""


class StoreClosed(ApiKeysError):
    """The store was closed; open a new one."""


class StoreLocked(ApiKeysError):
    """Another process holds the file in exclusive mode: use shared mode."""


class StoreCorrupted(ApiKeysError):
    """Not an apikeys store, or a damaged one."""


class WrongPepper(ApiKeysError):
    """The store was created with another pepper."""


class UsedAfterFork(ApiKeysError):
    """A handle opened before fork() was used in the child: open one per worker."""


class StorageError(ApiKeysError):
    """Input/output or storage engine failure."""


class DatabaseUnavailable(StorageError):
    """The PostgreSQL server cannot be reached, or this machine could not
    confirm within its revocation bound that its keys are current. Never a
    verdict on the key: answer 500, not 401."""


class UnsupportedVersion(ApiKeysError):
    """The store was written by a newer apikeys."""


class RandomFailure(ApiKeysError):
    """The operating system's random generator failed."""


class PermissionDenied(ApiKeysError, PermissionError):
    """This process's user may not open the store file. The detail names the
    file, its owner, group and mode, and the user this process runs as: see
    "Store ownership" in the README for the set-ups that work."""


class NativePanic(ApiKeysError):
    """A bug in libapikeys: it panicked, caught it, and reported it."""


_REASONS: Dict[int, str] = {
    n.MALFORMED: "malformed",
    n.NOT_FOUND: "not_found",
    n.REVOKED: "revoked",
    n.EXPIRED: "expired",
    n.BAD_HEADER: "bad_header",
}

_BY_STATUS: Dict[int, Type[ApiKeysError]] = {
    n.NULL_ARGUMENT: InvalidArgument,
    n.INVALID_ARGUMENT: InvalidArgument,
    n.UNKNOWN_KEY: UnknownKey,
    n.MALFORMED: Unauthorized,
    n.NOT_FOUND: Unauthorized,
    n.REVOKED: Unauthorized,
    n.EXPIRED: Unauthorized,
    n.BAD_HEADER: Unauthorized,
    n.INSUFFICIENT_SCOPE: Forbidden,
    n.LOCKED: StoreLocked,
    n.CORRUPTED: StoreCorrupted,
    n.WRONG_PEPPER: WrongPepper,
    n.USED_AFTER_FORK: UsedAfterFork,
    n.IO: StorageError,
    n.STORAGE: StorageError,
    n.UNSUPPORTED_VERSION: UnsupportedVersion,
    n.RANDOM: RandomFailure,
    n.PERMISSION_DENIED: PermissionDenied,
    n.DATABASE_UNAVAILABLE: DatabaseUnavailable,
    n.PANIC: NativePanic,
}


def error_for(status: int) -> ApiKeysError:
    """The exception for a failed call; read right after it, on the same
    thread, because the library's last error is per thread."""
    library = n.lib()
    detail_bytes = library.apikeys_last_error() or b""
    detail = detail_bytes.decode("utf-8", "replace")
    if not detail:
        detail = (library.apikeys_status_str(status) or b"").decode("utf-8", "replace")
    cls = _BY_STATUS.get(status, ApiKeysError)
    return cls(detail, status)
