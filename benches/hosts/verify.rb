# apikeys verify called from Ruby through the ffi gem, beside Ruby's usual
# ways: the sqlite3 gem (SHA-256 hex, the token row, as Sanctum does) and an
# in-memory floor (SHA-256 + Hash lookup).
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

module Lib
  extend FFI::Library
  ffi_lib ARGV[0]
  attach_function :apikeys_store_open, %i[string size_t pointer size_t uint32 pointer], :uint32
  attach_function :apikeys_store_close, %i[pointer], :uint32
  attach_function :apikeys_key_generate,
                  %i[pointer string size_t string size_t string size_t pointer size_t int64 pointer], :uint32
  attach_function :apikeys_key_secret, %i[pointer pointer pointer], :uint32
  attach_function :apikeys_key_free, %i[pointer], :uint32
  attach_function :apikeys_key_verify, %i[pointer string size_t pointer size_t pointer], :uint32
end

def open_store(path, flags)
  out = FFI::MemoryPointer.new(:pointer)
  status = Lib.apikeys_store_open(path, path.bytesize, nil, 0, flags, out)
  raise "open: #{status}" unless status.zero?
  out.read_pointer
end

# Median ns per call of the block over ROUNDS rounds of CALLS calls.
def measure(calls = CALLS)
  yield 200
  rounds = Array.new(ROUNDS) do
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    yield calls
    (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - start).fdiv(calls)
  end
  rounds.sort[ROUNDS / 2]
end

store = open_store(store_path, 0)
keys = Array.new(SAMPLE) do |i|
  out = FFI::MemoryPointer.new(:pointer)
  name = "ruby bench #{i}"
  status = Lib.apikeys_key_generate(store, name, name.bytesize, "prod", 4, "contacts:read", 13, nil, 0, 0, out)
  raise "generate: #{status}" unless status.zero?
  key = out.read_pointer
  text = FFI::MemoryPointer.new(:pointer)
  length = FFI::MemoryPointer.new(:size_t)
  Lib.apikeys_key_secret(key, text, length)
  secret = text.read_pointer.read_bytes(length.read(:size_t)).force_encoding(Encoding::UTF_8)
  Lib.apikeys_key_free(key)
  secret
end
bad_checksum = keys.map { |k| k[0, 12] + k[12..].reverse }
results = {}

{ "exclusive" => 0, "shared" => 1 }.each do |mode, flags|
  if mode == "shared"
    Lib.apikeys_store_close(store)
    store = open_store(store_path, flags)
  end
  raise "verify failed in #{mode} mode" unless Lib.apikeys_key_verify(store, keys[0], keys[0].bytesize, nil, 0, nil).zero?
  results["apikeys_#{mode}_valid"] = measure do |calls|
    calls.times do |i|
      key = keys[i & MASK]
      Lib.apikeys_key_verify(store, key, key.bytesize, nil, 0, nil)
    end
  end
  results["apikeys_#{mode}_bad_checksum"] = measure do |calls|
    calls.times do |i|
      key = bad_checksum[i & MASK]
      Lib.apikeys_key_verify(store, key, key.bytesize, nil, 0, nil)
    end
  end
  next unless mode == "exclusive"

  # The same call with a one-byte key, rejected by its length before any
  # work: what the ffi call itself costs.
  results["ffi_call_overhead"] = measure do |calls|
    calls.times { Lib.apikeys_key_verify(store, "x", 1, nil, 0, nil) }
  end
end
Lib.apikeys_store_close(store)

floor = {}
FILLER.times { |i| floor[Digest::SHA256.digest(SecureRandom.bytes(24))] = i }
keys.each_with_index { |k, i| floor[Digest::SHA256.digest(k)] = FILLER + i }
results["floor_valid"] = measure do |calls|
  calls.times { |i| floor[Digest::SHA256.digest(keys[i & MASK])] }
end

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
