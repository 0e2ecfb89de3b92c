"""The package inside the real servers it is deployed in: gunicorn (sync
workers) serving the Flask app and uvicorn serving the FastAPI app (its
dependency form and its middleware form), 4 workers each, store in shared mode, workers as `nobody` when run as root.

Each test checks, through real HTTP on 127.0.0.1: the exact 401 / 403 / 200
bodies and headers; that a key revoked from the command line is refused by
the next request whichever worker serves it (requests are sent until every
worker has answered 401, and none may accept it); and, after a graceful stop
(SIGTERM, wait), that the store counted exactly the requests served.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import harness

UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
FORBIDDEN = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}'

# Bounds on the requests sent to reach every worker: a server that has not
# shown every worker by then fails the test (it is not retried).
BATCH = 32
MAX_REQUESTS = 4000

Answer = Tuple[int, Dict[str, str], str]


def get(port: int, path: str, secret: Optional[str] = None) -> Answer:
    """One request on a new connection (as wrk and browsers open many)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Connection": "close"}
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, body
    finally:
        connection.close()


def until_every_worker(port: int, path: str, secret: str, workers: List[int],
                       done: Callable[[Dict[int, int]], bool]) -> List[Answer]:
    """Sends batches of concurrent requests until done(answers per worker pid)."""
    answers: List[Answer] = []
    seen: Dict[int, int] = {}
    with ThreadPoolExecutor(8) as pool:
        while len(answers) < MAX_REQUESTS and not done(seen):
            for answer in pool.map(lambda _: get(port, path, secret), range(BATCH)):
                answers.append(answer)
                pid = int(answer[1]["x-worker-pid"])
                seen[pid] = seen.get(pid, 0) + 1
    assert done(seen), f"after {len(answers)} requests only workers {sorted(seen)} of {workers} answered"
    assert set(seen) <= set(workers), f"answers from {sorted(set(seen) - set(workers))}, not workers of the server"
    return answers


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture
def stage() -> Iterator[harness.Stage]:
    staged = harness.Stage()
    yield staged
    staged.cleanup()


def start_uvicorn_middleware(stage: harness.Stage) -> harness.Server:
    return harness.start_uvicorn(stage, app="fastapi_middleware_app:app")


@pytest.mark.parametrize(
    "start",
    [harness.start_gunicorn, harness.start_uvicorn, start_uvicorn_middleware],
    ids=["gunicorn-flask", "uvicorn-fastapi", "uvicorn-fastapi-middleware"],
)
def test_exact_answers_revocation_in_every_worker_and_usage_after_stop(stage: harness.Stage, start) -> None:
    reader, = stage.generate("Reader", "contacts:read")
    other, = stage.generate("Other reader", "contacts:read")
    server = start(stage)
    try:
        workers = server.worker_pids()
        assert len(workers) == harness.WORKERS, (workers, server.output())
        user = harness.worker_user()
        if user is not None:
            assert {uid_of(pid) for pid in workers} == {pwd.getpwnam(user).pw_uid}, f"the workers must run as {user}"
        port = server.port

        # Exact answers.
        status, headers, body = get(port, "/contacts")
        assert (status, body) == (401, UNAUTHORIZED)
        assert headers["www-authenticate"] == "Bearer" and headers["content-type"] == "application/json"
        status, headers, body = get(port, "/contacts", "flz_sk_prod_notarealkey")
        assert (status, body, headers["www-authenticate"]) == (401, UNAUTHORIZED, "Bearer")
        status, headers, body = get(port, "/admin", other["key"])
        assert (status, body) == (403, FORBIDDEN)
        assert headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
        forbidden_served = 1
        status, headers, body = get(port, "/contacts", reader["key"])
        assert status == 200 and json.loads(body)["key"] == reader["id"], body
        assert headers["content-type"] == "application/json"
        accepted = 1

        # Every worker accepts the key...
        before = until_every_worker(port, "/contacts", reader["key"], workers, lambda seen: len(seen) == len(workers))
        assert all(status == 200 for status, _, _ in before), {status for status, _, _ in before}
        accepted += len(before)

        # ...until the command line revokes it: then every worker refuses it.
        revoked = json.loads(harness.cli(stage.store, "revoke", "--json", reader["id"]))
        assert revoked == {"revoked": True, "newly_revoked": True}
        after = until_every_worker(port, "/contacts", reader["key"], workers, lambda seen: len(seen) == len(workers))
        refused = [answer for answer in after if answer[0] == 401]
        assert len(refused) == len(after), f"{len(after) - len(refused)} requests accepted a revoked key"
        assert all(body == UNAUTHORIZED and headers["www-authenticate"] == "Bearer" for _, headers, body in after)

        code = server.stop()
    except BaseException:
        print(server.output())
        server.kill()
        raise
    assert code == 0, server.output()

    # The graceful stop flushed every worker's counts: exactly what was served.
    keys = stage.list_keys()
    assert keys[reader["id"]]["use_count"] == accepted, (keys[reader["id"]], accepted)
    assert keys[reader["id"]]["rejected_count"] == len(after)
    assert keys[reader["id"]]["status"] == "revoked"
    assert keys[other["id"]]["use_count"] == forbidden_served  # a valid key without the scope is a use
    if harness.worker_user() is not None:
        # The command line, run as root, kept the store's owner and mode.
        owner = os.stat(stage.store)
        assert (owner.st_uid, owner.st_mode & 0o777) == (pwd.getpwnam(harness.worker_user()).pw_uid, 0o600)
