<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * A new key. Its secret is shown once: hand it to its owner, never store it.
 * var_dump() and print_r() leave the secret out so it does not end up in logs.
 */
final class GeneratedKey
{
    public function __construct(
        #[\SensitiveParameter] private readonly string $secret,
        public readonly KeyInfo $info,
    ) {
    }

    public function secret(): string
    {
        return $this->secret;
    }

    public function id(): string
    {
        return $this->info->id;
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['secret' => '[redacted]', 'info' => $this->info];
    }
}
