# frozen_string_literal: true

# ApiKeys::Sinatra: the route condition and the helper, in a Sinatra::Base
# app (Debian: ruby-sinatra), driven by rack-test.
require_relative "integration_helper"
require "rack/test"
require "stringio"
require "sinatra/base"
require "apikeys/sinatra"

class SinatraIntegrationTest < Minitest::Test
  include Rack::Test::Methods
  include AuthenticationCases

  KeyFixture.create!

  # The README's app: the condition on most routes, the helper on one.
  class ContactsApi < Sinatra::Base
    register ApiKeys::Sinatra
    set :environment, :production # no development error pages: what users deploy

    get "/contacts/export", api_key: "contacts:export" do
      content_type :json
      KeyFixture.body_of(current_api_key)
    end

    get "/contacts", api_key: "contacts:read" do
      content_type :json
      KeyFixture.body_of(current_api_key)
    end

    get "/billing" do
      key = require_api_key!("billing:read")
      content_type :json
      KeyFixture.body_of(key)
    end

    get "/whoami", api_key: true do
      content_type :json
      KeyFixture.body_of(current_api_key)
    end

    get "/public" do
      "public, key: #{current_api_key || 'none'}"
    end
  end

  # Another app whose store fails to open: the setting as a Proc.
  class BrokenApi < Sinatra::Base
    register ApiKeys::Sinatra
    set :environment, :production
    set :apikeys_store, -> { ApiKeys.store(KeyFixture.broken_path) }

    get "/", api_key: "contacts:read" do
      "never served"
    end
  end

  # A filter guarding every route under /admin.
  class AdminApi < Sinatra::Base
    register ApiKeys::Sinatra
    set :environment, :production
    before { require_api_key!("admin") }

    get("/keys") { "keys of #{current_api_key.name}" }
  end

  APP = Rack::Builder.new do
    map("/broken") { run BrokenApi }
    map("/admin") { run AdminApi }
    run ContactsApi
  end.to_app

  def app
    APP
  end

  def json_content_type
    "application/json"
  end

  def call_app(path, authorization, errors: StringIO.new)
    env = { "rack.errors" => errors }
    env["HTTP_AUTHORIZATION"] = authorization unless authorization.nil?
    response = Rack::MockRequest.new(app).get(path, env)
    [response.status, response.headers.to_h.transform_keys(&:downcase), response.body]
  end

  def test_a_before_filter_guards_every_route_under_it
    assert_unauthorized("/admin/keys", nil)
    assert_forbidden("/admin/keys", bearer(:contacts_all))
    status, _headers, body = call_app("/admin/keys", bearer(:everything))
    assert_equal [200, "keys of everything"], [status, body]
  end

  def test_a_store_failure_is_reported_on_rack_errors
    errors = StringIO.new
    status, = call_app("/broken", bearer(:reader), errors: errors)
    assert_equal 500, status
    assert_match(/\Aapikeys: answering 500, the key store failed: ApiKeys::StoreCorrupted: /, errors.string)
  end

  def test_rack_test_sees_the_same_answers
    header "Authorization", bearer(:reader)
    get "/contacts"
    assert_equal [200, KeyFixture.body_for(:reader)], [last_response.status, last_response.body]
    header "Authorization", bearer(:reader)
    get "/contacts/export"
    assert_equal [403, 'Bearer error="insufficient_scope"'], [last_response.status, last_response.headers["WWW-Authenticate"]]
  end
end
