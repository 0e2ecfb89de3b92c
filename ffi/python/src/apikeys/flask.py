"""Flask: the `@require_key(scope=...)` view decorator.

```python
from flask import Flask
from apikeys.flask import ApiKeys, current_key, require_key

app = Flask(__name__)
app.config["APIKEYS_PATH"] = "/var/lib/myapp/keys.redb"
app.config["APIKEYS_PEPPER"] = os.environ["APIKEYS_PEPPER"]
ApiKeys(app)

@app.get("/contacts")
@require_key(scope="contacts:read")
def contacts():
    return {"key": current_key().id}      # the VerifiedKey, also flask.g.api_key
```

Configuration (`app.config`): `APIKEYS_PATH` (required), `APIKEYS_PEPPER`
(default none) and `APIKEYS_SHARED` (default True: gunicorn and uWSGI run
several workers). The store is each worker process's
(`apikeys.shared_store`), opened on its first request. `ApiKeys(app,
store=...)` takes a KeyStore or a function returning one instead.

A refused request gets the exact 401 / 403 / 500 JSON answer with its
`WWW-Authenticate` header; the view is not called.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from .store import HttpAnswer, VerifiedKey
from .web import Authenticator, StoreLike, StoreSource

__all__ = ["ApiKeys", "require_key", "current_key", "answer"]

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION = "apikeys"


class ApiKeys:
    """The Flask extension: where `require_key` finds the store."""

    def __init__(self, app: Optional[Flask] = None, *, store: Optional[StoreLike] = None) -> None:
        self._store = store
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if self._store is not None:
            source = StoreSource(store=self._store)
        else:
            path = app.config.get("APIKEYS_PATH")
            if not path:
                raise RuntimeError("apikeys.flask: set app.config['APIKEYS_PATH'] to the store file")
            source = StoreSource(
                path,
                pepper=app.config.get("APIKEYS_PEPPER"),
                shared=bool(app.config.get("APIKEYS_SHARED", True)),
            )
        app.extensions[EXTENSION] = Authenticator(source)


def answer(refusal: HttpAnswer) -> Response:
    """An HttpAnswer as a Flask response."""
    return Response(refusal.body, status=refusal.status, headers=list(refusal.headers))


# Each use of Flask's context proxies (current_app, request, g) cost about
# 6,500 instructions (callgrind, Flask 3.1): as much as a quarter of the
# check itself. The decorator reads the request's contexts once from the
# context variables behind those proxies instead, after checking on the
# first request that they are the proxies' objects; with a Flask whose
# internals differ, it uses the proxies.
try:
    from flask.globals import _cv_app, _cv_request
except ImportError:  # pragma: no cover - another Flask
    _cv_app = _cv_request = None

_contexts_checked: Optional[bool] = None if _cv_app is not None else False


def _request_parts() -> Tuple[Flask, dict, Any]:
    """(app, WSGI environ, g) of the current request."""
    global _contexts_checked
    if _contexts_checked:
        app_context = _cv_app.get()  # type: ignore[union-attr]
        return app_context.app, _cv_request.get().request.environ, app_context.g  # type: ignore[union-attr]
    parts = (current_app._get_current_object(), request.environ, g._get_current_object())  # type: ignore[attr-defined]
    if _contexts_checked is None:
        try:
            app_context = _cv_app.get()  # type: ignore[union-attr]
            fast = (app_context.app, _cv_request.get().request.environ, app_context.g)  # type: ignore[union-attr]
            _contexts_checked = all(mine is theirs for mine, theirs in zip(fast, parts))
        except Exception:
            _contexts_checked = False
    return parts


def current_key() -> VerifiedKey:
    """The VerifiedKey of the request a `@require_key` view is serving:
    `flask.g.api_key`, read without the cost of Flask's `g` proxy (a
    quarter of the check's own cost, callgrind). RuntimeError outside a
    request that went through `@require_key`."""
    try:
        if _contexts_checked:
            key: VerifiedKey = _cv_app.get().g.api_key  # type: ignore[union-attr]
        else:
            key = g.api_key
        return key
    except (AttributeError, LookupError, RuntimeError):  # RuntimeError: Flask's, outside a request
        raise RuntimeError("apikeys.flask.current_key(): no key checked by @require_key in this request") from None


def require_key(scope: Optional[str] = None) -> Callable[[F], F]:
    """The view runs only for a valid key holding `scope` (None: any valid
    key); the key is `current_key()`, also `flask.g.api_key`."""
    if scope is not None and not isinstance(scope, str):
        raise TypeError(f"scope must be a str or None, not {type(scope).__name__}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            app, environ, request_globals = _request_parts()
            try:
                authenticator: Authenticator = app.extensions[EXTENSION]
            except KeyError:
                raise RuntimeError("apikeys.flask: call ApiKeys(app) before serving @require_key views") from None
            outcome = authenticator.check(environ.get("HTTP_AUTHORIZATION"), scope)
            if isinstance(outcome, HttpAnswer):
                return answer(outcome)
            request_globals.api_key = outcome
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate
