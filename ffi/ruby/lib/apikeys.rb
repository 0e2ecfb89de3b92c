# frozen_string_literal: true

# apikeys for Ruby: generate, verify, revoke and list API keys, over
# libapikeys (the C ABI of the Rust crate) with the ffi gem. The library is
# found through APIKEYS_LIB, else next to this file, else in the Cargo
# workspace's target/release, else by the system loader.
require_relative "apikeys/version"
require_relative "apikeys/native"
require_relative "apikeys/errors"
require_relative "apikeys/key_store"
require_relative "apikeys/http"
require_relative "apikeys/process_store"

module ApiKeys
  # The C bindings and argument conversions are internals, not API.
  private_constant :Native, :Convert

  module_function

  # The version of the loaded libapikeys.
  def library_version
    Native.apikeys_version.dup.force_encoding(Encoding::UTF_8)
  end

  # Where the loaded libapikeys came from: the gem's own copy, APIKEYS_LIB,
  # a Cargo workspace's target/release, or a bare name for the system loader.
  def library_path
    Native::LIBRARY_PATH
  end

  # Whether key has the shape and checksum of a key (no storage read).
  def well_formed?(key)
    KeyStore.well_formed?(key)
  end

  # [http_status, json_body, headers] to answer for a failed verification:
  # 401 for every Unauthorized reason (one body: the client does not learn
  # which), 403 for Forbidden, 500 for anything else; headers carry the
  # content type and, on 401 and 403, WWW-Authenticate (RFC 6750). The
  # first two elements are what this method returned before it had headers.
  # ApiKeys::HTTP.answer(error).to_rack is the same as a Rack response.
  def http_answer(error)
    answer = HTTP.answer(error)
    [answer.status, answer.body, answer.headers]
  end
end
