# frozen_string_literal: true

require_relative "test_helper"
require "securerandom"
require "socket"

# The Ruby package on a PostgreSQL store: the server of PG_URL (scripts/test
# starts one through scripts/lib/postgres.sh; it trusts loopback, so the
# password in these URLs is carried, never checked). Each test gets its own
# database. Without PG_URL the tests are skipped, unless
# APIKEYS_REQUIRE_POSTGRES=1 (scripts/test), where that is a failure.
class PostgresTest < Minitest::Test
  include StoreHelpers

  PASSWORD = "pw-Never-Shown-7f3a"

  def setup
    super
    server = ENV.fetch("PG_URL", "")
    if server.empty?
      flunk "PG_URL is not set: start a server with pg_start (scripts/lib/postgres.sh)" if ENV["APIKEYS_REQUIRE_POSTGRES"] == "1"
      skip "PG_URL is not set (a PostgreSQL server, see scripts/lib/postgres.sh)"
    end
    database = "apikeys_rb_#{SecureRandom.hex(4)}"
    assert system("psql", "-q", "-X", server, "-c", "CREATE DATABASE #{database}"), "psql CREATE DATABASE"
    @url = server.sub(%r{\A(postgres(?:ql)?://[^:/@]*)@}, "\\1:#{PASSWORD}@").sub(%r{/[^/?]*(\?.*)?\z}, "/#{database}\\1")
    assert_includes @url, PASSWORD
  end

  def test_verify_and_a_revocation_seen_by_a_second_handle
    with_store(@url, shared: false) do |writer|
      key = writer.generate("Ruby on PostgreSQL", env: "prod", scopes: ["contacts:read"])
      assert_equal "Ruby on PostgreSQL", writer.verify(key.secret, scope: "contacts:read").name
      with_store("#{@url}?apikeys_strict=1", shared: false) do |strict|
        with_store(@url, shared: false) do |reader|
          assert_equal :accepted, outcome { reader.verify(key.secret) }
          assert writer.revoke(key.id)
          assert_equal :revoked, outcome { strict.verify(key.secret) }, "strict mode reads the database"
          # Within the bound L (1 s); the deadline only keeps a broken feed from hanging the run.
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
          sleep 0.002 while outcome { reader.verify(key.secret) } == :accepted &&
                            Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
          assert_equal :revoked, outcome { reader.verify(key.secret) }
        end
      end
    end
  end

  def test_another_pepper_is_refused
    with_store(@url, shared: false) { |_| nil }
    error = assert_raises(ApiKeys::WrongPepper) { with_store(@url, pepper: "another pepper", shared: false) { |_| nil } }
    refute_includes error.message, PASSWORD
  end

  def test_the_url_is_shown_without_its_password
    with_store(@url, shared: false) do |store|
      assert_equal @url.sub(":#{PASSWORD}@", "@"), store.path
      assert_includes store.path, "postgres@"
      [store.inspect, store.to_s, store.instance_variables.map { |name| store.instance_variable_get(name).inspect }.join].each do |shown|
        refute_includes shown, PASSWORD
      end
    end
  end

  def test_an_unreachable_server_is_unavailable_never_unauthorized
    listener = TCPServer.new("127.0.0.1", 0)
    port = listener.addr[1]
    listener.close
    url = "#{@url.sub(%r{@[^/]*/}, "@127.0.0.1:#{port}/")}?connect_timeout=2"
    assert_includes url, PASSWORD
    error = assert_raises(ApiKeys::DatabaseUnavailable) { ApiKeys::KeyStore.new(url, pepper: PEPPER) }
    assert_equal 500, ApiKeys::HTTP.answer(error).status
    refute_includes error.message, PASSWORD
    refute_includes error.full_message, PASSWORD
  end
  # A relay to the server run by a Ruby thread of the same process: it can
  # only pass the verify's query on if the call released the GVL. Held (the
  # hot calls of a file store keep it), the child deadlocks and the timeout
  # fails the test.
  RELAY_SCRIPT = <<~'RUBY'
    require "apikeys"
    require "socket"
    url, pepper = ARGV
    secret = $stdin.gets.chomp
    host, port = url.match(%r{@([^:/]+):(\d+)/}).captures
    listener = TCPServer.new("127.0.0.1", 0)
    Thread.new do
      loop do
        client = listener.accept
        server = TCPSocket.new(host, Integer(port))
        [[client, server], [server, client]].each do |from, to|
          Thread.new do
            loop { to.write(from.readpartial(65_536)) }
          rescue IOError, SystemCallError
            nil
          end
        end
      end
    end
    through = url.sub(%r{@[^/]*/}, "@127.0.0.1:#{listener.addr[1]}/")
    store = ApiKeys::KeyStore.new("#{through}?apikeys_strict=1", pepper: pepper)
    puts store.valid?(secret), !store.verify_id(secret).empty?, store.valid?(secret, scope: "contacts:read")
    store.close
  RUBY

  def test_the_hot_path_lets_other_threads_run_while_it_waits_on_postgresql
    secret = with_store(@url, shared: false) { |store| store.generate("hot path", scopes: ["contacts:read"]).secret }
    lib = File.expand_path("../lib", __dir__)
    output = IO.popen([RbConfig.ruby, "-I", lib, "-e", RELAY_SCRIPT, @url, PEPPER], "r+") do |child|
      child.puts(secret)
      child.close_write
      ready = IO.select([child], nil, nil, 60)
      flunk "the verify kept the GVL while waiting on PostgreSQL (no answer in 60 s)" unless ready
      child.read
    ensure
      Process.kill("KILL", child.pid) unless ready
    end
    assert_equal %w[true true true], output.split
  end
end
