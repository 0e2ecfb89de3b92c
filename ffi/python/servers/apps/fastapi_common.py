"""What the two FastAPI apps share: X-Worker-Pid on every answer, refusals
included (which worker process served it: the tests check that every worker
saw a revocation), and the routes without apikeys."""

import os

from fastapi import Request
from fastapi.responses import Response

import peer

PID = str(os.getpid()).encode()


class WorkerPid:
    """A plain ASGI middleware: adds X-Worker-Pid to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_pid(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ())) + [(b"x-worker-pid", PID)]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def add_unauthenticated_routes(app):
    """The routes both FastAPI apps serve without apikeys: /public (the same
    answer, no key checked) and /sanctum (the Sanctum-style peer)."""

    @app.get("/public")
    async def public():
        return {"key": None, "pid": os.getpid()}

    @app.get("/sanctum")
    async def sanctum(request: Request):
        found = await peer.async_check(request.headers.get("authorization"))
        if found is None:
            return Response(peer.UNAUTHORIZED, 401, {"WWW-Authenticate": "Bearer"}, media_type="application/json")
        return {"key": found, "pid": os.getpid()}
