#!/usr/bin/env bash
# Benchmark (not a test, not in CI): nginx + PHP-FPM with 4 workers, the
# apikeys route against the same server's route without authentication and
# a Sanctum-style peer on a throwaway PostgreSQL, in the same run
# (servers/bench.php says how). Needs root, wrk, php8.2-fpm, nginx,
# composer, php-zip, php-pgsql, postgresql (installed if missing).
#
# Usage: ffi/php/servers/bench.sh        BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_KEYS=10000
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
source scripts/lib/postgres.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
cargo build --quiet --release -p apikeys-ffi
cargo build --quiet --release --bin apikeys
pg_start
trap pg_stop EXIT
php "$here/bench.php"
