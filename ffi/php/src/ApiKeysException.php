<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * Base of every exception this package throws.
 *
 * getStatus() is the C ABI status number (null for errors found before
 * calling the library, such as a closed store); getDetail() the library's
 * message for this failure. getCode() is the status too (0 when null).
 */
class ApiKeysException extends \RuntimeException
{
    private const BY_STATUS = [
        Status::NULL_ARGUMENT => InvalidArgumentException::class,
        Status::INVALID_ARGUMENT => InvalidArgumentException::class,
        Status::UNKNOWN_KEY => UnknownKeyException::class,
        Status::MALFORMED => UnauthorizedException::class,
        Status::NOT_FOUND => UnauthorizedException::class,
        Status::REVOKED => UnauthorizedException::class,
        Status::EXPIRED => UnauthorizedException::class,
        Status::BAD_HEADER => UnauthorizedException::class,
        Status::INSUFFICIENT_SCOPE => ForbiddenException::class,
        Status::LOCKED => StoreLockedException::class,
        Status::CORRUPTED => StoreCorruptedException::class,
        Status::WRONG_PEPPER => WrongPepperException::class,
        Status::USED_AFTER_FORK => UsedAfterForkException::class,
        Status::IO => StorageException::class,
        Status::STORAGE => StorageException::class,
        Status::UNSUPPORTED_VERSION => UnsupportedVersionException::class,
        Status::RANDOM => RandomFailureException::class,
        Status::PERMISSION_DENIED => PermissionDeniedException::class,
        Status::DATABASE_UNAVAILABLE => DatabaseUnavailableException::class,
        Status::PANIC => NativePanicException::class,
    ];

    private ?int $status;
    private string $detail;

    final public function __construct(string $detail, ?int $status = null, ?\Throwable $previous = null)
    {
        parent::__construct($detail, $status ?? 0, $previous);
        $this->status = $status;
        $this->detail = $detail;
    }

    public function getStatus(): ?int
    {
        return $this->status;
    }

    public function getDetail(): string
    {
        return $this->detail;
    }

    /**
     * The exception for a failed call. Read right after the call, on the
     * same thread: the library's last error is per thread.
     */
    public static function fromStatus(int $status): self
    {
        $ffi = Library::ffi();
        $detail = Library::string($ffi->apikeys_last_error()) ?? '';
        if ($detail === '') {
            $detail = Library::string($ffi->apikeys_status_str($status)) ?? '';
        }
        $class = self::BY_STATUS[$status] ?? self::class;
        return new $class($detail, $status);
    }
}
