#!/bin/sh
# Measures what one FFI call costs from PHP and Python, against a throwaway
# no-op library (noop.c, built here into a temporary directory; never part
# of libapikeys). Prints medians and quartiles; see ffi/README.md "Host call
# cost" for a run and what it shows.
#
# usage: benches/hosts/call-cost/run.sh [rounds]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc=${CC:-gcc}
$cc -O2 -shared -fPIC -o "$work/libnoop.so" "$here/noop.c"
sed "s|^#define FFI_SCOPE .*|&\n#define FFI_LIB \"$work/libnoop.so\"|" "$here/noop.h" > "$work/noop.h"
rounds=${1:-31}
php -d ffi.enable=1 -d opcache.enable_cli=0 "$here/calls.php" "$work/libnoop.so" "$rounds"
php -d ffi.enable=1 -d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=64M \
    "$here/calls.php" "$work/libnoop.so" "$rounds"
# FFI::scope: the header preloaded (ffi.preload), as under PHP-FPM.
php -d ffi.enable=preload -d ffi.preload="$work/noop.h" -d opcache.enable_cli=1 \
    "$here/calls.php" "$work/libnoop.so" "$rounds"
python3 "$here/calls.py" "$work/libnoop.so" "$rounds"
