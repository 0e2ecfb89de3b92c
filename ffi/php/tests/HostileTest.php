<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ForbiddenException;
use ApiKeys\GeneratedKey;
use ApiKeys\InvalidArgumentException;
use ApiKeys\KeyStore;

/**
 * Hostile and mistaken input: every case ends in a PHP exception, never a
 * crash, and the store loses nothing.
 */
final class HostileTest extends ApiKeysTestCase
{
    private const INVALID_UTF8 = "\xff\xfe\xc3\x28notutf8";
    private const ONE_MIB = 1024 * 1024;

    private KeyStore $store;
    private GeneratedKey $keeper;

    protected function setUp(): void
    {
        parent::setUp();
        $this->store = $this->openStore();
        // A key made before the abuse: it must still work afterwards.
        $this->keeper = $this->store->generate('Keeper', env: 'prod', scopes: ['contacts:read']);
    }

    protected function tearDown(): void
    {
        try {
            $this->assertSame($this->keeper->id(), $this->store->verify($this->keeper->secret(), 'contacts:read')->id);
            $ids = array_map(fn ($info) => $info->id, $this->store->list());
            $this->assertSame([$this->keeper->id()], $ids, 'refused input must create nothing');
        } finally {
            $this->store->close();
            parent::tearDown();
        }
    }

    public function testInvalidUtf8NamesAndScopesAreInvalidArguments(): void
    {
        $s = $this->store;
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate(self::INVALID_UTF8));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate('ok', scopes: [self::INVALID_UTF8]));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate('ok', owner: self::INVALID_UTF8));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate('ok', env: self::INVALID_UTF8));
    }

    public function testInvalidUtf8KeysAreUnauthorizedNotCrashes(): void
    {
        $s = $this->store;
        $this->assertSame('malformed', $this->outcome(fn () => $s->verify(self::INVALID_UTF8)));
        $this->assertFalse(KeyStore::isWellFormed(self::INVALID_UTF8));
        $this->assertSame('bad_header', $this->outcome(fn () => $s->verifyHeader('Bearer ' . self::INVALID_UTF8)));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->revokeKey(self::INVALID_UTF8));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->revoke(self::INVALID_UTF8));
    }

    public function testEmbeddedNulBytes(): void
    {
        $s = $this->store;
        $secret = $this->keeper->secret();
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate("name\0hidden"));
        $this->assertSame('malformed', $this->outcome(fn () => $s->verify("$secret\0")));
        $this->assertSame('malformed', $this->outcome(fn () => $s->verify(substr($secret, 0, 10) . "\0" . substr($secret, 11))));
        $this->assertSame('bad_header', $this->outcome(fn () => $s->verifyHeader("Bearer $secret\0")));
    }

    public function testOneMebibyteStrings(): void
    {
        $s = $this->store;
        $huge = str_repeat('a', self::ONE_MIB);
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate($huge));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate('ok', owner: $huge));
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->generate('ok', scopes: [$huge]));
        $this->assertSame('malformed', $this->outcome(fn () => $s->verify($huge)));
        $this->assertSame('malformed', $this->outcome(fn () => $s->verifyHeader("Bearer $huge")));
        $this->assertFalse(KeyStore::isWellFormed($huge));
    }

    public function testWrongTypesThrowTypeError(): void
    {
        $s = $this->store;
        $k = $this->keeper;
        $calls = [
            'null name' => fn () => $s->generate(null),
            'array name' => fn () => $s->generate(['x']),
            'object env' => fn () => $s->generate('ok', env: new \stdClass()),
            'scopes as one string' => fn () => $s->generate('ok', scopes: 'contacts:read'),
            'null in scopes' => fn () => $s->generate('ok', scopes: [null]),
            'integer in scopes' => fn () => $s->generate('ok', scopes: [7]),
            'string expiry' => fn () => $s->generate('ok', expiresAt: 'tomorrow'),
            'null key' => fn () => $s->verify(null),
            'integer key' => fn () => $s->verify(12345),
            'array scope' => fn () => $s->verify($k->secret(), []),
            'float header' => fn () => $s->verifyHeader(3.5),
            'null id' => fn () => $s->revoke(null),
            'integer secret' => fn () => $s->revokeKey(99),
            'string grace' => fn () => $s->rotate($k->id(), '1 day'),
            'integer status' => fn () => $s->list(1),
            'string unusedSince' => fn () => $s->list('all', 'yesterday'),
            'null isWellFormed' => fn () => KeyStore::isWellFormed(null),
        ];
        foreach ($calls as $what => $call) {
            // strict_types in this file: PHP itself refuses the wrong types.
            $this->assertThrows(\TypeError::class, $call, $what);
        }
    }

    public function testBadValuesThrowInvalidArgument(): void
    {
        $s = $this->store;
        $k = $this->keeper;
        $calls = [
            'empty name' => fn () => $s->generate(''),
            'blank name' => fn () => $s->generate('   '),
            'bad env' => fn () => $s->generate('ok', env: 'PROD!'),
            'scope with a space' => fn () => $s->generate('ok', scopes: ['two words']),
            'empty scope' => fn () => $s->generate('ok', scopes: ['']),
            'misplaced star' => fn () => $s->generate('ok', scopes: ['bad*scope']),
            'zero expiry' => fn () => $s->generate('ok', expiresAt: 0),
            'negative expiry' => fn () => $s->generate('ok', expiresAt: -5),
            'negative grace' => fn () => $s->rotate($k->id(), -1),
            'unknown status' => fn () => $s->list('bogus'),
        ];
        foreach ($calls as $what => $call) {
            $error = $this->assertThrows(InvalidArgumentException::class, $call, $what);
            $this->assertNotSame('', $error->getDetail(), $what);
        }
    }

    /**
     * The library treats the required scope as a name to look up: one that
     * no key can hold is refused like any missing scope, and never crashes.
     */
    public function testARequiredScopeThatIsNotAScopeIsForbidden(): void
    {
        $s = $this->store;
        foreach (['not a scope', str_repeat('a', self::ONE_MIB), "x\0y"] as $scope) {
            $this->assertThrows(ForbiddenException::class, fn () => $s->verify($this->keeper->secret(), $scope), substr($scope, 0, 20));
        }
        $this->assertThrows(InvalidArgumentException::class, fn () => $s->verify($this->keeper->secret(), self::INVALID_UTF8));
    }

    public function testWrongTypesWhenOpening(): void
    {
        $this->assertThrows(\TypeError::class, fn () => new KeyStore(null));
        $this->assertThrows(\TypeError::class, fn () => new KeyStore($this->path, pepper: 123));
        $this->assertThrows(\TypeError::class, fn () => new KeyStore($this->path, shared: 'yes'));
        $this->assertThrows(InvalidArgumentException::class, fn () => new KeyStore(self::INVALID_UTF8));
    }
}
