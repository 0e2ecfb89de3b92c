# frozen_string_literal: true

require_relative "test_helper"

# Hostile and mistaken input: every case ends in a Ruby exception, never a
# crash, and the store loses nothing.
class HostileTest < Minitest::Test
  include StoreHelpers

  INVALID_UTF8 = "\xff\xfe\xc3\x28notutf8".b.freeze
  ONE_MIB = 1024 * 1024

  def setup
    super
    @store = ApiKeys::KeyStore.new(@path, pepper: PEPPER, shared: true)
    # A key made before the abuse: it must still work afterwards.
    @keeper = @store.generate("Keeper", env: "prod", scopes: ["contacts:read"])
  end

  def teardown
    assert_equal @keeper.id, @store.verify(@keeper.secret, scope: "contacts:read").id
    assert_equal [@keeper.id], @store.list.map(&:id), "refused input must create nothing"
    @store.close
    super
  end

  def test_invalid_utf8_names_and_scopes_are_invalid_arguments
    assert_raises(ApiKeys::InvalidArgument) { @store.generate(INVALID_UTF8) }
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("ok", scopes: [INVALID_UTF8]) }
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("ok", owner: INVALID_UTF8) }
    # A String tagged UTF-8 whose bytes are not: the bytes decide.
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("bad \xff name".dup.force_encoding("UTF-8")) }
  end

  def test_invalid_utf8_keys_are_unauthorized_not_crashes
    assert_equal :malformed, outcome { @store.verify(INVALID_UTF8) }
    refute ApiKeys.well_formed?(INVALID_UTF8)
    assert_equal :bad_header, outcome { @store.verify_header("Bearer ".b + INVALID_UTF8) }
    assert_raises(ApiKeys::InvalidArgument) { @store.revoke_key(INVALID_UTF8) }
    assert_raises(ApiKeys::InvalidArgument) { @store.revoke(INVALID_UTF8) }
  end

  def test_embedded_nul_bytes
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("name\0hidden") }
    assert_equal :malformed, outcome { @store.verify("#{@keeper.secret}\0") }
    assert_equal :malformed, outcome { @store.verify("#{@keeper.secret[0, 10]}\0#{@keeper.secret[11..]}") }
    assert_equal :bad_header, outcome { @store.verify_header("Bearer #{@keeper.secret}\0") }
  end

  def test_one_mebibyte_strings
    huge = "a" * ONE_MIB
    assert_raises(ApiKeys::InvalidArgument) { @store.generate(huge) }
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("ok", owner: huge) }
    assert_raises(ApiKeys::InvalidArgument) { @store.generate("ok", scopes: [huge]) }
    assert_equal :malformed, outcome { @store.verify(huge) }
    assert_equal :malformed, outcome { @store.verify_header("Bearer #{huge}") }
    refute ApiKeys.well_formed?(huge)
  end

  WRONG_TYPES = {
    "nil name" => ->(s, _k) { s.generate(nil) },
    "integer name" => ->(s, _k) { s.generate(42) },
    "symbol env" => ->(s, _k) { s.generate("ok", env: :prod) },
    "scopes as one string" => ->(s, _k) { s.generate("ok", scopes: "contacts:read") },
    "nil in scopes" => ->(s, _k) { s.generate("ok", scopes: [nil]) },
    "integer scopes" => ->(s, _k) { s.generate("ok", scopes: 5) },
    "string expiry" => ->(s, _k) { s.generate("ok", expires_at: "tomorrow") },
    "nil key" => ->(s, _k) { s.verify(nil) },
    "integer key" => ->(s, _k) { s.verify(12_345) },
    "integer scope" => ->(s, k) { s.verify(k.secret, scope: 3) },
    "float header" => ->(s, _k) { s.verify_header(3.5) },
    "nil id" => ->(s, _k) { s.revoke(nil) },
    "integer secret" => ->(s, _k) { s.revoke_key(99) },
    "string grace" => ->(s, k) { s.rotate(k.id, grace_seconds: "1 day") },
    "integer status" => ->(s, _k) { s.list(status: 1) },
    "string unused_since" => ->(s, _k) { s.list(unused_since: "yesterday") },
    "nil well_formed?" => ->(_s, _k) { ApiKeys.well_formed?(nil) }
  }.freeze

  def test_wrong_types_raise_type_error
    WRONG_TYPES.each do |what, call|
      assert_raises(TypeError, what) { call.call(@store, @keeper) }
    end
  end

  BAD_VALUES = {
    "empty name" => ->(s, _k) { s.generate("") },
    "blank name" => ->(s, _k) { s.generate("   ") },
    "bad env" => ->(s, _k) { s.generate("ok", env: "PROD!") },
    "scope with a space" => ->(s, _k) { s.generate("ok", scopes: ["two words"]) },
    "empty scope" => ->(s, _k) { s.generate("ok", scopes: [""]) },
    "misplaced star" => ->(s, _k) { s.generate("ok", scopes: ["bad*scope"]) },
    "zero expiry" => ->(s, _k) { s.generate("ok", expires_at: 0) },
    "negative expiry" => ->(s, _k) { s.generate("ok", expires_at: -5) },
    "negative grace" => ->(s, k) { s.rotate(k.id, grace_seconds: -1) },
    "unknown status" => ->(s, _k) { s.list(status: :bogus) }
  }.freeze

  def test_bad_values_raise_invalid_argument
    BAD_VALUES.each do |what, call|
      error = assert_raises(ApiKeys::InvalidArgument, what) { call.call(@store, @keeper) }
      refute_empty error.detail, what
    end
  end

  def test_wrong_types_when_opening
    assert_raises(TypeError) { ApiKeys::KeyStore.new(nil) }
    assert_raises(TypeError) { ApiKeys::KeyStore.new(@path, pepper: 123) }
    assert_raises(TypeError) { ApiKeys::KeyStore.new(@path, shared: "yes") }
    assert_raises(ApiKeys::InvalidArgument) { ApiKeys::KeyStore.new(INVALID_UTF8) }
  end

  # The library treats the required scope as a name to look up: one that no
  # key can hold is refused like any missing scope, and never crashes.
  def test_a_required_scope_that_is_not_a_scope_is_forbidden
    ["not a scope", "a" * ONE_MIB, "x\0y"].each do |scope|
      assert_raises(ApiKeys::Forbidden, scope[0, 20]) { @store.verify(@keeper.secret, scope: scope) }
    end
    assert_raises(ApiKeys::InvalidArgument) { @store.verify(@keeper.secret, scope: INVALID_UTF8) }
  end
end
