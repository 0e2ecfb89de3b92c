"""X-Worker-Pid on every answer of the FastAPI apps, refusals included: which
worker process served it (the tests check that every worker saw a revocation)."""

import os

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
