# frozen_string_literal: true

require_relative "test_helper"
require "json"

# The whole lifecycle through the Ruby API: generate, verify, list, revoke,
# rotate, with the errors a request handler sees.
class LifecycleTest < Minitest::Test
  include StoreHelpers

  def test_generate_returns_a_well_formed_secret_and_its_public_info
    with_store do |store|
      key = store.generate("Production", env: "prod", scopes: ["contacts:read", "deals:*"], owner: "team-a")
      assert key.secret.start_with?("flz_sk_prod_")
      assert ApiKeys.well_formed?(key.secret)
      info = key.info
      assert_equal 16, info.id.length
      assert_equal key.id, info.id
      assert_equal "Production", info.name
      assert_equal "prod", info.env
      assert_equal ["contacts:read", "deals:*"], info.scopes
      assert_equal "team-a", info.owner
      assert_equal :active, info.status
      assert info.hint.start_with?(key.secret[0, "flz_sk_prod_".length + 4])
      refute_includes info.hint, key.secret
      assert info.created_at.utc?
      assert_nil info.expires_at
      assert_nil info.revoked_at
      assert_nil info.last_used
      assert_equal 0, info.use_count
    end
  end

  def test_inspect_leaves_the_secret_out
    with_store do |store|
      key = store.generate("Logged")
      refute_includes key.inspect, key.secret
      refute_includes key.to_s, key.secret
      assert_includes key.inspect, key.id
    end
  end

  def test_verify_accepts_the_key_and_reports_who_it_is
    with_store do |store|
      key = store.generate("Billing", env: "prod", scopes: ["contacts:*"], owner: "acct-42")
      verified = store.verify(key.secret)
      assert_equal key.id, verified.id
      assert_equal "Billing", verified.name
      assert_equal "prod", verified.env
      assert_equal ["contacts:*"], verified.scopes
      assert_equal "acct-42", verified.owner
      assert_nil verified.expires_at
      assert_equal key.id, store.verify(key.secret, scope: "contacts:write").id
    end
  end

  def test_verify_without_the_scope_is_forbidden_with_a_403
    with_store do |store|
      key = store.generate("Read only", scopes: ["contacts:read"])
      error = assert_raises(ApiKeys::Forbidden) { store.verify(key.secret, scope: "contacts:write") }
      assert_equal 104, error.status
      status, body = ApiKeys.http_answer(error)
      assert_equal 403, status
      assert_equal({ "success" => false,
                     "error" => { "code" => "FORBIDDEN",
                                  "message" => "API key does not have the required permissions" } },
                   JSON.parse(body))
    end
  end

  def test_malformed_and_unknown_keys_are_unauthorized_with_one_401_body
    stranger = unknown_key
    with_store do |store|
      malformed = assert_raises(ApiKeys::Unauthorized) { store.verify("flz_sk_prod_not-a-key") }
      assert_equal :malformed, malformed.reason
      unknown = assert_raises(ApiKeys::Unauthorized) { store.verify(stranger) }
      assert_equal :not_found, unknown.reason
      assert_equal ApiKeys.http_answer(malformed), ApiKeys.http_answer(unknown)
      status, body = ApiKeys.http_answer(unknown)
      assert_equal 401, status
      assert_equal "UNAUTHORIZED", JSON.parse(body)["error"]["code"]
    end
  end

  def test_verify_header_reads_a_bearer_token
    with_store do |store|
      key = store.generate("Header", scopes: ["contacts:read"])
      assert_equal key.id, store.verify_header("Bearer #{key.secret}").id
      assert_equal key.id, store.verify_header("bearer #{key.secret}", scope: "contacts:read").id
      assert_raises(ApiKeys::Forbidden) { store.verify_header("Bearer #{key.secret}", scope: "admin") }
      [nil, "", "Basic #{key.secret}", "Bearer", "Bearer #{key.secret} extra"].each do |header|
        error = assert_raises(ApiKeys::Unauthorized) { store.verify_header(header) }
        assert_equal :bad_header, error.reason, header.inspect
        assert_equal 401, ApiKeys.http_answer(error).first
      end
    end
  end

  def test_list_reports_use_counts_and_dates_after_flush
    with_store do |store|
      used = store.generate("Used", env: "prod")
      idle = store.generate("Idle", env: "dev")
      3.times { store.verify(used.secret) }
      store.flush
      by_id = store.list.to_h { |info| [info.id, info] }
      assert_equal [used.id, idle.id].sort, by_id.keys.sort
      assert_equal 3, by_id[used.id].use_count
      assert_kind_of Time, by_id[used.id].last_used
      assert by_id[used.id].last_used.utc?
      assert_equal 0, by_id[idle.id].use_count
      assert_nil by_id[idle.id].last_used
    end
  end

  def test_list_filters_by_status_and_by_unused_since
    with_store do |store|
      kept = store.generate("Kept")
      gone = store.generate("Gone")
      store.verify(kept.secret)
      store.revoke(gone.id)
      store.flush
      assert_equal [kept.id], store.list(status: :active).map(&:id)
      assert_equal [gone.id], store.list(status: "revoked").map(&:id)
      assert_equal [], store.list(status: :expired)
      # Far in the future: every key counts as unused since then.
      assert_equal [kept.id, gone.id].sort, store.list(unused_since: Time.now + (3650 * 86_400)).map(&:id).sort
      # Before both were created: neither has been unused that long.
      assert_equal [], store.list(unused_since: Time.utc(2001, 1, 1))
    end
  end

  def test_revoke_is_immediate_idempotent_and_answers_401
    with_store do |store|
      key = store.generate("Leaky")
      store.verify(key.secret)
      assert_equal true, store.revoke(key.id)
      assert_equal false, store.revoke(key.id)
      error = assert_raises(ApiKeys::Unauthorized) { store.verify(key.secret) }
      assert_equal :revoked, error.reason
      assert_equal 102, error.status
      assert_equal 401, ApiKeys.http_answer(error).first
      info = store.list.first
      assert_equal :revoked, info.status
      assert_kind_of Time, info.revoked_at
    end
  end

  def test_revoke_by_the_secret_itself
    with_store do |store|
      key = store.generate("Leaked on GitHub")
      assert_equal true, store.revoke_key(key.secret)
      assert_equal false, store.revoke_key(key.secret)
      assert_equal :revoked, outcome { store.verify(key.secret) }
    end
  end

  def test_revoking_an_unknown_key_says_so
    stranger = unknown_key
    with_store do |store|
      error = assert_raises(ApiKeys::UnknownKey) { store.revoke("0000000000000000") }
      assert_equal 3, error.status
      refute_empty error.detail
      assert_raises(ApiKeys::UnknownKey) { store.revoke_key(stranger) }
    end
  end

  def test_rotate_keeps_the_old_key_alive_during_the_grace_period
    with_store do |store|
      old = store.generate("Rotating", env: "prod", scopes: ["contacts:read"], owner: "o")
      new = store.rotate(old.id, grace_seconds: 86_400)
      refute_equal old.id, new.id
      refute_equal old.secret, new.secret
      assert_equal old.id, new.info.rotated_from
      assert_equal ["Rotating", "prod", ["contacts:read"], "o"],
                   [new.info.name, new.info.env, new.info.scopes, new.info.owner]
      assert_equal new.id, store.verify(new.secret, scope: "contacts:read").id
      assert_equal old.id, store.verify(old.secret).id
      old_info = store.list.find { |info| info.id == old.id }
      assert_equal new.id, old_info.rotated_to
      assert_kind_of Time, old_info.expires_at
    end
  end

  def test_rotate_without_grace_expires_the_old_key_at_once
    with_store do |store|
      old = store.generate("Compromised")
      new = store.rotate(old.id, grace_seconds: 0)
      assert_equal :expired, outcome { store.verify(old.secret) }
      assert_equal new.id, store.verify(new.secret).id
      assert_raises(ApiKeys::InvalidArgument) { store.rotate(old.id) }
    end
  end

  def test_generate_with_an_expiry
    with_store do |store|
      expires = Time.utc(2100, 1, 1)
      key = store.generate("Temporary", expires_at: expires)
      assert_equal expires, key.info.expires_at
      assert_equal expires, store.verify(key.secret).expires_at
      assert_raises(ApiKeys::InvalidArgument) { store.generate("Over", expires_at: Time.utc(2001, 1, 1)) }
    end
  end

  def test_keys_survive_close_and_reopen
    secret = with_store(shared: false) { |store| store.generate("Durable").secret }
    with_store(shared: false) { |store| assert_equal "Durable", store.verify(secret).name }
  end

  def test_new_and_close_without_a_block
    store = ApiKeys::KeyStore.new(@path, pepper: StoreHelpers::PEPPER)
    refute store.closed?
    store.generate("Plain")
    store.close
    assert store.closed?
    store.close # twice is fine
    assert_raises(ApiKeys::StoreClosed) { store.generate("late") }
    assert_raises(ApiKeys::StoreClosed) { store.verify("flz_sk_whatever") }
  end

  def test_the_block_form_closes_even_when_the_block_raises
    kept = nil
    assert_raises(RuntimeError) do
      with_store do |store|
        kept = store
        raise "handler failed"
      end
    end
    assert kept.closed?
  end

  def test_library_version
    assert_equal ApiKeys::VERSION, ApiKeys.library_version
  end
end
