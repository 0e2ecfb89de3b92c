# frozen_string_literal: true

# ApiKeys::Rack::Authenticate in a Rack::Builder app, checked by Rack::Lint,
# driven by rack-test (Debian: ruby-rack, ruby-rack-test).
require_relative "integration_helper"
require "rack"
require "rack/test"
require "stringio"
require "apikeys/rack"

class RackIntegrationTest < Minitest::Test
  include Rack::Test::Methods
  include AuthenticationCases

  KeyFixture.create!

  WHO = lambda do |env|
    [200, { "content-type" => "application/json" }, [KeyFixture.body_of(env["apikeys.key"])]]
  end
  ERRORS = StringIO.new

  APP = Rack::Builder.new do
    map("/contacts/export") do
      use ApiKeys::Rack::Authenticate, scope: "contacts:export"
      run WHO
    end
    map("/contacts") do
      use ApiKeys::Rack::Authenticate, scope: "contacts:read"
      run WHO
    end
    map("/billing") do
      use ApiKeys::Rack::Authenticate, scope: "billing:read"
      run WHO
    end
    map("/whoami") do
      use ApiKeys::Rack::Authenticate
      run WHO
    end
    map("/public") do
      run(->(env) { [200, { "content-type" => "text/plain" }, ["public, key: #{env['apikeys.key'] || 'none'}"]] })
    end
    map("/broken") do
      use ApiKeys::Rack::Authenticate, scope: "contacts:read", store: -> { ApiKeys.store(KeyFixture.broken_path) }
      run WHO
    end
  end.to_app

  def app
    Rack::Lint.new(APP)
  end

  def json_content_type
    "application/json"
  end

  def call_app(path, authorization, application = app)
    env = { "rack.errors" => ERRORS }
    env["HTTP_AUTHORIZATION"] = authorization unless authorization.nil?
    response = Rack::MockRequest.new(application).get(path, env)
    headers = response.headers.to_h.transform_keys(&:downcase)
    [response.status, headers, response.body]
  end

  def test_a_store_failure_is_put_in_the_env_and_reported_on_rack_errors
    seen = nil
    inner = ->(env) { [200, {}, []] }
    spy = lambda do |env|
      response = ApiKeys::Rack::Authenticate.new(inner, store: -> { ApiKeys.store(KeyFixture.broken_path) }).call(env)
      seen = env["apikeys.error"]
      response
    end
    errors = StringIO.new
    response = Rack::MockRequest.new(spy).get("/", "HTTP_AUTHORIZATION" => bearer(:reader), "rack.errors" => errors)
    assert_equal 500, response.status
    assert_kind_of ApiKeys::StoreCorrupted, seen
    assert_match(/\Aapikeys: answering 500, the key store failed: ApiKeys::StoreCorrupted: /, errors.string)
  end

  def test_a_closed_store_is_500
    closed = ApiKeys::KeyStore.new(KeyFixture.path, pepper: KeyFixture::PEPPER, shared: true)
    closed.close
    application = ApiKeys::Rack::Authenticate.new(WHO, scope: "contacts:read", store: closed)
    assert_equal [500, { "content-type" => "application/json" }, KeyFixture::INTERNAL_ERROR_BODY],
                 call_app("/", bearer(:reader), application)
  end

  # Shared mode verifies from the index beside the store (<store>.index) and
  # reads the store when the index cannot be trusted: both damaged is a
  # store that cannot answer.
  def test_a_store_and_its_index_damaged_under_a_running_app_is_500
    path = File.join(KeyFixture.dir, "damaged-later.redb")
    store = ApiKeys.store(path, pepper: KeyFixture::PEPPER)
    key = store.generate("Damaged later", scopes: ["contacts:read"])
    application = ApiKeys::Rack::Authenticate.new(WHO, scope: "contacts:read", store: -> { ApiKeys.store(path, pepper: KeyFixture::PEPPER) })
    status, = call_app("/", "Bearer #{key.secret}", application)
    assert_equal 200, status
    [path, "#{path}.index"].each do |damaged|
      File.open(damaged, "r+b") { |file| file.write("\xFF".b * file.size) }
    end
    assert_equal [500, { "content-type" => "application/json" }, KeyFixture::INTERNAL_ERROR_BODY],
                 call_app("/", "Bearer #{key.secret}", application)
  end

  def test_the_scope_may_be_chosen_per_request
    by_method = ->(env) { env["REQUEST_METHOD"] == "GET" ? "contacts:read" : "contacts:write" }
    application = Rack::Lint.new(ApiKeys::Rack::Authenticate.new(WHO, scope: by_method))
    reader = { "HTTP_AUTHORIZATION" => bearer(:reader) }
    assert_equal 200, Rack::MockRequest.new(application).get("/", reader).status
    assert_equal 403, Rack::MockRequest.new(application).post("/", reader).status
    assert_equal 200, Rack::MockRequest.new(application).post("/", "HTTP_AUTHORIZATION" => bearer(:contacts_all)).status
  end

  def test_the_apps_own_refusals_are_not_caught_by_the_middleware
    raising = ->(_env) { raise ApiKeys::Unauthorized.new("raised by the app", 101) }
    application = ApiKeys::Rack::Authenticate.new(raising, scope: "contacts:read")
    error = assert_raises(ApiKeys::Unauthorized) do
      Rack::MockRequest.new(application).get("/", "HTTP_AUTHORIZATION" => bearer(:reader))
    end
    assert_equal "raised by the app", error.message
  end

  def test_rack_test_sees_the_same_answers
    header "Authorization", bearer(:reader)
    get "/contacts"
    assert_equal 200, last_response.status
    assert_equal KeyFixture.body_for(:reader), last_response.body
    header "Authorization", nil
    get "/contacts"
    assert_equal 401, last_response.status
    assert_equal "Bearer", last_response.headers["WWW-Authenticate"]
  end

  def test_bad_options_are_refused_when_the_app_is_built
    assert_raises(TypeError) { ApiKeys::Rack::Authenticate.new(WHO, scope: :contacts) }
    assert_raises(TypeError) { ApiKeys::Rack::Authenticate.new(WHO, store: "/var/lib/keys.redb") }
  end
end
