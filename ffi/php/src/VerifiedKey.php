<?php

declare(strict_types=1);

namespace ApiKeys;

/** An accepted key: who it belongs to and what it may do. */
final class VerifiedKey
{
    /** @param list<string> $scopes */
    public function __construct(
        public readonly string $id,
        public readonly string $name,
        public readonly ?string $env,
        public readonly array $scopes,
        public readonly ?string $owner,
        public readonly ?\DateTimeImmutable $expiresAt,
    ) {
    }
}
