# frozen_string_literal: true

module ApiKeys
  # What the store knows about a key: never the key itself. Times are UTC
  # Time objects (nil when unset); scopes an array of strings; status one of
  # :active, :revoked, :expired; origin "sanctum", "drf-api-key" or "unkey"
  # for an imported key (nil for one made here), legacy_digest the digest
  # kind it is still verified against until its first verify (then nil).
  KeyInfo = Struct.new(:id, :name, :hint, :env, :scopes, :owner, :rotated_from, :rotated_to,
                       :created_at, :expires_at, :revoked_at, :last_used, :use_count,
                       :rejected_count, :status, :origin, :legacy_digest, keyword_init: true)

  # An accepted key: who it belongs to and what it may do.
  VerifiedKey = Struct.new(:id, :name, :env, :scopes, :owner, :expires_at, keyword_init: true)

  # A new key. #secret is shown once: hand it to its owner, never store it.
  # #inspect leaves the secret out so it does not end up in logs.
  class GeneratedKey
    attr_reader :secret, :info

    def initialize(secret, info)
      @secret = secret
      @info = info
    end

    def id
      info.id
    end

    def inspect
      "#<ApiKeys::GeneratedKey id=#{id.inspect} hint=#{info.hint.inspect} secret=[redacted]>"
    end
    alias to_s inspect
  end

  # An open key store file.
  #
  #   ApiKeys::KeyStore.open("/var/lib/myapp/keys.redb", pepper: ENV["APIKEYS_PEPPER"], shared: true) do |store|
  #     key = store.generate("Production", env: "prod", scopes: ["contacts:*"])
  #     store.verify(key.secret, scope: "contacts:read")
  #   end
  #
  # shared: true lets several processes (puma or unicorn workers) open the
  # file at once; every verify then sees revocations made by any of them.
  # Open the store in each worker after forking: a handle used across fork
  # raises UsedAfterFork. One handle may be used from several threads.
  class KeyStore
    # Opens the store; with a block, yields it and closes it afterwards.
    def self.open(path, pepper: nil, shared: false)
      store = new(path, pepper: pepper, shared: shared)
      return store unless block_given?

      begin
        yield store
      ensure
        store.close
      end
    end

    # Whether key has the shape and checksum of a key (no storage read).
    def self.well_formed?(key)
      data = Convert.text(key, "key")
      Native.apikeys_is_well_formed(data, data.bytesize) == Native::OK
    end

    attr_reader :path

    def initialize(path, pepper: nil, shared: false)
      path = path.to_path if path.respond_to?(:to_path)
      path = Convert.text(path, "path")
      pepper = Convert.optional_text(pepper, "pepper")
      raise TypeError, "shared must be true or false, not #{shared.class}" unless [true, false].include?(shared)

      out = FFI::MemoryPointer.new(:pointer)
      Convert.check(Native.apikeys_store_open(path, path.bytesize, pepper, Convert.size(pepper),
                                              shared ? Native::OPEN_SHARED : 0, out))
      # Closed by #close; a forgotten store is closed (usage flushed) when collected.
      @handle = FFI::AutoPointer.new(out.read_pointer, Native.method(:apikeys_store_close))
      # Shown by #path and #inspect: a postgres:// URL without its password.
      @path = path.sub(%r{\A(postgres(?:ql)?://[^:/@]*):[^@/]*@}, '\1@')
      @shared = shared
      @request_details = {}
      # A store on PostgreSQL may wait on the network in a verify: its hot
      # calls release the GVL (see Native).
      @on_database = path.match?(%r{\Apostgres(?:ql)?://})
    end

    def shared?
      @shared
    end

    def closed?
      @handle.nil?
    end

    # Flushes usage counts and releases the file. Closing twice is fine.
    def close
      handle = @handle
      @handle = nil
      return nil if handle.nil?

      handle.autorelease = false
      Convert.check(Native.apikeys_store_close(handle))
      nil
    end

    # Writes the coalesced usage counts (last used, use count) now.
    def flush
      Convert.check(Native.apikeys_store_flush(open_handle))
      nil
    end

    # Creates a key. Its secret is in the result, and nowhere else.
    def generate(name, env: nil, scopes: [], owner: nil, expires_at: nil)
      name = Convert.text(name, "name")
      env = Convert.optional_text(env, "env")
      scopes = Convert.scopes(scopes)
      owner = Convert.optional_text(owner, "owner")
      expires = expires_at.nil? ? 0 : Convert.unix(expires_at, "expires_at")
      out = FFI::MemoryPointer.new(:pointer)
      Convert.check(Native.apikeys_key_generate(open_handle, name, name.bytesize, env, Convert.size(env),
                                                scopes, Convert.size(scopes), owner, Convert.size(owner),
                                                expires, out))
      Convert.take_generated(out.read_pointer)
    end

    # Accepts the key (holding scope if given) or raises Unauthorized / Forbidden.
    def verify(key, scope: nil)
      key = Convert.text(key, "key")
      scope = Convert.optional_text(scope, "scope")
      out = Convert.out_pointers[0]
      status = Native.apikeys_key_verify(open_handle, key, key.bytesize, scope, Convert.size(scope), out)
      Convert.take_verified(status, out)
    end

    # The id of the accepted key (holding scope if given), or Unauthorized /
    # Forbidden: the checks of #verify, for the request that needs only to
    # know whose key it is. One native call, no handle to read and free.
    def verify_id(key, scope: nil)
      # One buffer per thread (fiber): written by the call, read right after.
      buffer = (Thread.current[:apikeys_id_buffer] ||= FFI::MemoryPointer.new(:char, Native::ID_SIZE))
      status = check_key(key, scope, buffer)
      raise ApiKeys.error_for(status) unless status.zero?

      buffer.read_string
    end

    # Whether the key is accepted (holding scope if given): false for a
    # missing, malformed, unknown, revoked or expired key or a missing scope;
    # a store failure still raises. The cheapest check.
    def valid?(key, scope: nil)
      status = check_key(key, scope, nil)
      return true if status.zero?
      return false if status.between?(Native::MALFORMED, Native::INSUFFICIENT_SCOPE)

      raise ApiKeys.error_for(status)
    end

    # Verifies an Authorization header value ("Bearer flz_sk_..."). A
    # missing header (nil) is Unauthorized with reason :bad_header, so a
    # handler can pass request.get_header("HTTP_AUTHORIZATION") as is.
    def verify_header(header_value, scope: nil)
      header = header_value.nil? ? "" : Convert.text(header_value, "header_value")
      scope = Convert.optional_text(scope, "scope")
      out = Convert.out_pointers[0]
      status = Native.apikeys_header_verify(open_handle, header, header.bytesize, scope, Convert.size(scope), out)
      Convert.take_verified(status, out)
    end

    # How long authenticate_header reuses a key's details; at most how many
    # keys' details it keeps (then it starts over).
    DETAILS_SECONDS = 1.0
    DETAILS_MAX = 65_536
    # The clock of that reuse: a coarse one where there is one (Linux:
    # the last tick, read without a system call, cheaper than the precise
    # clock), as a second's bound needs no finer grain.
    DETAILS_CLOCK = defined?(Process::CLOCK_MONOTONIC_COARSE) ? Process::CLOCK_MONOTONIC_COARSE : Process::CLOCK_MONOTONIC

    # The verify of the framework integrations: the checks and outcome of
    # #verify_header, one use counted per call, at about the cost of
    # #verify_id. Every call checks the key (revocation, expiry, scope) in
    # the store; only the details of an accepted key (the VerifiedKey,
    # frozen) are reused for up to DETAILS_SECONDS after they were read, per
    # header, in this process: name, env, scopes and owner never change, and
    # expires_at may then lag a rotation by that long (the rotated key's
    # expiry itself is enforced at once).
    #
    # Reuse is keyed by the header's String#hash (SipHash under a random
    # per-process key: no key is kept), for headers the store accepted,
    # which the call then checks again with apikeys_header_check (the
    # core's reading of the header, as verify_header's); the id the store
    # accepts must be the remembered one's, else the details are read
    # again. So a header that merely shares a remembered one's 64-bit hash
    # (a 2^-64 chance) is never accepted as that key: at worst it is
    # refused or counted twice.
    def authenticate_header(header_value, scope: nil)
      scope = Convert.text(scope, "scope") unless scope.nil?
      if header_value.is_a?(String)
        slot = header_value.hash
        known, fresh_until = @request_details[slot]
        if known && Process.clock_gettime(DETAILS_CLOCK) < fresh_until
          return known if checked_id(header_value, scope) == known.id
        end
      end

      verified = verify_header(header_value, scope: scope)
      # Past the scan bound apikeys_header_check refuses what verify_header
      # reads (a token after thousands of spaces): such a header is not
      # remembered, so both calls always answer alike.
      remember(slot, verified) if slot && header_value.bytesize < Native::HEADER_SCAN_MAX
      verified
    end

    # Revokes by key id: true if this call revoked it, false if it already was.
    def revoke(id)
      id = Convert.text(id, "id")
      newly = FFI::MemoryPointer.new(:uint8)
      Convert.check(Native.apikeys_key_revoke(open_handle, id, id.bytesize, newly))
      newly.read_uint8 != 0
    end

    # Revokes by the key itself: the answer to a leaked key.
    def revoke_key(secret)
      secret = Convert.text(secret, "secret")
      newly = FFI::MemoryPointer.new(:uint8)
      Convert.check(Native.apikeys_key_revoke_secret(open_handle, secret, secret.bytesize, newly))
      newly.read_uint8 != 0
    end

    # A new key with the same name, env, scopes and expiry; the old one keeps
    # working for grace_seconds (capped at its own expiry).
    def rotate(id, grace_seconds: 86_400)
      id = Convert.text(id, "id")
      grace = Convert.integer(grace_seconds, "grace_seconds")
      raise InvalidArgument, "grace_seconds must be zero or positive" unless grace.between?(0, (2**64) - 1)

      out = FFI::MemoryPointer.new(:pointer)
      Convert.check(Native.apikeys_key_rotate(open_handle, id, id.bytesize, grace, out))
      Convert.take_generated(out.read_pointer)
    end

    # Keys with their usage. status: :all, :active, :revoked, :expired;
    # unused_since: keys not used since that Time (or unix seconds).
    def list(status: :all, unused_since: nil)
      unless status.is_a?(Symbol) || status.is_a?(String)
        raise TypeError, "status must be a Symbol such as :active, not #{status.class}"
      end

      filter = Native::LIST_FILTERS[status.to_sym]
      if filter.nil?
        raise InvalidArgument, "status must be one of #{Native::LIST_FILTERS.keys.join(', ')}, not #{status.inspect}"
      end

      since = unused_since.nil? ? 0 : Convert.unix(unused_since, "unused_since")
      out = FFI::MemoryPointer.new(:pointer)
      Convert.check(Native.apikeys_key_list(open_handle, filter, since, out))
      list = out.read_pointer
      begin
        count = FFI::MemoryPointer.new(:size_t)
        Convert.check(Native.apikeys_list_len(list, count))
        Array.new(count.read(:size_t)) do |index|
          item = FFI::MemoryPointer.new(:pointer)
          Convert.check(Native.apikeys_list_get(list, index, item))
          Convert.key_info(Native::KeyInfo.new(item.read_pointer))
        end
      ensure
        Native.apikeys_list_free(list)
      end
    end

    def inspect
      state = closed? ? "closed" : (shared? ? "shared" : "exclusive")
      "#<ApiKeys::KeyStore #{path.inspect} #{state}>"
    end

    private

    def remember(slot, verified)
      verified.scopes.each(&:freeze).freeze
      @request_details.clear if @request_details.size >= DETAILS_MAX
      @request_details[slot] = [verified.freeze, Process.clock_gettime(DETAILS_CLOCK) + DETAILS_SECONDS]
    end

    # The id the store accepts for a remembered header, read by
    # apikeys_header_check from the header as it is, or raises. nil, for
    # the caller to read the details again, when the header holds a NUL
    # (ruby-ffi refuses those), as only a header sharing a remembered
    # one's hash could.
    def checked_id(header_value, scope)
      buffer = (Thread.current[:apikeys_id_buffer] ||= FFI::MemoryPointer.new(:char, Native::ID_SIZE))
      status = if @on_database
                 Native.apikeys_header_check_blocking(open_handle, header_value, scope, buffer)
               else
                 Native.apikeys_header_check(open_handle, header_value, scope, buffer)
               end
      raise ApiKeys.error_for(status) unless status.zero?

      buffer.read_string
    rescue ArgumentError
      nil
    end

    # apikeys_key_check (apikeys_key_validate when there is neither scope nor
    # id to read) reads the key and scope up to their NUL; a String
    # holding a NUL takes the (pointer, length) call, which refuses it with
    # the library's own status and message.
    def check_key(key, scope, buffer)
      handle = open_handle
      key = Convert.text(key, "key")
      scope = Convert.optional_text(scope, "scope")
      if key.include?("\0") || scope&.include?("\0")
        return Native.apikeys_key_verify(handle, key, key.bytesize, scope, Convert.size(scope), nil)
      end

      if scope.nil? && buffer.nil?
        @on_database ? Native.apikeys_key_validate_blocking(handle, key) : Native.apikeys_key_validate(handle, key)
      else
        native_check(handle, key, scope, buffer)
      end
    end

    def native_check(handle, key, scope, buffer)
      if @on_database
        Native.apikeys_key_check_blocking(handle, key, scope, buffer)
      else
        Native.apikeys_key_check(handle, key, scope, buffer)
      end
    end

    def open_handle
      @handle or raise StoreClosed, "the key store is closed"
    end
  end

  # Argument checks and conversions between Ruby values and the C ABI.
  module Convert
    module_function

    def text(value, what)
      raise TypeError, "#{what} must be a String, not #{value.class}" unless value.is_a?(String)

      value
    end

    def optional_text(value, what)
      value.nil? ? nil : text(value, what)
    end

    def size(text)
      text.nil? ? 0 : text.bytesize
    end

    def integer(value, what)
      raise TypeError, "#{what} must be an Integer, not #{value.class}" unless value.is_a?(Integer)

      value
    end

    # Unix seconds from a Time or an Integer; 0 would mean "none" in the C
    # ABI, so it is refused rather than silently meaning "never".
    def unix(value, what)
      seconds = value.is_a?(Time) ? value.to_i : integer(value, what)
      raise InvalidArgument, "#{what} must be after 1970" unless seconds.positive?
      raise InvalidArgument, "#{what} is out of range" if seconds >= 2**63

      seconds
    end

    def scopes(scopes)
      return nil if scopes.nil?
      if scopes.is_a?(String)
        raise TypeError, "scopes must be an Array of Strings such as [\"contacts:read\"], not one String"
      end
      raise TypeError, "scopes must be an Array of Strings, not #{scopes.class}" unless scopes.respond_to?(:to_ary)

      list = scopes.to_ary.map do |scope|
        scope = text(scope, "each scope")
        # The C ABI separates scopes with spaces: a space inside one would split it.
        if scope.empty? || scope.b.match?(/[ \t\r\n]/n)
          raise InvalidArgument, "scope #{scope.inspect} must be non-empty and contain no whitespace"
        end

        scope.b
      end
      list.empty? ? nil : list.join(" ")
    end

    def check(status)
      raise ApiKeys.error_for(status) unless status == Native::OK
    end

    def string(pointer)
      pointer.null? ? nil : pointer.read_string.force_encoding(Encoding::UTF_8)
    end

    def time(seconds)
      seconds.zero? ? nil : Time.at(seconds).utc
    end

    def split_scopes(pointer)
      (string(pointer) || "").split(" ")
    end

    def key_info(raw)
      KeyInfo.new(
        id: string(raw[:id]), name: string(raw[:name]), hint: string(raw[:hint]),
        env: string(raw[:env]), scopes: split_scopes(raw[:scopes]), owner: string(raw[:owner]),
        rotated_from: string(raw[:rotated_from]), rotated_to: string(raw[:rotated_to]),
        created_at: time(raw[:created_at]), expires_at: time(raw[:expires_at]),
        revoked_at: time(raw[:revoked_at]), last_used: time(raw[:last_used]),
        use_count: raw[:use_count], rejected_count: raw[:rejected_count],
        status: Native::KEY_STATUSES.fetch(raw[:status], :unknown),
        origin: string(raw[:origin]), legacy_digest: string(raw[:legacy_digest])
      )
    end

    # Copies the secret and info out of a key handle, then frees it (which
    # wipes the library's copy of the secret).
    def take_generated(handle)
      pointer = FFI::MemoryPointer.new(:pointer)
      length = FFI::MemoryPointer.new(:size_t)
      check(Native.apikeys_key_secret(handle, pointer, length))
      secret = pointer.read_pointer.read_bytes(length.read(:size_t)).force_encoding(Encoding::US_ASCII)
      info_out = FFI::MemoryPointer.new(:pointer)
      check(Native.apikeys_key_info(handle, info_out))
      GeneratedKey.new(secret, key_info(Native::KeyInfo.new(info_out.read_pointer)))
    ensure
      Native.apikeys_key_free(handle)
    end

    # Offsets in struct apikeys_verified_info, read with one call each
    # rather than through FFI::Struct (a third of a verify's Ruby cost).
    VERIFIED_OFFSETS = Native::VerifiedInfo.members.to_h do |member|
      [member, Native::VerifiedInfo.offset_of(member)]
    end.freeze

    # Out parameters of the verify calls: one pair per thread (fiber),
    # written by the call and read right after it.
    def out_pointers
      Thread.current[:apikeys_out_pointers] ||= [FFI::MemoryPointer.new(:pointer), FFI::MemoryPointer.new(:pointer)]
    end

    def take_verified(status, out)
      check(status)
      handle = out.read_pointer
      begin
        info_out = out_pointers[1]
        check(Native.apikeys_verified_info(handle, info_out))
        raw = info_out.read_pointer
        offsets = VERIFIED_OFFSETS
        VerifiedKey.new(id: string(raw.get_pointer(offsets[:id])), name: string(raw.get_pointer(offsets[:name])),
                        env: string(raw.get_pointer(offsets[:env])),
                        scopes: split_scopes(raw.get_pointer(offsets[:scopes])),
                        owner: string(raw.get_pointer(offsets[:owner])),
                        expires_at: time(raw.get_int64(offsets[:expires_at])))
      ensure
        Native.apikeys_verified_free(handle)
      end
    end
  end
end

