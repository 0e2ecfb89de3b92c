#!/usr/bin/env bash
# The real-server benchmark (not a test, not run in CI): each host package
# inside its usual server with 4 workers, the store in shared mode, loaded by
# wrk from the same machine. Per server it prints requests/s of the route
# that authenticates with apikeys, of the same server's route without
# authentication, and of a Sanctum-style peer (SHA-256 hex lookup plus
# `UPDATE last_used_at` on a throwaway PostgreSQL), measured in the same run,
# and their ratios. Each host's script says how it measures.
#
#   scripts/bench-servers.sh                 every server (about 10 minutes)
#   BENCH_SERVERS="php ruby" scripts/bench-servers.sh
#
# Targets (issue 12): apikeys >= 0.9x the no-auth route, and faster than
# the Sanctum-style peer, in every server. Figures go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

for server in ${BENCH_SERVERS:-python ruby php}; do
    printf '\n=== %s\n' "$server"
    case "$server" in
        python) ffi/python/servers/bench.sh ;;  # gunicorn + Flask, uvicorn + FastAPI
        ruby) ffi/ruby/servers/bench.sh ;;      # puma cluster + Rack
        php) ffi/php/servers/bench.sh ;;        # nginx + PHP-FPM
        *) echo "unknown server $server (python, ruby, php)" >&2; exit 2 ;;
    esac
done
