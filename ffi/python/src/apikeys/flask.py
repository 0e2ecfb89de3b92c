"""Flask: the `@require_key(scope=...)` view decorator.

```python
from flask import Flask, g
from apikeys.flask import ApiKeys, require_key

app = Flask(__name__)
app.config["APIKEYS_PATH"] = "/var/lib/myapp/keys.redb"
app.config["APIKEYS_PEPPER"] = os.environ["APIKEYS_PEPPER"]
ApiKeys(app)

@app.get("/contacts")
@require_key(scope="contacts:read")
def contacts():
    return {"key": g.api_key.id}          # g.api_key: the VerifiedKey
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
from typing import Any, Callable, Optional, TypeVar, cast

from flask import Flask, Response, current_app, g, request

from .store import HttpAnswer
from .web import Authenticator, StoreLike, StoreSource

__all__ = ["ApiKeys", "require_key", "answer"]

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


def require_key(scope: Optional[str] = None) -> Callable[[F], F]:
    """The view runs only for a valid key holding `scope` (None: any valid
    key); the key is `flask.g.api_key`."""
    if scope is not None and not isinstance(scope, str):
        raise TypeError(f"scope must be a str or None, not {type(scope).__name__}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                authenticator: Authenticator = current_app.extensions[EXTENSION]
            except KeyError:
                raise RuntimeError("apikeys.flask: call ApiKeys(app) before serving @require_key views") from None
            outcome = authenticator.check(request.environ.get("HTTP_AUTHORIZATION"), scope)
            if isinstance(outcome, HttpAnswer):
                return answer(outcome)
            g.api_key = outcome
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate
