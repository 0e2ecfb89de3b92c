"""apikeys.flask: @require_key(scope=...) in a real Flask app (Flask's test client)."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from flask import Flask, g

from apikeys import KeyStore
from apikeys.flask import ApiKeys, current_key, require_key

from conftest import FORBIDDEN, INTERNAL, PEPPER, UNAUTHORIZED, bearer


def make_app(path: str) -> Flask:
    app = Flask(__name__)
    app.config["APIKEYS_PATH"] = path
    app.config["APIKEYS_PEPPER"] = PEPPER

    ApiKeys(app)

    @app.get("/contacts")
    @require_key(scope="contacts:read")
    def contacts() -> Dict[str, Any]:
        return {"key": g.api_key.id, "name": g.api_key.name, "scopes": list(g.api_key.scopes)}

    @app.post("/contacts")
    @require_key(scope="contacts:write")
    def add_contact() -> Dict[str, Any]:
        return {"added_by": g.api_key.id}

    @app.get("/me")
    @require_key()
    def me() -> Dict[str, Any]:
        assert current_key() is g.api_key
        return {"owner": current_key().owner}

    @app.get("/unguarded")
    def unguarded() -> str:
        try:
            current_key()
        except RuntimeError as refused:
            return str(refused)
        return "a key outside @require_key"

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app


@pytest.fixture
def client(store_path: str, store: KeyStore) -> Any:
    return make_app(store_path).test_client()


def test_a_valid_key_reaches_the_view_with_g_api_key(client: Any, keys: Dict[str, Any]) -> None:
    response = client.get("/contacts", headers=bearer(keys["reader"]))
    assert response.status_code == 200
    assert response.get_json() == {"key": keys["reader"].id, "name": "Reader", "scopes": ["contacts:read"]}
    assert client.get("/me", headers=bearer(keys["reader"])).get_json() == {"owner": "team-1"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer flz_sk_nope"}])
def test_a_missing_or_bad_key_gets_the_exact_401(client: Any, headers: Dict[str, str]) -> None:
    response = client.get("/contacts", headers=headers)
    assert response.status_code == 401
    assert response.get_data(as_text=True) == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"


def test_a_revoked_key_gets_the_401(client: Any, store: KeyStore, keys: Dict[str, Any]) -> None:
    assert client.get("/me", headers=bearer(keys["admin"])).status_code == 200
    store.revoke(keys["admin"].id)
    response = client.get("/me", headers=bearer(keys["admin"]))
    assert (response.status_code, response.get_data(as_text=True)) == (401, UNAUTHORIZED)


def test_per_route_scopes_with_wildcards(client: Any, keys: Dict[str, Any]) -> None:
    response = client.post("/contacts", headers=bearer(keys["reader"]))
    assert response.status_code == 403
    assert response.get_data(as_text=True) == FORBIDDEN
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.post("/contacts", headers=bearer(keys["writer"])).status_code == 200  # contacts:*
    assert client.post("/contacts", headers=bearer(keys["admin"])).status_code == 200  # *
    assert client.get("/contacts", headers=bearer(keys["none"])).status_code == 403
    assert client.get("/me", headers=bearer(keys["none"])).status_code == 200


def test_an_undecorated_view_needs_no_key(client: Any) -> None:
    assert client.get("/health").get_data(as_text=True) == "ok"


def test_a_store_failure_is_a_500(broken_path: str, keys: Dict[str, Any]) -> None:
    response = make_app(broken_path).test_client().get("/contacts", headers=bearer(keys["reader"]))
    assert response.status_code == 500
    assert response.get_data(as_text=True) == INTERNAL
    assert "WWW-Authenticate" not in response.headers


def test_usage_is_counted_once_per_request(client: Any, store: KeyStore, keys: Dict[str, Any]) -> None:
    for _ in range(3):
        client.get("/contacts", headers=bearer(keys["reader"]))
    from apikeys import close_shared_stores

    close_shared_stores()  # the app's store: flushes its counts
    counts = {info.id: info.use_count for info in store.list()}
    assert counts[keys["reader"].id] == 3


def test_apikeys_needs_a_path() -> None:
    with pytest.raises(RuntimeError, match="APIKEYS_PATH"):
        ApiKeys(Flask(__name__))


def test_the_decorator_reads_the_request_contexts_flask_gives(client: Any, keys: Dict[str, Any]) -> None:
    """With the pinned Flask the decorator reads the contexts directly, having
    checked on a first request that they are the proxies' own objects."""
    import apikeys.flask as integration

    assert client.get("/me", headers=bearer(keys["reader"])).status_code == 200
    assert integration._contexts_checked is True


def test_with_other_flask_internals_the_proxies_are_used(client: Any, keys: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import apikeys.flask as integration

    monkeypatch.setattr(integration, "_contexts_checked", False)
    assert client.get("/me", headers=bearer(keys["reader"])).get_json() == {"owner": "team-1"}
    assert client.get("/me").status_code == 401


@pytest.mark.parametrize("direct", [True, False], ids=["context-variables", "proxies"])
def test_current_key_is_the_requests_key_and_only_there(
    client: Any, keys: Dict[str, Any], monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    """current_key() is g.api_key (the view asserts it), through the context
    variables or through the proxies, and a RuntimeError in a request that
    no @require_key checked, and outside any request."""
    import apikeys.flask as integration

    if not direct:
        monkeypatch.setattr(integration, "_contexts_checked", False)
    assert client.get("/me", headers=bearer(keys["reader"])).get_json() == {"owner": "team-1"}
    answer = client.get("/unguarded", headers=bearer(keys["reader"])).get_data(as_text=True)
    assert "no key checked by @require_key" in answer
    with pytest.raises(RuntimeError, match="no key checked"):
        current_key()
