# frozen_string_literal: true

require_relative "test_helper"

# One handle shared by the threads of a process (puma threads).
class ThreadsTest < Minitest::Test
  include StoreHelpers

  THREADS = 8
  VERIFIES_PER_THREAD = 200

  def test_one_handle_serves_many_threads_and_counts_every_use
    with_store do |store|
      key = store.generate("Threads", scopes: ["contacts:read"])
      reasons = Array.new(THREADS) do
        Thread.new do
          Array.new(VERIFIES_PER_THREAD) do
            store.verify(key.secret, scope: "contacts:read")
            # Each thread reads its own last error: never another thread's.
            outcome { store.verify("flz_sk_not_a_key") }
          end
        end
      end.flat_map(&:value)
      assert_equal [:malformed], reasons.uniq
      store.flush
      assert_equal THREADS * VERIFIES_PER_THREAD, store.list.first.use_count
    end
  end
end
