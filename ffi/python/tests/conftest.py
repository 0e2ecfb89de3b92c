"""Shared fixtures: a fresh store file per test, opened in shared mode."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from apikeys import KeyStore

PEPPER = b"pepper used by the python tests"


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "keys.redb")


@pytest.fixture
def store(store_path: str) -> Iterator[KeyStore]:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as opened:
        yield opened


@pytest.fixture
def unknown_key(tmp_path: Path) -> str:
    """A well-formed key that no store under test knows: made by another store."""
    with KeyStore(str(tmp_path / "elsewhere.redb"), pepper=PEPPER) as other:
        return other.generate("elsewhere", env="prod").secret
