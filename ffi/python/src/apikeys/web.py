"""What every framework integration shares: where the store comes from, and
the one check a request goes through.

`Authenticator.check(header, scope)` takes the `Authorization` header's value
and the scope the route needs, and returns either the VerifiedKey or the
HttpAnswer to send instead: 401 (missing, malformed, unknown, revoked or
expired key: one body, `WWW-Authenticate: Bearer`), 403 (a valid key without
the scope) or 500 (the store failed: logged, never a 401, so an outage does
not look like a wave of bad keys). The framework modules only read the
header, attach the key where their users look for it, and turn the answer
into their response type.
"""

from __future__ import annotations

import logging
import os
from time import monotonic
from typing import Callable, Dict, Mapping, Optional, Tuple, Union

from . import _native as n
from .errors import ApiKeysError, Forbidden, Unauthorized
from .process import SharedStoreRef
from .store import HttpAnswer, KeyStore, Text, VerifiedKey, http_answer

_log = logging.getLogger("apikeys")


class _Public:
    """The scope of a route that needs no key (see `PUBLIC`)."""

    def __repr__(self) -> str:
        return "apikeys.PUBLIC"


#: A route "scope" meaning: no key needed, the request passes untouched.
PUBLIC = _Public()

StoreLike = Union[KeyStore, Callable[[], KeyStore]]
Path = Union[str, bytes, "os.PathLike[str]"]


class StoreSource:
    """Where an integration finds its store, asked on every request.

    Either `path` (with `pepper`, `shared`): the process's store from
    `apikeys.shared_store`, opened on the first request each worker serves,
    after the fork; or `store`: a KeyStore, or a function returning one, for
    a caller that manages its own handles.
    """

    def __init__(
        self,
        path: Optional[Path] = None,
        *,
        pepper: Optional[Text] = None,
        shared: bool = True,
        store: Optional[StoreLike] = None,
    ) -> None:
        if (path is None) == (store is None):
            raise TypeError("give either path= (opened once per worker process) or store=")
        #: The store to verify a request with: a function, called per request.
        self.get: Callable[[], KeyStore]
        if path is not None:
            self.get = SharedStoreRef(path, pepper=pepper, shared=shared).get
        elif isinstance(store, KeyStore):
            given = store
            self.get = lambda: given
        elif callable(store):
            self.get = store
        else:
            raise TypeError(f"store must be a KeyStore or a function returning one, not {type(store).__name__}")



#: How long the details of a key seen by a worker are reused (seconds).
DETAILS_SECONDS = 10.0
#: Keys whose details a worker keeps per store; then it starts over.
DETAILS_KEYS = 4096


class Authenticator:
    """Verifies the `Authorization` header of a request against a store.

    The hot path. A key's first request in a worker is verified with every
    detail (`verify_header`: three native calls and a handle to read); the
    details (id, name, env, scopes, owner, expiry) are then kept for
    DETAILS_SECONDS, and the key's next requests are verified with
    `apikeys_header_check`, one native call that reads the header by the
    core's rules and returns only the id: the same checks (revocation,
    expiry, scope, usage counted once), against the store's latest commit on
    every request. Callgrind, shared mode, one check from Python: 16.2k
    instructions, of which the native call is 7k (the library's verify and
    ctypes' handling of four arguments); reading the header in Python
    instead, and then `apikeys_key_check`, cost 17.6k, and `verify_header`
    on every request 37k.

    The kept details are found by the header's hash (a worker-local hint,
    never the header itself) and used only when the library answers with
    the same key id. Name, env, scopes and owner never change in the core;
    the expiry can (a rotation shortens the old key's), so `expires_at` may
    be up to DETAILS_SECONDS old, while the expiry itself is always
    enforced by the library.
    """

    def __init__(self, source: StoreSource) -> None:
        self.source = source
        self._details: Dict[int, Tuple[VerifiedKey, bytes, float]] = {}
        self._details_store: Optional[KeyStore] = None

    def check(self, header: Optional[Text], scope: Optional[str] = None) -> Union[VerifiedKey, HttpAnswer]:
        """The accepted key, or the answer to send instead (401/403/500)."""
        try:
            store = self.source.get()
            if self._details_store is not store:  # a new store (or worker): nothing known of it
                self._details = {}
                self._details_store = store
            kind = type(header)
            if kind is not str and kind is not bytes:
                return store.verify_header(header, scope=scope)  # None, or a wrong type refused there
            hint = hash(header)
            known = self._details.get(hint)
            if known is not None and known[2] > monotonic():
                key_id = store._check_header(header, scope)
                if key_id == known[1]:
                    return known[0]
                # None (a NUL to judge whole), two headers of one hash or a
                # key that changed: read the details once more (the use is
                # counted twice in the last two cases, rarer than one in 2**60).
            verified = store.verify_header(header, scope=scope)
            if len(self._details) >= DETAILS_KEYS:
                self._details = {}
            self._details[hint] = (verified, verified.id.encode(), monotonic() + DETAILS_SECONDS)
            return verified
        except (Unauthorized, Forbidden) as refused:
            return http_answer(refused)
        except ApiKeysError as failure:
            return internal_error(failure)
        except OSError as failure:  # LibraryNotFound: the deployment is broken
            return internal_error(failure)


def internal_error(failure: BaseException) -> HttpAnswer:
    """The 500 answer for a store that could not answer, logged with why."""
    _log.error("apikeys: cannot verify the request's key: %s", failure)
    return http_answer(n.PANIC if not isinstance(failure, ApiKeysError) else failure)


def unauthorized() -> HttpAnswer:
    """The 401 answer (missing or refused key)."""
    return http_answer(n.BAD_HEADER)


def forbidden() -> HttpAnswer:
    """The 403 answer (a valid key without the required scope)."""
    return http_answer(n.INSUFFICIENT_SCOPE)


ScopeRule = Union[None, str, _Public]


class RouteScopes:
    """The scope each request needs, for the WSGI and ASGI middleware.

    `rules` is one of:
    - None: any valid key, no scope;
    - a scope string ("contacts:read", matched with the core's wildcards);
    - PUBLIC: no key;
    - a mapping of path prefixes to any of those, the longest matching
      prefix winning (`{"/health": PUBLIC, "/contacts": "contacts:read"}`);
      a path no prefix matches needs `default`;
    - a function of the request (WSGI environ or ASGI scope) returning any
      of those, for rules on methods or anything else.
    """

    def __init__(self, rules: object = None, default: ScopeRule = None) -> None:
        self._function: Optional[Callable[[object], ScopeRule]] = None
        self._fixed: ScopeRule = None
        self._prefixes: Tuple[Tuple[str, ScopeRule], ...] = ()
        self._default = _checked_rule(default, "default")
        if callable(rules):
            self._function = rules  # type: ignore[assignment]
        elif isinstance(rules, Mapping):
            items = [(str(prefix), _checked_rule(rule, f"scope for {prefix!r}")) for prefix, rule in rules.items()]
            self._prefixes = tuple(sorted(items, key=lambda item: len(item[0]), reverse=True))
        else:
            self._fixed = _checked_rule(rules, "scope")
        self._by_path = isinstance(rules, Mapping)

    def for_request(self, request: object, path: str) -> ScopeRule:
        if self._function is not None:
            return _checked_rule(self._function(request), "the scope function's result")
        if self._by_path:
            for prefix, rule in self._prefixes:
                if path.startswith(prefix):
                    return rule
            return self._default
        return self._fixed


def _checked_rule(rule: object, what: str) -> ScopeRule:
    if rule is None or rule is PUBLIC or isinstance(rule, str):
        return rule  # type: ignore[return-value]
    raise TypeError(f"{what} must be a scope string, None (any valid key) or apikeys.web.PUBLIC, not {rule!r}")
