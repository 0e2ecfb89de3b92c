"""The Flask app the gunicorn test and benchmark serve, written as the
README's Flask section shows. Configured by the environment: APIKEYS_DB,
APIKEYS_PEPPER; PG_URL adds the Sanctum-style peer route (benchmark only).

  /contacts  @require_key(scope="contacts:read")
  /admin     @require_key(scope="admin:write")
  /public    no authentication (the same work otherwise)
  /sanctum   SHA-256 hex lookup in PostgreSQL + UPDATE last_used_at

Every answer, refusals included, says which worker process served it in
X-Worker-Pid.
"""

import os

from flask import Flask, request

from apikeys.flask import ApiKeys, current_key, require_key

import peer

app = Flask(__name__)
app.config["APIKEYS_PATH"] = os.environ["APIKEYS_DB"]
app.config["APIKEYS_PEPPER"] = os.environ["APIKEYS_PEPPER"]
ApiKeys(app)

PID = str(os.getpid())  # imported in each worker (no --preload): the worker's pid


@app.after_request
def worker_pid(response):
    response.headers["X-Worker-Pid"] = PID
    return response


@app.get("/contacts")
@require_key(scope="contacts:read")
def contacts():
    return {"key": current_key().id, "pid": os.getpid()}


@app.get("/admin")
@require_key(scope="admin:write")
def admin():
    return {"key": current_key().id, "pid": os.getpid()}


@app.get("/public")
def public():
    return {"key": None, "pid": os.getpid()}


@app.get("/sanctum")
def sanctum():
    found = peer.sync_check(request.headers.get("Authorization"))
    if found is None:
        return peer.UNAUTHORIZED, 401, {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"}
    return {"key": found, "pid": os.getpid()}
