"""One store per worker process: `apikeys.shared_store(path, ...)`.

A server's workers (gunicorn, uvicorn, uWSGI) are forked or spawned from a
master; a store handle must not cross a fork (the library refuses it with
UsedAfterFork). `shared_store` opens the store the first time a process asks
for it, keeps it for that process's life, hands the same handle to every
later caller asking with the same path and options, and closes it (flushing
the last usage counts) when the interpreter exits. A child forked from a
process that had stores opens its own: the inherited ones are forgotten at
the fork (os.register_at_fork) and, for forks that bypass Python, by a
process-id check.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Dict, Optional, Tuple, Union

from .store import KeyStore, Text

_log = logging.getLogger("apikeys")

_Key = Tuple[str, Optional[bytes], bool]

_lock = threading.Lock()
_stores: Dict[_Key, KeyStore] = {}
_owner = os.getpid()  # the process the stores in _stores were opened in


def _key(path: Union[str, bytes, "os.PathLike[str]"], pepper: Optional[Text], shared: bool) -> _Key:
    # The same file named two ways ("keys.redb", "./keys.redb") is one store;
    # a postgres:// URL is not a file name and stays as it is.
    name = os.fsdecode(os.fspath(path))
    absolute = name if name.startswith(("postgres://", "postgresql://")) else os.path.abspath(name)
    if pepper is None or isinstance(pepper, bytes):
        pepper_bytes = pepper
    elif isinstance(pepper, str):
        pepper_bytes = pepper.encode("utf-8", "surrogatepass")
    else:
        pepper_bytes = bytes(pepper)
    return absolute, pepper_bytes, shared


def shared_store(
    path: Union[str, bytes, "os.PathLike[str]"],
    pepper: Optional[Text] = None,
    shared: bool = True,
) -> KeyStore:
    """This process's store for `path` and these options, opened on first use.

    Shared mode is the default here: several worker processes of a server
    then open the file together and each sees the others' revocations on its
    next verify. Safe to call on every request (a dictionary lookup and a
    process-id check) and from several threads. Do not close the store it
    returns: it is closed with its usage flushed at interpreter exit, or by
    close_shared_stores().
    """
    key = _key(path, pepper, shared)
    if _owner == os.getpid():
        store = _stores.get(key)
        if store is not None and not store.closed:
            return store
    return _open(key)


def _open(key: _Key) -> KeyStore:
    with _lock:
        _forget_if_inherited()
        store = _stores.get(key)
        if store is None or store.closed:
            path, pepper, shared = key
            store = KeyStore(path, pepper=pepper, shared=shared)
            _stores[key] = store
        return store


class SharedStoreRef:
    """shared_store(path, pepper, shared) with the path resolved once: what
    the integrations ask on every request. The path is made absolute when
    the reference is made (the working directory then decides a relative
    one), so a later change of directory cannot point workers elsewhere."""

    __slots__ = ("_key",)

    def __init__(self, path: Union[str, bytes, "os.PathLike[str]"], pepper: Optional[Text] = None, shared: bool = True) -> None:
        if not isinstance(shared, bool):
            raise TypeError(f"shared must be a bool, not {type(shared).__name__}")
        self._key = _key(path, pepper, shared)

    @property
    def path(self) -> str:
        return self._key[0]

    def get(self) -> KeyStore:
        if _owner == os.getpid():
            store = _stores.get(self._key)
            if store is not None and store._handle is not None:
                return store
        return _open(self._key)


def close_shared_stores() -> None:
    """Closes every store shared_store opened in this process, flushing their
    usage counts. Runs at interpreter exit; call it from a hook that ends a
    worker without one (such as os._exit). Raises the first failure after
    trying every store."""
    with _lock:
        _forget_if_inherited()
        stores = list(_stores.values())
        _stores.clear()
    first_failure: Optional[BaseException] = None
    for store in stores:
        try:
            store.close()
        except Exception as failure:  # keep closing the others
            _log.error("apikeys: closing %s failed: %s", store.path, failure)
            if first_failure is None:
                first_failure = failure
    if first_failure is not None:
        raise first_failure


def _forget_if_inherited() -> None:
    """Called with _lock held (or in a fresh child): drops stores opened by
    a parent process. They are not closed here: closing a parent's handle
    in a child frees its memory and leaves the file alone, which their
    garbage collection does."""
    global _owner
    pid = os.getpid()
    if _owner != pid:
        _stores.clear()
        _owner = pid


def _after_fork_in_child() -> None:
    global _lock
    # The parent's lock may have been held by another thread at the fork.
    _lock = threading.Lock()
    _forget_if_inherited()


def _close_at_exit() -> None:
    try:
        close_shared_stores()
    except Exception:
        pass  # already logged, store by store


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
