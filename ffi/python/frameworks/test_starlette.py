"""apikeys.asgi.ApiKeyMiddleware in a real Starlette app: app-wide with
per-path scopes, and on one route alone; the key in request.state and in
the ASGI scope; WebSockets refused before they are accepted."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from apikeys import KeyStore, shared_store
from apikeys.asgi import PUBLIC, SCOPE_KEY, ApiKeyMiddleware

from conftest import FORBIDDEN, INTERNAL, PEPPER, UNAUTHORIZED, bearer


async def contacts(request: Request) -> JSONResponse:
    key = request.state.api_key
    assert request.scope[SCOPE_KEY] is key
    return JSONResponse({"key": key.id, "name": key.name})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"key": websocket.state.api_key.id})
    await websocket.close()


def make_app(path: str) -> Starlette:
    routes = [
        Route("/contacts", contacts),
        Route("/admin", contacts),
        Route("/health", health),
        WebSocketRoute("/feed", feed),
    ]
    middleware = [
        Middleware(
            ApiKeyMiddleware,
            path=path,
            pepper=PEPPER,
            scope={"/health": PUBLIC, "/admin": "admin:*", "/contacts": "contacts:read"},
            default=None,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)


@pytest.fixture
def client(store_path: str, store: KeyStore) -> Any:
    with TestClient(make_app(store_path)) as test_client:
        yield test_client


def test_the_key_is_in_request_state(client: Any, keys: Dict[str, Any]) -> None:
    response = client.get("/contacts", headers=bearer(keys["reader"]))
    assert response.status_code == 200
    assert response.json() == {"key": keys["reader"].id, "name": "Reader"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer flz_sk_prod_nope"}])
def test_the_exact_401(client: Any, headers: Dict[str, str]) -> None:
    response = client.get("/contacts", headers=headers)
    assert (response.status_code, response.text) == (401, UNAUTHORIZED)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(UNAUTHORIZED))


def test_two_authorization_headers_are_refused(client: Any, keys: Dict[str, Any]) -> None:
    response = client.get(
        "/contacts", headers=[("Authorization", f"Bearer {keys['reader'].secret}"), ("Authorization", "Bearer x")]
    )
    assert (response.status_code, response.text) == (401, UNAUTHORIZED)


def test_the_exact_403_and_wildcards(client: Any, keys: Dict[str, Any]) -> None:
    response = client.get("/admin", headers=bearer(keys["writer"]))
    assert (response.status_code, response.text) == (403, FORBIDDEN)
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.get("/admin", headers=bearer(keys["admin"])).status_code == 200
    assert client.get("/contacts", headers=bearer(keys["writer"])).status_code == 200


def test_a_public_path_passes(client: Any) -> None:
    assert client.get("/health").text == "ok"


def test_a_websocket_with_a_key_is_accepted_and_without_refused(client: Any, keys: Dict[str, Any]) -> None:
    with client.websocket_connect("/feed", headers=bearer(keys["reader"])) as websocket:
        assert websocket.receive_json() == {"key": keys["reader"].id}
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/feed"):
            pass
    assert refused.value.code == 1008


def test_on_one_route_alone(store_path: str, store: KeyStore, keys: Dict[str, Any]) -> None:
    guarded = Middleware(ApiKeyMiddleware, path=store_path, pepper=PEPPER, scope="contacts:read")
    app = Starlette(routes=[Route("/contacts", contacts, middleware=[guarded]), Route("/health", health)])
    with TestClient(app) as test_client:
        assert test_client.get("/health").text == "ok"
        assert test_client.get("/contacts").text == UNAUTHORIZED
        assert test_client.get("/contacts", headers=bearer(keys["none"])).text == FORBIDDEN
        assert test_client.get("/contacts", headers=bearer(keys["reader"])).status_code == 200


def test_a_store_failure_is_a_500(broken_path: str, keys: Dict[str, Any]) -> None:
    with TestClient(make_app(broken_path)) as broken:
        response = broken.get("/contacts", headers=bearer(keys["reader"]))
        assert (response.status_code, response.text) == (500, INTERNAL)
        with pytest.raises(WebSocketDisconnect) as refused:
            with broken.websocket_connect("/feed", headers=bearer(keys["reader"])):
                pass
        assert refused.value.code == 1011


def test_the_shutdown_closes_the_workers_store(store_path: str, store: KeyStore, keys: Dict[str, Any]) -> None:
    with TestClient(make_app(store_path)) as test_client:
        assert test_client.get("/contacts", headers=bearer(keys["reader"])).status_code == 200
        served = shared_store(store_path, pepper=PEPPER)
    assert served.closed
    assert {info.id: info.use_count for info in store.list()}[keys["reader"].id] == 1
