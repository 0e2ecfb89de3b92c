#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, starting from the
# committed seeds (fuzz/seeds/<target>/); fails on any crash, hang or failed
# invariant, and prints the executions of each target.
#
#   bash scripts/fuzz.sh                    # CI: 30 seconds per target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh   # a longer run: 10 minutes each
#   FUZZ_TARGETS="model c_abi" bash scripts/fuzz.sh
#   FUZZ_JOBS=1 bash scripts/fuzz.sh        # one target at a time
#
# Targets run FUZZ_JOBS at a time (default: one per CPU). New inputs go to
# fuzz/corpus/<target>/ (not committed); a crashing input is saved under
# fuzz/artifacts/<target>/ and replays with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs
# cargo-fuzz when it is missing.
set -euo pipefail

seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

# One build for every target: they share the instrumented dependencies.
# 16 codegen units (cargo-fuzz defaults to 1) nearly halve the build on two
# cores; `run` must use the same flags or it rebuilds.
build_flags=(--codegen-units 16)
cargo +nightly fuzz build "${build_flags[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Runs one target; its output goes to $logs/<target>.log, its exit status
# to $logs/<target>.status.
run_target() {
    local target=$1
    local extra=()
    # Operation-sequence targets need long inputs from the start.
    case $target in
        model | c_abi) extra=(-len_control=0 -max_len=4096) ;;
    esac
    mkdir -p "corpus/$target"
    local status=0
    cargo +nightly fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 "${extra[@]}" \
        >"$logs/$target.log" 2>&1 || status=$?
    echo "$status" >"$logs/$target.status"
}

running=0
for target in $targets; do
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    echo "fuzz.sh: $target for ${seconds}s"
    run_target "$target" &
    running=$((running + 1))
done
wait

failed=0
summary=()
for target in $targets; do
    if [ "$(cat "$logs/$target.status")" != 0 ]; then
        tail -n 60 "$logs/$target.log"
        echo "fuzz.sh: $target FAILED (input saved under fuzz/artifacts/$target/)"
        failed=1
        continue
    fi
    runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$logs/$target.log" | tail -n 1)
    if [ -z "$runs" ]; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$logs/$target.log" | tail -n 1)
    fi
    summary+=("$(printf '%-14s %12s executions in %ss' "$target" "${runs:-?}" "$seconds")")
done
if ((failed)); then
    exit 1
fi
echo "fuzz.sh: no crash"
printf '%s\n' "${summary[@]}"
