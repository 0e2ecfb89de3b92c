#!/bin/sh
# Builds the PHP package (scripts/build-package.sh), installs it into a clean
# project directory with Debian's composer in one `composer require`,
# offline (packagist disabled, COMPOSER_DISABLE_NETWORK=1, a fresh
# COMPOSER_HOME), and runs a smoke test there with no APIKEYS_LIB, no cargo
# workspace above it and no LD_LIBRARY_PATH: generate, verify, revoke.
# Ends with "N passed, M failed"; exits non-zero on any failure.
#
# Needs composer and php-zip (scripts/install-test-deps installs them).
# Usage: ffi/php/scripts/test-package.sh
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)     # ffi/php
work=$(mktemp -d /tmp/apikeys-php-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$here/scripts/build-package.sh" "$work/build"
zip=$(ls "$work"/build/dist/apikeys-apikeys-*.zip)
version=$(basename "$zip" .zip | sed 's/^apikeys-apikeys-//')

# The project's one-time configuration: where the package is, and no packagist.
mkdir "$work/project"
cat > "$work/project/composer.json" <<JSON
{
    "name": "acme/smoke",
    "repositories": [
        {"type": "artifact", "url": "$work/build/dist"},
        {"packagist.org": false}
    ]
}
JSON

# The one command.
(cd "$work/project" && COMPOSER_HOME="$work/composer-home" COMPOSER_ALLOW_SUPERUSER=1 \
    COMPOSER_DISABLE_NETWORK=1 composer require --no-interaction --no-audit --quiet \
    "apikeys/apikeys:$version")

cp "$here/tests/package-smoke.php" "$work/project/smoke.php"
cd "$work/project"
env -u APIKEYS_LIB -u CARGO_TARGET_DIR -u LD_LIBRARY_PATH php -d ffi.enable=1 smoke.php
