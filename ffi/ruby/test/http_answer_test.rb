# frozen_string_literal: true

require_relative "test_helper"

# The HTTP answers: exact bodies, and WWW-Authenticate on 401 and 403.
class HttpAnswerTest < Minitest::Test
  include StoreHelpers

  UNAUTHORIZED_BODY = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
  FORBIDDEN_BODY = '{"success":false,"error":{"code":"FORBIDDEN",' \
                   '"message":"API key does not have the required permissions"}}'
  INTERNAL_ERROR_BODY = '{"success":false,"error":{"code":"INTERNAL_ERROR",' \
                        '"message":"Authentication is temporarily unavailable"}}'
  HTTP_RS = File.expand_path("../../../src/http.rs", __dir__)

  def test_every_unauthorized_reason_answers_401_with_a_bearer_challenge
    stranger = unknown_key
    with_store do |store|
      key = store.generate("Revoked")
      store.revoke(key.id)
      errors = [
        assert_raises(ApiKeys::Unauthorized) { store.verify("flz_sk_prod_not-a-key") },
        assert_raises(ApiKeys::Unauthorized) { store.verify(stranger) },
        assert_raises(ApiKeys::Unauthorized) { store.verify(key.secret) },
        assert_raises(ApiKeys::Unauthorized) { store.verify_header(nil) },
        assert_raises(ApiKeys::Unauthorized) { store.verify_header("Basic dXNlcjpwYXNz") }
      ]
      assert_equal %i[malformed not_found revoked bad_header bad_header], errors.map(&:reason)
      errors.each do |error|
        assert_equal [401, UNAUTHORIZED_BODY, { "content-type" => "application/json", "www-authenticate" => "Bearer" }],
                     ApiKeys.http_answer(error)
      end
    end
  end

  def test_a_missing_scope_answers_403_with_an_insufficient_scope_challenge
    with_store do |store|
      key = store.generate("Reader", scopes: ["contacts:read"])
      error = assert_raises(ApiKeys::Forbidden) { store.verify(key.secret, scope: "contacts:write") }
      assert_equal [403, FORBIDDEN_BODY,
                    { "content-type" => "application/json", "www-authenticate" => 'Bearer error="insufficient_scope"' }],
                   ApiKeys.http_answer(error)
    end
  end

  def test_a_store_failure_answers_500_without_a_challenge
    [ApiKeys::StoreCorrupted.new("damaged", 201), ApiKeys::StoreClosed.new("closed"),
     ApiKeys::NotConfigured.new("none"), RuntimeError.new("not ours")].each do |error|
      assert_equal [500, INTERNAL_ERROR_BODY, { "content-type" => "application/json" }], ApiKeys.http_answer(error),
                   error.inspect
    end
  end

  def test_to_rack_gives_a_fresh_rack_response
    first = ApiKeys::HTTP::UNAUTHORIZED.to_rack
    assert_equal [401, { "content-type" => "application/json", "www-authenticate" => "Bearer" }, [UNAUTHORIZED_BODY]],
                 first
    first[1]["x-added-by-a-middleware"] = "yes"
    refute_includes ApiKeys::HTTP::UNAUTHORIZED.to_rack[1], "x-added-by-a-middleware"
    assert_predicate ApiKeys::HTTP::UNAUTHORIZED.headers, :frozen?
  end

  # The challenges are copied from the core (the C ABI does not hand them
  # out): compare them with src/http.rs.
  def test_the_challenges_are_the_cores
    assert File.file?(HTTP_RS), "#{HTTP_RS} is missing: run the tests from the repository"
    source = File.read(HTTP_RS)
    challenge = lambda do |constant|
      block = source[/pub const #{constant}: Answer = Answer \{(.*?)\};/m, 1] or flunk("Answer::#{constant} not found")
      found = block.match(/www_authenticate: Some\((?:r#"(.*?)"#|"(.*?)")\)/m) or flunk("#{constant}: no challenge")
      found.captures.compact.first
    end
    assert_equal challenge.call("UNAUTHORIZED"), ApiKeys::HTTP::UNAUTHORIZED.headers["www-authenticate"]
    assert_equal challenge.call("FORBIDDEN"), ApiKeys::HTTP::FORBIDDEN.headers["www-authenticate"]
    assert_match(/pub const INTERNAL_ERROR: Answer = Answer \{[^}]*www_authenticate: None/m, source)
  end
end
