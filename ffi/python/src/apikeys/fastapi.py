"""FastAPI: a dependency that returns the VerifiedKey, declared in the
OpenAPI document as an HTTP bearer security scheme.

```python
from fastapi import Depends, FastAPI, Security
from apikeys import VerifiedKey
from apikeys.fastapi import ApiKey, install

app = FastAPI()
install(app)          # refusals answer the exact 401 / 403 / 500 JSON bodies
api_key = ApiKey(path="/var/lib/myapp/keys.redb", pepper=os.environ["APIKEYS_PEPPER"])

@app.get("/contacts")
async def contacts(key: VerifiedKey = Security(api_key, scopes=["contacts:read"])):
    return {"key": key.id}

@app.get("/me")
async def me(key: VerifiedKey = Depends(api_key)):      # any valid key
    return {"name": key.name}
```

`ApiKey(..., scope="contacts:read")` fixes a scope for every route using
that instance; `Security(api_key, scopes=[...])` adds the route's own (all
of them are required). `/openapi.json` lists the scheme under
`components.securitySchemes` (`{"type": "http", "scheme": "bearer"}`) and on
every route that depends on it, so `/docs` shows the Authorize button.

`install(app)` also closes the worker's stores, flushing their usage counts,
when the server shuts the app down. Without it a refusal still answers 401 (with `WWW-Authenticate:
Bearer`), 403 or 500, but FastAPI wraps the body in `{"detail": ...}`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from fastapi import FastAPI, HTTPException, Request
from starlette.requests import HTTPConnection
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.oauth2 import SecurityScopes
from starlette.responses import Response

from .asgi import CloseStoresAtShutdown, authorization_header
from .store import HttpAnswer, Text, VerifiedKey
from .web import Authenticator, Path, StoreLike, StoreSource, forbidden

__all__ = ["ApiKey", "ApiKeyRefused", "exception_handlers", "install"]


class ApiKeyRefused(HTTPException):
    """Raised by ApiKey for a refused request; `answer` is what to send."""

    def __init__(self, answer: HttpAnswer) -> None:
        headers = {name: value for name, value in answer.headers if name != "Content-Type"}
        super().__init__(status_code=answer.status, detail=json.loads(answer.body), headers=headers)
        self.answer = answer


async def _answer_refusal(request: Request, refused: Exception) -> Response:
    answer = refused.answer  # type: ignore[attr-defined]
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


#: `FastAPI(exception_handlers=exception_handlers)`: the exact answers alone
#: (install(app) also adds apikeys.asgi.CloseStoresAtShutdown).
exception_handlers: Dict[Any, Any] = {ApiKeyRefused: _answer_refusal}


def install(app: FastAPI) -> FastAPI:
    """Makes the app answer ApiKey's refusals with the exact JSON bodies, and
    close the worker's stores (flushing usage) when the server shuts it down
    (apikeys.asgi.CloseStoresAtShutdown). Call it before the app serves."""
    app.add_exception_handler(ApiKeyRefused, _answer_refusal)
    app.add_middleware(CloseStoresAtShutdown)
    return app


class ApiKey(SecurityBase):
    """The dependency; see the module's documentation.

    Give `path` (opened once per worker process through
    `apikeys.shared_store`, in shared mode unless `shared=False`) or `store`
    (a KeyStore or a function returning one).
    """

    def __init__(
        self,
        path: Optional[Path] = None,
        *,
        pepper: Optional[Text] = None,
        shared: bool = True,
        store: Optional[StoreLike] = None,
        scope: Optional[str] = None,
        scheme_name: Optional[str] = None,
        description: Optional[str] = "An API key: `Authorization: Bearer flz_sk_...`",
    ) -> None:
        self.model = HTTPBearerModel(bearerFormat="apikeys", description=description)
        self.scheme_name = scheme_name or "ApiKey"
        self.scope = scope
        self.authenticator = Authenticator(StoreSource(path, pepper=pepper, shared=shared, store=store))

    async def __call__(self, request: HTTPConnection, security_scopes: SecurityScopes) -> VerifiedKey:
        # HTTPConnection, as FastAPI's own HTTPBearer: HTTP routes and WebSockets alike.
        required = list(security_scopes.scopes)
        if self.scope is not None:
            required.insert(0, self.scope)
        # The first scope is checked by the core with the verify (one call,
        # one use counted); any further one against the key's scopes, with
        # the same wildcard rules.
        outcome = self.authenticator.check(authorization_header(request.scope), required[0] if required else None)
        if isinstance(outcome, HttpAnswer):
            raise ApiKeyRefused(outcome)
        for scope in required[1:]:
            if not outcome.has_scope(scope):
                raise ApiKeyRefused(forbidden())
        return outcome
