"""`manage.py apikeys generate|list|revoke` through Django's call_command, and
once through a real manage.py in a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import django
import pytest

django.setup()

from django.core.management import CommandError, call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

import apikeys  # noqa: E402
from apikeys import KeyStore, Unauthorized  # noqa: E402

from conftest import PEPPER  # noqa: E402


@pytest.fixture
def configured(store_path: str) -> Iterator[str]:
    with override_settings(APIKEYS={"PATH": store_path, "PEPPER": PEPPER}):
        yield store_path


def run(*args: str) -> Any:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikeys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_generate_list_revoke(configured: str) -> None:
    out, err = run("generate", "--name", "Production", "--env", "prod", "--scope", "contacts:*", "--json")
    generated = json.loads(out)
    assert generated["name"] == "Production" and generated["scopes"] == ["contacts:*"]
    assert "copy the key now" in err
    with KeyStore(configured, pepper=PEPPER, shared=True) as store:
        assert store.verify(generated["key"], scope="contacts:read").id == generated["id"]

    listed = json.loads(run("list", "--json")[0])
    assert [(k["id"], k["status"], k["use_count"]) for k in listed] == [(generated["id"], "active", 1)]
    assert "key" not in listed[0]
    text = run("list")[0]
    assert generated["id"] in text and "Production" in text and generated["key"] not in text

    assert run("revoke", generated["id"])[0].strip() == f"revoked {generated['id']}"
    assert run("revoke", generated["id"])[0].strip() == f"{generated['id']} was already revoked"
    with KeyStore(configured, pepper=PEPPER, shared=True) as store:
        with pytest.raises(Unauthorized):
            store.verify(generated["key"])
    assert json.loads(run("list", "--status", "revoked", "--json")[0])[0]["id"] == generated["id"]


def test_generate_prints_the_key_and_id(configured: str) -> None:
    out, _ = run("generate", "--name", "Plain", "--expires-in", "30d")
    secret, rest = out.strip().split("\t")
    assert apikeys.is_well_formed(secret)
    assert rest.startswith("id=") and 'name="Plain"' in rest
    assert json.loads(run("list", "--json")[0])[0]["expires_at"] is not None


def test_errors_are_command_errors(configured: str) -> None:
    with pytest.raises(CommandError, match="no key has this id"):
        run("revoke", "0000000000000000")
    with pytest.raises(CommandError, match="InvalidArgument"):
        run("generate", "--name", "")
    with pytest.raises(CommandError, match="--expires-in"):
        run("generate", "--name", "x", "--expires-in", "soon")


def test_a_real_manage_py(tmp_path: Path, store_path: str) -> None:
    manage = tmp_path / "manage.py"
    manage.write_text(
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_settings')\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    (tmp_path / "site_settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['apikeys.django']\n"
        f"APIKEYS = {{'PATH': {store_path!r}, 'PEPPER': {PEPPER!r}}}\n"
    )
    package_dir = Path(apikeys.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(package_dir)]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, str(manage), "apikeys", "generate", "--name", "From manage.py", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)
    listed = subprocess.run(
        [sys.executable, str(manage), "apikeys", "list", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert [k["id"] for k in json.loads(listed.stdout)] == [key["id"]]
    helped = subprocess.run(
        [sys.executable, str(manage), "help", "apikeys"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert "generate|list|revoke" in helped.stdout
