# frozen_string_literal: true

# The Rack app the puma and unicorn tests (test/server/) and
# the benchmark (servers/bench.sh) serve, written as the README tells users
# to write theirs. Environment:
#
#   APIKEYS_DB           the store (shared mode), required
#   APIKEYS_PEPPER       its pepper, if any
#   APP_WORKER_PID=1     every answer says which worker gave it (x-worker-pid),
#                        for the test; off in the benchmark
#   SANCTUM_PG_URL       adds /sanctum, the Sanctum-style peer (benchmark only)
#
# Routes: /contacts (scope contacts:read), /admin (scope admin), /noauth
# (no key), /sanctum (SHA-256 hex lookup in PostgreSQL + UPDATE last_used_at).
require "apikeys/rack"

ApiKeys.configure(ENV.fetch("APIKEYS_DB"), pepper: ENV["APIKEYS_PEPPER"])

json = { "content-type" => "application/json" }.freeze
# The accepted key's id (ids are base62: nothing to escape), the answer of
# /noauth otherwise: the two routes differ by the authentication only.
who = ->(env) { [200, json.dup, [%({"ok":true,"key":"#{env['apikeys.key'].id}"})]] }

if ENV["APP_WORKER_PID"] == "1"
  # Outermost, so refusals carry it too.
  use(Class.new do
    def initialize(app)
      @app = app
    end

    def call(env)
      status, headers, body = @app.call(env)
      headers["x-worker-pid"] = Process.pid.to_s
      [status, headers, body]
    end
  end)
end

map "/contacts" do
  use ApiKeys::Rack::Authenticate, scope: "contacts:read"
  run who
end

map "/admin" do
  use ApiKeys::Rack::Authenticate, scope: "admin"
  run who
end

map "/noauth" do
  run(->(_env) { [200, json.dup, ['{"ok":true,"key":null}']] })
end

if ENV["SANCTUM_PG_URL"]
  require_relative "sanctum_style"
  map "/sanctum" do
    run SanctumStyle.new(ENV["SANCTUM_PG_URL"], scope: "contacts:read")
  end
end
