#!/bin/sh
# The PHP package in nginx + PHP-FPM, both preload recipes (fpm-test.php
# says what is checked). Needs root, php8.2-fpm, nginx, composer, php-zip
# (scripts/install-test-deps installs them); builds the release library and
# command line first. Ends with "N passed, M failed".
#
# Usage: ffi/php/servers/fpm-test.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
cargo build --quiet --release -p apikeys-ffi
cargo build --quiet --release --bin apikeys
exec php "$here/fpm-test.php"
