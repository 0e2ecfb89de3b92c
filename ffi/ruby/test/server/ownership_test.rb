# frozen_string_literal: true

# Who may open the store: workers running as www-data beside an admin who
# runs the command line as root. A worker that may not open the file gets
# ApiKeys::PermissionDenied (status 208) naming the file, its owner and mode
# and the worker's user, and an integration answers 500 (never 401) for it.
require "minitest/autorun"
require "open3"
require "json"
require "etc"
require "tmpdir"
require "fileutils"
require "rbconfig"
require "apikeys"

class OwnershipTest < Minitest::Test
  ROOT = File.expand_path("../../../..", __dir__)
  CLI = File.join(ROOT, "target", "release", "apikeys")
  LIB = File.expand_path("../../lib", __dir__)
  WORKER_USER = "www-data"

  # Opens the store as a worker would (ApiKeys.store, then the Rack
  # middleware's check) and prints what happened as JSON.
  WORKER = <<~RUBY
    require "json"
    require "apikeys"
    require "apikeys/rack"
    path, secret = ARGV
    report = {}
    begin
      store = ApiKeys.store(path)
      report["opened"] = true
      report["verified"] = store.verify_id(secret, scope: "contacts:read")
    rescue ApiKeys::Error => e
      report["error"] = e.class.name
      report["status"] = e.status
      report["detail"] = e.detail
    end
    app = ApiKeys::Rack::Authenticate.new(->(_env) { [200, {}, ["served"]] }, scope: "contacts:read",
                                          store: -> { ApiKeys.store(path) })
    status, headers, body = app.call("HTTP_AUTHORIZATION" => "Bearer \#{secret}", "rack.errors" => $stderr)
    report["answer"] = [status, headers, body.join]
    puts JSON.generate(report)
  RUBY

  def setup
    assert File.executable?(CLI), "#{CLI} is missing: cargo build --release"
    @dir = Dir.mktmpdir("apikeys-ownership-test")
    File.chmod(0o755, @dir)
    @path = File.join(@dir, "keys.redb")
  end

  def teardown
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

  def generate_secret
    JSON.parse(cli("generate", "--name", "worker key", "--scope", "contacts:read", "--json").lines.first)["key"]
  end

  # The worker script's report, run as `user` (nil: as this process).
  def run_worker(secret, user: nil)
    prefix = user ? ["setpriv", "--reuid=#{user}", "--regid=#{user}", "--init-groups", "--"] : []
    output, status = Open3.capture2e(*prefix, RbConfig.ruby, "-I", LIB, "-e", WORKER, @path, secret, chdir: @dir)
    assert status.success?, output
    JSON.parse(output.lines.last)
  end

  def assert_permission_denied(report, owner:, mode:, user:)
    assert_equal ["ApiKeys::PermissionDenied", 208], [report["error"], report["status"]], report.inspect
    assert_includes report["detail"], @path
    assert_includes report["detail"], "owned by #{owner} with mode #{mode}"
    assert_includes report["detail"], "runs as #{user}"
    assert_equal [500, { "content-type" => "application/json" },
                  '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}'],
                 report["answer"], "a store the worker may not open is a 500, never a 401"
  end

  def test_a_worker_that_may_not_open_the_store_gets_permission_denied_and_a_500
    cli("init")
    secret = generate_secret
    if Process.uid.zero?
      report = run_worker(secret, user: WORKER_USER)
      assert_permission_denied(report, owner: "root:root", mode: "600", user: WORKER_USER)
    else
      File.chmod(0o000, @path)
      report = run_worker(secret)
      me = Etc.getpwuid(Process.uid).name
      # The library writes the mode in octal without padding.
      assert_permission_denied(report, owner: "#{me}:#{Etc.getgrgid(Process.gid).name}", mode: "0", user: me)
    end
  end

  def test_a_store_created_for_the_workers_user_serves_them_and_keeps_its_owner
    skip_unless_root
    cli("init", "--owner", "#{WORKER_USER}:#{WORKER_USER}")
    secret = generate_secret # as root, after init: the file keeps its owner
    report = run_worker(secret, user: WORKER_USER)
    assert_equal [true, 200], [report["opened"], report["answer"].first], report.inspect
    [@path, "#{@path}.index"].each do |file|
      stat = File.stat(file)
      assert_equal [Etc.getpwnam(WORKER_USER).uid, Etc.getgrnam(WORKER_USER).gid, 0o600],
                   [stat.uid, stat.gid, stat.mode & 0o777], "#{file}: the store's owner and mode"
    end
  end

  def test_a_group_mode_store_serves_workers_in_the_group
    skip_unless_root
    cli("init", "--owner", "root:#{WORKER_USER}", "--mode", "660")
    secret = generate_secret
    report = run_worker(secret, user: WORKER_USER)
    assert_equal [true, 200], [report["opened"], report["answer"].first], report.inspect
    [@path, "#{@path}.index"].each do |file|
      stat = File.stat(file)
      assert_equal [0, Etc.getgrnam(WORKER_USER).gid, 0o660], [stat.uid, stat.gid, stat.mode & 0o777],
                   "#{file}: the store's owner and mode"
    end
    # The worker's verifies were counted in the file it may write.
    assert_equal 2, ApiKeys::KeyStore.open(@path, shared: true) { |store| store.list.first.use_count }
  end

  def skip_unless_root
    skip "switching to #{WORKER_USER} needs root (CI runs as root)" unless Process.uid.zero?
  end
end
