<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * A new key. Its secret is shown once: hand it to its owner, never store it.
 *
 * The secret sits inside a closure, not in a property, so var_export() and
 * json_encode() do not reveal it and serialize() refuses the object;
 * __debugInfo() keeps it out of var_dump() and print_r().
 */
final class GeneratedKey
{
    private readonly \Closure $reveal;

    public function __construct(
        #[\SensitiveParameter] string $secret,
        public readonly KeyInfo $info,
    ) {
        $this->reveal = static fn (): string => $secret;
    }

    public function secret(): string
    {
        return ($this->reveal)();
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
