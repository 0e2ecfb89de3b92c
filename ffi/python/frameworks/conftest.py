"""Fixtures of the framework tests (run in the venv of scripts/venv.sh, where
Django, DRF, FastAPI, Starlette and Flask are installed at pinned versions):
a fresh store per test and three keys in it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

from apikeys import KeyStore, close_shared_stores  # noqa: E402

PEPPER = b"pepper of the framework tests"

UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
FORBIDDEN = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}'
INTERNAL = '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}'


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "keys.redb")


@pytest.fixture
def store(store_path: str) -> Iterator[KeyStore]:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as opened:
        yield opened
    close_shared_stores()


@pytest.fixture
def keys(store: KeyStore) -> Dict[str, Any]:
    """reader: contacts:read; writer: contacts:*; admin: *; none: no scope."""
    return {
        "reader": store.generate("Reader", env="prod", scopes=["contacts:read"], owner="team-1"),
        "writer": store.generate("Writer", scopes=["contacts:*"]),
        "admin": store.generate("Admin", scopes=["*"]),
        "none": store.generate("No scope"),
    }


@pytest.fixture
def broken_path(tmp_path: Path) -> str:
    """A file that is not a store: every open fails (StoreCorrupted)."""
    path = tmp_path / "broken.redb"
    path.write_bytes(b"not a store" * 100)
    return str(path)


def bearer(key: Any) -> Dict[str, str]:
    return {"Authorization": f"Bearer {key.secret}"}
