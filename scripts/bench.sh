#!/usr/bin/env bash
# Runs the whole benchmark suite in one go and prints the ratio table. The
# programs are the benches of the crate apikeys-compare (benches/compare/, its
# own crate so that the core's dependencies do not include the peers):
#   - the criterion suite (benches/compare/benches/verify.rs): apikeys against
#     an in-memory floor, raw redb, SQLite Sanctum-style and PBKDF2, at 100k
#     and 1M keys; generate, revoke, batch, list, threads;
#   - opening a 1M-key store, time and resident memory (open_memory.rs);
#   - batches and single generates into a 1M-key store, call by call
#     (write_latency.rs);
#   - the main ratios again in alternating rounds (paired.rs), which a
#     machine busy with other work biases less;
#   - apikeys called from PHP, Ruby and Python through the C ABI, beside each
#     language's usual approach (benches/hosts/);
#   - fleets on PostgreSQL (fleet.rs): fleet verify against exclusive redb,
#     strict verify against a raw prepared SELECT, Sanctum-style on the same
#     server, generate/revoke against one raw commit, and the revocation delay
#     across two processes; on a throwaway server (scripts/lib/postgres.sh)
#     started here and stopped at the end.
# Every figure comes from this run; the table (benches/report.py) divides them.
#
# usage: scripts/bench.sh [criterion filter]
# Takes about 10 minutes on 2 cores. Fixtures go to a directory under target/
# that is deleted at the end: the plaintext keys never leave memory.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

cargo build --release -p apikeys-ffi
cargo bench -p apikeys-compare --no-run --bench verify --bench open_memory --bench paired --bench write_latency --bench import --bench fleet

rm -rf "$target/criterion" "$target/bench-results"
mkdir -p "$target/bench-results"
run_dir="$(mktemp -d "$target/bench-run.XXXXXX")"
# shellcheck source=lib/postgres.sh
. scripts/lib/postgres.sh
trap 'pg_stop; rm -rf "$run_dir"' EXIT
export APIKEYS_BENCH_DIR="$run_dir"

cargo bench -p apikeys-compare --bench verify -- "$@"
cargo bench -p apikeys-compare --bench open_memory
cargo bench -p apikeys-compare --bench paired
cargo bench -p apikeys-compare --bench write_latency
# Moving in (issue 14): import rates, verifies of imported keys before and
# after their re-digest beside native ones; criterion's report only (BENCHMARKS.md).
cargo bench -p apikeys-compare --bench import
# Its own PostgreSQL server, for this program only (PG_URL, PGHOST...).
pg_start
cargo bench -p apikeys-compare --bench fleet
pg_stop

lib="$target/release/libapikeys.so"
run_host() {
    local name="$1"; shift
    cp "$run_dir/apikeys-100000.redb" "$run_dir/host-$name.redb"
    if "$@" "$lib" "$run_dir/host-$name.redb" "$run_dir" > "$target/bench-results/host-$name.json.tmp"; then
        mv "$target/bench-results/host-$name.json.tmp" "$target/bench-results/host-$name.json"
        cat "$target/bench-results/host-$name.json"
    else
        echo "host bench $name failed" >&2
    fi
    rm -f "$run_dir/host-$name.redb"
}
if [ -f "$run_dir/apikeys-100000.redb" ]; then
    if php -m 2>/dev/null | grep -qx FFI && php -m 2>/dev/null | grep -qx pdo_sqlite; then
        run_host php php benches/hosts/verify.php
    else
        echo "skipping PHP: needs the FFI and pdo_sqlite extensions (apt-get install php-cli php-sqlite3)" >&2
    fi
    if ruby -e 'require "ffi"; require "sqlite3"' 2>/dev/null; then
        run_host ruby ruby benches/hosts/verify.rb
    else
        echo "skipping Ruby: needs ruby with the ffi and sqlite3 gems (apt-get install ruby-ffi ruby-sqlite3)" >&2
    fi
    run_host python python3 benches/hosts/verify.py
fi

echo
python3 benches/report.py "$target"
echo
echo "fleets on PostgreSQL (target/bench-results/fleet.json):"
cat "$target/bench-results/fleet.json" 2>/dev/null || echo "  no figures: the fleet bench did not finish" >&2
echo
echo "criterion's HTML reports: $target/criterion/report/index.html"
