"""apikeys.shared_store: one store per process, opened after the fork, closed
(with its usage flushed) at interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

import apikeys
from apikeys import KeyStore, close_shared_stores, process, shared_store

from conftest import PEPPER


@pytest.fixture(autouse=True)
def no_stores_left_open() -> Iterator[None]:
    yield
    close_shared_stores()


def test_the_same_path_and_options_give_the_same_store(store_path: str, tmp_path: Path) -> None:
    first = shared_store(store_path, pepper=PEPPER)
    assert first.shared and not first.closed
    assert shared_store(store_path, pepper=PEPPER) is first
    relative = os.path.relpath(store_path)
    assert shared_store(relative, pepper=PEPPER.decode()) is first, "the same file and pepper, spelled otherwise"
    assert shared_store(Path(store_path), pepper=PEPPER) is first


def test_other_options_give_another_store(store_path: str, tmp_path: Path) -> None:
    first = shared_store(store_path, pepper=PEPPER)
    other_file = shared_store(str(tmp_path / "other.redb"), pepper=PEPPER)
    assert other_file is not first and other_file.path.endswith("other.redb")


def test_a_closed_store_is_opened_again(store_path: str) -> None:
    first = shared_store(store_path, pepper=PEPPER)
    first.close()
    again = shared_store(store_path, pepper=PEPPER)
    assert again is not first and not again.closed


def test_close_shared_stores_flushes_usage(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as admin:
        key = admin.generate("Counted")
    store = shared_store(store_path, pepper=PEPPER)
    for _ in range(3):
        store.verify(key.secret)
    close_shared_stores()
    assert store.closed
    with KeyStore(store_path, pepper=PEPPER, shared=True) as admin:
        assert admin.list()[0].use_count == 3


def _in_child(function) -> bytes:  # type: ignore[no-untyped-def]
    """Runs function() in a forked child and returns what it wrote."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            outcome = function()
        except BaseException as error:  # reported, never hidden
            outcome = repr(error).encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read()
    os.waitpid(pid, 0)
    return outcome


def test_a_forked_child_gets_its_own_store(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as admin:
        key = admin.generate("Forked")
    parent_store = shared_store(store_path, pepper=PEPPER)
    parent_store.verify(key.secret)

    def child() -> bytes:
        store = shared_store(store_path, pepper=PEPPER)
        fresh = store is not parent_store
        verified = store.verify(key.secret).id == key.id  # the inherited one would raise UsedAfterFork
        store.close()
        return f"{fresh} {verified}".encode()

    assert _in_child(child) == b"True True"
    assert shared_store(store_path, pepper=PEPPER) is parent_store, "the parent keeps its own"
    assert parent_store.verify(key.secret).id == key.id


def test_a_fork_python_did_not_see_is_caught_by_the_pid_check(store_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shared_store(store_path, pepper=PEPPER)
    # As if the registry had been filled by a parent process (a fork made by
    # C code runs no os.register_at_fork hook).
    monkeypatch.setattr(process, "_owner", os.getpid() + 1)
    again = shared_store(store_path, pepper=PEPPER)
    assert again is not first
    assert process._owner == os.getpid()
    first.close()


def test_usage_is_flushed_when_the_interpreter_exits(store_path: str, tmp_path: Path) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as admin:
        key = admin.generate("At exit")
    script = textwrap.dedent(
        f"""
        import apikeys
        store = apikeys.shared_store({store_path!r}, pepper={PEPPER!r})
        for _ in range(5):
            store.verify({key.secret!r})
        """
    )
    # A fresh interpreter that ends normally, without closing anything.
    package_dir = Path(apikeys.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, PYTHONPATH=str(package_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with KeyStore(store_path, pepper=PEPPER, shared=True) as admin:
        assert admin.list()[0].use_count == 5


def test_a_reference_resolves_its_path_once(store_path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the integrations hold: the path made absolute when the
    reference is made, then the same store as shared_store's on every get."""
    monkeypatch.chdir(Path(store_path).parent)
    reference = process.SharedStoreRef(Path(store_path).name, pepper=PEPPER)
    monkeypatch.chdir(tmp_path.parent)  # a later change of directory changes nothing
    assert reference.path == store_path
    store = reference.get()
    assert store is reference.get() is shared_store(store_path, pepper=PEPPER)
    store.close()
    assert reference.get() is not store and not reference.get().closed
    with pytest.raises(TypeError):
        process.SharedStoreRef(store_path, shared="yes")  # type: ignore[arg-type]
