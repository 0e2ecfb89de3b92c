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

from fastapi import FastAPI, Security

from apikeys import VerifiedKey
from apikeys.fastapi import ApiKey, install

from fastapi_common import WorkerPid, add_unauthenticated_routes

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


add_unauthenticated_routes(app)
