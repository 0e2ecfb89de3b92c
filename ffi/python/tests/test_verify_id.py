"""verify_id and is_valid: the one-call verify (apikeys_key_check) gives the
same answers as verify, in both modes, and refuses what verify refuses."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List

import pytest

from apikeys import Forbidden, InvalidArgument, KeyStore, StoreClosed, Unauthorized

from conftest import PEPPER


@pytest.fixture(params=["exclusive", "shared"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):
    with KeyStore(str(tmp_path / "keys.redb"), pepper=PEPPER, shared=request.param == "shared") as opened:
        yield opened


def test_verify_id_returns_the_id_of_the_accepted_key(any_store: KeyStore) -> None:
    key = any_store.generate("Reader", env="prod", scopes=["contacts:*"])
    assert any_store.verify_id(key.secret) == key.id
    assert any_store.verify_id(key.secret, scope="contacts:read") == key.id
    assert any_store.verify_id(key.secret.encode()) == key.id
    assert any_store.verify_id(key.secret, scope="") == key.id  # "" = no scope
    assert any_store.is_valid(key.secret) is True
    assert any_store.is_valid(key.secret, scope="contacts:write") is True


def test_refusals_are_those_of_verify(any_store: KeyStore, unknown_key: str) -> None:
    key = any_store.generate("Reader", scopes=["contacts:read"])
    revoked = any_store.generate("Revoked")
    any_store.revoke(revoked.id)
    cases = {
        "malformed": key.secret[:-1],
        "not_found": unknown_key,
        "revoked": revoked.secret,
    }
    for reason, presented in cases.items():
        with pytest.raises(Unauthorized) as raised:
            any_store.verify_id(presented)
        assert raised.value.reason == reason
        with pytest.raises(Unauthorized) as full:
            any_store.verify(presented)
        assert full.value.reason == reason
        assert any_store.is_valid(presented) is False
    with pytest.raises(Forbidden):
        any_store.verify_id(key.secret, scope="billing:read")
    assert any_store.is_valid(key.secret, scope="billing:read") is False


def test_a_key_holding_a_nul_is_malformed_not_cut_short(any_store: KeyStore) -> None:
    key = any_store.generate("Keeper")
    # Read up to the NUL, each of these would be the valid key.
    for presented in (key.secret + "\x00", key.secret + "\x00junk", (key.secret + "\x00").encode()):
        with pytest.raises(Unauthorized) as raised:
            any_store.verify_id(presented)
        assert raised.value.reason == "malformed"
        assert any_store.is_valid(presented) is False
    with pytest.raises(Unauthorized):
        any_store.verify_id(key.secret[:10] + "\x00" + key.secret[11:])


def test_a_scope_holding_a_nul_is_not_cut_short(any_store: KeyStore) -> None:
    key = any_store.generate("Reader", scopes=["contacts:read"])
    with pytest.raises(Forbidden):
        any_store.verify_id(key.secret, scope="contacts:read\x00admin")
    assert any_store.is_valid(key.secret, scope="contacts:read\x00") is False


def test_hostile_keys_and_scopes(any_store: KeyStore) -> None:
    key = any_store.generate("Keeper", scopes=["contacts:read"])
    for presented in ("", "x", "a" * (1024 * 1024), "\udcff" * 40, b"\xff\xfe" * 30):
        with pytest.raises(Unauthorized) as raised:
            any_store.verify_id(presented)
        assert raised.value.reason == "malformed"
        assert any_store.is_valid(presented) is False
    with pytest.raises(InvalidArgument):
        any_store.verify_id(key.secret, scope=b"\xff")
    with pytest.raises(InvalidArgument):
        any_store.is_valid(key.secret, scope=b"\xff")  # a bad argument is not a refusal
    for wrong in (None, 42, 3.5):
        with pytest.raises(TypeError):
            any_store.verify_id(wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            any_store.is_valid(key.secret, scope=wrong if wrong is not None else 7)  # type: ignore[arg-type]
    assert any_store.verify_id(key.secret, scope="contacts:read") == key.id


def test_uses_are_counted_as_verify_counts_them(any_store: KeyStore) -> None:
    key = any_store.generate("Counted", scopes=["contacts:read"])
    any_store.verify_id(key.secret)
    any_store.is_valid(key.secret)
    any_store.is_valid(key.secret, scope="billing:read")  # lacking a scope is still a use
    any_store.verify(key.secret)
    any_store.flush()
    (info,) = any_store.list()
    assert info.use_count == 4


def test_a_closed_store_refuses_the_fast_calls(tmp_path: Path) -> None:
    store = KeyStore(str(tmp_path / "closed.redb"))
    key = store.generate("Gone")
    store.close()
    with pytest.raises(StoreClosed):
        store.verify_id(key.secret)
    with pytest.raises(StoreClosed):
        store.is_valid(key.secret)


def test_threads_each_get_their_own_id(any_store: KeyStore) -> None:
    keys = [any_store.generate(f"Thread {i}") for i in range(4)]
    failures: List[BaseException] = []
    seen: Dict[int, set] = {}

    def serve(index: int) -> None:
        try:
            ids = set()
            for _ in range(300):
                ids.add(any_store.verify_id(keys[index].secret))
                assert any_store.is_valid("flz_sk_not_a_key") is False
            seen[index] = ids
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert seen == {i: {key.id} for i, key in enumerate(keys)}
