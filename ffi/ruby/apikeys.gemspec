# frozen_string_literal: true

require_relative "lib/apikeys/version"

Gem::Specification.new do |spec|
  spec.name = "apikeys"
  spec.version = ApiKeys::VERSION
  spec.summary = "Generate, verify, revoke and list API keys: Ruby bindings to libapikeys"
  spec.description = "A thin wrapper, over the ffi gem, of libapikeys, an embedded API-key store " \
                     "that keeps only keyed BLAKE3 digests of keys. libapikeys.so is built " \
                     "separately (cargo build -p apikeys-ffi --release) and found through APIKEYS_LIB."
  spec.authors = ["apikeys contributors"]
  spec.licenses = ["MIT", "Apache-2.0"]
  spec.homepage = "https://example.invalid/apikeys"
  spec.required_ruby_version = ">= 2.7"
  spec.files = Dir["lib/**/*.rb"] + ["README.md"]
  spec.require_paths = ["lib"]
  spec.add_dependency "ffi", ">= 1.15"
  spec.add_development_dependency "minitest", ">= 5"
end
