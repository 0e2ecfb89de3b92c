#!/usr/bin/env bash
# The Ruby package's tests beyond its core suite (test/*_test.rb, which needs
# only ruby-ffi): the Rack, Sinatra and Rails integrations against the real
# frameworks, puma in cluster mode, and store ownership with workers running
# as www-data. Installs what they need (Debian), builds the release library
# and command line, then runs each test file in its own Ruby process (Rails
# and Sinatra each want a process of their own). Starts and stops its own
# servers, on 127.0.0.1 only.
#
#   ffi/ruby/scripts/test-integrations.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)   # ffi/ruby
root=$(cd "$here/../.." && pwd)

"$here/scripts/install-deps.sh"
# Two builds, not one: built together, the library would be linked with the
# command line's features, and every other build of it would start over.
(cd "$root" && cargo build --quiet --release -p apikeys-ffi && cargo build --quiet --release -p apikeys --bin apikeys)

cd "$here"
failed=()
for test in test/integrations/*_test.rb test/server/*_test.rb; do
    printf -- '--- %s\n' "$test"
    ruby -Ilib "$test" || failed+=("$test")
done
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
