# frozen_string_literal: true

require_relative "test_helper"
require "digest"
require "base64"
require "json"
require "open3"

# Keys moved in from Laravel Sanctum, djangorestframework-api-key and Unkey
# (imported by the command line from rows made by each source's documented
# algorithm) verify unchanged through the gem: verify, verify_id, valid?,
# verify_header and authenticate_header, before and after their first
# verify re-digests them.
class ImportTest < Minitest::Test
  include StoreHelpers

  ROOT = File.expand_path("../../..", __dir__)

  def cli
    binary = File.join(ROOT, "target", "debug", "apikeys")
    system("cargo", "build", "--quiet", "-p", "apikeys", "--bin", "apikeys", chdir: ROOT, exception: true) unless File.exist?(binary)
    binary
  end

  def import(source, rows)
    export = File.join(@dir, "#{source}.export")
    File.write(export, rows)
    out, err, status = Open3.capture3({ "APIKEYS_PEPPER" => PEPPER }, cli, "--db", @path, "--shared",
                                      "import", "--from", source, export, "--json")
    assert status.success?, err
    assert_equal 1, JSON.parse(out)["imported"]
  end

  def legacy_keys
    secret = "Zr3kd8QmVn2Lx7Pq1Ws5Te9Yb4Uc6Ha0Jf2Gk8Mi1a2b3c4d"
    import("sanctum", "id,name,token,abilities\n7,Sanctum token,#{Digest::SHA256.hexdigest(secret)},\"[\"\"*\"\"]\"\n")
    drf = "Ab3dEf9h.q8Wm2Xn5Rt7Yp1Zs4Uv6Kl3Ho9Jb0Gc"
    import("drf-api-key", "prefix,name,hashed_key\nAb3dEf9h,DRF key,sha512$$#{Digest::SHA512.hexdigest(drf)}\n")
    unkey = "sk_5Hq2Nw8Lr3Kd7Mv1Xc9Tb4Zp"
    import("unkey", "#{JSON.generate(hash: Base64.strict_encode64(Digest::SHA256.digest(unkey)), name: 'Unkey key')}\n")
    ["7|#{secret}", drf, unkey]
  end

  def test_list_tells_each_key_s_origin_and_legacy_digest
    legacy_keys
    with_store do |store|
      store.generate("native")
      listed = store.list.to_h { |info| [info.name, info] }
      assert_equal ["drf-api-key", "sha512"], [listed["DRF key"].origin, listed["DRF key"].legacy_digest]
      assert_equal [nil, nil], [listed["native"].origin, listed["native"].legacy_digest]
    end
  end

  def test_imported_keys_verify_unchanged_through_every_call
    keys = legacy_keys
    with_store do |store|
      keys.each do |key|
        id = store.verify(key).id
        assert_equal id, store.verify_id(key)
        assert store.valid?(key)
        assert_equal id, store.verify_header("Bearer #{key}").id
        2.times { assert_equal id, store.authenticate_header("Bearer #{key}").id }
      end
      listed = store.list.to_h { |info| [info.name, info] }
      assert_equal ["sanctum", nil], [listed["Sanctum token"].origin, listed["Sanctum token"].legacy_digest]
      ["7|#{'x' * 48}", "Ab3dEf9h.wrongsecret", "sk_nope"].each do |forged|
        assert_equal :not_found, outcome { store.verify(forged) }
        refute store.valid?(forged)
      end
    end
  end
end
