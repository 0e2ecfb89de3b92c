"""The Python package on a PostgreSQL store: the server of PG_URL (scripts/test
starts one through scripts/lib/postgres.sh; it trusts loopback, so the
password in these URLs is carried, never checked). Each test gets its own
database. Without PG_URL the tests are skipped, unless
APIKEYS_REQUIRE_POSTGRES=1 (scripts/test), where that is a failure."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator, List

import pytest

from apikeys import DatabaseUnavailable, KeyStore, Unauthorized, WrongPepper, close_shared_stores, http_answer
from apikeys.wsgi import ApiKeyMiddleware

from conftest import PEPPER
from test_wsgi import INTERNAL, UNAUTHORIZED, application, call

PASSWORD = "pw-Never-Shown-7f3a"


@pytest.fixture
def url() -> str:
    server = os.environ.get("PG_URL")
    if not server:
        if os.environ.get("APIKEYS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PG_URL is not set: start a server with pg_start (scripts/lib/postgres.sh)")
        pytest.skip("PG_URL is not set (a PostgreSQL server, see scripts/lib/postgres.sh)")
    database = "apikeys_py_" + secrets.token_hex(4)
    subprocess.run(["psql", "-q", "-X", server, "-c", f"CREATE DATABASE {database}"], check=True)
    with_password = re.sub(r"^(postgres(?:ql)?://[^:/@]*)@", r"\1:" + PASSWORD + "@", server)
    with_database = re.sub(r"/[^/?]*(\?.*)?$", "/" + database + r"\1", with_password)
    assert PASSWORD in with_database
    return with_database


def redacted(url: str) -> str:
    return url.replace(":" + PASSWORD + "@", "@")


class Proxy:
    """A TCP relay to the server that the test can cut: a network partition."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: List[socket.socket] = []
        self.lock = threading.Lock()
        self.is_cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                # A client accepted while the cut was being made is dropped:
                # closing a listener does not wake an accept() already waiting.
                if self.is_cut:
                    client.close()
                    server.close()
                    return
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the waiting accept()
            except OSError:
                pass
            self.listener.close()
            for end in self.sockets:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()


def through(url: str, port: int) -> str:
    return re.sub(r"@[^/]*/", f"@127.0.0.1:{port}/", url)


def server_address(url: str) -> tuple:
    host, port = re.search(r"@([^:/]+):(\d+)/", url).groups()
    return host, int(port)


def test_verify_and_a_revocation_seen_by_a_second_handle(url: str) -> None:
    with KeyStore(url, pepper=PEPPER) as writer, KeyStore(url, pepper=PEPPER) as reader, KeyStore(
        url + "?apikeys_strict=1", pepper=PEPPER
    ) as strict:
        key = writer.generate("Python on PostgreSQL", env="prod", scopes=["contacts:read"])
        assert writer.verify(key.secret, scope="contacts:read").name == "Python on PostgreSQL"
        # The other handles stand for other workers, or other machines.
        deadline = time.monotonic() + 30  # keeps a broken feed from hanging the run; not a timing assertion
        while True:
            try:
                assert reader.verify(key.secret).id == key.id
                break
            except Unauthorized as refused:
                assert refused.reason == "not_found" and time.monotonic() < deadline
                time.sleep(0.002)
        assert strict.verify(key.secret).id == key.id

        assert writer.revoke(key.id)
        with pytest.raises(Unauthorized) as refused:
            strict.verify(key.secret)
        assert refused.value.reason == "revoked"
        while True:
            try:
                reader.verify(key.secret)
            except Unauthorized as refused_too:
                assert refused_too.reason == "revoked"
                break
            assert time.monotonic() < deadline
            time.sleep(0.002)


def test_another_pepper_is_refused(url: str) -> None:
    KeyStore(url, pepper=PEPPER).close()
    with pytest.raises(WrongPepper) as refused:
        KeyStore(url, pepper=b"another pepper")
    assert PASSWORD not in str(refused.value)


def test_the_url_is_shown_without_its_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with KeyStore(url, pepper=PEPPER) as store:
        assert store.path == redacted(url)
        assert "postgres@" in store.path
        for shown in (repr(store), str(store), str(vars(store))):
            assert PASSWORD not in shown
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("test").info("store %r at %s", store, store.path)
        assert PASSWORD not in caplog.text


def test_an_unreachable_server_is_unavailable_never_unauthorized(url: str) -> None:
    port = socket.create_server(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    with pytest.raises(DatabaseUnavailable) as unavailable:
        KeyStore(through(url, closed) + "?connect_timeout=2", pepper=PEPPER)
    assert http_answer(unavailable.value)[0] == 500
    assert PASSWORD not in str(unavailable.value) and PASSWORD not in repr(unavailable.value)


def test_a_server_lost_after_opening_answers_500_from_the_middleware(url: str) -> None:
    with KeyStore(url, pepper=PEPPER) as writer:
        secret = writer.generate("behind a proxy").secret
    proxy = Proxy(*server_address(url))
    # Strict mode reads PostgreSQL on every verify: the cut shows at once.
    # The handle is exclusive: its verify must release the GIL, which the
    # proxy's threads need while the library waits on the network.
    store = KeyStore(through(url, proxy.port) + "?apikeys_strict=1&connect_timeout=2", pepper=PEPPER)
    app = ApiKeyMiddleware(application, store=store)
    assert call(app, "/", "Bearer " + secret)[0] == "200 OK"
    proxy.cut()
    with pytest.raises(DatabaseUnavailable) as unavailable:
        store.verify(secret)
    assert http_answer(unavailable.value)[0] == 500
    status, _, body = call(app, "/", "Bearer " + secret)
    assert status.startswith("500") and body == INTERNAL and body != UNAUTHORIZED
    # The use counted above cannot be flushed: closing says so, as the same error.
    with pytest.raises(DatabaseUnavailable):
        store.close()


HOT_PATH_THROUGH_A_PROXY = """
import sys
sys.path[:0] = sys.argv[1].split("|")
from apikeys import KeyStore
from conftest import PEPPER
from test_postgres import Proxy, server_address, through
url, secret = sys.argv[2], sys.stdin.readline().strip()
proxy = Proxy(*server_address(url))
store = KeyStore(through(url, proxy.port) + "?apikeys_strict=1", pepper=PEPPER)
print(store.is_valid(secret), store.verify_id(secret) != "")
store.close()  # while the relay's threads still run (not at exit, which stops them)
"""


def test_the_hot_path_lets_other_threads_run_while_it_waits_on_postgresql(url: str) -> None:
    # is_valid and verify_id of an exclusive handle are the calls that may keep
    # the GIL (see _native.hot_function). On PostgreSQL they wait on the
    # network: here the wait is on a relay run by Python threads of the same
    # process, which can only answer if the call let go of the GIL. Held, the
    # process deadlocks and the timeout below fails the test.
    with KeyStore(url, pepper=PEPPER) as writer:
        secret = writer.generate("hot path").secret
    import apikeys

    paths = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(apikeys.__file__))]
    done = subprocess.run(
        [sys.executable, "-c", HOT_PATH_THROUGH_A_PROXY, "|".join(paths), url],
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_the_middleware_opens_a_url_once_per_process(url: str) -> None:
    with KeyStore(url, pepper=PEPPER) as writer:
        secret = writer.generate("through the middleware").secret
    app = ApiKeyMiddleware(application, url, pepper=PEPPER)
    try:
        assert call(app, "/", "Bearer " + secret)[0] == "200 OK"
    finally:
        close_shared_stores()
