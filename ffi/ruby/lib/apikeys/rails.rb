# frozen_string_literal: true

require "active_support/concern"
require "active_support/core_ext/class/attribute"
require "apikeys"
require "apikeys/rack"

module ApiKeys
  # Rails integration: a controller concern.
  module Rails
    # Requires an accepted `Authorization: Bearer <key>` before the actions
    # you name, holding the scope each needs, and gives the controller
    # `current_api_key` (an ApiKeys::VerifiedKey: id, name, env, scopes,
    # owner, expires_at).
    #
    #   # config/initializers/apikeys.rb
    #   require "apikeys/rails"
    #   ApiKeys.configure(Rails.root.join("db/apikeys.redb"), pepper: ENV.fetch("APIKEYS_PEPPER"))
    #
    #   class ContactsController < ActionController::API
    #     include ApiKeys::Rails::Authenticated
    #     require_api_key scope: "contacts:read", only: %i[index show]
    #     require_api_key scope: "contacts:write", only: %i[create]
    #
    #     def index
    #       render json: { key: current_api_key.id }
    #     end
    #   end
    #
    # `require_api_key` takes the options of `before_action` (only, except,
    # if, unless); without scope any accepted key passes. Give each action
    # one `require_api_key`: two would verify (and count) the key twice.
    # Refusals render the answers of ApiKeys::Rack::Authenticate: 401 with
    # `WWW-Authenticate: Bearer`, 403 for a missing scope, 500 (logged) when
    # the store fails. The store is ApiKeys.store, opened once per worker
    # process; set `self.api_key_store = -> { ... }` (a callable returning a
    # KeyStore, or a KeyStore) in a controller to use another.
    module Authenticated
      extend ActiveSupport::Concern

      included do
        class_attribute :api_key_store, instance_writer: false, default: ApiKeys.method(:store)
        helper_method :current_api_key if respond_to?(:helper_method)
      end

      class_methods do
        def require_api_key(scope: nil, **before_action_options)
          unless scope.nil? || scope.is_a?(String)
            raise TypeError, "scope must be a String such as \"contacts:read\", or nil, not #{scope.class}"
          end

          before_action(**before_action_options) { authenticate_api_key!(scope) }
        end
      end

      # The key this request was accepted with; nil in an action that did
      # not require one.
      def current_api_key
        request.get_header(ApiKeys::Rack::ENV_KEY)
      end

      private

      # Verifies the request's key, holding scope if given; renders the
      # refusal (which halts the action) otherwise.
      def authenticate_api_key!(scope = nil)
        key, answer, error = HTTP.authenticate(api_key_store, request.authorization, scope)
        if key
          request.set_header(ApiKeys::Rack::ENV_KEY, key)
          return key
        end

        if error
          request.set_header(ApiKeys::Rack::ENV_ERROR, error)
          logger&.error("apikeys: answering 500, the key store failed: #{error.class}: #{error.message}")
        end
        answer.headers.each { |name, value| response.headers[name] = value }
        render body: answer.body, status: answer.status, content_type: HTTP::CONTENT_TYPE
      end
    end
  end
end
