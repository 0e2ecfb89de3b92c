# frozen_string_literal: true

require "pathname"
require_relative "test_helper"

# ApiKeys.store: one open store per process, a fresh one after fork, usage
# flushed at exit.
class ProcessStoreTest < Minitest::Test
  include StoreHelpers

  def setup
    super
    @configured = ApiKeys.instance_variable_get(:@configured)
    ApiKeys.instance_variable_set(:@configured, nil)
  end

  def teardown
    ApiKeys.close_stores
    ApiKeys.instance_variable_set(:@configured, @configured)
    super
  end

  def test_the_same_path_and_options_give_the_same_open_store
    first = ApiKeys.store(@path, pepper: PEPPER)
    assert_same first, ApiKeys.store(@path, pepper: PEPPER)
    assert_predicate first, :shared?, "a server's store is shared unless asked otherwise"
    refute_same first, ApiKeys.store(File.join(@dir, "other.redb"), pepper: PEPPER)
    assert_same first, ApiKeys.store(Pathname(@path), pepper: PEPPER)
    ApiKeys.close_stores
    assert_predicate first, :closed?
    refute_same first, ApiKeys.store(@path, pepper: PEPPER), "a closed store is not handed out again"
  end

  def test_a_store_closed_by_its_user_is_opened_again
    ApiKeys.configure(@path, pepper: PEPPER)
    first = ApiKeys.store
    first.close
    second = ApiKeys.store
    refute_predicate second, :closed?
    assert_same second, ApiKeys.store
    assert_same second, ApiKeys.store(@path, pepper: PEPPER)
    second.close
    refute_predicate ApiKeys.store(@path, pepper: PEPPER), :closed?
  end

  def test_configure_names_the_store_and_opens_nothing
    assert_nil ApiKeys.configure(@path, pepper: PEPPER)
    refute File.exist?(@path), "configure must not open (a forking master calls it)"
    store = ApiKeys.store
    assert_same store, ApiKeys.store(@path, pepper: PEPPER, shared: true)
    assert_equal @path, store.path
  end

  def test_without_configure_the_store_is_an_error_that_answers_500
    error = assert_raises(ApiKeys::NotConfigured) { ApiKeys.store }
    assert_kind_of ApiKeys::Error, error
    assert_match(/ApiKeys.configure/, error.message)
    assert_equal 500, ApiKeys.http_answer(error).first
  end

  def test_a_store_that_fails_to_open_is_tried_again_on_the_next_call
    File.binwrite(@path, "not a store" * 100)
    assert_raises(ApiKeys::StoreCorrupted) { ApiKeys.store(@path, pepper: PEPPER) }
    File.delete(@path)
    assert_equal [], ApiKeys.store(@path, pepper: PEPPER).list
  end

  def test_a_forked_child_opens_its_own_store_and_the_parent_keeps_its
    parent_store = ApiKeys.store(@path, pepper: PEPPER)
    key = parent_store.generate("Forked")
    reader, writer = IO.pipe
    child = fork do
      reader.close
      report = begin
        store = ApiKeys.store(@path, pepper: PEPPER)
        [store.equal?(parent_store) ? "same object" : "new object", store.verify(key.secret).id].join(" ")
      rescue Exception => e # reported to the parent, which fails the test
        e.inspect
      end
      writer.write(report)
      writer.close
      exit!(0)
    end
    writer.close
    report = reader.read
    Process.wait(child)
    assert_equal "new object #{key.id}", report
    assert_equal key.id, parent_store.verify(key.secret).id, "the parent's store is untouched"
    assert_same parent_store, ApiKeys.store(@path, pepper: PEPPER)
  end

  # The integrations' call (ApiKeys.store with no path) in a child made by
  # fork, and by Process.daemon, which forks without Process._fork: each
  # gets a store of its own, never the parent's handle (which would answer
  # UsedAfterFork, a 500, to every request).
  def test_the_configured_store_is_the_childs_own_after_fork_and_daemon
    ApiKeys.configure(@path, pepper: PEPPER)
    parent_store = ApiKeys.store
    key = parent_store.generate("Configured")
    reports = [
      ->(report) { fork { report.call; exit!(0) } },
      ->(report) { fork { Process.daemon(true, true); report.call; exit!(0) } }
    ].map do |spawn|
      reader, writer = IO.pipe
      child = spawn.call(lambda do
        reader.close
        writer.write(begin
          store = ApiKeys.store
          [store.equal?(parent_store) ? "same object" : "new object", store.verify(key.secret).id].join(" ")
        rescue Exception => e # reported to the parent, which fails the test
          e.inspect
        end)
        writer.close
      end)
      writer.close
      Process.wait(child)
      report = reader.read # until the daemon, a grandchild, has closed it
      reader.close
      report
    end
    assert_equal ["new object #{key.id}"] * 2, reports
    assert_same parent_store, ApiKeys.store
    assert_equal key.id, parent_store.verify(key.secret).id, "the parent's store is untouched"
  end

  def test_a_child_that_exits_normally_flushes_its_usage_and_leaves_the_parents_store_alone
    parent_store = ApiKeys.store(@path, pepper: PEPPER)
    key = parent_store.generate("Counted")
    child = fork do
      store = ApiKeys.store(@path, pepper: PEPPER)
      7.times { store.verify(key.secret) }
      exit(0) # at_exit closes the child's store (and the parent's copy, harmlessly)
    end
    Process.wait(child)
    assert_predicate $?, :success?
    assert_equal key.id, parent_store.verify(key.secret).id, "the parent's handle still works"
    parent_store.flush
    assert_equal 8, parent_store.list.first.use_count
  end

  def test_a_process_that_exits_without_closing_flushes_its_usage
    ApiKeys::KeyStore.open(@path, pepper: PEPPER, shared: true) do |store|
      key = store.generate("At exit")
      lib = File.expand_path("../lib", __dir__)
      script = <<~RUBY
        require "apikeys"
        store = ApiKeys.store(ARGV[0], pepper: ARGV[1])
        5.times { store.verify(ARGV[2]) }
        # no close: the at_exit handler flushes
      RUBY
      output = IO.popen([RbConfig.ruby, "-I", lib, "-e", script, @path, PEPPER, key.secret], err: %i[child out],
                        &:read)
      assert_predicate $?, :success?, output
      assert_equal 5, store.list.first.use_count
    end
  end
end
