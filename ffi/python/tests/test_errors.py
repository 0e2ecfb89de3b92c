"""Store-level failures arrive as native exceptions with the library's detail."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

import apikeys
from apikeys import (
    ApiKeysError,
    KeyStore,
    StoreCorrupted,
    StoreLocked,
    UsedAfterFork,
    WrongPepper,
    http_answer,
)

from conftest import PEPPER

FORK = multiprocessing.get_context("fork")


def test_wrong_pepper_is_refused_with_a_clear_error(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER) as store:
        key = store.generate("Peppered")
    with pytest.raises(WrongPepper) as raised:
        KeyStore(store_path, pepper=b"another pepper")
    assert raised.value.status == 202
    assert "pepper" in raised.value.detail.lower()
    # Nothing was lost: the right pepper still opens it and the key still works.
    with KeyStore(store_path, pepper=PEPPER) as store:
        assert store.verify(key.secret).name == "Peppered"


def test_a_file_that_is_not_a_store_is_reported_corrupted(tmp_path: Path) -> None:
    path = tmp_path / "not-a-store.redb"
    path.write_bytes(b"this is a text file, not a redb database\n" * 200)
    with pytest.raises(StoreCorrupted) as raised:
        KeyStore(str(path), pepper=PEPPER)
    assert raised.value.status == 201 and raised.value.detail
    assert isinstance(raised.value, ApiKeysError)
    assert path.read_bytes().startswith(b"this is a text file"), "a refused file is left as it was"


def _hold_exclusively(path: str, opened: "multiprocessing.synchronize.Event", release: "multiprocessing.synchronize.Event") -> None:
    with KeyStore(path, pepper=PEPPER, shared=False):
        opened.set()
        release.wait(60)


def test_a_second_process_cannot_open_an_exclusive_store(store_path: str) -> None:
    opened, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_exclusively, args=(store_path, opened, release))
    holder.start()
    try:
        assert opened.wait(60), "the holder process did not open the store"
        with pytest.raises(StoreLocked) as raised:
            KeyStore(store_path, pepper=PEPPER, shared=False)
        assert raised.value.status == 200
        assert "shared" in raised.value.detail.lower(), "the message should point to shared mode"
        assert http_answer(raised.value)[0] == 500
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0
    # Once the holder is gone the file opens again.
    with KeyStore(store_path, pepper=PEPPER) as store:
        assert store.list() == []


def test_a_handle_used_after_fork_raises_in_the_child(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as store:
        key = store.generate("Forked")
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report what the inherited handle does, then leave at once
            outcome = b"no error"
            try:
                store.verify(key.secret)
            except UsedAfterFork:
                outcome = b"UsedAfterFork"
            except BaseException as error:  # report anything else instead of hiding it
                outcome = repr(error).encode()
            try:
                store.close()  # frees the child's copy without touching the file
            except BaseException as error:
                outcome += b" close: " + repr(error).encode()
            os.write(write_end, outcome)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:
            outcome = reader.read()
        os.waitpid(pid, 0)
        assert outcome == b"UsedAfterFork"
        # The parent's handle is untouched by the child.
        assert store.verify(key.secret).id == key.id


def test_a_missing_library_names_the_environment_variable(tmp_path: Path) -> None:
    package_dir = Path(apikeys.__file__).resolve().parent.parent
    environment = dict(os.environ, APIKEYS_LIB=str(tmp_path / "nowhere" / "libapikeys.so"))
    result = subprocess.run(
        [sys.executable, "-c", "import apikeys; apikeys.version()"],
        cwd=str(tmp_path),
        env=dict(environment, PYTHONPATH=str(package_dir)),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "LibraryNotFound" in result.stderr
    assert "APIKEYS_LIB" in result.stderr
    assert "nowhere" in result.stderr


def test_a_user_who_may_not_open_the_store_gets_permission_denied(tmp_path: Path) -> None:
    """Status 208: the message names the file, its owner and mode, and the user."""
    if os.geteuid() != 0:
        store_path = tmp_path / "keys.redb"
        with KeyStore(str(store_path), pepper=PEPPER):
            pass
        store_path.chmod(0)
        with pytest.raises(apikeys.PermissionDenied) as raised:
            KeyStore(str(store_path), pepper=PEPPER, shared=True)
        assert raised.value.status == 208 and isinstance(raised.value, PermissionError)
        assert str(store_path) in raised.value.detail
        return
    # As root every open succeeds: ask as `nobody`, with a copy of the package
    # and library in a directory nobody can read, of a root-owned 0600 store.
    import shutil
    import tempfile

    readable = Path(tempfile.mkdtemp(prefix="apikeys-permission-"))
    try:
        readable.chmod(0o755)
        store_path = readable / "keys.redb"
        with KeyStore(str(store_path), pepper=PEPPER):
            pass
        shutil.copytree(Path(apikeys.__file__).resolve().parent, readable / "apikeys")
        shutil.copy(apikeys._native.lib()._name, readable / "apikeys" / apikeys._native.LIBRARY_FILE)
        interpreter = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        script = (
            "import apikeys\n"
            "try:\n"
            f"    apikeys.KeyStore({str(store_path)!r}, pepper={PEPPER!r}, shared=True)\n"
            "except apikeys.PermissionDenied as denied:\n"
            "    print(denied.status, isinstance(denied, PermissionError), denied.detail)\n"
        )
        result = subprocess.run(
            [interpreter, "-c", script],
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(readable)},
            user="nobody",
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(readable)
    assert result.returncode == 0, result.stderr
    status, is_permission_error, detail = result.stdout.strip().split(" ", 2)
    assert (status, is_permission_error) == ("208", "True")
    assert str(store_path) in detail and "root" in detail and "nobody" in detail, detail
