#!/usr/bin/env bash
# Benchmark (a measurement, not a test; CI does not run it): puma in cluster
# mode (4 workers, servers/puma.rb) serving servers/app.ru, with wrk (2
# threads, 16 connections, DURATION seconds per run) from this machine,
# 127.0.0.1 only. In the same run, taking turns ROUNDS times:
#
#   apikeys    /contacts: ApiKeys::Rack::Authenticate, scope contacts:read,
#              store in shared mode (KEYS keys)
#   no auth    /noauth: the same server, the same answer, no key checked
#   Sanctum    /sanctum: SHA-256 hex lookup in PostgreSQL + UPDATE
#              last_used_at per request (KEYS tokens), via Debian's ruby-pg,
#              on a throwaway PostgreSQL (scripts/lib/postgres.sh)
#
# and prints requests/s with the ratios apikeys/no auth (target >= 0.9) and
# apikeys/Sanctum (target > 1).
#
#   ffi/ruby/servers/bench.sh                      # DURATION=10 ROUNDS=3 KEYS=10000
#   DURATION=5 ROUNDS=1 ffi/ruby/servers/bench.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)   # ffi/ruby
root=$(cd "$here/../.." && pwd)

"$here/scripts/install-deps.sh" --bench
(cd "$root" && cargo build --quiet --release -p apikeys-ffi && cargo build --quiet --release -p apikeys --bin apikeys)

# shellcheck source=../../../scripts/lib/postgres.sh
source "$root/scripts/lib/postgres.sh"
pg_start
trap pg_stop EXIT

ruby -I"$here/lib" "$here/servers/bench.rb"
