#!/usr/bin/env bash
# Installs the wheel (built by build-wheel.sh unless one is given) into a
# fresh `python3 -m venv` outside the repository and, from a directory
# outside it too, with no APIKEYS_LIB, generates, verifies and revokes a key:
# the one-command install works on its own. Ends with "N passed, 0 failed".
#
#   ffi/python/scripts/smoke-wheel.sh [path/to/apikeys-*.whl]
set -euo pipefail
python_dir=$(cd "$(dirname "$0")/.." && pwd)
wheel=${1:-$("$python_dir/scripts/build-wheel.sh")}
python=${APIKEYS_PYTHON:-python3}

scratch=$(mktemp -d /tmp/apikeys-smoke.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
# Offline: the wheel alone, no index, no dependency to fetch.
"$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$wheel"

mkdir "$scratch/elsewhere"
cd "$scratch/elsewhere"
env -u APIKEYS_LIB -u CARGO_TARGET_DIR -u LD_LIBRARY_PATH -u PYTHONPATH \
  "$scratch/venv/bin/python" - "$scratch/venv" <<'PY'
import os
import sys

import apikeys
from apikeys import KeyStore, Unauthorized, _native

venv = os.path.realpath(sys.argv[1])
checks = []


def check(name, condition, detail=""):
    checks.append(condition)
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


loaded = os.path.realpath(_native.lib()._name)
check("the package is the installed one", os.path.realpath(apikeys.__file__).startswith(venv), apikeys.__file__)
check(
    "the library is the one inside the wheel",
    loaded == os.path.join(os.path.dirname(os.path.realpath(apikeys.__file__)), _native.LIBRARY_FILE),
    loaded,
)
check("no APIKEYS_LIB", "APIKEYS_LIB" not in os.environ)
check("library version", bool(apikeys.version()), apikeys.version())

with KeyStore("keys.redb", pepper=b"smoke", shared=True) as store:
    key = store.generate("Smoke", env="prod", scopes=["contacts:*"])
    check("generate", apikeys.is_well_formed(key.secret) and key.secret.startswith("flz_sk_prod_"))
    check("verify", store.verify(key.secret, scope="contacts:read").id == key.id)
    check("verify_id", store.verify_id(key.secret) == key.id)
    check("revoke", store.revoke(key.id) is True)
    refusal = None
    try:
        store.verify(key.secret)
    except Unauthorized as refused:
        refusal = refused
    check("revoked key refused", refusal is not None and refusal.reason == "revoked", repr(refusal))
    status, body, headers = apikeys.http_answer(refusal)
    check("401 answer with WWW-Authenticate", status == 401 and ("WWW-Authenticate", "Bearer") in headers)
    listed = store.list()
    check("list", [(k.id, k.status, k.use_count) for k in listed] == [(key.id, "revoked", 2)], listed)

failed = checks.count(False)
print(f"wheel-smoke: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
