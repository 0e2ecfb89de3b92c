"""WSGI middleware: every request must carry a valid key (per-route scopes).

```python
from apikeys.wsgi import ApiKeyMiddleware, PUBLIC

application = ApiKeyMiddleware(
    application,
    path="/var/lib/myapp/keys.redb", pepper=os.environ["APIKEYS_PEPPER"],
    scope={"/health": PUBLIC, "/contacts": "contacts:read", "/": None},
)
# in the application: environ["apikeys.key"] is the VerifiedKey
```

A refused request never reaches the application: it gets the 401, 403 or
500 answer of `apikeys.web.Authenticator` with its `WWW-Authenticate`
header. The store is the worker process's (`apikeys.shared_store`), opened
on the first request after the fork.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Tuple

from .store import HttpAnswer, Text
from .web import PUBLIC, Authenticator, Path, RouteScopes, ScopeRule, StoreLike, StoreSource

__all__ = ["ApiKeyMiddleware", "ENVIRON_KEY", "PUBLIC", "answer"]

#: Where the accepted VerifiedKey is put in the WSGI environ.
ENVIRON_KEY = "apikeys.key"

_REASONS = {401: "401 Unauthorized", 403: "403 Forbidden", 500: "500 Internal Server Error"}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


def answer(refusal: HttpAnswer, start_response: StartResponse) -> List[bytes]:
    """Sends an HttpAnswer through a WSGI start_response."""
    body = refusal.body.encode("utf-8")
    headers: List[Tuple[str, str]] = list(refusal.headers)
    headers.append(("Content-Length", str(len(body))))
    start_response(_REASONS.get(refusal.status, f"{refusal.status} Error"), headers)
    return [body]


class ApiKeyMiddleware:
    """Wraps a WSGI application; see the module's documentation.

    `scope`: a scope string, None (any valid key), PUBLIC, a mapping of path
    prefixes to those (longest prefix wins; `default` for the rest), or a
    function of the environ returning one of them.
    """

    def __init__(
        self,
        app: WSGIApp,
        path: Optional[Path] = None,
        *,
        pepper: Optional[Text] = None,
        shared: bool = True,
        store: Optional[StoreLike] = None,
        scope: object = None,
        default: ScopeRule = None,
    ) -> None:
        self.app = app
        self.authenticator = Authenticator(StoreSource(path, pepper=pepper, shared=shared, store=store))
        self.scopes = RouteScopes(scope, default)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        scope = self.scopes.for_request(environ, environ.get("PATH_INFO", ""))
        if scope is PUBLIC:
            return self.app(environ, start_response)
        outcome = self.authenticator.check(environ.get("HTTP_AUTHORIZATION"), scope)  # type: ignore[arg-type]
        if isinstance(outcome, HttpAnswer):
            return answer(outcome, start_response)
        environ[ENVIRON_KEY] = outcome
        return self.app(environ, start_response)
