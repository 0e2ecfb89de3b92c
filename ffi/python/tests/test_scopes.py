"""VerifiedKey.has_scope (used by the DRF permission and for a route's
second scope) decides exactly as the core does: each case is checked both
ways, by the Python rule and by the store's own verify."""

from __future__ import annotations

import pytest

from apikeys import Forbidden, KeyStore, scope_covers

CASES = [
    ("*", "contacts:read", True),
    ("*", "*", True),
    ("contacts:*", "contacts:read", True),
    ("contacts:*", "contacts:notes:write", True),
    ("contacts:*", "contacts:*", True),
    ("contacts:*", "contacts:", False),
    ("contacts:*", "contacts", False),
    ("contacts:*", "contactsx:read", False),
    ("contacts:read", "contacts:read", True),
    ("contacts:read", "contacts:write", False),
    ("contacts:read", "contacts:*", False),
    ("contacts:read", "*", False),
    ("contacts:notes:*", "contacts:notes:read", True),
    ("contacts:notes:*", "contacts:read", False),
    ("billing", "billing:read", False),
]


@pytest.mark.parametrize("granted,required,expected", CASES)
def test_python_and_core_agree_on_wildcards(store: KeyStore, granted: str, required: str, expected: bool) -> None:
    assert scope_covers(granted, required) is expected
    key = store.generate(f"granted {granted}", scopes=[granted])
    verified = store.verify(key.secret)
    assert verified.has_scope(required) is expected
    if expected:
        assert store.verify(key.secret, scope=required).id == key.id
    else:
        with pytest.raises(Forbidden):
            store.verify(key.secret, scope=required)


def test_a_key_without_scopes_holds_none(store: KeyStore) -> None:
    verified = store.verify(store.generate("No scopes").secret)
    assert verified.scopes == ()
    assert not verified.has_scope("contacts:read")


def test_any_of_several_scopes_may_cover(store: KeyStore) -> None:
    verified = store.verify(store.generate("Two", scopes=["billing:read", "contacts:*"]).secret)
    assert verified.has_scope("contacts:write") and verified.has_scope("billing:read")
    assert not verified.has_scope("billing:write")
