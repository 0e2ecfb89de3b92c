<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * The key is missing, malformed, unknown, revoked or expired: HTTP 401.
 *
 * getReason() ("malformed", "not_found", "revoked", "expired",
 * "bad_header") is for logs; the 401 body is the same for all of them on
 * purpose.
 */
class UnauthorizedException extends ApiKeysException
{
    private const REASONS = [
        Status::MALFORMED => 'malformed',
        Status::NOT_FOUND => 'not_found',
        Status::REVOKED => 'revoked',
        Status::EXPIRED => 'expired',
        Status::BAD_HEADER => 'bad_header',
    ];

    public function getReason(): string
    {
        return self::REASONS[$this->getStatus() ?? -1] ?? 'malformed';
    }
}
