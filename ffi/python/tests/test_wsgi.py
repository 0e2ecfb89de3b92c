"""apikeys.wsgi.ApiKeyMiddleware, driven through wsgiref's WSGI validator
(the standard library's checker of the WSGI protocol): exact bodies and
headers of every answer, the key in the environ, per-route scopes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from apikeys import KeyStore, VerifiedKey, close_shared_stores
from apikeys.wsgi import ENVIRON_KEY, PUBLIC, ApiKeyMiddleware

from conftest import PEPPER

UNAUTHORIZED = b'{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
FORBIDDEN = b'{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}'
INTERNAL = b'{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}'


def application(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    key: Optional[VerifiedKey] = environ.get(ENVIRON_KEY)
    body = json.dumps({"key": key.id if key else None, "path": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def call(app: Any, path: str, authorization: Optional[str] = None, method: str = "GET") -> Tuple[str, Dict[str, str], bytes]:
    environ: Dict[str, Any] = {"SCRIPT_NAME": "", "QUERY_STRING": "", "PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    answered: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        answered["status"], answered["headers"] = status, headers
        return lambda data: None

    result = validator(app)(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    headers = {name: value for name, value in answered["headers"]}
    assert len(headers) == len(answered["headers"]), "no header sent twice"
    return answered["status"], headers, body


@pytest.fixture(autouse=True)
def closes_stores() -> Any:
    yield
    close_shared_stores()


@pytest.fixture
def keys(store: KeyStore) -> Dict[str, Any]:
    return {
        "reader": store.generate("Reader", env="prod", scopes=["contacts:read"]),
        "admin": store.generate("Admin", scopes=["*"]),
        "revoked": store.generate("Revoked", scopes=["*"]),
    }


@pytest.fixture
def app(store_path: str, store: KeyStore) -> ApiKeyMiddleware:
    return ApiKeyMiddleware(
        application,
        path=store_path,
        pepper=PEPPER,
        scope={"/health": PUBLIC, "/contacts": "contacts:read", "/admin": "admin:*", "/": None},
    )


def test_a_valid_key_reaches_the_app_with_the_key_in_the_environ(app: Any, keys: Dict[str, Any]) -> None:
    status, headers, body = call(app, "/contacts/1", f"Bearer {keys['reader'].secret}")
    assert status == "200 OK"
    assert json.loads(body) == {"key": keys["reader"].id, "path": "/contacts/1"}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer flz_sk_prod_notakey", "bearer  flz_sk_x y"],
)
def test_a_missing_or_unusable_key_gets_the_exact_401(app: Any, keys: Dict[str, Any], authorization: Optional[str]) -> None:
    status, headers, body = call(app, "/contacts", authorization)
    assert status == "401 Unauthorized"
    assert body == UNAUTHORIZED
    assert headers == {"Content-Type": "application/json", "WWW-Authenticate": "Bearer", "Content-Length": str(len(UNAUTHORIZED))}


def test_unknown_and_revoked_keys_get_the_same_401(app: Any, store: KeyStore, keys: Dict[str, Any], unknown_key: str) -> None:
    store.revoke(keys["revoked"].id)
    for secret in (unknown_key, keys["revoked"].secret):
        status, headers, body = call(app, "/", f"Bearer {secret}")
        assert (status, body, headers["WWW-Authenticate"]) == ("401 Unauthorized", UNAUTHORIZED, "Bearer")


def test_a_key_without_the_route_scope_gets_the_exact_403(app: Any, keys: Dict[str, Any]) -> None:
    status, headers, body = call(app, "/admin/users", f"Bearer {keys['reader'].secret}")
    assert status == "403 Forbidden"
    assert body == FORBIDDEN
    assert headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert headers["Content-Type"] == "application/json"


def test_wildcards_are_the_cores(app: Any, keys: Dict[str, Any]) -> None:
    for path in ("/admin/users", "/contacts", "/anything"):
        status, _, body = call(app, path, f"Bearer {keys['admin'].secret}")
        assert status == "200 OK", path


def test_a_public_route_needs_no_key(app: Any) -> None:
    status, _, body = call(app, "/health")
    assert status == "200 OK" and json.loads(body)["key"] is None


def test_a_scope_function_decides_per_request(store_path: str, keys: Dict[str, Any]) -> None:
    def scope_for(environ: Dict[str, Any]) -> Optional[str]:
        return "contacts:read" if environ["REQUEST_METHOD"] == "GET" else "contacts:write"

    app = ApiKeyMiddleware(application, path=store_path, pepper=PEPPER, scope=scope_for)
    assert call(app, "/contacts", f"Bearer {keys['reader'].secret}")[0] == "200 OK"
    assert call(app, "/contacts", f"Bearer {keys['reader'].secret}", method="POST")[0] == "403 Forbidden"


def test_a_store_failure_is_a_500_never_a_401(tmp_path: Path, keys: Dict[str, Any]) -> None:
    broken = tmp_path / "broken.redb"
    broken.write_bytes(b"not a store" * 100)
    app = ApiKeyMiddleware(application, path=str(broken), pepper=PEPPER)
    status, headers, body = call(app, "/", f"Bearer {keys['reader'].secret}")
    assert status == "500 Internal Server Error"
    assert body == INTERNAL
    assert "WWW-Authenticate" not in headers


def test_a_closed_store_given_as_is_is_a_500(store_path: str, keys: Dict[str, Any]) -> None:
    mine = KeyStore(store_path, pepper=PEPPER, shared=True)
    app = ApiKeyMiddleware(application, store=mine)
    assert call(app, "/", f"Bearer {keys['reader'].secret}")[0] == "200 OK"
    mine.close()
    status, _, body = call(app, "/", f"Bearer {keys['reader'].secret}")
    assert (status, body) == ("500 Internal Server Error", INTERNAL)


def test_path_or_store_is_required() -> None:
    with pytest.raises(TypeError):
        ApiKeyMiddleware(application)
    with pytest.raises(TypeError):
        ApiKeyMiddleware(application, path="x", store=lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError):
        ApiKeyMiddleware(application, path="x", scope=42)
