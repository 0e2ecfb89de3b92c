<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\UnauthorizedException;
use PHPUnit\Framework\TestCase;

/** Shared setup: a fresh directory, and a store path in it, per test. */
abstract class ApiKeysTestCase extends TestCase
{
    public const PEPPER = 'pepper used by the php tests';

    protected string $dir;
    protected string $path;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/apikeys-php-test-' . bin2hex(random_bytes(6));
        mkdir($this->dir, 0700);
        $this->path = $this->dir . '/keys.redb';
    }

    protected function tearDown(): void
    {
        foreach (glob($this->dir . '/{,.}*', GLOB_BRACE) ?: [] as $file) {
            if (is_file($file)) {
                unlink($file);
            }
        }
        @rmdir($this->dir);
    }

    protected function openStore(bool $shared = true, ?string $pepper = self::PEPPER): KeyStore
    {
        return new KeyStore($this->path, pepper: $pepper, shared: $shared);
    }

    /** A well-formed key that no store under test knows: made by another store. */
    protected function unknownKey(): string
    {
        $other = new KeyStore($this->dir . '/elsewhere.redb', pepper: self::PEPPER);
        try {
            return $other->generate('elsewhere', env: 'prod')->secret();
        } finally {
            $other->close();
        }
    }

    /**
     * Runs $call, which must throw $class; returns what it threw.
     *
     * @template T of \Throwable
     * @param class-string<T> $class
     * @return T
     */
    protected function assertThrows(string $class, callable $call, string $message = ''): \Throwable
    {
        try {
            $call();
        } catch (\Throwable $thrown) {
            $this->assertInstanceOf($class, $thrown, ($message !== '' ? "$message: " : '')
                . get_class($thrown) . ': ' . $thrown->getMessage());
            return $thrown;
        }
        $this->fail(($message !== '' ? "$message: " : '') . "expected $class, nothing was thrown");
    }

    /** The UnauthorizedException reason a verify throws, or "accepted". */
    protected function outcome(callable $verify): string
    {
        try {
            $verify();
            return 'accepted';
        } catch (UnauthorizedException $refused) {
            return $refused->getReason();
        }
    }
}
