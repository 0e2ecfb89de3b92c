#!/usr/bin/env bash
# Installs what the Ruby package's framework, server and gem tests need, from
# Debian (RubyGems.org is not used: every library here is a Debian package),
# only when it is missing. Safe to run again.
#
#   ffi/ruby/scripts/install-deps.sh           the tests' packages
#   ffi/ruby/scripts/install-deps.sh --bench   plus wrk and ruby-pg (servers/bench.sh)
set -euo pipefail

packages=(
    ruby ruby-ffi ruby-minitest  # the gem and its tests
    ruby-rack ruby-rack-test     # the Rack middleware
    ruby-sinatra                 # the Sinatra extension
    ruby-railties ruby-actionpack  # the Rails concern (Rails 6.1)
    puma unicorn                 # the server tests
    util-linux                   # setpriv: workers as www-data
    binutils                     # strip: the gem's copy of libapikeys.so
)
if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk ruby-pg)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
