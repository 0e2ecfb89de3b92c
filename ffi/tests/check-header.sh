#!/bin/sh
# Fails when include/apikeys.h is not exactly what the pinned cbindgen
# generates from ffi/, or when the header does not compile as C or load
# unchanged in PHP's FFI::cdef.
#
# Needs: cbindgen 0.29.2 (cargo install cbindgen --version 0.29.2 --locked),
# gcc, php-cli with the FFI extension (Debian: apt-get install php-cli).
# CBINDGEN may name the cbindgen binary to use.
set -eu

pinned=0.29.2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
cbindgen=${CBINDGEN:-cbindgen}

version=$("$cbindgen" --version | awk '{print $2}')
if [ "$version" != "$pinned" ]; then
    echo "check-header: cbindgen $version found, $pinned required (see ffi/cbindgen.toml):"
    echo "  cargo install cbindgen --version $pinned --locked"
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$cbindgen" --quiet --config ffi/cbindgen.toml --crate apikeys-ffi --output "$work/apikeys.h" ffi
if ! diff -u include/apikeys.h "$work/apikeys.h"; then
    echo "check-header: include/apikeys.h is stale; regenerate it with"
    echo "  cbindgen --config ffi/cbindgen.toml --crate apikeys-ffi --output include/apikeys.h ffi"
    exit 1
fi
echo "check-header: include/apikeys.h matches cbindgen $pinned output"

# Self-contained and strict in C99, C11 and C2x.
printf '#include "apikeys.h"\n' > "$work/use.c"
for std in c99 c11 c2x; do
    gcc -std=$std -Wall -Wextra -Werror -pedantic -fsyntax-only -I include "$work/use.c"
done
echo "check-header: compiles alone as C99, C11 and C2x with -Wall -Wextra -Werror -pedantic"

# PHP reads the header unchanged and calls through it.
cargo build --quiet -p apikeys-ffi
lib_dir=${CARGO_TARGET_DIR:-$root/target}/debug
php -d ffi.enable=1 ffi/tests/c/php_loads_header.php include/apikeys.h "$lib_dir/libapikeys.so" "$work"
