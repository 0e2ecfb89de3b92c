# frozen_string_literal: true

require "ffi"

module ApiKeys
  # The C ABI of include/apikeys.h, attached with the ffi gem. Private:
  # ApiKeys::KeyStore is the API.
  module Native
    extend FFI::Library

    ENV_VAR = "APIKEYS_LIB"
    LIBRARY_FILE = FFI::Platform.mac? ? "libapikeys.dylib" : "libapikeys.so"

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    UNKNOWN_KEY = 3
    MALFORMED = 100
    NOT_FOUND = 101
    REVOKED = 102
    EXPIRED = 103
    INSUFFICIENT_SCOPE = 104
    BAD_HEADER = 105
    LOCKED = 200
    CORRUPTED = 201
    WRONG_PEPPER = 202
    USED_AFTER_FORK = 203
    IO = 204
    STORAGE = 205
    UNSUPPORTED_VERSION = 206
    RANDOM = 207
    PERMISSION_DENIED = 208
    DATABASE_UNAVAILABLE = 209
    PANIC = 900

    OPEN_SHARED = 1
    # APIKEYS_ID_SIZE: the id buffer of apikeys_key_check (16 characters and a NUL).
    ID_SIZE = 17
    # APIKEYS_HEADER_SCAN_MAX: apikeys_header_check reads at most this many
    # bytes of a header looking for its NUL.
    HEADER_SCAN_MAX = 8192
    LIST_FILTERS = { all: 0, active: 1, revoked: 2, expired: 3 }.freeze
    KEY_STATUSES = { 0 => :active, 1 => :revoked, 2 => :expired }.freeze

    # Where the library is looked for, in order; APIKEYS_LIB alone when set.
    def self.candidate_paths
      explicit = ENV[ENV_VAR]
      return [explicit] if explicit && !explicit.empty?

      here = File.expand_path(__dir__)
      paths = [File.join(here, LIBRARY_FILE)]
      target = ENV["CARGO_TARGET_DIR"]
      paths << File.join(target, "release", LIBRARY_FILE) if target && !target.empty?
      dir = here
      loop do
        # A workspace root has both a Cargo.toml and the crate's ffi/ folder.
        if File.file?(File.join(dir, "Cargo.toml")) && File.directory?(File.join(dir, "ffi"))
          paths << File.join(dir, "target", "release", LIBRARY_FILE)
          break
        end
        parent = File.dirname(dir)
        break if parent == dir

        dir = parent
      end
      paths << LIBRARY_FILE # the system loader: LD_LIBRARY_PATH, ld.so.cache
      paths
    end

    def self.locate
      tried = []
      candidate_paths.each do |path|
        bare_name = !path.include?(File::SEPARATOR)
        unless bare_name || File.exist?(path)
          tried << "#{path} (no such file)"
          next
        end
        begin
          ffi_lib path
          return path
        rescue LoadError => e
          tried << "#{path} (#{e.message.lines.first&.strip})"
        end
      end
      hint = if ENV[ENV_VAR] && !ENV[ENV_VAR].empty?
               "#{ENV_VAR}=#{ENV[ENV_VAR].inspect} does not name a loadable libapikeys"
             else
               "set #{ENV_VAR} to the path of #{LIBRARY_FILE} " \
                 "(build it with `cargo build -p apikeys-ffi --release`)"
             end
      raise LoadError, "cannot load libapikeys: #{hint}; tried: #{tried.join('; ')}"
    end

    LIBRARY_PATH = locate

    # Read-only views owned by their handle; strings are NUL-terminated UTF-8.
    class KeyInfo < FFI::Struct
      layout :id, :pointer,
             :name, :pointer,
             :hint, :pointer,
             :env, :pointer,
             :scopes, :pointer,
             :owner, :pointer,
             :rotated_from, :pointer,
             :rotated_to, :pointer,
             :created_at, :int64,
             :expires_at, :int64,
             :revoked_at, :int64,
             :last_used, :int64,
             :use_count, :uint64,
             :rejected_count, :uint64,
             :status, :uint32,
             :origin, :pointer,
             :legacy_digest, :pointer
    end

    class VerifiedInfo < FFI::Struct
      layout :id, :pointer,
             :name, :pointer,
             :env, :pointer,
             :scopes, :pointer,
             :owner, :pointer,
             :expires_at, :int64
    end

    typedef :uint32, :status
    # Input strings go as a buffer plus its length: never NUL-terminated.
    typedef :buffer_in, :text

    attach_function :apikeys_version, [], :string
    attach_function :apikeys_status_str, [:status], :string
    attach_function :apikeys_last_error, [], :string
    attach_function :apikeys_is_well_formed, %i[text size_t], :status
    # Calls that may wait on the disk release the GVL so other threads run.
    attach_function :apikeys_store_open, %i[text size_t text size_t uint32 pointer], :status, blocking: true
    attach_function :apikeys_store_flush, [:pointer], :status, blocking: true
    attach_function :apikeys_store_close, [:pointer], :status, blocking: true
    attach_function :apikeys_key_generate,
                    %i[pointer text size_t text size_t text size_t text size_t int64 pointer], :status,
                    blocking: true
    attach_function :apikeys_key_secret, %i[pointer pointer pointer], :status
    attach_function :apikeys_key_info, %i[pointer pointer], :status
    attach_function :apikeys_key_free, [:pointer], :status
    attach_function :apikeys_key_verify, %i[pointer text size_t text size_t pointer], :status, blocking: true
    # The NUL-terminated verify (ffi/README.md): :string refuses a String
    # holding a NUL (ArgumentError), the package routes those to
    # apikeys_key_verify first. The GVL is kept: in both modes a verify is
    # a lookup in memory (shared mode's index is a mapped file), and
    # releasing and retaking the GVL cost more than the call itself
    # (0.6 against 1.3 us a call, measured on a shared store). The rare
    # verify that reads the store file (a key written a moment ago, an
    # index being rebuilt) holds it for that read.
    attach_function :apikeys_key_check, %i[pointer string string pointer], :status
    # The same without scope or id, in two arguments (the cheapest call).
    attach_function :apikeys_key_validate, %i[pointer string], :status
    # Both again, releasing the GVL: for stores on PostgreSQL, whose verify
    # may wait on the database (strict mode, a machine not current, a key
    # made elsewhere) while the process's other threads must run.
    attach_function :apikeys_key_check_blocking, :apikeys_key_check, %i[pointer string string pointer], :status,
                    blocking: true
    attach_function :apikeys_key_validate_blocking, :apikeys_key_validate, %i[pointer string], :status,
                    blocking: true
    attach_function :apikeys_header_verify, %i[pointer text size_t text size_t pointer], :status, blocking: true
    # apikeys_key_check for a whole Authorization header, read by the
    # core's rules (ffi/README.md): the header's NUL-terminated form, as
    # apikeys_key_check is the key's; and again releasing the GVL, for
    # stores on PostgreSQL.
    attach_function :apikeys_header_check, %i[pointer string string pointer], :status
    attach_function :apikeys_header_check_blocking, :apikeys_header_check, %i[pointer string string pointer], :status,
                    blocking: true
    attach_function :apikeys_verified_info, %i[pointer pointer], :status
    attach_function :apikeys_verified_free, [:pointer], :status
    attach_function :apikeys_status_http, %i[status pointer pointer], :status
    attach_function :apikeys_key_revoke, %i[pointer text size_t pointer], :status, blocking: true
    attach_function :apikeys_key_revoke_secret, %i[pointer text size_t pointer], :status, blocking: true
    attach_function :apikeys_key_rotate, %i[pointer text size_t uint64 pointer], :status, blocking: true
    attach_function :apikeys_key_list, %i[pointer uint32 int64 pointer], :status, blocking: true
    attach_function :apikeys_list_len, %i[pointer pointer], :status
    attach_function :apikeys_list_get, %i[pointer size_t pointer], :status
    attach_function :apikeys_list_free, [:pointer], :status
  end
end
