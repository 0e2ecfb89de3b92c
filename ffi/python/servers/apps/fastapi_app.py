"""The FastAPI app the uvicorn test and benchmark serve, written as the
README's FastAPI section shows. Configured by the environment: APIKEYS_DB,
APIKEYS_PEPPER; PG_URL adds the Sanctum-style peer route (benchmark only).

  /contacts  Security(api_key, scopes=["contacts:read"])
  /admin     Security(api_key, scopes=["admin:write"])
  /public    no authentication (the same work otherwise)
  /sanctum   SHA-256 hex lookup in PostgreSQL + UPDATE last_used_at

Every answer, refusals included, says which worker process served it in
X-Worker-Pid.
"""

import os

from fastapi import FastAPI, Request, Security
from fastapi.responses import Response

from apikeys import VerifiedKey
from apikeys.fastapi import ApiKey, install

import peer
from worker_pid import WorkerPid

app = FastAPI()
install(app)
api_key = ApiKey(path=os.environ["APIKEYS_DB"], pepper=os.environ["APIKEYS_PEPPER"])

app.add_middleware(WorkerPid)


@app.get("/contacts")
async def contacts(key: VerifiedKey = Security(api_key, scopes=["contacts:read"])):
    return {"key": key.id, "pid": os.getpid()}


@app.get("/admin")
async def admin(key: VerifiedKey = Security(api_key, scopes=["admin:write"])):
    return {"key": key.id, "pid": os.getpid()}


@app.get("/public")
async def public():
    return {"key": None, "pid": os.getpid()}


@app.get("/sanctum")
async def sanctum(request: Request):
    found = await peer.async_check(request.headers.get("authorization"))
    if found is None:
        return Response(peer.UNAUTHORIZED, 401, {"WWW-Authenticate": "Bearer"}, media_type="application/json")
    return {"key": found, "pid": os.getpid()}
