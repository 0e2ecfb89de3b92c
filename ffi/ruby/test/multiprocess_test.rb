# frozen_string_literal: true

require_relative "test_helper"

# Several forked workers on one store in shared mode, as under puma or
# unicorn: when one revokes a key, every other rejects it on its next verify.
class MultiprocessTest < Minitest::Test
  include StoreHelpers

  WORKERS = 4
  REVOKER = 0

  # One worker: opens its own handle after the fork, as a server worker must,
  # and reports each step on `results`; `control` tells it when to go on.
  def run_worker(number, secret, key_id, control, results)
    ApiKeys::KeyStore.open(@path, pepper: PEPPER, shared: true) do |store|
      results.puts "#{number} before #{store.verify(secret).id}"
      if control.gets == "revoke\n"
        results.puts "#{number} revoked #{store.revoke(key_id)}"
        control.gets
      end
      results.puts "#{number} after #{outcome { store.verify(secret) }}"
    end
  rescue Exception => e # reported to the parent, which fails the test
    results.puts "#{number} error #{e.inspect.delete("\n")}"
  end

  def test_a_revocation_in_one_worker_is_seen_by_every_other
    with_store do |parent|
      key = parent.generate("Shared", env: "prod")
      results_reader, results_writer = IO.pipe
      results_writer.sync = true
      controls = []
      pids = Array.new(WORKERS) do |number|
        control_reader, control_writer = IO.pipe
        controls << control_writer
        fork do
          results_reader.close
          run_worker(number, key.secret, key.id, control_reader, results_writer)
          exit!(0)
        end.tap { control_reader.close }
      end
      results_writer.close
      read_line = lambda do
        line = results_reader.gets or flunk("a worker died without reporting")
        number, step, value = line.chomp.split(" ", 3)
        flunk("worker #{number}: #{value}") if step == "error"
        [number.to_i, step, value]
      end

      befores = Array.new(WORKERS) { read_line.call }
      assert_equal Array.new(WORKERS) { |n| [n, "before", key.id] }, befores.sort
      controls[REVOKER].puts "revoke"
      controls[REVOKER].flush
      assert_equal [REVOKER, "revoked", "true"], read_line.call
      controls.each do |control|
        control.puts "check"
        control.close
      end
      afters = Array.new(WORKERS) { read_line.call }
      assert_equal Array.new(WORKERS) { |n| [n, "after", "revoked"] }, afters.sort
      pids.each { |pid| Process.wait(pid) }
      # The parent, which did nothing, sees it too.
      assert_equal :revoked, outcome { parent.verify(key.secret) }
    end
  end

  def test_keys_generated_by_workers_are_verified_by_the_parent
    with_store do |parent|
      reader, writer = IO.pipe
      pids = Array.new(WORKERS) do |number|
        fork do
          reader.close
          line = begin
            ApiKeys::KeyStore.open(@path, pepper: PEPPER, shared: true) do |store|
              "ok #{store.generate("worker #{number}").secret}"
            end
          rescue Exception => e
            "error #{e.inspect.delete("\n")}"
          end
          writer.puts line
          exit!(0)
        end
      end
      writer.close
      lines = reader.readlines(chomp: true)
      pids.each { |pid| Process.wait(pid) }
      assert_equal WORKERS, lines.size
      lines.each { |line| assert line.start_with?("ok "), line }
      names = lines.map { |line| parent.verify(line.delete_prefix("ok ")).name }.sort
      assert_equal Array.new(WORKERS) { |n| "worker #{n}" }, names
      assert_equal WORKERS, parent.list.size
    end
  end
end
