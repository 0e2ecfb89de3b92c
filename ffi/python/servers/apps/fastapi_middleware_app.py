"""The FastAPI app of the middleware form, written as the README's FastAPI
section shows it: apikeys.asgi.ApiKeyMiddleware checks every request before
FastAPI routes it, with a scope per path, and the endpoints read
`request.state.api_key`. The same routes as fastapi_app.py, served by the
same uvicorn test and benchmark. Configured by the environment: APIKEYS_DB,
APIKEYS_PEPPER; PG_URL adds the Sanctum-style peer route (benchmark only).

  /contacts  scope contacts:read
  /admin     scope admin:write
  /public    PUBLIC: no key (the same work otherwise)
  /sanctum   PUBLIC here; SHA-256 hex lookup in PostgreSQL + UPDATE last_used_at

Every answer, refusals included, says which worker process served it in
X-Worker-Pid.
"""

import os

from fastapi import FastAPI, Request

from apikeys.asgi import PUBLIC, ApiKeyMiddleware

from fastapi_common import WorkerPid, add_unauthenticated_routes

app = FastAPI()
app.add_middleware(
    ApiKeyMiddleware,
    path=os.environ["APIKEYS_DB"],
    pepper=os.environ["APIKEYS_PEPPER"],
    scope={"/contacts": "contacts:read", "/admin": "admin:write", "/public": PUBLIC, "/sanctum": PUBLIC},
)
app.add_middleware(WorkerPid)  # added last: outermost, so refusals carry it too


@app.get("/contacts")
async def contacts(request: Request):
    return {"key": request.state.api_key.id, "pid": os.getpid()}


@app.get("/admin")
async def admin(request: Request):
    return {"key": request.state.api_key.id, "pid": os.getpid()}


add_unauthenticated_routes(app)
