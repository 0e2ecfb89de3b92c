# frozen_string_literal: true

require "apikeys"
require "apikeys/rack"

module ApiKeys
  # Sinatra extension: a route condition and a helper that require an
  # accepted `Authorization: Bearer <key>`, holding a scope per route.
  #
  #   require "sinatra/base"
  #   require "apikeys/sinatra"
  #
  #   ApiKeys.configure("/var/lib/myapp/keys.redb", pepper: ENV.fetch("APIKEYS_PEPPER"))
  #
  #   class ContactsApi < Sinatra::Base
  #     register ApiKeys::Sinatra
  #
  #     get "/contacts", api_key: "contacts:read" do     # the route condition
  #       current_api_key.name
  #     end
  #
  #     post "/contacts" do
  #       require_api_key!("contacts:write")              # the helper
  #       ...
  #     end
  #   end
  #
  # `api_key: true` (or `require_api_key!` with no scope) takes any accepted
  # key. Refusals halt with the answers of ApiKeys::Rack::Authenticate (401
  # with `WWW-Authenticate: Bearer`, 403, 500 on a store failure). The store
  # is ApiKeys.store unless the app sets `:apikeys_store` to a KeyStore or
  # to a callable returning one: `set :apikeys_store, -> { ApiKeys.store(path) }`.
  module Sinatra
    # The helpers every route of a registered app gets.
    module Helpers
      # The accepted key (ApiKeys::VerifiedKey) holding scope, or halts with
      # 401, 403 or 500. Also puts the key in env["apikeys.key"].
      def require_api_key!(scope = nil)
        key, answer, error = HTTP.authenticate(method(:apikeys_store_for_request), env["HTTP_AUTHORIZATION"], scope)
        if key
          env[Rack::ENV_KEY] = key
          return key
        end

        Rack.report(env, error) if error
        halt answer.status, answer.headers.dup, answer.body
      end

      # The key this request was accepted with, nil when none was required.
      def current_api_key
        env[Rack::ENV_KEY]
      end

      private

      # Read through HTTP.authenticate, so that a store that fails to open
      # (a Proc setting raises as it is read) answers 500 like any other.
      def apikeys_store_for_request
        store = settings.apikeys_store
        store.respond_to?(:call) ? store.call : store
      end
    end

    def self.registered(app)
      app.helpers Helpers
      # The default is a Method, which `set` hands back as it is (and
      # HTTP.authenticate calls); a Proc the app sets becomes the setting's
      # reader, so `settings.apikeys_store` returns what it returns.
      app.set :apikeys_store, ApiKeys.method(:store) unless app.respond_to?(:apikeys_store)
      # get "/path", api_key: "scope" (or true for any accepted key).
      app.set(:api_key) do |scope|
        condition do
          require_api_key!(scope == true ? nil : scope)
          true
        end
      end
    end
  end
end
