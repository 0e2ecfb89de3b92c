#!/bin/sh
# Builds libapikeys and the C test programs with -Wall -Wextra -Werror under
# AddressSanitizer and UndefinedBehaviorSanitizer, runs them, and prints the
# total: "N passed, M failed". Exits non-zero on any failure.
#
# Usage (from anywhere): ffi/tests/c/run.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"

cargo build --quiet -p apikeys-ffi
lib_dir=${CARGO_TARGET_DIR:-$root/target}/debug

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

cc=${CC:-gcc}
cflags="-std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

passed=0
failed=0
for source in "$here"/test_*.c; do
    name=$(basename "$source" .c)
    # Links the shared library, as PHP, Ruby and Python load it.
    $cc $cflags -I "$root/include" "$source" -o "$build/$name" \
        -L "$lib_dir" -lapikeys -Wl,-rpath,"$lib_dir" -lpthread
    scratch="$build/$name.scratch"
    mkdir "$scratch"
    if output=$(ASAN_OPTIONS=detect_leaks=1 "$build/$name" "$scratch" 2>&1); then
        status=0
    else
        status=$?
    fi
    printf '%s\n' "$output"
    # Each program ends with "<name>: N passed, M failed".
    summary=$(printf '%s\n' "$output" | sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" | tail -n 1)
    if [ -z "$summary" ]; then
        echo "$name: no summary line (exit status $status): counted as a failure"
        failed=$((failed + 1))
        continue
    fi
    set -- $summary
    passed=$((passed + $1))
    failed=$((failed + $2))
    if [ "$status" -ne 0 ] && [ "$2" -eq 0 ]; then
        echo "$name: exit status $status with no failed check: counted as a failure"
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
