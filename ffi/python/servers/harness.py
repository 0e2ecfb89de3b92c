"""Starts and stops the real servers for test_servers.py and bench.py:
gunicorn (sync workers) serving apps/flask_app.py and uvicorn serving
apps/fastapi_app.py or apps/fastapi_middleware_app.py, 4 workers each, on a free 127.0.0.1 port, with the
store in shared mode.

Everything a worker reads is staged in a fresh directory every user can
traverse: the package with its library beside it (the wheel's layout, so
the library is found without APIKEYS_LIB), the apps, and the store. When
the tests run as root, the workers run as `nobody`: gunicorn's master
stays root and drops to nobody in each worker (`--user/--group`), uvicorn
is started as nobody altogether (it has no such option); the store is made
for them with `apikeys init --owner nobody:GROUP`, and the command line
keeps using it as root.
"""

from __future__ import annotations

import grp
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import apikeys
from apikeys import _native

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent
ROOT = PYTHON_DIR.parent.parent
CLI = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "apikeys"
PEPPER = "pepper of the server tests"
WORKERS = 4
# Bounds, never expectations: a server that is not up by then has failed.
START_SECONDS = 60
STOP_SECONDS = 60


def worker_user() -> Optional[str]:
    """The unprivileged user the workers run as, when the tests run as root."""
    return "nobody" if os.geteuid() == 0 else None


def worker_group() -> Optional[str]:
    user = worker_user()
    if user is None:
        return None
    try:
        return grp.getgrnam("nogroup").gr_name
    except KeyError:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(store: Path, *args: str, stdin: Optional[str] = None) -> str:
    """Runs the command line on the store in shared mode, beside the workers."""
    done = subprocess.run(
        [str(CLI), "--db", str(store), "--shared", *args],
        input=stdin,
        env=dict(os.environ, APIKEYS_PEPPER=PEPPER),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"apikeys {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


class Stage:
    """A directory holding what the workers read; removed by cleanup()."""

    def __init__(self) -> None:
        if not CLI.is_file():
            raise RuntimeError(f"{CLI} is missing: cargo build --release")
        self.dir = Path(tempfile.mkdtemp(prefix="apikeys-servers-"))
        self.dir.chmod(0o755)
        self.packages = self.dir / "packages"
        shutil.copytree(Path(apikeys.__file__).resolve().parent, self.packages / "apikeys",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        shutil.copy(_native.lib()._name, self.packages / "apikeys" / _native.LIBRARY_FILE)
        self.apps = self.dir / "apps"
        shutil.copytree(HERE / "apps", self.apps, ignore=shutil.ignore_patterns("__pycache__"))
        self.store = self.dir / "store" / "keys.redb"
        self.store.parent.mkdir()
        self.store.parent.chmod(0o755)
        owner = worker_user()
        init = ["init"] if owner is None else ["init", "--owner", f"{owner}:{worker_group()}"]
        subprocess.run([str(CLI), "--db", str(self.store), *init], env=dict(os.environ, APIKEYS_PEPPER=PEPPER),
                       check=True, capture_output=True, timeout=60)
        self._check_readable()

    def _check_readable(self) -> None:
        """The workers' user must reach the interpreter, the venv and the stage."""
        user = worker_user()
        if user is None:
            return
        probe = subprocess.run(
            [sys.executable, "-c", "import apikeys, flask, fastapi, gunicorn, uvicorn"],
            env=self.environment(), user=user, cwd="/", capture_output=True, text=True, timeout=60,
        )
        if probe.returncode != 0:
            raise RuntimeError(
                f"the workers' user {user} cannot import what they serve (is the venv, {sys.prefix}, "
                f"readable by every user? ffi/python/scripts/venv.sh makes one that is): {probe.stderr}"
            )

    def environment(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        environment = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": f"{self.packages}:{self.apps}",
            "APIKEYS_DB": str(self.store),
            "APIKEYS_PEPPER": PEPPER,
            "LANG": "C.UTF-8",
        }
        environment.update(extra or {})
        return environment

    def generate(self, name: str, *scopes: str, count: int = 1) -> List[dict]:
        import json

        args = ["generate", "--name", name, "--json", "--count", str(count)]
        for scope in scopes:
            args += ["--scope", scope]
        return [json.loads(line) for line in cli(self.store, *args).splitlines() if line.strip()]

    def list_keys(self) -> Dict[str, dict]:
        import json

        return {key["id"]: key for key in json.loads(cli(self.store, "list", "--json"))}

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A running server: its master process, port and output."""

    def __init__(self, name: str, command: Sequence[str], stage: Stage, port: int,
                 user: Optional[str] = None, group: Optional[str] = None,
                 extra_env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.port = port
        self.log = open(stage.dir / f"{name}.log", "w+b")
        options: dict = {}
        if user is not None:
            options = {"user": user, "group": group, "extra_groups": []}
        self.process = subprocess.Popen(
            list(command), cwd=str(stage.apps), env=stage.environment(extra_env),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, **options,
        )
        self._wait_ready()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/public")
                if connection.getresponse().status == 200 and len(self.worker_pids()) >= WORKERS:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer within {START_SECONDS}s:\n{self.output()}")

    def worker_pids(self) -> List[int]:
        """The master's child processes that serve requests."""
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            # uvicorn's spawned workers run multiprocessing.spawn; a resource
            # tracker would run multiprocessing.resource_tracker.
            if parent == self.process.pid and b"resource_tracker" not in command:
                children.append(int(entry.name))
        return sorted(children)

    def stop(self) -> int:
        """Graceful stop: SIGTERM to the master, then wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.name} did not stop within {STOP_SECONDS}s of SIGTERM:\n{self.output()}")
        finally:
            self.log.close()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(STOP_SECONDS)


def start_gunicorn(stage: Stage, workers: int = WORKERS, extra_env: Optional[Dict[str, str]] = None) -> Server:
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--workers", str(workers), "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "30",
        "flask_app:app",
    ]
    user = worker_user()
    if user is not None:  # the master stays root; each worker drops to nobody
        command[1:1] = ["--user", user, "--group", worker_group() or user]
    return Server("gunicorn", command, stage, port, extra_env=extra_env)


def start_uvicorn(stage: Stage, workers: int = WORKERS, extra_env: Optional[Dict[str, str]] = None,
                  nodelay_fix: bool = False, app: str = "fastapi_app:app") -> Server:
    """uvicorn as installed, serving `app` (apps/fastapi_app.py, the
    dependency form; fastapi_middleware_app:app, the middleware form);
    nodelay_fix: through apps/uvicorn_nodelay.py (uvicorn issue #3149, the
    benchmark only)."""
    port = free_port()
    launcher = [sys.executable, str(stage.apps / "uvicorn_nodelay.py")] if nodelay_fix else [
        str(Path(sys.executable).parent / "uvicorn")]
    command = [
        *launcher,
        "--workers", str(workers),
        "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--timeout-graceful-shutdown", "30",
        app,
    ]
    name = "uvicorn-nodelay" if nodelay_fix else "uvicorn"
    return Server(name, command, stage, port, user=worker_user(), group=worker_group(), extra_env=extra_env)
