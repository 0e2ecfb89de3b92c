# frozen_string_literal: true

# What the puma and unicorn tests check, each in its server with 4 worker
# processes serving servers/app.ru, which authenticates with
# ApiKeys::Rack::Authenticate on a store in shared mode, while the command
# line (target/release/apikeys) works on the same store. As root, the store
# is created for www-data and the workers run as www-data, as in
# production. Checks: the exact answers on the wire; a key revoked from the
# command line refused by the next request in every worker; every worker's
# usage, flushed when the server stops gracefully, adding up to the
# requests it served. Include in a Minitest::Test that defines
# cluster_class and server_headers(body) (the headers the server adds).
require "minitest/autorun"
require "net/http"
require "json"
require "open3"
require "set"
require "etc"
require "tmpdir"
require "fileutils"
require "apikeys"
require_relative "../../servers/cluster"

module ClusterCases
  ROOT = File.expand_path("../../../..", __dir__)
  CLI = File.join(ROOT, "target", "release", "apikeys")
  WORKER_USER = "www-data"
  CLIENT_THREADS = 8
  # Enough for every one of 4 workers to take some: the test fails, saying
  # which workers answered, if they have not all answered by then.
  MAX_REQUESTS_PER_ROUND = 4000
  UNAUTHORIZED_BODY = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
  FORBIDDEN_BODY = '{"success":false,"error":{"code":"FORBIDDEN",' \
                   '"message":"API key does not have the required permissions"}}'

  def setup
    assert File.executable?(CLI), "#{CLI} is missing: cargo build --release"
    @dir = Dir.mktmpdir("apikeys-server-test")
    @path = File.join(@dir, "keys.redb")
    @as_root = Process.uid.zero?
    if @as_root
      # /var/lib/myapp as a package would make it: the workers' directory.
      FileUtils.chown(WORKER_USER, WORKER_USER, @dir)
      cli("init", "--owner", "#{WORKER_USER}:#{WORKER_USER}")
    end
    @keys = {
      reader: generate("reader", "contacts:read"),
      wildcard: generate("wildcard", "contacts:*"),
      admin: generate("admin", "*"),
      doomed: generate("doomed", "contacts:read")
    }
    @unknown = ApiKeys::KeyStore.open(File.join(@dir, "elsewhere.redb")) { |other| other.generate("elsewhere").secret }
    @server = cluster_class.new(db: @path, user: (WORKER_USER if @as_root), env: { "APP_WORKER_PID" => "1" })
  end

  def teardown
    @server&.kill_group
    FileUtils.remove_entry(@dir) if @dir
  end

  # As an admin runs it beside running workers: --shared, except for init
  # (which runs before any worker, as the README shows it).
  def cli(*args)
    shared = args.first == "init" ? [] : ["--shared"]
    output, status = Open3.capture2e(CLI, "--db", @path, *shared, *args)
    assert status.success?, "apikeys #{args.join(' ')} failed: #{output}"
    output
  end

  def generate(name, scope)
    line = cli("generate", "--name", name, "--scope", scope, "--json").lines.find { |l| l.start_with?("{") }
    JSON.parse(line).slice("id", "key")
  end

  def bearer(name)
    "Bearer #{@keys.fetch(name).fetch('key')}"
  end

  # [status, headers (lowercase names, values joined), body], on a new connection.
  def get(path, authorization = nil)
    Net::HTTP.start("127.0.0.1", @server.port, open_timeout: 60, read_timeout: 60) do |http|
      headers = { "Connection" => "close" }
      headers["Authorization"] = authorization if authorization
      response = http.get(path, headers)
      [response.code.to_i, response.to_hash.transform_values { |values| values.join(", ") }, response.body]
    end
  end

  def accepted_body(name)
    %({"ok":true,"key":"#{@keys.fetch(name).fetch('id')}"})
  end

  # The whole answer, headers included; the worker pid is checked apart.
  def assert_answer(expected_status, expected_headers, expected_body, answer, label)
    status, headers, body = answer
    assert_includes @server.worker_pids.values, headers["x-worker-pid"].to_i, "#{label}: answered by a worker"
    expected = { "content-type" => "application/json" }.merge(server_headers(expected_body)).merge(expected_headers)
    assert_equal [expected_status, expected, expected_body],
                 [status, headers.except("x-worker-pid", "date"), body], label
  end

  def assert_unauthorized(answer, label)
    assert_answer(401, { "www-authenticate" => "Bearer" }, UNAUTHORIZED_BODY, answer, label)
  end

  # Sends the request from several threads until every worker has answered
  # it; returns every answer.
  def from_every_worker(path, authorization)
    answers = []
    lock = Mutex.new
    seen = Set.new
    workers = @server.worker_pids.values.to_set
    Array.new(CLIENT_THREADS) do
      Thread.new do
        loop do
          break if lock.synchronize { seen == workers || answers.size >= MAX_REQUESTS_PER_ROUND }

          answer = get(path, authorization)
          lock.synchronize do
            answers << answer
            seen << answer[1]["x-worker-pid"].to_i
          end
        end
      end
    end.each(&:join)
    assert_equal workers, seen, "not every worker answered #{path} in #{answers.size} requests"
    answers
  end

  def test_a_revoked_key_is_refused_by_every_worker_and_every_use_is_counted
    @server.start
    assert_equal 4, @server.worker_pids.size
    assert_equal 4, @server.worker_pids.values.uniq.size
    if @as_root
      @server.worker_pids.each_value do |pid|
        uid = File.read("/proc/#{pid}/status")[/^Uid:\s+(\d+)/, 1].to_i
        assert_equal Etc.getpwnam(WORKER_USER).uid, uid, "worker #{pid} runs as #{WORKER_USER}"
      end
    end

    # The exact answers.
    [nil, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key", "Bearer #{@unknown}"].each do |authorization|
      assert_unauthorized(get("/contacts", authorization), "GET /contacts with #{authorization.inspect}")
    end
    assert_answer(200, {}, accepted_body(:reader), get("/contacts", bearer(:reader)), "reader on /contacts")
    assert_answer(403, { "www-authenticate" => 'Bearer error="insufficient_scope"' }, FORBIDDEN_BODY,
                  get("/admin", bearer(:reader)), "reader on /admin")
    assert_answer(200, {}, accepted_body(:wildcard), get("/contacts", bearer(:wildcard)), "contacts:* on /contacts")
    assert_answer(403, { "www-authenticate" => 'Bearer error="insufficient_scope"' }, FORBIDDEN_BODY,
                  get("/admin", bearer(:wildcard)), "contacts:* on /admin")
    assert_answer(200, {}, accepted_body(:admin), get("/admin", bearer(:admin)), "* on /admin")
    assert_answer(200, {}, '{"ok":true,"key":null}', get("/noauth"), "/noauth without a key")

    # Every worker accepts the doomed key...
    before = from_every_worker("/contacts", bearer(:doomed))
    before.each_with_index { |answer, n| assert_answer(200, {}, accepted_body(:doomed), answer, "doomed ##{n} before") }

    # ...until the command line revokes it: then every worker refuses it.
    assert_match(/revoked/i, cli("revoke", @keys[:doomed]["id"]))
    after = from_every_worker("/contacts", bearer(:doomed))
    after.each_with_index { |answer, n| assert_unauthorized(answer, "doomed ##{n} after the revocation") }

    readers = from_every_worker("/contacts", bearer(:reader))
    readers.each_with_index { |answer, n| assert_answer(200, {}, accepted_body(:reader), answer, "reader ##{n}") }

    assert_predicate @server.stop, :success?, @server.output
    refute_match(/error|exception/i, @server.output.lines.grep_v(/Listening|Puma version|Refreshing Gem list/).join)

    # Each worker flushed its usage as it stopped gracefully: the counts add up.
    infos = ApiKeys::KeyStore.open(@path, shared: true) { |store| store.list.to_h { |info| [info.name, info] } }
    assert_equal 1 + 1 + readers.size, infos["reader"].use_count, "reader: 2 single requests + #{readers.size}"
    assert_equal 0, infos["reader"].rejected_count
    assert_equal 2, infos["wildcard"].use_count, "wildcard: one 200, one 403"
    assert_equal 1, infos["admin"].use_count
    assert_equal before.size, infos["doomed"].use_count, "doomed: the requests accepted before the revocation"
    assert_equal after.size, infos["doomed"].rejected_count, "doomed: the presentations after the revocation"
    assert_equal :revoked, infos["doomed"].status

    if @as_root
      [@path, "#{@path}.index"].each do |file|
        stat = File.stat(file)
        assert_equal [Etc.getpwnam(WORKER_USER).uid, 0o600], [stat.uid, stat.mode & 0o777],
                     "#{file}: the command line kept the store's owner and mode"
      end
    end
  end
end
