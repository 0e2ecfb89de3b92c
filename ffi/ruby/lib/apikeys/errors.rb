# frozen_string_literal: true

module ApiKeys
  # Base of every error this gem raises. #status is the C ABI status number
  # (nil for errors found before calling the library, such as a closed
  # store); #detail the library's message for this failure.
  class Error < StandardError
    attr_reader :status, :detail

    def initialize(detail, status = nil)
      super(detail)
      @detail = detail
      @status = status
    end
  end

  # The key is missing, malformed, unknown, revoked or expired: HTTP 401.
  # #reason (:malformed, :not_found, :revoked, :expired, :bad_header) is for
  # logs; the 401 body is the same for all of them on purpose.
  class Unauthorized < Error
    REASONS = {
      Native::MALFORMED => :malformed,
      Native::NOT_FOUND => :not_found,
      Native::REVOKED => :revoked,
      Native::EXPIRED => :expired,
      Native::BAD_HEADER => :bad_header
    }.freeze

    def reason
      REASONS.fetch(status, :malformed)
    end
  end

  # A valid key without the required scope: HTTP 403.
  class Forbidden < Error; end
  # A bad argument: empty or oversize name, bad scope, invalid UTF-8...
  class InvalidArgument < Error; end
  # No key has this id (revoke, rotate) or this secret (revoke by key).
  class UnknownKey < Error; end
  # The store was closed; open a new one.
  class StoreClosed < Error; end
  # Another process holds the file in exclusive mode: use shared mode.
  class StoreLocked < Error; end
  # Not an apikeys store, or a damaged one.
  class StoreCorrupted < Error; end
  # The store was created with another pepper.
  class WrongPepper < Error; end
  # A handle opened before fork was used in the child: open one per worker.
  class UsedAfterFork < Error; end
  # Input/output or storage engine failure.
  class StorageError < Error; end
  # The PostgreSQL server cannot be reached, or this machine could not confirm
  # within its revocation bound that its keys are current: a 500, never a 401.
  class DatabaseUnavailable < StorageError; end
  # The store was written by a newer apikeys.
  class UnsupportedVersion < Error; end
  # The operating system's random generator failed.
  class RandomFailure < Error; end
  # This process's user may not open the store file: #detail names the
  # file, its owner, group and mode, and the user (see "Ownership" in the
  # README).
  class PermissionDenied < Error; end
  # A bug in libapikeys: it panicked, caught it and reported it.
  class NativePanic < Error; end

  ERRORS_BY_STATUS = {
    Native::NULL_ARGUMENT => InvalidArgument,
    Native::INVALID_ARGUMENT => InvalidArgument,
    Native::UNKNOWN_KEY => UnknownKey,
    Native::MALFORMED => Unauthorized,
    Native::NOT_FOUND => Unauthorized,
    Native::REVOKED => Unauthorized,
    Native::EXPIRED => Unauthorized,
    Native::BAD_HEADER => Unauthorized,
    Native::INSUFFICIENT_SCOPE => Forbidden,
    Native::LOCKED => StoreLocked,
    Native::CORRUPTED => StoreCorrupted,
    Native::WRONG_PEPPER => WrongPepper,
    Native::USED_AFTER_FORK => UsedAfterFork,
    Native::IO => StorageError,
    Native::STORAGE => StorageError,
    Native::UNSUPPORTED_VERSION => UnsupportedVersion,
    Native::RANDOM => RandomFailure,
    Native::PERMISSION_DENIED => PermissionDenied,
    Native::DATABASE_UNAVAILABLE => DatabaseUnavailable,
    Native::PANIC => NativePanic
  }.freeze

  # The exception for a failed call. Read right after the call, on the same
  # thread: the library's last error is per thread.
  def self.error_for(status)
    detail = Native.apikeys_last_error.to_s.dup.force_encoding(Encoding::UTF_8)
    detail = Native.apikeys_status_str(status).to_s.dup.force_encoding(Encoding::UTF_8) if detail.empty?
    ERRORS_BY_STATUS.fetch(status, Error).new(detail.scrub, status)
  end
end
