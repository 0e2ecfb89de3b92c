"""The numbers _native.py copies from include/apikeys.h match the header, and
every status the header defines has its exception: the copy cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import pytest

from apikeys import _native
from apikeys.errors import _BY_STATUS, ApiKeysError

HEADER = Path(__file__).resolve().parents[3] / "include" / "apikeys.h"


def _enums() -> Dict[str, Dict[str, int]]:
    """Every `enum NAME { APIKEYS_X = n, ... };` of the header, comments removed."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    enums = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*\{(.*?)\}", text, flags=re.S):
        enums[name] = {
            constant: int(value, 0) for constant, value in re.findall(r"\b(APIKEYS_\w+)\s*=\s*(0x[0-9A-Fa-f]+|\d+)", body)
        }
    return enums


def test_the_header_is_where_the_test_expects_it() -> None:
    assert HEADER.is_file(), HEADER
    enums = _enums()
    assert "apikeys_status" in enums and len(enums["apikeys_status"]) >= 19, enums.keys()


@pytest.mark.parametrize(
    "constant,value",
    [(constant, value) for enum in _enums().values() for constant, value in enum.items()],
)
def test_each_header_constant_has_the_same_number_in_native(constant: str, value: int) -> None:
    name = constant[len("APIKEYS_") :]
    assert hasattr(_native, name), f"_native.py lacks {name} = {value} ({constant} in include/apikeys.h)"
    assert getattr(_native, name) == value, f"_native.{name} is {getattr(_native, name)}, the header says {value}"


def test_every_status_has_its_exception_and_no_other_is_invented() -> None:
    in_header = set(_enums()["apikeys_status"].values())
    mapped = set(_BY_STATUS) | {_native.OK}
    assert mapped == in_header, (
        f"statuses without an exception: {sorted(in_header - mapped)}; "
        f"mapped but not in the header: {sorted(mapped - in_header)}"
    )
    assert all(issubclass(cls, ApiKeysError) for cls in _BY_STATUS.values())
