# frozen_string_literal: true

# What the Rack, Sinatra and Rails tests share: one store with a key per
# kind of grant, the seed's exact answers, and the cases every integration
# must answer the same way. Each framework's test builds an app with the
# routes below and defines `call_app(path, authorization)`, which returns
# [status, headers (lowercase names), body].
#
#   GET /contacts          scope contacts:read
#   GET /contacts/export   scope contacts:export
#   GET /billing           scope billing:read
#   GET /whoami            any accepted key
#   GET /public            no key required
#   GET /broken            scope contacts:read, from a store that fails
#
# An accepted request answers 200 with KeyFixture.body_for(key).

require "minitest/autorun"
require "json"
require "tmpdir"
require "fileutils"
require "apikeys"

module KeyFixture
  PEPPER = "pepper used by the ruby integration tests"
  UNAUTHORIZED_BODY = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
  FORBIDDEN_BODY = '{"success":false,"error":{"code":"FORBIDDEN",' \
                   '"message":"API key does not have the required permissions"}}'
  INTERNAL_ERROR_BODY = '{"success":false,"error":{"code":"INTERNAL_ERROR",' \
                        '"message":"Authentication is temporarily unavailable"}}'
  GRANTS = {
    reader: ["contacts:read"],
    contacts_all: ["contacts:*"],
    everything: ["*"],
    billing: ["billing:read"],
    no_scope: [],
    revoked: ["contacts:read"]
  }.freeze

  class << self
    attr_reader :dir, :path, :broken_path, :keys, :unknown_secret

    # Creates the store (once per test process; at `path` if given, else in
    # a new directory) and configures ApiKeys.store with it, as an app's boot
    # code would.
    def create!(path = nil)
      return if @dir

      @dir = Dir.mktmpdir("apikeys-ruby-integration")
      @path = path || File.join(@dir, "keys.redb")
      FileUtils.mkdir_p(File.dirname(@path))
      @broken_path = File.join(@dir, "broken.redb")
      File.binwrite(@broken_path, "this is not a key store\n" * 100)
      ApiKeys.configure(@path, pepper: PEPPER)
      store = ApiKeys.store
      @keys = GRANTS.to_h { |name, scopes| [name, store.generate(name.to_s, scopes: scopes)] }
      store.revoke(@keys[:revoked].id)
      @unknown_secret = ApiKeys::KeyStore.open(File.join(@dir, "elsewhere.redb"), pepper: PEPPER) do |other|
        other.generate("elsewhere").secret
      end
      dir = @dir
      Minitest.after_run do
        ApiKeys.close_stores
        FileUtils.remove_entry(dir)
      end
    end

    def secret(name)
      keys.fetch(name).secret
    end

    # The body of the test apps' accepted requests: who the key is.
    def body_for(name)
      key = keys.fetch(name)
      JSON.generate({ "id" => key.id, "name" => key.info.name, "scopes" => key.info.scopes })
    end

    # What a route sends for an accepted key, from the VerifiedKey it got.
    def body_of(verified)
      JSON.generate({ "id" => verified.id, "name" => verified.name, "scopes" => verified.scopes })
    end

    def use_count(name)
      store = ApiKeys.store
      store.flush
      store.list.find { |info| info.id == keys.fetch(name).id }.use_count
    end
  end
end

# The cases every integration answers alike. Include in a Minitest::Test
# that defines call_app(path, authorization) and json_content_type (what the
# framework sends as the content type of a JSON answer).
module AuthenticationCases
  def bearer(name)
    "Bearer #{KeyFixture.secret(name)}"
  end

  def assert_answer(expected_status, expected_body, path, authorization, challenge: :none)
    status, headers, body = call_app(path, authorization)
    label = "GET #{path} with #{authorization.inspect}"
    assert_equal [expected_status, expected_body], [status, body], label
    assert_equal json_content_type, headers["content-type"], label
    if challenge == :none
      refute headers.key?("www-authenticate"), "#{label}: no WWW-Authenticate expected, got #{headers['www-authenticate']}"
    else
      assert_equal challenge, headers["www-authenticate"], label
    end
    headers
  end

  def assert_unauthorized(path, authorization)
    assert_answer(401, KeyFixture::UNAUTHORIZED_BODY, path, authorization, challenge: "Bearer")
  end

  def assert_forbidden(path, authorization)
    assert_answer(403, KeyFixture::FORBIDDEN_BODY, path, authorization,
                  challenge: 'Bearer error="insufficient_scope"')
  end

  def assert_accepted(path, name, authorization = bearer(name))
    assert_answer(200, KeyFixture.body_for(name), path, authorization)
  end

  def test_a_request_without_a_usable_key_is_401_with_a_bearer_challenge
    [nil, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Bearer not-a-key", "Bearer flz_sk_prod_0000",
     "Token #{KeyFixture.secret(:reader)}", "Bearer #{KeyFixture.secret(:reader)} extra",
     "Bearer #{KeyFixture.unknown_secret}", bearer(:revoked)].each do |authorization|
      assert_unauthorized("/contacts", authorization)
    end
    assert_unauthorized("/whoami", nil)
  end

  def test_a_key_with_the_routes_scope_is_let_through_and_attached
    assert_accepted("/contacts", :reader)
    assert_accepted("/contacts", :reader, "bearer #{KeyFixture.secret(:reader)}")
    assert_accepted("/billing", :billing)
    assert_accepted("/whoami", :no_scope)
    assert_accepted("/whoami", :reader)
  end

  def test_wildcard_scopes_hold_every_scope_under_them
    assert_accepted("/contacts", :contacts_all)
    assert_accepted("/contacts/export", :contacts_all)
    assert_accepted("/contacts", :everything)
    assert_accepted("/contacts/export", :everything)
    assert_accepted("/billing", :everything)
    assert_forbidden("/billing", bearer(:contacts_all))
  end

  def test_a_valid_key_without_the_scope_is_403
    assert_forbidden("/contacts/export", bearer(:reader))
    assert_forbidden("/contacts", bearer(:billing))
    assert_forbidden("/contacts", bearer(:no_scope))
  end

  def test_a_route_without_authentication_serves_anyone
    status, _headers, body = call_app("/public", nil)
    assert_equal [200, "public, key: none"], [status, body]
    status, _headers, body = call_app("/public", bearer(:revoked))
    assert_equal [200, "public, key: none"], [status, body]
  end

  def test_a_store_failure_is_500_never_401
    assert_answer(500, KeyFixture::INTERNAL_ERROR_BODY, "/broken", bearer(:reader))
    assert_answer(500, KeyFixture::INTERNAL_ERROR_BODY, "/broken", nil)
  end

  def test_every_accepted_or_forbidden_request_counts_one_use
    before = KeyFixture.use_count(:billing)
    assert_accepted("/billing", :billing)
    assert_forbidden("/contacts", bearer(:billing))
    assert_accepted("/whoami", :billing)
    assert_equal before + 3, KeyFixture.use_count(:billing)
  end
end
