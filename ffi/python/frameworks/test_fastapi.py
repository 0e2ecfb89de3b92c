"""apikeys.fastapi: the ApiKey dependency in a real FastAPI app (Starlette's
TestClient): exact answers, the key as the dependency's value, scopes, and
the security scheme in /openapi.json."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from fastapi import Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient

from apikeys import KeyStore, VerifiedKey, shared_store
from apikeys.fastapi import ApiKey, install

from conftest import FORBIDDEN, INTERNAL, PEPPER, UNAUTHORIZED, bearer


def make_app(path: str, installed: bool = True) -> FastAPI:
    app = FastAPI()
    if installed:
        install(app)
    api_key = ApiKey(path=path, pepper=PEPPER)
    writer = ApiKey(path=path, pepper=PEPPER, scope="contacts:write")

    @app.get("/contacts")
    async def contacts(key: VerifiedKey = Security(api_key, scopes=["contacts:read"])) -> Dict[str, Any]:
        return {"key": key.id, "name": key.name}

    @app.post("/contacts")
    def add_contact(key: VerifiedKey = Depends(writer)) -> Dict[str, Any]:
        return {"added_by": key.id}

    @app.get("/export")
    async def export(key: VerifiedKey = Security(api_key, scopes=["contacts:read", "billing:read"])) -> Dict[str, Any]:
        return {"key": key.id}

    @app.get("/me")
    async def me(key: VerifiedKey = Depends(api_key)) -> Dict[str, Any]:
        return {"owner": key.owner, "env": key.env}

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.websocket("/feed")
    async def feed(websocket: WebSocket, key: VerifiedKey = Depends(api_key)) -> None:
        await websocket.accept()
        await websocket.send_json({"key": key.id})
        await websocket.close()

    return app


@pytest.fixture
def client(store_path: str, store: KeyStore) -> Any:
    with TestClient(make_app(store_path)) as test_client:
        yield test_client


def test_the_dependency_returns_the_verified_key(client: Any, keys: Dict[str, Any]) -> None:
    response = client.get("/contacts", headers=bearer(keys["reader"]))
    assert response.status_code == 200
    assert response.json() == {"key": keys["reader"].id, "name": "Reader"}
    assert client.get("/me", headers=bearer(keys["reader"])).json() == {"owner": "team-1", "env": "prod"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Token abc"}, {"Authorization": "Bearer flz_sk_prod_nope"}])
def test_a_missing_or_bad_key_gets_the_exact_401(client: Any, headers: Dict[str, str]) -> None:
    response = client.get("/contacts", headers=headers)
    assert response.status_code == 401
    assert response.text == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"


def test_revoked_key_is_refused(client: Any, store: KeyStore, keys: Dict[str, Any]) -> None:
    store.revoke(keys["reader"].id)
    response = client.get("/me", headers=bearer(keys["reader"]))
    assert (response.status_code, response.text) == (401, UNAUTHORIZED)


def test_scopes_of_the_route_and_of_the_instance(client: Any, keys: Dict[str, Any]) -> None:
    response = client.post("/contacts", headers=bearer(keys["reader"]))
    assert (response.status_code, response.text) == (403, FORBIDDEN)
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.post("/contacts", headers=bearer(keys["writer"])).status_code == 200
    assert client.get("/contacts", headers=bearer(keys["none"])).status_code == 403
    # Two scopes: every one is required, wildcards as in the core.
    assert client.get("/export", headers=bearer(keys["writer"])).text == FORBIDDEN
    assert client.get("/export", headers=bearer(keys["admin"])).status_code == 200


def test_a_store_failure_is_a_500(broken_path: str, keys: Dict[str, Any]) -> None:
    with TestClient(make_app(broken_path)) as broken:
        response = broken.get("/me", headers=bearer(keys["reader"]))
    assert (response.status_code, response.text) == (500, INTERNAL)
    assert "www-authenticate" not in response.headers


def test_without_install_the_status_and_header_still_hold(store_path: str, store: KeyStore) -> None:
    with TestClient(make_app(store_path, installed=False)) as bare:
        response = bare.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Invalid or missing API key"}}}


def test_openapi_declares_the_bearer_scheme_on_each_protected_route(client: Any) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"] == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "apikeys",
            "description": "An API key: `Authorization: Bearer flz_sk_...`",
        }
    }
    paths = document["paths"]
    assert paths["/contacts"]["get"]["security"] == [{"ApiKey": ["contacts:read"]}]
    assert paths["/me"]["get"]["security"] == [{"ApiKey": []}]
    assert paths["/contacts"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in paths["/health"]["get"]
    # The dependency's own parameters (request, security scopes) are not API parameters.
    assert "parameters" not in paths["/me"]["get"]


def test_the_shutdown_closes_the_workers_store_and_flushes_usage(store_path: str, store: KeyStore, keys: Dict[str, Any]) -> None:
    with TestClient(make_app(store_path)) as test_client:
        for _ in range(3):
            assert test_client.get("/me", headers=bearer(keys["reader"])).status_code == 200
        served = shared_store(store_path, pepper=PEPPER)
        assert not served.closed
    assert served.closed, "install(app) closes the process's stores at the lifespan's shutdown"
    counts = {info.id: info.use_count for info in store.list()}
    assert counts[keys["reader"].id] == 3


def test_a_websocket_route_gets_the_key_too(client: Any, keys: Dict[str, Any]) -> None:
    with client.websocket_connect("/feed", headers=bearer(keys["reader"])) as websocket:
        assert websocket.receive_json() == {"key": keys["reader"].id}
