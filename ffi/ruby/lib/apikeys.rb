# frozen_string_literal: true

# apikeys for Ruby: generate, verify, revoke and list API keys, over
# libapikeys (the C ABI of the Rust crate) with the ffi gem. The library is
# found through APIKEYS_LIB, else next to this file, else in the Cargo
# workspace's target/release, else by the system loader.
require_relative "apikeys/version"
require_relative "apikeys/native"
require_relative "apikeys/errors"
require_relative "apikeys/key_store"

module ApiKeys
  # The C bindings and argument conversions are internals, not API.
  private_constant :Native, :Convert

  module_function

  # The version of the loaded libapikeys.
  def library_version
    Native.apikeys_version.dup.force_encoding(Encoding::UTF_8)
  end

  # Whether key has the shape and checksum of a key (no storage read).
  def well_formed?(key)
    KeyStore.well_formed?(key)
  end

  # [http_status, json_body] to answer for a failed verification: 401 for
  # every Unauthorized reason (one body: the client does not learn which),
  # 403 for Forbidden, 500 for anything else.
  def http_answer(error)
    # Anything that is not a known failure is the server's problem.
    status = error.is_a?(Error) && error.status ? error.status : Native::PANIC
    http_status = FFI::MemoryPointer.new(:uint16)
    body = FFI::MemoryPointer.new(:pointer)
    Convert.check(Native.apikeys_status_http(status, http_status, body))
    [http_status.read_uint16, body.read_pointer.read_string.force_encoding(Encoding::UTF_8)]
  end
end
