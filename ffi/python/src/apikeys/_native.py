"""Loads libapikeys and declares the C ABI of include/apikeys.h for ctypes.

Nothing here is public: `apikeys.KeyStore` is the API. Every prototype is
declared, so ctypes checks argument types instead of guessing them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

ENV_VAR = "APIKEYS_LIB"

if sys.platform == "darwin":
    LIBRARY_FILE = "libapikeys.dylib"
elif sys.platform == "win32":
    LIBRARY_FILE = "apikeys.dll"
else:
    LIBRARY_FILE = "libapikeys.so"

# Status numbers, copied from include/apikeys.h (tests/test_header.py checks
# every number against the header): stable, never reused.
OK = 0
NULL_ARGUMENT = 1
INVALID_ARGUMENT = 2
UNKNOWN_KEY = 3
MALFORMED = 100
NOT_FOUND = 101
REVOKED = 102
EXPIRED = 103
INSUFFICIENT_SCOPE = 104
BAD_HEADER = 105
LOCKED = 200
CORRUPTED = 201
WRONG_PEPPER = 202
USED_AFTER_FORK = 203
IO = 204
STORAGE = 205
UNSUPPORTED_VERSION = 206
RANDOM = 207
PERMISSION_DENIED = 208
DATABASE_UNAVAILABLE = 209
PANIC = 900

OPEN_EXCLUSIVE = 0
OPEN_SHARED = 1
#: The store kept in this process's memory, for test suites (not exposed by KeyStore yet).
OPEN_IN_MEMORY = 2

# APIKEYS_ID_SIZE: the id buffer of apikeys_key_check (16 characters and a NUL).
ID_SIZE = 17
# APIKEYS_KEY_SCAN_MAX: apikeys_key_check reads a key up to this many bytes.
KEY_SCAN_MAX = 256
# APIKEYS_HEADER_SCAN_MAX: apikeys_header_check reads a header up to this many bytes.
HEADER_SCAN_MAX = 8192
IdBuffer = ctypes.c_char * ID_SIZE

LIST_ALL = 0
LIST_ACTIVE = 1
LIST_REVOKED = 2
LIST_EXPIRED = 3

KEY_ACTIVE = 0
KEY_REVOKED = 1
KEY_EXPIRED = 2


class KeyInfoStruct(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("hint", ctypes.c_char_p),
        ("env", ctypes.c_char_p),
        ("scopes", ctypes.c_char_p),
        ("owner", ctypes.c_char_p),
        ("rotated_from", ctypes.c_char_p),
        ("rotated_to", ctypes.c_char_p),
        ("created_at", ctypes.c_int64),
        ("expires_at", ctypes.c_int64),
        ("revoked_at", ctypes.c_int64),
        ("last_used", ctypes.c_int64),
        ("use_count", ctypes.c_uint64),
        ("rejected_count", ctypes.c_uint64),
        ("status", ctypes.c_uint32),
        ("origin", ctypes.c_char_p),
        ("legacy_digest", ctypes.c_char_p),
    ]


class VerifiedInfoStruct(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("env", ctypes.c_char_p),
        ("scopes", ctypes.c_char_p),
        ("owner", ctypes.c_char_p),
        ("expires_at", ctypes.c_int64),
    ]


# Opaque handles: only ever held as pointers.
Store_p = ctypes.c_void_p
Key_p = ctypes.c_void_p
Verified_p = ctypes.c_void_p
List_p = ctypes.c_void_p

_status = ctypes.c_uint32
_str = ctypes.c_char_p  # input strings go with an explicit length
_len = ctypes.c_size_t
_P = ctypes.POINTER

_PROTOTYPES = {
    "apikeys_version": (ctypes.c_char_p, []),
    "apikeys_status_str": (ctypes.c_char_p, [_status]),
    "apikeys_last_error": (ctypes.c_char_p, []),
    "apikeys_is_well_formed": (_status, [_str, _len]),
    "apikeys_store_open": (
        _status,
        [_str, _len, _str, _len, ctypes.c_uint32, _P(Store_p)],
    ),
    "apikeys_store_flush": (_status, [Store_p]),
    "apikeys_store_close": (_status, [Store_p]),
    "apikeys_key_generate": (
        _status,
        [Store_p, _str, _len, _str, _len, _str, _len, _str, _len, ctypes.c_int64, _P(Key_p)],
    ),
    "apikeys_key_secret": (_status, [Key_p, _P(ctypes.c_void_p), _P(_len)]),
    "apikeys_key_info": (_status, [Key_p, _P(_P(KeyInfoStruct))]),
    "apikeys_key_free": (_status, [Key_p]),
    "apikeys_key_verify": (_status, [Store_p, _str, _len, _str, _len, _P(Verified_p)]),
    "apikeys_key_check": (_status, [Store_p, _str, _str, _P(IdBuffer)]),
    "apikeys_key_validate": (_status, [Store_p, _str]),
    "apikeys_header_verify": (_status, [Store_p, _str, _len, _str, _len, _P(Verified_p)]),
    "apikeys_header_check": (_status, [Store_p, _str, _str, _P(IdBuffer)]),
    "apikeys_verified_info": (_status, [Verified_p, _P(_P(VerifiedInfoStruct))]),
    "apikeys_verified_free": (_status, [Verified_p]),
    "apikeys_status_http": (_status, [_status, _P(ctypes.c_uint16), _P(ctypes.c_char_p)]),
    "apikeys_key_revoke": (_status, [Store_p, _str, _len, _P(ctypes.c_bool)]),
    "apikeys_key_revoke_secret": (_status, [Store_p, _str, _len, _P(ctypes.c_bool)]),
    "apikeys_key_rotate": (_status, [Store_p, _str, _len, ctypes.c_uint64, _P(Key_p)]),
    "apikeys_key_list": (_status, [Store_p, ctypes.c_uint32, ctypes.c_int64, _P(List_p)]),
    "apikeys_list_len": (_status, [List_p, _P(_len)]),
    "apikeys_list_get": (_status, [List_p, _len, _P(_P(KeyInfoStruct))]),
    "apikeys_list_free": (_status, [List_p]),
}


class LibraryNotFound(OSError):
    """libapikeys could not be loaded; the message lists where it looked."""


def _repo_candidates(start: Path) -> List[Path]:
    """target/release of the Cargo workspace this package sits in, if any."""
    found = []
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    if target_dir:
        found.append(Path(target_dir) / "release" / LIBRARY_FILE)
    for parent in start.parents:
        # A workspace root has both a Cargo.toml and the crate's ffi/ folder.
        if (parent / "Cargo.toml").is_file() and (parent / "ffi").is_dir():
            found.append(parent / "target" / "release" / LIBRARY_FILE)
            break
    return found


def candidate_paths() -> List[str]:
    """Where the library is looked for, in order (APIKEYS_LIB decides alone)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return [explicit]
    here = Path(__file__).resolve()
    paths = [str(here.parent / LIBRARY_FILE)]
    paths += [str(p) for p in _repo_candidates(here)]
    paths.append(LIBRARY_FILE)  # the system loader: LD_LIBRARY_PATH, ld.so.cache
    return paths


def load() -> ctypes.CDLL:
    explicit = os.environ.get(ENV_VAR)
    tried = []
    for path in candidate_paths():
        is_bare_name = os.sep not in path
        if not is_bare_name and not os.path.exists(path):
            tried.append(f"{path} (no such file)")
            continue
        try:
            library = ctypes.CDLL(path)
        except OSError as error:
            tried.append(f"{path} ({error})")
            continue
        _declare(library)
        return library
    if explicit:
        hint = f"{ENV_VAR}={explicit!r} does not name a loadable libapikeys"
    else:
        hint = (
            f"set {ENV_VAR} to the path of {LIBRARY_FILE} "
            "(build it with `cargo build -p apikeys-ffi --release`)"
        )
    raise LibraryNotFound(f"cannot load libapikeys: {hint}; tried: " + "; ".join(tried))


def _declare(library: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            function = getattr(library, name)
        except AttributeError:
            raise LibraryNotFound(
                f"{library._name} does not export {name}: not a libapikeys matching this package"
            ) from None
        function.restype = restype
        function.argtypes = argtypes


def hot_function(library: ctypes.CDLL, name: str, hold_gil: bool) -> Callable[..., int]:
    """apikeys_key_check, apikeys_key_validate or apikeys_header_check for
    KeyStore's hot path, without argtypes.

    Measured (ffi/README.md, "Host call cost"): ctypes converts each
    declared argument through its type's from_param, 20-50 ns apiece, and
    releasing and retaking the GIL around a call costs about 50 ns more. The
    callers pass exactly the C types (a c_void_p, bytes, bytes or None, an
    IdBuffer or None), which ctypes passes as they are without argtypes.

    hold_gil=True (ctypes.PyDLL) keeps the GIL during the call: for
    exclusive stores, whose verify is an in-memory lookup of well under a
    microsecond that never waits on a disk write (the first verify of a key
    in a process reads its record once). Shared stores, and stores on
    PostgreSQL (whose verify may wait on the database), release the GIL,
    like every other call of this package.
    """
    loader = ctypes.PyDLL if hold_gil else ctypes.CDLL
    # The same file, already loaded: dlopen hands back the same library.
    function: Callable[..., int] = getattr(loader(library._name), name)
    function.restype = _status  # type: ignore[attr-defined]
    return function


_library: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library; loaded on first use so importing never fails."""
    global _library
    if _library is None:
        _library = load()
    return _library
