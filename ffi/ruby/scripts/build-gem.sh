#!/usr/bin/env bash
# Builds the release libapikeys.so and a gem for this platform that carries
# it (lib/apikeys/libapikeys.so, debug information stripped), so that
# `gem install` is the whole install: no cargo, no APIKEYS_LIB.
#
#   ffi/ruby/scripts/build-gem.sh     # prints the gem's path last:
#                                     # ffi/ruby/pkg/apikeys-VERSION-x86_64-linux.gem
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)   # ffi/ruby
root=$(cd "$here/../.." && pwd)

(cd "$root" && cargo build --quiet --release -p apikeys-ffi)
library="${CARGO_TARGET_DIR:-$root/target}/release/libapikeys.so"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$here/lib" "$here/README.md" "$here/apikeys.gemspec" "$stage/"
# The release build keeps debug information (15 MB); the gem does not need it.
strip --strip-unneeded -o "$stage/lib/apikeys/libapikeys.so" "$library"
(cd "$stage" && APIKEYS_GEM_NATIVE=1 gem build --quiet apikeys.gemspec >/dev/null)

mkdir -p "$here/pkg"
built=("$stage"/apikeys-*.gem)
mv -f "${built[0]}" "$here/pkg/"
echo "$here/pkg/$(basename "${built[0]}")"
