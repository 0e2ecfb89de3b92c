# frozen_string_literal: true

require_relative "lib/apikeys/version"

Gem::Specification.new do |spec|
  spec.name = "apikeys"
  spec.version = ApiKeys::VERSION
  spec.summary = "Generate, verify, revoke and list API keys: Ruby bindings to libapikeys"
  spec.description = "A thin wrapper, over the ffi gem, of libapikeys, an embedded API-key store " \
                     "that keeps only keyed BLAKE3 digests of keys, with Rack, Sinatra and Rails " \
                     "integrations. The platform gem (scripts/build-gem.sh) carries libapikeys.so; " \
                     "the plain one finds it through APIKEYS_LIB."
  spec.authors = ["apikeys contributors"]
  spec.licenses = ["MIT", "Apache-2.0"]
  spec.homepage = "https://example.invalid/apikeys"
  spec.required_ruby_version = ">= 2.7"
  spec.files = Dir["lib/**/*.rb"] + ["README.md"]
  # scripts/build-gem.sh puts the release library in lib/apikeys/ and sets
  # this: a gem for this platform that carries it, loaded before any other.
  if ENV["APIKEYS_GEM_NATIVE"] == "1"
    library = "lib/apikeys/libapikeys.so"
    raise "#{library} is missing: build the gem with scripts/build-gem.sh" unless File.file?(library)

    spec.files << library
    spec.platform = Gem::Platform.local
  end
  spec.require_paths = ["lib"]
  spec.add_dependency "ffi", "~> 1.15"
  spec.add_development_dependency "minitest", "~> 5"
end
