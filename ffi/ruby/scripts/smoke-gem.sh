#!/usr/bin/env bash
# The one-command install, checked: builds the platform gem (build-gem.sh)
# unless one is given, installs it with `gem install --local` into a new,
# empty GEM_HOME with no network (its one dependency, ffi, is Debian's
# ruby-ffi), and from a directory outside the repository, with no
# APIKEYS_LIB, RUBYLIB or CARGO_TARGET_DIR, generates, verifies and revokes
# a key and loads the Rack, Sinatra and Rails integrations.
#
#   ffi/ruby/scripts/smoke-gem.sh [path/to/apikeys-VERSION-PLATFORM.gem]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)   # ffi/ruby

"$here/scripts/install-deps.sh"
gem_file=${1:-$("$here/scripts/build-gem.sh" | tail -n 1)}
gem_file=$(cd "$(dirname "$gem_file")" && pwd)/$(basename "$gem_file")

work=$(mktemp -d /tmp/apikeys-gem-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/gems" "$work/app"

# No network: a new network namespace when this process may make one (root),
# and proxies that lead nowhere in any case.
offline=()
if unshare --net true 2>/dev/null; then
    offline=(unshare --net)
fi
clean_env=(env -u APIKEYS_LIB -u RUBYLIB -u RUBYOPT -u CARGO_TARGET_DIR -u GEM_PATH
           "GEM_HOME=$work/gems" "HOME=$work" "http_proxy=http://127.0.0.1:9" "https_proxy=http://127.0.0.1:9")

"${clean_env[@]}" "${offline[@]}" gem install --local --no-document "$gem_file"

cat > "$work/app/smoke.rb" <<'RUBY'
require "apikeys"

spec = Gem.loaded_specs.fetch("apikeys")
check = lambda do |ok, what|
  abort "smoke: FAILED: #{what}" unless ok
end
check.call(spec.full_gem_path.start_with?(ENV.fetch("GEM_HOME")), "the gem came from #{spec.full_gem_path}")
check.call(ApiKeys.library_path == File.join(spec.full_gem_path, "lib/apikeys/libapikeys.so"),
           "libapikeys came from #{ApiKeys.library_path}, not the gem")

ApiKeys::KeyStore.open(File.join(Dir.pwd, "smoke.redb"), shared: true) do |store|
  key = store.generate("Smoke", env: "prod", scopes: ["contacts:*"])
  check.call(store.verify(key.secret, scope: "contacts:read").id == key.id, "verify")
  check.call(store.revoke(key.id) == true, "revoke")
  begin
    store.verify(key.secret)
    check.call(false, "a revoked key was accepted")
  rescue ApiKeys::Unauthorized => e
    check.call(e.reason == :revoked, "refused as #{e.reason}")
  end
end
require "apikeys/rack"
require "sinatra/base"
require "apikeys/sinatra"
require "apikeys/rails"
puts "smoke: ok: #{spec.full_name} with libapikeys #{ApiKeys.library_version} from #{ApiKeys.library_path}"
RUBY
(cd "$work/app" && "${clean_env[@]}" "${offline[@]}" ruby smoke.rb)
