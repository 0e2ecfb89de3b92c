"""A WSGI application behind apikeys on a PostgreSQL store, for gunicorn:

    APIKEYS_DB=postgres://apikeys@db.internal/apikeys APIKEYS_PEPPER=... \
        gunicorn --workers 4 --bind 127.0.0.1:8000 app:application

Every worker opens the store after the fork, on its first request (the
middleware does it), and verifies from its own in-memory replica.
"""

import json
import os

from apikeys.wsgi import ENVIRON_KEY, ApiKeyMiddleware


def hello(environ, start_response):
    key = environ[ENVIRON_KEY]
    body = json.dumps({"hello": key.name, "worker": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


application = ApiKeyMiddleware(hello, os.environ["APIKEYS_DB"], pepper=os.environ["APIKEYS_PEPPER"])
