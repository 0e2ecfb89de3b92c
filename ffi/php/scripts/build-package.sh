#!/bin/sh
# Builds the PHP package with the library inside, ready for composer:
#
#   $OUT/apikeys-apikeys-VERSION/            the package (a composer "path" repository)
#   $OUT/dist/apikeys-apikeys-VERSION.zip    the same zipped (a composer "artifact" repository)
#
# OUT is ${CARGO_TARGET_DIR:-target}/php-package unless given as $1. The
# package carries libapikeys.so (release build, debug info stripped) and the
# flattened header, so it finds its library with no APIKEYS_LIB and no
# cargo. Install it offline with Debian's composer (README.md, "Install"):
#
#   composer config repositories.apikeys artifact "$OUT/dist"
#   composer require apikeys/apikeys
#
# Usage: ffi/php/scripts/build-package.sh [OUT]
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)     # ffi/php
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$target/php-package}

(cd "$root" && cargo build --quiet --release -p apikeys-ffi)
library=$target/release/libapikeys.so
php "$here/scripts/flatten-header.php" --check >/dev/null

# The package's version is the library's: read it from the built library.
version=$(php -d ffi.enable=1 -r '
    $ffi = FFI::cdef("const char *apikeys_version(void);", $argv[1]);
    echo $ffi->apikeys_version();' "$library")
name=apikeys-apikeys-$version
stage=$out/$name
rm -rf "$stage" "$out/dist"
mkdir -p "$stage" "$out/dist"

cp -R "$here/src" "$here/bin" "$stage/"
cp "$here/preload.php" "$here/apikeys.h" "$here/README.md" "$stage/"
chmod 0755 "$stage/bin/apikeys-php-ini"
# Debug info is most of the release build's size; the symbols stay.
strip --strip-debug -o "$stage/libapikeys.so" "$library"
chmod 0644 "$stage/libapikeys.so"
# composer.json with the version: an artifact or path repository has no
# tag to take it from.
php -r '
    $json = json_decode(file_get_contents($argv[1]), true, flags: JSON_THROW_ON_ERROR);
    unset($json["scripts"]);
    $json = ["name" => $json["name"], "version" => $argv[2]] + $json;
    file_put_contents($argv[3], json_encode($json, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");
' "$here/composer.json" "$version" "$stage/composer.json"

(cd "$stage" && zip -q -r -X "$out/dist/$name.zip" .)
echo "built $stage"
echo "built $out/dist/$name.zip"
