"""Keys moved in from Laravel Sanctum, djangorestframework-api-key and
Unkey verify unchanged through the Python package: the store is made by the
command line's `apikeys import` (rows made by each source's documented
algorithm), then the keys are verified by KeyStore.verify, verify_id,
is_valid, verify_header and the WSGI middleware, before and after their
first verify re-digests them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from apikeys import KeyStore, Unauthorized, close_shared_stores
from apikeys.wsgi import ApiKeyMiddleware

from conftest import PEPPER
from test_wsgi import application, call

ROOT = Path(__file__).resolve().parents[3]


def apikeys_cli() -> Path:
    """The command line of this checkout (built by the Rust tests; built here
    if they have not run)."""
    binary = ROOT / "target" / "debug" / "apikeys"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "apikeys", "--bin", "apikeys"], cwd=ROOT, check=True)
    return binary


def import_rows(store_path: str, source: str, rows: str, tmp_path: Path) -> Dict[str, object]:
    export = tmp_path / f"{source}.export"
    export.write_text(rows)
    env = dict(os.environ, APIKEYS_PEPPER=PEPPER.decode())
    done = subprocess.run(
        [str(apikeys_cli()), "--db", store_path, "--shared", "import", "--from", source, str(export), "--json"],
        env=env, capture_output=True, text=True, check=True,
    )
    report: Dict[str, object] = json.loads(done.stdout)
    return report


@pytest.fixture
def legacy_keys(store_path: str, tmp_path: Path) -> Dict[str, str]:
    sanctum_secret = "Zr3kd8QmVn2Lx7Pq1Ws5Te9Yb4Uc6Ha0Jf2Gk8Mi" + "1a2b3c4d"
    sanctum = (
        "id,tokenable_type,tokenable_id,name,token,abilities,last_used_at,expires_at,created_at,updated_at\n"
        f"7,App\\Models\\User,42,Sanctum token,{hashlib.sha256(sanctum_secret.encode()).hexdigest()},"
        '"[""contacts:read""]",,,2025-12-01 10:00:00,2025-12-01 10:00:00\n'
    )
    drf_key = "Ab3dEf9h.q8Wm2Xn5Rt7Yp1Zs4Uv6Kl3Ho9Jb0Gc"
    drf = (
        "id,created,name,revoked,expiry_date,hashed_key,prefix\n"
        f"x,2025-11-30 08:00:00+00,DRF key,f,,sha512$${hashlib.sha512(drf_key.encode()).hexdigest()},Ab3dEf9h\n"
    )
    unkey_key = "sk_5Hq2Nw8Lr3Kd7Mv1Xc9Tb4Zp"
    unkey = json.dumps({"id": "key_1", "hash": base64.b64encode(hashlib.sha256(unkey_key.encode()).digest()).decode(), "name": "Unkey key"}) + "\n"
    for source, rows in (("sanctum", sanctum), ("drf-api-key", drf), ("unkey", unkey)):
        assert import_rows(store_path, source, rows, tmp_path)["imported"] == 1
    return {"sanctum": f"7|{sanctum_secret}", "drf": drf_key, "unkey": unkey_key}


def test_imported_keys_verify_unchanged_through_every_call(store_path: str, legacy_keys: Dict[str, str]) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as store:
        for name, key in legacy_keys.items():
            # The first verify checks the source's digest and re-digests;
            # the next ones are native.
            first = store.verify(key)
            assert store.verify_id(key) == first.id, name
            assert store.is_valid(key), name
            assert store.verify_header(f"Bearer {key}").id == first.id, name
        assert store.verify(legacy_keys["sanctum"], scope="contacts:read").name == "Sanctum token"
        listed = {info.name: info for info in store.list()}
        assert listed["DRF key"].origin == "drf-api-key"
        assert listed["DRF key"].legacy_digest is None  # re-digested by its first verify
        for forged in ("7|" + "x" * 48, "Ab3dEf9h.wrongsecret", "sk_nope"):
            with pytest.raises(Unauthorized):
                store.verify(forged)
            assert not store.is_valid(forged)


def test_list_tells_each_key_s_origin_and_whether_it_is_still_on_its_source_s_digest(
    store_path: str, legacy_keys: Dict[str, str]
) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as store:
        native = store.generate("native")
        listed = {info.name: info for info in store.list()}
        assert (listed["Sanctum token"].origin, listed["Sanctum token"].legacy_digest) == ("sanctum", "sha256")
        assert (listed["DRF key"].origin, listed["DRF key"].legacy_digest) == ("drf-api-key", "sha512")
        assert (listed["native"].origin, listed["native"].legacy_digest) == (None, None)
        store.verify(legacy_keys["sanctum"])
        again = {info.name: info for info in store.list()}
        assert (again["Sanctum token"].origin, again["Sanctum token"].legacy_digest) == ("sanctum", None)
        assert native.id == listed["native"].id


def test_imported_keys_pass_the_wsgi_middleware_before_and_after_their_redigest(
    store_path: str, legacy_keys: Dict[str, str]
) -> None:
    app = ApiKeyMiddleware(application, path=store_path, pepper=PEPPER)
    try:
        for key in legacy_keys.values():
            for _ in range(2):
                status, _, body = call(app, "/", f"Bearer {key}")
                assert status == "200 OK", (key[:4], body)
        status, _, _ = call(app, "/", "Bearer 7|" + "x" * 48)
        assert status == "401 Unauthorized"
    finally:
        close_shared_stores()
