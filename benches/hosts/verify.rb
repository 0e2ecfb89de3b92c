# apikeys verify called from Ruby through the ffi gem, beside Ruby's usual
# ways: the sqlite3 gem (SHA-256 hex, the token row, as Sanctum does) and an
# in-memory floor (SHA-256 + Hash lookup).
#
# Rows: package_* call the gem (ffi/ruby) as an application does (verify_id,
# valid?, verify); apikeys_* and check_* call the C ABI directly
# (apikeys_key_verify with out = NULL, apikeys_key_check);
# *_call_overhead are those calls with a one-byte key. The rows of one mode
# take turns within every round.
#
# usage: ruby verify.rb <libapikeys.so> <store.redb> <work dir>
# Prints one JSON line: median ns per verify for each approach.

require "ffi"
require "digest"
require "json"
require "securerandom"
require "sqlite3"

ROUNDS = 15
CALLS = 20_000
SAMPLE = 256
FILLER = 100_000
MASK = SAMPLE - 1

lib_path, store_path, work = ARGV
abort "usage: ruby verify.rb <libapikeys.so> <store.redb> <work dir>" unless work

# The package (ffi/ruby), as an application uses it, loading this library.
ENV["APIKEYS_LIB"] = lib_path
$LOAD_PATH.unshift File.expand_path("../../ffi/ruby/lib", __dir__)
require "apikeys"

# The raw C calls, attached here holding the GVL (as the rows measured before).
module Lib
  extend FFI::Library
  ffi_lib ARGV[0]
  attach_function :apikeys_key_verify, %i[pointer string size_t pointer size_t pointer], :uint32
  attach_function :apikeys_key_check, %i[pointer string pointer pointer], :uint32
  attach_function :apikeys_key_validate, %i[pointer string], :uint32
end

# Median ns per call of each body over ROUNDS rounds of `calls` calls, the
# bodies taking turns within every round so that all see the same machine.
def measure_together(bodies, calls = CALLS)
  rounds = bodies.transform_values do |body|
    body.call(200) # warm-up
    []
  end
  ROUNDS.times do
    bodies.each do |name, body|
      start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
      body.call(calls)
      rounds[name] << (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - start).fdiv(calls)
    end
  end
  rounds.transform_values { |times| times.sort[ROUNDS / 2] }
end

def measure(calls = CALLS, &body)
  measure_together({ "x" => body }, calls)["x"]
end

# Sample keys, generated through the package (one durable commit each).
store = ApiKeys::KeyStore.new(store_path)
keys = Array.new(SAMPLE) do |i|
  store.generate("ruby bench #{i}", env: "prod", scopes: ["contacts:read"]).secret
end
bad_checksum = keys.map { |k| k[0, 12] + k[12..].reverse }

# The floor: SHA-256 of the key, then a Hash lookup among FILLER + SAMPLE digests.
floor = {}
FILLER.times { |i| floor[Digest::SHA256.digest(SecureRandom.bytes(24))] = i }
keys.each_with_index { |k, i| floor[Digest::SHA256.digest(k)] = FILLER + i }

results = {}
{ "exclusive" => false, "shared" => true }.each do |mode, shared|
  if shared
    store.close
    store = ApiKeys::KeyStore.new(store_path, shared: true)
  end
  handle = store.instance_variable_get(:@handle) # for the rows calling the C ABI directly
  unless Lib.apikeys_key_verify(handle, keys[0], keys[0].bytesize, nil, 0, nil).zero? &&
         store.verify_id(keys[0]) == store.verify(keys[0]).id && !store.valid?(bad_checksum[0])
    raise "verify answers wrong in #{mode} mode"
  end

  bodies = {
    # What an application calls: verify_id, the key's id (for authorization).
    "package_verify_id_#{mode}_valid" => ->(calls) { calls.times { |i| store.verify_id(keys[i & MASK]) } },
    # The raw C call as before: apikeys_key_verify (six arguments, out = NULL).
    "apikeys_#{mode}_valid" => lambda do |calls|
      calls.times do |i|
        key = keys[i & MASK]
        Lib.apikeys_key_verify(handle, key, key.bytesize, nil, 0, nil)
      end
    end,
    "apikeys_#{mode}_bad_checksum" => lambda do |calls|
      calls.times do |i|
        key = bad_checksum[i & MASK]
        Lib.apikeys_key_verify(handle, key, key.bytesize, nil, 0, nil)
      end
    end
  }
  unless shared
    bodies.merge!(
      # valid?: a boolean, no id; verify: every detail of the key as an object.
      "package_is_valid_exclusive_valid" => ->(calls) { calls.times { |i| store.valid?(keys[i & MASK]) } },
      "package_verify_exclusive_valid" => ->(calls) { calls.times { |i| store.verify(keys[i & MASK]) } },
      # apikeys_key_check (NUL-terminated key, no scope, no id).
      "check_exclusive_valid" => lambda do |calls|
        calls.times { |i| Lib.apikeys_key_check(handle, keys[i & MASK], nil, nil) }
      end,
      # apikeys_key_validate (the same with only store and key).
      "validate_exclusive_valid" => lambda do |calls|
        calls.times { |i| Lib.apikeys_key_validate(handle, keys[i & MASK]) }
      end,
      # The same calls with a one-byte key, rejected by its length before
      # any work: what each ffi call itself costs.
      "ffi_call_overhead" => ->(calls) { calls.times { Lib.apikeys_key_verify(handle, "x", 1, nil, 0, nil) } },
      "check_call_overhead" => ->(calls) { calls.times { Lib.apikeys_key_check(handle, "x", nil, nil) } },
      "validate_call_overhead" => ->(calls) { calls.times { Lib.apikeys_key_validate(handle, "x") } },
      "floor_valid" => ->(calls) { calls.times { |i| floor[Digest::SHA256.digest(keys[i & MASK])] } }
    )
  end
  results.merge!(measure_together(bodies))
end
store.close

path = File.join(work, "sanctum-ruby.sqlite")
File.delete(path) if File.exist?(path)
db = SQLite3::Database.new(path)
db.execute(<<~SQL)
  CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,
    tokenable_type TEXT NOT NULL, tokenable_id INTEGER NOT NULL, name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE, abilities TEXT, last_used_at TEXT, expires_at TEXT,
    created_at TEXT, updated_at TEXT)
SQL
insert_sql = "INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token, abilities, " \
             "created_at, updated_at) VALUES ('App\\Models\\User', ?, ?, ?, '[\"contacts:read\"]', " \
             "'2026-11-27 00:00:00', '2026-11-27 00:00:00')"
db.transaction do
  insert = db.prepare(insert_sql)
  FILLER.times { |i| insert.execute(i % 5000, "filler #{i}", SecureRandom.hex(32)) }
  keys.each_with_index { |k, i| insert.execute(i, "ruby bench #{i}", Digest::SHA256.hexdigest(k)) }
  insert.close
end
results["sqlite_valid"] = measure(CALLS / 10) do |calls|
  calls.times do |i|
    token = Digest::SHA256.hexdigest(keys[i & MASK])
    db.get_first_row("SELECT * FROM personal_access_tokens WHERE token = ? LIMIT 1", [token])
  end
end
db.close
File.delete(path)

puts JSON.generate(host: "ruby", version: RUBY_VERSION, filler: FILLER, ns_per_verify: results)
