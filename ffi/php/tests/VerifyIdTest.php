<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ForbiddenException;
use ApiKeys\InvalidArgumentException;
use ApiKeys\KeyStore;
use ApiKeys\StoreClosedException;

/**
 * verifyId and isValid: the one-call verify (apikeys_key_check) gives the
 * same answers as verify, in both modes, and refuses what verify refuses.
 */
final class VerifyIdTest extends ApiKeysTestCase
{
    /** @param callable(KeyStore): void $test */
    private function eachMode(callable $test): void
    {
        foreach ([false, true] as $shared) {
            $store = new KeyStore($this->dir . '/keys-' . ($shared ? 'shared' : 'exclusive') . '.redb',
                pepper: self::PEPPER, shared: $shared);
            try {
                $test($store);
            } finally {
                $store->close();
            }
        }
    }

    public function testVerifyIdReturnsTheIdOfTheAcceptedKey(): void
    {
        $this->eachMode(function (KeyStore $store): void {
            $key = $store->generate('Reader', env: 'prod', scopes: ['contacts:*']);
            $this->assertSame($key->id(), $store->verifyId($key->secret()));
            $this->assertSame($key->id(), $store->verifyId($key->secret(), 'contacts:read'));
            $this->assertSame($key->id(), $store->verifyId($key->secret(), '')); // "" = no scope
            $this->assertTrue($store->isValid($key->secret()));
            $this->assertTrue($store->isValid($key->secret(), 'contacts:write'));
        });
    }

    public function testRefusalsAreThoseOfVerify(): void
    {
        $foreign = $this->unknownKey();
        $this->eachMode(function (KeyStore $store) use ($foreign): void {
            $key = $store->generate('Reader', scopes: ['contacts:read']);
            $revoked = $store->generate('Revoked');
            $store->revoke($revoked->id());
            $cases = ['malformed' => substr($key->secret(), 0, -1), 'not_found' => $foreign,
                'revoked' => $revoked->secret()];
            foreach ($cases as $reason => $presented) {
                $this->assertSame($reason, $this->outcome(fn () => $store->verifyId($presented)));
                $this->assertSame($reason, $this->outcome(fn () => $store->verify($presented)));
                $this->assertFalse($store->isValid($presented));
            }
            $this->assertThrows(ForbiddenException::class, fn () => $store->verifyId($key->secret(), 'billing:read'));
            $this->assertFalse($store->isValid($key->secret(), 'billing:read'));
        });
    }

    public function testAKeyOrScopeHoldingANulIsNotCutShort(): void
    {
        $this->eachMode(function (KeyStore $store): void {
            $key = $store->generate('Reader', scopes: ['contacts:read']);
            $secret = $key->secret();
            // Read up to the NUL, each of these would be the valid key.
            foreach (["$secret\0", "$secret\0junk", substr($secret, 0, 10) . "\0" . substr($secret, 11)] as $presented) {
                $this->assertSame('malformed', $this->outcome(fn () => $store->verifyId($presented)));
                $this->assertFalse($store->isValid($presented));
            }
            $this->assertThrows(ForbiddenException::class, fn () => $store->verifyId($secret, "contacts:read\0admin"));
        });
    }

    public function testHostileKeysAndScopes(): void
    {
        $this->eachMode(function (KeyStore $store): void {
            $key = $store->generate('Keeper', scopes: ['contacts:read']);
            foreach (['', 'x', str_repeat('a', 1024 * 1024), str_repeat("\xff\xfe", 30)] as $presented) {
                $this->assertSame('malformed', $this->outcome(fn () => $store->verifyId($presented)));
                $this->assertFalse($store->isValid($presented));
            }
            $this->assertThrows(InvalidArgumentException::class, fn () => $store->verifyId($key->secret(), "\xff"));
            // A bad argument is not a refusal.
            $this->assertThrows(InvalidArgumentException::class, fn () => $store->isValid($key->secret(), "\xff"));
            $this->assertSame($key->id(), $store->verifyId($key->secret(), 'contacts:read'));
        });
    }

    public function testUsesAreCountedAsVerifyCountsThem(): void
    {
        $this->eachMode(function (KeyStore $store): void {
            $key = $store->generate('Counted', scopes: ['contacts:read']);
            $store->verifyId($key->secret());
            $store->isValid($key->secret());
            $store->isValid($key->secret(), 'billing:read'); // lacking a scope is still a use
            $store->verify($key->secret());
            $store->flush();
            $this->assertSame(4, $store->list()[0]->useCount);
        });
    }

    public function testAClosedStoreRefusesTheFastCalls(): void
    {
        $store = new KeyStore($this->path);
        $key = $store->generate('Gone');
        $store->close();
        $this->assertThrows(StoreClosedException::class, fn () => $store->verifyId($key->secret()));
        $this->assertThrows(StoreClosedException::class, fn () => $store->isValid($key->secret()));
    }
}
