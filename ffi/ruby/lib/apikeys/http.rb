# frozen_string_literal: true

module ApiKeys
  # The HTTP answers to a refused or failed verification, as the core's
  # `http` module sends them: the status, the JSON body (read once from the
  # library, so it is the core's byte for byte) and the headers, with
  # `WWW-Authenticate` on 401 and 403 (RFC 6750, section 3).
  module HTTP
    # One answer: #status (401, 403, 500), #headers (a frozen Hash with
    # lowercase names, as Rack 3 wants them), #body (the JSON String).
    Answer = Struct.new(:status, :headers, :body) do
      # [status, headers, [body]]: a Rack response (fresh, so the server or
      # a middleware may change it).
      def to_rack
        [status, headers.dup, [body]]
      end
    end

    # The challenge of every 401, whatever was wrong with the key: the
    # client is not told which (the core's Answer::UNAUTHORIZED).
    UNAUTHORIZED_CHALLENGE = "Bearer"
    # The challenge of a 403 for a missing scope (Answer::FORBIDDEN).
    FORBIDDEN_CHALLENGE = 'Bearer error="insufficient_scope"'
    CONTENT_TYPE = "application/json"

    def self.answer_for(status)
      http_status = FFI::MemoryPointer.new(:uint16)
      body = FFI::MemoryPointer.new(:pointer)
      Convert.check(Native.apikeys_status_http(status, http_status, body))
      http_status = http_status.read_uint16
      headers = { "content-type" => CONTENT_TYPE }
      case http_status
      when 401 then headers["www-authenticate"] = UNAUTHORIZED_CHALLENGE
      when 403 then headers["www-authenticate"] = FORBIDDEN_CHALLENGE
      end
      body = body.read_pointer.read_string.force_encoding(Encoding::UTF_8).freeze
      Answer.new(http_status, headers.freeze, body).freeze
    end
    private_class_method :answer_for

    UNAUTHORIZED = answer_for(Native::NOT_FOUND)
    FORBIDDEN = answer_for(Native::INSUFFICIENT_SCOPE)
    INTERNAL_ERROR = answer_for(Native::STORAGE)

    # The answer to an exception: 401 for every Unauthorized, 403 for
    # Forbidden, 500 for anything else (a store failure is never a 401).
    def self.answer(error)
      case error
      when Unauthorized then UNAUTHORIZED
      when Forbidden then FORBIDDEN
      else INTERNAL_ERROR
      end
    end

    # What the framework integrations share: verify the Authorization header
    # value (nil when absent) against the store, holding scope if given
    # (KeyStore#authenticate_header).
    # Returns [VerifiedKey, nil] when accepted, else [nil, Answer]; a store
    # failure (any other ApiKeys::Error, raised while opening the store or
    # verifying) is [nil, INTERNAL_ERROR] with the error as a third element,
    # for the integration to log. `store` is a KeyStore or anything with
    # #call that returns one (opened lazily, per process: ApiKeys.store).
    def self.authenticate(store, header, scope)
      store = store.call if store.respond_to?(:call)
      [store.authenticate_header(header, scope: scope), nil]
    rescue Unauthorized
      [nil, UNAUTHORIZED]
    rescue Forbidden
      [nil, FORBIDDEN]
    rescue Error => e
      [nil, INTERNAL_ERROR, e]
    end
  end
end
