<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * What the store knows about a key: never the key itself. Times are UTC
 * DateTimeImmutable (null when unset); $status is "active", "revoked" or
 * "expired".
 */
final class KeyInfo
{
    /** @param list<string> $scopes */
    public function __construct(
        public readonly string $id,
        public readonly string $name,
        public readonly string $hint,
        public readonly ?string $env,
        public readonly array $scopes,
        public readonly ?string $owner,
        public readonly ?string $rotatedFrom,
        public readonly ?string $rotatedTo,
        public readonly \DateTimeImmutable $createdAt,
        public readonly ?\DateTimeImmutable $expiresAt,
        public readonly ?\DateTimeImmutable $revokedAt,
        public readonly ?\DateTimeImmutable $lastUsed,
        public readonly int $useCount,
        public readonly int $rejectedCount,
        public readonly string $status,
        /** Where an imported key came from ("sanctum", "drf-api-key", "unkey"); null for one made here. */
        public readonly ?string $origin = null,
        /** The digest kind an imported key is still verified against, until its first verify; then null. */
        public readonly ?string $legacyDigest = null,
    ) {
    }
}
