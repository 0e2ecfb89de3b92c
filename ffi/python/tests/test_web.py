"""apikeys.web.Authenticator, the check every integration makes: a key's
details read once per worker, then one native call per request that still
enforces revocation, scope and expiry and counts each use once."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from apikeys import HttpAnswer, KeyStore, VerifiedKey, web
from apikeys.errors import ApiKeysError, Forbidden, Unauthorized
from apikeys.web import Authenticator, StoreSource

from conftest import PEPPER

UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'


@pytest.fixture
def authenticator(store: KeyStore) -> Iterator[Authenticator]:
    yield Authenticator(StoreSource(store=store))


def uses(store: KeyStore, key_id: str) -> int:
    return {info.id: info.use_count for info in store.list()}[key_id]


def test_each_request_is_verified_and_counted_once(store: KeyStore, authenticator: Authenticator) -> None:
    key = store.generate("Reader", scopes=["contacts:read"])
    first = authenticator.check(f"Bearer {key.secret}", "contacts:read")
    again = authenticator.check(f"Bearer {key.secret}", "contacts:read")
    assert isinstance(first, VerifiedKey) and first.id == key.id and first.scopes == ("contacts:read",)
    assert again == first
    assert uses(store, key.id) == 2


def test_a_known_key_is_still_refused_once_revoked(store: KeyStore, authenticator: Authenticator) -> None:
    key = store.generate("Reader")
    assert isinstance(authenticator.check(f"Bearer {key.secret}"), VerifiedKey)
    store.revoke(key.id)
    answer = authenticator.check(f"Bearer {key.secret}")
    assert isinstance(answer, HttpAnswer) and (answer.status, answer.body) == (401, UNAUTHORIZED)


def test_a_known_key_still_needs_each_routes_scope(store: KeyStore, authenticator: Authenticator) -> None:
    key = store.generate("Reader", scopes=["contacts:*"])
    assert isinstance(authenticator.check(f"Bearer {key.secret}", "contacts:read"), VerifiedKey)
    assert isinstance(authenticator.check(f"Bearer {key.secret}", "contacts:write"), VerifiedKey)
    refused = authenticator.check(f"Bearer {key.secret}", "billing:read")
    assert isinstance(refused, HttpAnswer) and refused.status == 403
    assert uses(store, key.id) == 3  # a valid key without the scope is a use


def test_two_keys_keep_their_own_details(store: KeyStore, authenticator: Authenticator) -> None:
    one, two = store.generate("One", owner="a"), store.generate("Two", owner="b")
    for _ in range(2):
        assert authenticator.check(f"Bearer {one.secret}").owner == "a"  # type: ignore[union-attr]
        assert authenticator.check(f"Bearer {two.secret}").owner == "b"  # type: ignore[union-attr]


def test_tokens_of_one_hash_never_share_details(store: KeyStore, authenticator: Authenticator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "hash", lambda token: 0, raising=False)  # every token collides
    one, two = store.generate("One"), store.generate("Two")
    assert authenticator.check(f"Bearer {one.secret}").id == one.id  # type: ignore[union-attr]
    assert authenticator.check(f"Bearer {two.secret}").id == two.id  # type: ignore[union-attr]
    assert authenticator.check(f"Bearer {one.secret}").id == one.id  # type: ignore[union-attr]
    # The price of a collision: the colliding request is counted twice.
    assert uses(store, one.id) == 3 and uses(store, two.id) == 2


def test_details_are_read_again_after_a_while(store: KeyStore, authenticator: Authenticator, monkeypatch: pytest.MonkeyPatch) -> None:
    key = store.generate("Reader")
    now = [1000.0]
    monkeypatch.setattr(web, "monotonic", lambda: now[0])
    first = authenticator.check(f"Bearer {key.secret}")
    now[0] += web.DETAILS_SECONDS + 1
    later = authenticator.check(f"Bearer {key.secret}")
    assert later == first and later is not first, "read again, not reused"
    assert uses(store, key.id) == 2


def test_a_new_store_starts_with_nothing_known(store_path: str, store: KeyStore) -> None:
    key = store.generate("Reader")
    current = [store]
    authenticator = Authenticator(StoreSource(store=lambda: current[0]))
    assert isinstance(authenticator.check(f"Bearer {key.secret}"), VerifiedKey)
    with KeyStore(store_path + ".other", pepper=PEPPER, shared=True) as other:
        current[0] = other
        answer = authenticator.check(f"Bearer {key.secret}")
        assert isinstance(answer, HttpAnswer) and answer.status == 401, "the other store does not know the key"


@pytest.mark.parametrize(
    "header",
    ["bearer   {}", "BEARER {}", "\tBearer {} ", b"Bearer {}"],
)
def test_header_spellings_the_core_accepts(store: KeyStore, authenticator: Authenticator, header: Any) -> None:
    key = store.generate("Spelled")
    value = header.replace(b"{}", key.secret.encode()) if isinstance(header, bytes) else header.format(key.secret)
    for _ in range(2):
        assert authenticator.check(value).id == key.id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "spelling",
    [
        "Bearer {}", "bearer   {}", "\tBearer {} ", "Bearer {}\0", "Bearer {}\0junk", "\0Bearer {}", "Bearer {}é",
        "Bearer {}\ud800", "Bearer {} x", "Basic {}", "Bearer {}=", "Bearer" + " " * 9000 + "{}",
        b"Bearer {}", b"Bearer {}\0", b"Bearer {}\xff", b"Bearer {}\xc3\xa9", bytearray(b"Bearer {}"),
    ],
)
@pytest.mark.parametrize("scope", [None, "contacts:read", "contacts:write", "", "contacts:read\0", "\ud800"])
def test_the_hot_path_answers_as_the_core_does(store: KeyStore, authenticator: Authenticator, spelling: Any, scope: Any) -> None:
    """A header is read by the core in both paths: the first request of a
    key (apikeys_header_verify, with every detail) and the next ones
    (apikeys_header_check, the id only). Whatever the spelling, NULs,
    encodings and scope, the second and third answers are the first's, and
    the first is what verify_header itself says."""
    key = store.generate("Spelled", scopes=["contacts:read"])
    secret = key.secret.encode() if isinstance(spelling, (bytes, bytearray)) else key.secret
    header = spelling.replace(b"{}", secret) if isinstance(spelling, (bytes, bytearray)) else spelling.format(secret)
    try:
        expected: Any = store.verify_header(header, scope=scope).id
    except ApiKeysError as refused:
        expected = type(refused)
    answers = []
    for _ in range(3):
        outcome = authenticator.check(header, scope)
        answers.append(outcome.id if isinstance(outcome, VerifiedKey) else outcome.status)
    status = {Unauthorized: 401, Forbidden: 403}.get(expected, 500) if isinstance(expected, type) else None
    assert answers == [expected if status is None else status] * 3, (header, scope, expected, answers)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer a b", "Bearer flz_sk_prod_nope", "Bearer ab\0cd"])
def test_refusals_are_the_exact_401(store: KeyStore, authenticator: Authenticator, header: Any) -> None:
    answer = authenticator.check(header)
    assert isinstance(answer, HttpAnswer) and (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert ("WWW-Authenticate", "Bearer") in answer.headers
