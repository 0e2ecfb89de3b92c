# frozen_string_literal: true

require_relative "test_helper"

# Store-level failures arrive as Ruby exceptions with the library's detail.
class ErrorsTest < Minitest::Test
  include StoreHelpers

  def test_wrong_pepper_is_refused_with_a_clear_error
    secret = with_store(shared: false) { |store| store.generate("Peppered").secret }
    error = assert_raises(ApiKeys::WrongPepper) { ApiKeys::KeyStore.new(@path, pepper: "another pepper") }
    assert_equal 202, error.status
    assert_match(/pepper/i, error.detail)
    # Nothing was lost: the right pepper still opens it and the key still works.
    with_store { |store| assert_equal "Peppered", store.verify(secret).name }
  end

  def test_a_file_that_is_not_a_store_is_reported_corrupted
    File.binwrite(@path, "this is a text file, not a redb database\n" * 200)
    error = assert_raises(ApiKeys::StoreCorrupted) { ApiKeys::KeyStore.new(@path, pepper: PEPPER) }
    assert_equal 201, error.status
    refute_empty error.detail
    assert_kind_of ApiKeys::Error, error
    assert File.binread(@path).start_with?("this is a text file"), "a refused file is left as it was"
  end

  def test_a_second_process_cannot_open_an_exclusive_store
    opened_reader, opened_writer = IO.pipe
    release_reader, release_writer = IO.pipe
    holder = fork do
      opened_reader.close
      release_writer.close
      ApiKeys::KeyStore.open(@path, pepper: PEPPER, shared: false) do
        opened_writer.puts "open"
        opened_writer.flush
        release_reader.gets # until the parent is done
      end
      exit!(0)
    end
    opened_writer.close
    release_reader.close
    begin
      assert_equal "open\n", opened_reader.gets, "the holder process did not open the store"
      error = assert_raises(ApiKeys::StoreLocked) { ApiKeys::KeyStore.new(@path, pepper: PEPPER, shared: false) }
      assert_equal 200, error.status
      assert_match(/shared/i, error.detail, "the message should point to shared mode")
      assert_equal 500, ApiKeys.http_answer(error).first
    ensure
      release_writer.puts "done"
      release_writer.close
      Process.wait(holder)
    end
    assert_predicate $?, :success?
    with_store(shared: false) { |store| assert_equal [], store.list }
  end

  def test_a_handle_used_after_fork_raises_in_the_child
    with_store do |store|
      key = store.generate("Forked")
      reader, writer = IO.pipe
      child = fork do
        reader.close
        report = begin
          store.verify(key.secret)
          "no error"
        rescue ApiKeys::UsedAfterFork
          "UsedAfterFork"
        rescue Exception => e # report anything else to the parent instead of hiding it
          e.inspect
        end
        begin
          store.close # frees the child's copy without touching the file
        rescue Exception => e
          report += " close: #{e.inspect}"
        end
        writer.write(report)
        writer.close
        exit!(0)
      end
      writer.close
      report = reader.read
      Process.wait(child)
      assert_equal "UsedAfterFork", report
      assert_equal key.id, store.verify(key.secret).id, "the parent's handle is untouched"
    end
  end

  def test_a_missing_library_names_the_environment_variable
    lib = File.expand_path("../lib", __dir__)
    missing = File.join(@dir, "nowhere", "libapikeys.so")
    output = IO.popen({ "APIKEYS_LIB" => missing }, [RbConfig.ruby, "-I", lib, "-e", 'require "apikeys"'],
                      err: %i[child out], &:read)
    refute_predicate $?, :success?
    assert_includes output, "LoadError"
    assert_includes output, "APIKEYS_LIB"
    assert_includes output, missing
  end
end
