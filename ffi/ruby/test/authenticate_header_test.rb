# frozen_string_literal: true

require_relative "test_helper"

# KeyStore#authenticate_header, the integrations' verify: the outcome of
# verify_header on every call, whatever it reuses of a key's details.
class AuthenticateHeaderTest < Minitest::Test
  include StoreHelpers

  def test_it_answers_what_verify_header_answers
    with_store do |store|
      key = store.generate("Reader", env: "prod", scopes: ["contacts:read"], owner: "acct-1")
      header = "Bearer #{key.secret}"
      expected = store.verify_header(header, scope: "contacts:read")
      3.times { assert_equal expected, store.authenticate_header(header, scope: "contacts:read") }
      assert_equal expected, store.authenticate_header(header)
      assert_equal "acct-1", store.authenticate_header(header).owner
    end
  end

  def test_every_call_counts_one_use
    with_store do |store|
      key = store.generate("Counted", scopes: ["contacts:read"])
      5.times { store.authenticate_header("Bearer #{key.secret}", scope: "contacts:read") }
      assert_raises(ApiKeys::Forbidden) { store.authenticate_header("Bearer #{key.secret}", scope: "admin") }
      store.flush
      assert_equal 6, store.list.first.use_count
    end
  end

  def test_a_key_revoked_after_its_details_were_read_is_refused_at_once
    with_store do |store|
      key = store.generate("Revoked later")
      header = "Bearer #{key.secret}"
      assert_equal key.id, store.authenticate_header(header).id
      # Revoked by another process, as the command line would.
      ApiKeys::KeyStore.open(@path, pepper: PEPPER, shared: true) { |other| other.revoke(key.id) }
      error = assert_raises(ApiKeys::Unauthorized) { store.authenticate_header(header) }
      assert_equal :revoked, error.reason
    end
  end

  def test_the_scope_is_checked_on_every_call
    with_store do |store|
      key = store.generate("Reader", scopes: ["contacts:read", "billing:*"])
      header = "Bearer #{key.secret}"
      assert_equal key.id, store.authenticate_header(header, scope: "contacts:read").id
      assert_raises(ApiKeys::Forbidden) { store.authenticate_header(header, scope: "contacts:write") }
      assert_equal key.id, store.authenticate_header(header, scope: "billing:read").id
      assert_raises(ApiKeys::Forbidden) { store.authenticate_header(header, scope: "admin") }
    end
  end

  def test_other_header_forms_are_left_to_the_cores_parser
    stranger = unknown_key
    with_store do |store|
      key = store.generate("Forms")
      ["bearer #{key.secret}", "BEARER  #{key.secret}", " Bearer #{key.secret}\t"].each do |header|
        assert_equal key.id, store.authenticate_header(header).id, header.inspect
      end
      ["Bearer #{key.secret}\xFF".dup.force_encoding(Encoding::UTF_8), "Bearer \xFF\xFE".b,
       "Bearer #{key.secret}".encode(Encoding::UTF_16LE)].each do |header|
        assert_raises(ApiKeys::Unauthorized, header.inspect) { store.authenticate_header(header) }
      end
      [nil, "", "Bearer", "Basic #{key.secret}", "Bearer #{key.secret} extra", "Bearer #{key.secret}\0"].each do |header|
        assert_equal :bad_header, assert_raises(ApiKeys::Unauthorized) { store.authenticate_header(header) }.reason,
                     header.inspect
      end
      assert_equal :not_found, assert_raises(ApiKeys::Unauthorized) { store.authenticate_header("Bearer #{stranger}") }.reason
      assert_equal :malformed, assert_raises(ApiKeys::Unauthorized) { store.authenticate_header("Bearer flz_sk_0000") }.reason
    end
  end

  # Every form the core reads is remembered (the repeat call reads the
  # header with apikeys_header_check, the core's parser), and every one is
  # refused once the key is revoked.
  def test_every_form_the_core_accepts_answers_alike_on_repeat_calls_and_after_revocation
    with_store do |store|
      key = store.generate("Forms again", scopes: ["contacts:*"])
      forms = ["Bearer #{key.secret}", "bearer #{key.secret}", "BEARER  #{key.secret}", " Bearer #{key.secret}\t",
               "Bearer #{key.secret}".b]
      forms.each do |header|
        expected = store.verify_header(header, scope: "contacts:read")
        3.times { assert_equal expected, store.authenticate_header(header, scope: "contacts:read"), header.inspect }
        assert_raises(ApiKeys::Forbidden, header.inspect) { store.authenticate_header(header, scope: "admin") }
      end
      store.revoke(key.id)
      forms.each do |header|
        assert_equal :revoked, assert_raises(ApiKeys::Unauthorized) { store.authenticate_header(header) }.reason,
                     header.inspect
      end
    end
  end

  # A header past apikeys_header_check's scan bound, which verify_header
  # still reads, answers as verify_header does on every call.
  def test_a_header_longer_than_the_scan_bound_answers_as_verify_header_does
    with_store do |store|
      key = store.generate("Padded")
      header = "Bearer#{' ' * ApiKeys.const_get(:Native)::HEADER_SCAN_MAX}#{key.secret}"
      expected = begin
        store.verify_header(header)
      rescue ApiKeys::Unauthorized => e
        e.reason
      end
      3.times do
        answer = begin
          store.authenticate_header(header)
        rescue ApiKeys::Unauthorized => e
          e.reason
        end
        assert_equal expected, answer
      end
    end
  end

  def test_the_key_it_returns_cannot_be_changed_by_one_request_for_the_next
    with_store do |store|
      key = store.generate("Frozen", scopes: ["contacts:read"])
      verified = store.authenticate_header("Bearer #{key.secret}")
      assert_predicate verified, :frozen?
      assert_raises(FrozenError) { verified.scopes << "admin" }
      assert_equal ["contacts:read"], store.authenticate_header("Bearer #{key.secret}").scopes
    end
  end

  def test_a_scope_that_is_not_a_string_is_a_type_error_and_one_with_a_nul_is_refused
    with_store do |store|
      key = store.generate("Typed", scopes: ["contacts:read"])
      header = "Bearer #{key.secret}"
      store.authenticate_header(header, scope: "contacts:read")
      assert_raises(TypeError) { store.authenticate_header(header, scope: :contacts) }
      with_nul = "contacts:read\0"
      expected = assert_raises(ApiKeys::Error) { store.verify_header(header, scope: with_nul) }.class
      assert_raises(expected) { store.authenticate_header(header, scope: with_nul) }
    end
  end

  def test_a_closed_store_raises
    store = ApiKeys::KeyStore.new(@path, pepper: PEPPER, shared: true)
    key = store.generate("Closed")
    store.authenticate_header("Bearer #{key.secret}")
    store.close
    assert_raises(ApiKeys::StoreClosed) { store.authenticate_header("Bearer #{key.secret}") }
  end
end
