#!/usr/bin/env bash
# Every Python test, as CI runs them (scripts/test calls this):
#   tests/       the package (standard library only)
#   frameworks/  the integrations in real Flask, FastAPI, Starlette, Django + DRF
#   servers/     gunicorn (sync) + Flask and uvicorn + FastAPI, 4 workers each
#   the wheel    built with the library inside, installed into a fresh venv,
#                smoke-tested from outside the repository without APIKEYS_LIB
# Installs what it needs (a venv of pinned packages, scripts/venv.sh) and
# builds the release library and command line first; both are no-ops when
# already done.
set -euo pipefail
python_dir=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$python_dir/../.." && pwd)

(cd "$root" && cargo build --release --quiet -p apikeys-ffi && cargo build --release --quiet --bin apikeys)
venv=$("$python_dir/scripts/venv.sh")

cd "$python_dir"
# One run per folder: each has its own conftest.py, whose names
# (`from conftest import PEPPER`) must not meet in one interpreter.
for suite in tests frameworks servers; do
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$suite"
done
scripts/smoke-wheel.sh
