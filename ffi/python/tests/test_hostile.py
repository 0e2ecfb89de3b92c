"""Hostile and mistaken input: every case ends in a Python exception (or a
plain refusal), never a crash, and the store loses nothing."""

from __future__ import annotations

from datetime import datetime

import pytest

from apikeys import Forbidden, InvalidArgument, KeyStore, Unauthorized, is_well_formed

ONE_MIB = 1024 * 1024


@pytest.fixture
def keeper(store: KeyStore):
    """A key made before the abuse: it must still work afterwards."""
    key = store.generate("Keeper", env="prod", scopes=["contacts:read"])
    yield key
    assert store.verify(key.secret, scope="contacts:read").id == key.id
    assert [info.id for info in store.list()] == [key.id], "refused input must create nothing"


INVALID_UTF8 = b"\xff\xfe\xc3\x28 not utf-8"


def test_invalid_utf8_names_and_scopes_are_invalid_arguments(store: KeyStore, keeper) -> None:
    with pytest.raises(InvalidArgument):
        store.generate(INVALID_UTF8)
    with pytest.raises(InvalidArgument):
        store.generate("ok", scopes=[INVALID_UTF8.replace(b" ", b"")])
    with pytest.raises(InvalidArgument):
        store.generate("ok", owner=INVALID_UTF8)
    # A str with a lone surrogate is passed through as invalid UTF-8 too.
    with pytest.raises(InvalidArgument):
        store.generate("bad \udcff name")


def test_invalid_utf8_keys_are_unauthorized_not_crashes(store: KeyStore, keeper) -> None:
    with pytest.raises(Unauthorized) as raised:
        store.verify(INVALID_UTF8)
    assert raised.value.reason == "malformed"
    assert is_well_formed(INVALID_UTF8) is False
    with pytest.raises(Unauthorized) as header:
        store.verify_header(b"Bearer " + INVALID_UTF8.replace(b" ", b""))
    assert header.value.reason == "bad_header"
    with pytest.raises(InvalidArgument):
        store.revoke_key(INVALID_UTF8)
    with pytest.raises(InvalidArgument):
        store.revoke(INVALID_UTF8)


def test_embedded_nul_bytes(store: KeyStore, keeper) -> None:
    with pytest.raises(InvalidArgument):
        store.generate("name\x00hidden")
    with pytest.raises(Unauthorized) as raised:
        store.verify(keeper.secret + "\x00")
    assert raised.value.reason == "malformed"
    with pytest.raises(Unauthorized) as prefix:
        store.verify(keeper.secret[:10] + "\x00" + keeper.secret[11:])
    assert prefix.value.reason == "malformed"
    with pytest.raises(Unauthorized) as header:
        store.verify_header("Bearer " + keeper.secret + "\x00")
    assert header.value.reason == "bad_header"


def test_one_mebibyte_strings(store: KeyStore, keeper) -> None:
    huge = "a" * ONE_MIB
    with pytest.raises(InvalidArgument):
        store.generate(huge)
    with pytest.raises(InvalidArgument):
        store.generate("ok", owner=huge)
    with pytest.raises(InvalidArgument):
        store.generate("ok", scopes=[huge])
    with pytest.raises(Unauthorized) as key:
        store.verify(huge)
    assert key.value.reason == "malformed"
    with pytest.raises(Unauthorized) as header:
        store.verify_header("Bearer " + huge)
    assert header.value.reason == "malformed"
    assert is_well_formed(huge) is False


@pytest.mark.parametrize(
    "call",
    [
        lambda s, k: s.generate(None),
        lambda s, k: s.generate(42),
        lambda s, k: s.generate("ok", env=7),
        lambda s, k: s.generate("ok", scopes="contacts:read"),
        lambda s, k: s.generate("ok", scopes=[None]),
        lambda s, k: s.generate("ok", scopes=5),
        lambda s, k: s.generate("ok", expires_at="tomorrow"),
        lambda s, k: s.generate("ok", expires_at=True),
        lambda s, k: s.verify(None),
        lambda s, k: s.verify(12345),
        lambda s, k: s.verify(k.secret, scope=3),
        lambda s, k: s.verify_header(3.5),
        lambda s, k: s.revoke(None),
        lambda s, k: s.revoke_key(99),
        lambda s, k: s.rotate(k.id, grace_seconds="1 day"),
        lambda s, k: s.list(status=1),
        lambda s, k: s.list(unused_since="yesterday"),
        lambda s, k: is_well_formed(None),
    ],
)
def test_wrong_types_raise_type_error(store: KeyStore, keeper, call) -> None:
    with pytest.raises(TypeError):
        call(store, keeper)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, k: s.generate(""),
        lambda s, k: s.generate("   "),
        lambda s, k: s.generate("ok", env="PROD!"),
        lambda s, k: s.generate("ok", scopes=["two words"]),
        lambda s, k: s.generate("ok", scopes=[""]),
        lambda s, k: s.generate("ok", scopes=["bad*scope"]),
        lambda s, k: s.generate("ok", expires_at=0),
        lambda s, k: s.generate("ok", expires_at=-5),
        lambda s, k: s.generate("ok", expires_at=datetime(2100, 1, 1)),  # naive: ambiguous
        lambda s, k: s.rotate(k.id, grace_seconds=-1),
        lambda s, k: s.list(status="bogus"),
    ],
)
def test_bad_values_raise_invalid_argument(store: KeyStore, keeper, call) -> None:
    with pytest.raises(InvalidArgument) as raised:
        call(store, keeper)
    assert isinstance(raised.value, ValueError)
    assert raised.value.detail


def test_wrong_types_when_opening(store_path: str) -> None:
    with pytest.raises(TypeError):
        KeyStore(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        KeyStore(store_path, pepper=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        KeyStore(store_path, shared="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KeyStore(INVALID_UTF8)


def test_a_required_scope_that_is_not_a_scope_is_forbidden(store: KeyStore, keeper) -> None:
    # The library treats the required scope as a name to look up: one that
    # no key can hold is refused like any missing scope, and never crashes.
    for scope in ("not a scope", "a" * ONE_MIB, "x\x00y"):
        with pytest.raises(Forbidden):
            store.verify(keeper.secret, scope=scope)
    with pytest.raises(InvalidArgument):
        store.verify(keeper.secret, scope=b"\xff")
