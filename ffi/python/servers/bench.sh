#!/usr/bin/env bash
# Benchmark (not a test, not run by CI): requests/s of the authenticated
# route against the same server's route without authentication and a
# Sanctum-style peer (SHA-256 hex lookup + UPDATE last_used_at on
# PostgreSQL), for gunicorn (sync workers) + Flask and uvicorn + FastAPI,
# 4 workers each, with wrk (2 threads, 16 connections, 10 s per measure),
# all in one run. Targets: auth >= 0.9 x no auth, and faster than the peer.
#
#   ffi/python/servers/bench.sh                 # about 8 minutes
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 ffi/python/servers/bench.sh
#
# Installs wrk (Debian) and psycopg (PyPI, into the bench venv) if missing,
# starts a throwaway PostgreSQL (scripts/lib/postgres.sh) and stops it.
set -euo pipefail
servers_dir=$(cd "$(dirname "$0")" && pwd)
python_dir=$(cd "$servers_dir/.." && pwd)
root=$(cd "$python_dir/../.." && pwd)

if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
fi
(cd "$root" && cargo build --release --quiet -p apikeys-ffi && cargo build --release --quiet --bin apikeys)
venv=$("$python_dir/scripts/venv.sh" --bench)

# shellcheck source=../../../scripts/lib/postgres.sh
source "$root/scripts/lib/postgres.sh"
pg_start
trap pg_stop EXIT

cd "$servers_dir"
PYTHONPATH="$python_dir/src" "$venv/bin/python" bench.py
