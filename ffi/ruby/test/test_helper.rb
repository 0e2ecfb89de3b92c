# frozen_string_literal: true

require "minitest/autorun"
require "tmpdir"
require "apikeys"

# Shared setup: a fresh directory, and a store file in it, per test.
module StoreHelpers
  PEPPER = "pepper used by the ruby tests"

  def setup
    @dir = Dir.mktmpdir("apikeys-ruby-test")
    @path = File.join(@dir, "keys.redb")
  end

  def teardown
    FileUtils.remove_entry(@dir) if @dir
  end

  def with_store(path = @path, pepper: PEPPER, shared: true, &block)
    ApiKeys::KeyStore.open(path, pepper: pepper, shared: shared, &block)
  end

  # A well-formed key that no store under test knows: made by another store.
  def unknown_key
    ApiKeys::KeyStore.open(File.join(@dir, "elsewhere.redb"), pepper: PEPPER) do |other|
      other.generate("elsewhere", env: "prod").secret
    end
  end

  # The Unauthorized reason a verify raises, or :accepted.
  def outcome
    yield
    :accepted
  rescue ApiKeys::Unauthorized => e
    e.reason
  end
end
