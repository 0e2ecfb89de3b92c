#!/usr/bin/env bash
# The README's fleet set-up, end to end on this machine: a PostgreSQL server
# (a throwaway one, scripts/lib/postgres.sh), a key made with the command line,
# gunicorn with 4 workers serving app.py, a request accepted, the key revoked,
# the same request refused by every worker. Needs root (pg_start) and a
# build of the library and the command line: cargo build --release -p apikeys-ffi
# -p apikeys (or PROFILE=debug for a debug build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build="$root/target/${PROFILE:-release}"
# shellcheck source=../../scripts/lib/postgres.sh
. scripts/lib/postgres.sh
venv=$(ffi/python/scripts/venv.sh)   # a venv with gunicorn (the Python tests' one)
pg_start
gunicorn_pid=
cleanup() { [ -n "$gunicorn_pid" ] && kill "$gunicorn_pid" 2>/dev/null; wait 2>/dev/null; pg_stop; }
trap cleanup EXIT

export APIKEYS_DB="$PG_URL"
APIKEYS_PEPPER=$(head -c 32 /dev/urandom | base64)
export APIKEYS_PEPPER
export APIKEYS_LIB="$build/libapikeys.so" PYTHONPATH="$root/ffi/python/src:$root/examples/fleet"
key=$("$build/apikeys" generate --name Production --scope '*' --json)
secret=$(printf '%s' "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
id=$(printf '%s' "$key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

port=$(pg_free_port)
"$venv/bin/gunicorn" --workers 4 --bind "127.0.0.1:$port" --log-level warning app:application &
gunicorn_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

ask() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $secret" "http://127.0.0.1:$port/"; }
for _ in 1 2 3 4 5 6 7 8; do [ "$(ask)" = 200 ] || { echo "a valid key was refused" >&2; exit 1; }; done
echo "valid key: 200 from every request"
"$build/apikeys" revoke "$id" >/dev/null
sleep 1.1   # the bound L (1 s): by then every worker on every machine refuses it
for _ in 1 2 3 4 5 6 7 8; do [ "$(ask)" = 401 ] || { echo "a revoked key was accepted" >&2; exit 1; }; done
echo "revoked key: 401 from every request"
