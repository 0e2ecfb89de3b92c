"""The README's framework sections run as written: each section's Python
code is executed as it stands in README.md and its app is then served a
request with a key and one without."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List
from wsgiref.util import setup_testing_defaults

import django
import pytest

django.setup()

from django.test import RequestFactory, override_settings  # noqa: E402

from apikeys import KeyStore  # noqa: E402

from conftest import PEPPER, UNAUTHORIZED  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(heading: str) -> List[str]:
    """The ```python blocks of the README section whose heading starts so."""
    text = README.read_text()
    start = text.index(f"\n### {heading}")
    end = text.find("\n## ", start + 1)
    following = text.find("\n### ", start + 1)
    end = min(position for position in (end, following, len(text)) if position != -1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.fixture
def environment(store_path: str, store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, Any]]:
    monkeypatch.setenv("APIKEYS_DB", store_path)
    monkeypatch.setenv("APIKEYS_PEPPER", PEPPER.decode())
    yield {"key": store.generate("Readme", scopes=["contacts:read"])}


def run(code: str) -> Dict[str, Any]:
    namespace: Dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_wsgi_section(environment: Dict[str, Any]) -> None:
    (code,) = blocks("WSGI")
    app = run(code)["app"]

    def call(authorization: Any) -> Any:
        environ: Dict[str, Any] = {"PATH_INFO": "/contacts", "SCRIPT_NAME": "", "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        if authorization:
            environ["HTTP_AUTHORIZATION"] = authorization
        answered: Dict[str, Any] = {}
        body = b"".join(app(environ, lambda status, headers: answered.update(status=status)))
        return answered["status"], body

    assert call(f"Bearer {environment['key'].secret}") == ("200 OK", b"hello Readme")
    assert call(None) == ("401 Unauthorized", UNAUTHORIZED.encode())


def test_starlette_section(environment: Dict[str, Any]) -> None:
    from starlette.testclient import TestClient

    (code,) = blocks("ASGI and Starlette")
    with TestClient(run(code)["app"]) as client:
        assert client.get("/contacts", headers={"Authorization": f"Bearer {environment['key'].secret}"}).json() == {
            "key": environment["key"].id
        }
        assert client.get("/contacts").text == UNAUTHORIZED


def test_fastapi_section(environment: Dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    dependency, middleware = blocks("FastAPI")
    good = {"Authorization": f"Bearer {environment['key'].secret}"}
    with TestClient(run(dependency)["app"]) as client:
        assert client.get("/contacts", headers=good).json() == {"key": environment["key"].id}
        assert client.get("/me", headers=good).json() == {"name": "Readme", "owner": None}
        assert client.get("/contacts").text == UNAUTHORIZED
    with TestClient(run(middleware)["app"]) as client:
        assert client.get("/contacts", headers=good).json() == {"key": environment["key"].id}
        response = client.get("/contacts")
        assert (response.status_code, response.text) == (401, UNAUTHORIZED)
        assert response.headers["www-authenticate"] == "Bearer"


def test_flask_section(environment: Dict[str, Any]) -> None:
    (code,) = blocks("Flask")
    client = run(code)["app"].test_client()
    good = {"Authorization": f"Bearer {environment['key'].secret}"}
    assert client.get("/contacts", headers=good).get_json() == {"key": environment["key"].id}
    assert client.get("/me", headers=good).get_json() == {"name": "Readme"}
    assert client.get("/me").get_data(as_text=True) == UNAUTHORIZED


def test_django_section(environment: Dict[str, Any], store_path: str) -> None:
    settings_code, views_code = blocks("Django and Django REST framework")
    settings = run(settings_code)
    assert "apikeys.django" in settings["INSTALLED_APPS"]
    assert settings["REST_FRAMEWORK"]["DEFAULT_AUTHENTICATION_CLASSES"] == ["apikeys.drf.ApiKeyAuthentication"]
    views = run(views_code)
    with override_settings(
        APIKEYS=dict(settings["APIKEYS"], PATH=store_path), REST_FRAMEWORK=settings["REST_FRAMEWORK"]
    ):
        factory = RequestFactory()
        good = {"HTTP_AUTHORIZATION": f"Bearer {environment['key'].secret}"}
        response = views["Contacts"].as_view()(factory.get("/contacts", **good))
        assert (response.status_code, response.data) == (200, {"key": environment["key"].id, "name": "Readme"})
        response = views["invoices"](factory.get("/invoices", **good))
        response.render()
        assert response.status_code == 403
        response = views["Contacts"].as_view()(factory.get("/contacts"))
        response.render()
        assert (response.status_code, response.content.decode()) == (401, UNAUTHORIZED)
