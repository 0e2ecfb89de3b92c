"""apikeys.drf in a real Django REST framework project (Django's test client):
ApiKeyAuthentication (401 with WWW-Authenticate: Bearer), HasScope (403),
request.auth and request.user, exact bodies."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import django
import pytest

django.setup()

from django.test import Client, override_settings  # noqa: E402

from apikeys import KeyStore  # noqa: E402

from conftest import FORBIDDEN, INTERNAL, PEPPER, UNAUTHORIZED  # noqa: E402


def auth(key: Any) -> Dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key.secret}"}


@pytest.fixture
def client(store_path: str, store: KeyStore) -> Iterator[Client]:
    with override_settings(APIKEYS={"PATH": store_path, "PEPPER": PEPPER}):
        yield Client()


def test_request_auth_and_user_are_the_key(client: Client, keys: Dict[str, Any]) -> None:
    response = client.get("/contacts", **auth(keys["reader"]))
    assert response.status_code == 200
    assert response.json() == {
        "key": keys["reader"].id,
        "user": "Reader",
        "pk": keys["reader"].id,
        "owner": "team-1",
        "authenticated": True,
    }


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer flz_sk_prod_nope", "bearer   "])
def test_a_missing_or_bad_key_gets_the_exact_401(client: Client, header: Any) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/contacts", **extra)
    assert response.status_code == 401
    assert response.content.decode() == UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == "application/json"


def test_another_scheme_is_left_to_other_classes_and_ends_in_401(client: Client) -> None:
    response = client.get("/contacts", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert (response.status_code, response.content.decode()) == (401, UNAUTHORIZED)
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_gets_the_401(client: Client, store: KeyStore, keys: Dict[str, Any]) -> None:
    store.revoke(keys["reader"].id)
    response = client.get("/me", **auth(keys["reader"]))
    assert (response.status_code, response.content.decode()) == (401, UNAUTHORIZED)


def test_scopes_per_method_with_wildcards(client: Client, keys: Dict[str, Any]) -> None:
    response = client.post("/contacts", **auth(keys["reader"]))
    assert (response.status_code, response.content.decode()) == (403, FORBIDDEN)
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.post("/contacts", **auth(keys["writer"])).status_code == 201
    assert client.get("/contacts", **auth(keys["none"])).status_code == 403
    assert client.get("/me", **auth(keys["none"])).status_code == 200


def test_require_scopes_needs_every_scope(client: Client, keys: Dict[str, Any]) -> None:
    assert client.get("/export", **auth(keys["writer"])).content.decode() == FORBIDDEN
    assert client.get("/export", **auth(keys["admin"])).json() == {"key": keys["admin"].id}


def test_a_view_without_the_permission_sees_an_anonymous_user(client: Client) -> None:
    assert client.get("/health").json() == {"user": "AnonymousUser", "auth": None}


def test_a_store_failure_is_a_500(broken_path: str, keys: Dict[str, Any]) -> None:
    with override_settings(APIKEYS={"PATH": broken_path, "PEPPER": PEPPER}):
        response = Client().get("/contacts", **auth(keys["reader"]))
    assert (response.status_code, response.content.decode()) == (500, INTERNAL)
    assert not response.has_header("WWW-Authenticate")
