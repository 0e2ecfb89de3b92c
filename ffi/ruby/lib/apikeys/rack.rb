# frozen_string_literal: true

require "apikeys"

module ApiKeys
  # Rack integration. Needs nothing but Rack's calling convention (the rack
  # gem itself is not loaded here).
  module Rack
    # Where the accepted key is put in the Rack env, for the app to read.
    ENV_KEY = "apikeys.key"
    # Where a store failure is put in the Rack env (the request got a 500).
    ENV_ERROR = "apikeys.error"

    # Rack middleware: lets a request through only with an accepted
    # `Authorization: Bearer <key>`, and puts the key (an ApiKeys::VerifiedKey:
    # id, name, env, scopes, owner, expires_at) in env["apikeys.key"].
    #
    #   # config.ru
    #   require "apikeys/rack"
    #   ApiKeys.configure("/var/lib/myapp/keys.redb", pepper: ENV.fetch("APIKEYS_PEPPER"))
    #   map "/contacts" do
    #     use ApiKeys::Rack::Authenticate, scope: "contacts:read"
    #     run ContactsApp
    #   end
    #
    # scope: the scope every request needs (`*` and `contacts:*` keys hold
    # `contacts:read`), nil for any accepted key, or a callable given the
    # env that returns one of those (per route: `->(env) { ... }`).
    # store: where to verify; by default (nil) ApiKeys.store, the store
    # ApiKeys.configure named, opened once in each worker process. A callable
    # returning a KeyStore is called on every request (so it can open
    # lazily after the fork); a KeyStore is used as it is.
    #
    # Answers, without calling the app: 401 with the seed's body and
    # `WWW-Authenticate: Bearer` for a missing, malformed, unknown, revoked
    # or expired key; 403 (`WWW-Authenticate: Bearer error="insufficient_scope"`)
    # for a key without the scope; 500 when the store fails (it is never
    # taken for a bad key), with the error in env["apikeys.error"] and a
    # line on env["rack.errors"].
    class Authenticate
      def initialize(app, scope: nil, store: nil)
        unless scope.nil? || scope.is_a?(String) || scope.respond_to?(:call)
          raise TypeError, "scope must be a String, nil or a callable, not #{scope.class}"
        end
        unless store.nil? || store.is_a?(KeyStore) || store.respond_to?(:call)
          raise TypeError, "store must be an ApiKeys::KeyStore or a callable returning one, not #{store.class}"
        end

        @app = app
        @scope = scope
        @scope_per_request = scope.respond_to?(:call)
        @store = store
      end

      # HTTP.authenticate, inline: this runs on every request.
      def call(env)
        scope = @scope_per_request ? @scope.call(env) : @scope
        begin
          store = if @store.nil? then ApiKeys.store
                  elsif @store.is_a?(KeyStore) then @store
                  else @store.call
                  end
          env[ENV_KEY] = store.authenticate_header(env["HTTP_AUTHORIZATION"], scope: scope)
        rescue Unauthorized
          return HTTP::UNAUTHORIZED.to_rack
        rescue Forbidden
          return HTTP::FORBIDDEN.to_rack
        rescue Error => e
          Rack.report(env, e)
          return HTTP::INTERNAL_ERROR.to_rack
        end
        @app.call(env)
      end
    end

    # Records a store failure where Rack apps look for such things.
    def self.report(env, error)
      env[ENV_ERROR] = error
      env["rack.errors"]&.puts("apikeys: answering 500, the key store failed: #{error.class}: #{error.message}")
    end
  end
end
