# frozen_string_literal: true

# The driver of servers/bench.sh (which starts PostgreSQL and sets PG_URL).
require "json"
require "open3"
require "etc"
require "tmpdir"
require "fileutils"
require "net/http"
require "apikeys"
require_relative "cluster"
require_relative "sanctum_style"

DURATION = Integer(ENV.fetch("DURATION", "10"))
ROUNDS = Integer(ENV.fetch("ROUNDS", "3"))
KEYS = Integer(ENV.fetch("KEYS", "10000"))
CLI = File.expand_path("../../../target/release/apikeys", __dir__)
WORKER_USER = "www-data"

def sh(*command)
  output, status = Open3.capture2e(*command)
  raise "#{command.join(' ')} failed:\n#{output}" unless status.success?

  output
end

# Requests/s, requests, and non-2xx answers of one wrk run.
def wrk(url, authorization)
  command = ["wrk", "-t2", "-c16", "-d#{DURATION}s"]
  command += ["-H", "Authorization: #{authorization}"] if authorization
  output = sh(*command, url)
  {
    rps: Float(output[%r{Requests/sec:\s+([\d.]+)}, 1]),
    requests: Integer(output[/(\d+) requests in/, 1]),
    refused: Integer(output[/Non-2xx or 3xx responses: (\d+)/, 1] || "0")
  }
end

def median(values)
  sorted = values.sort
  sorted[sorted.size / 2]
end

dir = Dir.mktmpdir("apikeys-puma-bench")
path = File.join(dir, "keys.redb")
as_root = Process.uid.zero?
if as_root
  FileUtils.chown(WORKER_USER, WORKER_USER, dir)
  sh(CLI, "--db", path, "init", "--owner", "#{WORKER_USER}:#{WORKER_USER}")
end
keys = sh(CLI, "--db", path, "generate", "--name", "bench", "--scope", "contacts:read", "--count", KEYS.to_s, "--json")
       .lines.grep(/\A\{/).map { |line| JSON.parse(line) }
key = keys[keys.size / 2]
tokens = SanctumStyle.seed(ENV.fetch("PG_URL"), KEYS)
token = tokens[tokens.size / 2]

puma = PumaCluster.new(db: path, user: (WORKER_USER if as_root), env: { "SANCTUM_PG_URL" => ENV.fetch("PG_URL") })
routes = {
  "apikeys" => ["/contacts", "Bearer #{key['key']}"],
  "no auth" => ["/noauth", nil],
  "Sanctum" => ["/sanctum", "Bearer #{token}"]
}
results = Hash.new { |hash, name| hash[name] = [] }
begin
  puma.start
  routes.each do |name, (route, authorization)|
    response = Net::HTTP.start("127.0.0.1", puma.port) do |http|
      http.get(route, authorization ? { "Authorization" => authorization } : {})
    end
    raise "#{name}: #{route} answered #{response.code} #{response.body}" unless response.code == "200"
  end
  puts "puma #{`puma --version`.strip[/[\d.]+/]} cluster, #{puma.workers} workers x 1 thread, " \
       "#{as_root ? "workers as #{WORKER_USER}" : 'workers as this user'}; wrk -t2 -c16 -d#{DURATION}s; " \
       "#{KEYS} keys / tokens; #{Etc.nprocessors} CPUs, load #{File.read('/proc/loadavg').split.first(3).join(' ')}"
  ROUNDS.times do |round|
    line = routes.map do |name, (route, authorization)|
      run = wrk("http://127.0.0.1:#{puma.port}#{route}", authorization)
      raise "#{name}: #{run[:refused]} answers were not 2xx" unless run[:refused].zero?

      results[name] << run
      format("%s %.0f", name, run[:rps])
    end
    ratio = results["apikeys"].last[:rps] / results["no auth"].last[:rps]
    puts format("round %d: %s req/s; apikeys / no auth %.2f", round + 1, line.join(", "), ratio)
  end
  raise "puma did not stop cleanly:\n#{puma.output}" unless puma.stop.success?
ensure
  puma.kill_group
end

served = results["apikeys"].sum { |run| run[:requests] }
counted = ApiKeys::KeyStore.open(path, shared: true) { |store| store.list.find { |info| info.id == key["id"] }.use_count }
rps = results.transform_values { |runs| median(runs.map { |run| run[:rps] }) }
puts
puts "| puma cluster (4 workers) | req/s (median of #{ROUNDS}) | runs |"
puts "|---|---|---|"
results.each do |name, runs|
  puts format("| %s | %.0f | %s |", name, rps[name], runs.map { |run| run[:rps].round }.join(", "))
end
puts
# Per round (the three runs of a round are adjacent, so they share the
# machine's load), then the median of those.
round_ratios = results["apikeys"].zip(results["no auth"]).map { |auth, open| auth[:rps] / open[:rps] }
puts format("apikeys / no auth: %.2f, the median of the rounds' %s (target >= 0.9); of the medians %.2f",
            median(round_ratios), round_ratios.map { |r| format("%.2f", r) }.join(", "), rps["apikeys"] / rps["no auth"])
puts format("apikeys / Sanctum-style: %.1fx (target > 1)", rps["apikeys"] / rps["Sanctum"])
puts "usage: the key's use_count after the graceful stop = #{counted}; wrk counted #{served} requests " \
     "(wrk does not count the answers still in flight when a run ends)"
FileUtils.remove_entry(dir)
