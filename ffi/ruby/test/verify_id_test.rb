# frozen_string_literal: true

require_relative "test_helper"

# verify_id and valid?: the one-call verify (apikeys_key_check) gives the
# same answers as verify, in both modes, and refuses what verify refuses.
class VerifyIdTest < Minitest::Test
  include StoreHelpers

  def each_mode
    [false, true].each do |shared|
      path = File.join(@dir, "keys-#{shared}.redb")
      with_store(path, shared: shared) { |store| yield store }
    end
  end

  def test_verify_id_returns_the_id_of_the_accepted_key
    each_mode do |store|
      key = store.generate("Reader", env: "prod", scopes: ["contacts:*"])
      assert_equal key.id, store.verify_id(key.secret)
      assert_equal key.id, store.verify_id(key.secret, scope: "contacts:read")
      assert_equal key.id, store.verify_id(key.secret, scope: "") # "" = no scope
      assert store.valid?(key.secret)
      assert store.valid?(key.secret, scope: "contacts:write")
    end
  end

  def test_refusals_are_those_of_verify
    foreign = unknown_key
    each_mode do |store|
      key = store.generate("Reader", scopes: ["contacts:read"])
      revoked = store.generate("Revoked")
      store.revoke(revoked.id)
      { malformed: key.secret[0..-2], not_found: foreign, revoked: revoked.secret }.each do |reason, presented|
        assert_equal reason, outcome { store.verify_id(presented) }
        assert_equal reason, outcome { store.verify(presented) }
        refute store.valid?(presented)
      end
      assert_raises(ApiKeys::Forbidden) { store.verify_id(key.secret, scope: "billing:read") }
      refute store.valid?(key.secret, scope: "billing:read")
    end
  end

  def test_a_key_or_scope_holding_a_nul_is_not_cut_short
    each_mode do |store|
      key = store.generate("Reader", scopes: ["contacts:read"])
      # Read up to the NUL, each of these would be the valid key.
      ["#{key.secret}\0", "#{key.secret}\0junk", "#{key.secret[0, 10]}\0#{key.secret[11..]}"].each do |presented|
        assert_equal :malformed, outcome { store.verify_id(presented) }
        refute store.valid?(presented)
      end
      assert_raises(ApiKeys::Forbidden) { store.verify_id(key.secret, scope: "contacts:read\0admin") }
    end
  end

  def test_hostile_keys_and_scopes
    each_mode do |store|
      key = store.generate("Keeper", scopes: ["contacts:read"])
      ["", "x", "a" * (1024 * 1024), "\xff\xfe".b * 30].each do |presented|
        assert_equal :malformed, outcome { store.verify_id(presented) }
        refute store.valid?(presented)
      end
      assert_raises(ApiKeys::InvalidArgument) { store.verify_id(key.secret, scope: "\xff".b) }
      assert_raises(ApiKeys::InvalidArgument) { store.valid?(key.secret, scope: "\xff".b) }
      [nil, 42, :key].each { |wrong| assert_raises(TypeError) { store.verify_id(wrong) } }
      assert_raises(TypeError) { store.valid?(key.secret, scope: 7) }
      assert_equal key.id, store.verify_id(key.secret, scope: "contacts:read")
    end
  end

  def test_uses_are_counted_as_verify_counts_them
    each_mode do |store|
      key = store.generate("Counted", scopes: ["contacts:read"])
      store.verify_id(key.secret)
      store.valid?(key.secret)
      store.valid?(key.secret, scope: "billing:read") # lacking a scope is still a use
      store.verify(key.secret)
      store.flush
      assert_equal 4, store.list.first.use_count
    end
  end

  def test_a_closed_store_refuses_the_fast_calls
    store = ApiKeys::KeyStore.new(@path)
    key = store.generate("Gone")
    store.close
    assert_raises(ApiKeys::StoreClosed) { store.verify_id(key.secret) }
    assert_raises(ApiKeys::StoreClosed) { store.valid?(key.secret) }
  end

  def test_threads_each_get_their_own_id
    each_mode do |store|
      keys = Array.new(4) { |i| store.generate("Thread #{i}") }
      seen = keys.each_index.map do |index|
        Thread.new do
          ids = Array.new(300) { store.verify_id(keys[index].secret) }
          refute store.valid?("flz_sk_not_a_key")
          ids.uniq
        end
      end.map(&:value)
      assert_equal keys.map { |key| [key.id] }, seen
    end
  end
end
