"""ASGI middleware (Starlette, FastAPI, any ASGI app): every HTTP request and
WebSocket must carry a valid key (per-route scopes).

```python
from apikeys.asgi import ApiKeyMiddleware, PUBLIC

app.add_middleware(                      # Starlette / FastAPI
    ApiKeyMiddleware,
    path="/var/lib/myapp/keys.redb", pepper=os.environ["APIKEYS_PEPPER"],
    scope={"/health": PUBLIC, "/contacts": "contacts:read", "/": None},
)
# in an endpoint: request.state.api_key is the VerifiedKey
# (also scope["apikeys.key"] for plain ASGI apps)
```

Starlette routes may also take it alone: `Route("/contacts", contacts,
middleware=[Middleware(ApiKeyMiddleware, path=..., scope="contacts:read")])`.

The worker's stores are closed, with their usage counts flushed, when the
server shuts the application down (the ASGI lifespan's shutdown, after the
last request): an interpreter-exit hook alone is not enough under uvicorn,
whose workers re-raise SIGTERM once they have shut down and so end without
running it. `CloseStoresAtShutdown` does only that, for an app that checks
keys another way (apikeys.fastapi.install adds it).

A refused HTTP request gets the 401, 403 or 500 answer with its
`WWW-Authenticate` header and never reaches the app; a refused WebSocket is
closed before it is accepted (code 1008, policy violation; 1011 when the
store failed). The verify runs on the event loop, not in a thread: it is an
in-memory lookup, or in shared mode one read of the file (about 10
microseconds) with the GIL released, which costs less than a hop to a
thread pool.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, MutableMapping, Optional

from .process import close_shared_stores
from .store import HttpAnswer, Text
from .web import PUBLIC, Authenticator, Path, RouteScopes, ScopeRule, StoreLike, StoreSource

__all__ = ["ApiKeyMiddleware", "CloseStoresAtShutdown", "PUBLIC", "SCOPE_KEY", "STATE_KEY", "send_answer"]

#: Where the accepted VerifiedKey is put in the ASGI scope...
SCOPE_KEY = "apikeys.key"
#: ...and in scope["state"], which Starlette shows as request.state.api_key.
STATE_KEY = "api_key"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def authorization_header(scope: Scope) -> Optional[bytes]:
    """The request's Authorization header; None when missing or sent twice
    (a singleton header repeated is refused rather than guessed at)."""
    found: Optional[bytes] = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization" or (len(name) == 13 and name.lower() == b"authorization"):
            if found is not None:
                return None
            found = value
    return found


async def send_answer(refusal: HttpAnswer, send: Send) -> None:
    """Sends an HttpAnswer as the ASGI HTTP response."""
    body = refusal.body.encode("utf-8")
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in refusal.headers]
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Runs the app's lifespan, closing this process's shared stores once the
    app has finished shutting down (or failed to)."""

    async def send_after_closing(message: MutableMapping[str, Any]) -> None:
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            try:
                close_shared_stores()
            except Exception:
                pass  # logged store by store; the server's shutdown goes on
        await send(message)

    await app(scope, receive, send_after_closing)


class CloseStoresAtShutdown:
    """ASGI middleware: closes the stores of apikeys.shared_store, flushing
    their usage, at the lifespan's shutdown. Everything else passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ApiKeyMiddleware:
    """Wraps an ASGI application; see the module's documentation.

    `scope`: a scope string, None (any valid key), PUBLIC, a mapping of path
    prefixes to those (longest prefix wins; `default` for the rest), or a
    function of the ASGI scope returning one of them.
    """

    def __init__(
        self,
        app: ASGIApp,
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await _lifespan(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        required = self.scopes.for_request(scope, scope.get("path", ""))
        if required is PUBLIC:
            await self.app(scope, receive, send)
            return
        header = authorization_header(scope)
        outcome = self.authenticator.check(header, required)
        if isinstance(outcome, HttpAnswer):
            if kind == "http":
                await send_answer(outcome, send)
            else:
                await send({"type": "websocket.close", "code": 1011 if outcome.status == 500 else 1008})
            return
        scope[SCOPE_KEY] = outcome
        # Servers give each request its own copy of the lifespan state; a
        # scope without one gets a fresh dict (never a shared one).
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[STATE_KEY] = outcome
        await self.app(scope, receive, send)
