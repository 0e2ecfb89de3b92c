<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ApiKeysException;
use ApiKeys\ForbiddenException;
use ApiKeys\KeyStore;
use ApiKeys\UnauthorizedException;

/**
 * verifyHeaderId() reads the header in PHP, or, on a persistent store's
 * first call, hands it to the library with the store's path: for every
 * header it must give the outcome verifyHeader() gets from the library
 * (which reads it with the core's bearer_token), the accepted key's id or
 * the same refusal.
 */
final class HeaderIdTest extends ApiKeysTestCase
{
    private static function outcomeOf(callable $verify): string
    {
        try {
            $result = $verify();
            return 'accepted ' . (is_string($result) ? $result : $result->id);
        } catch (UnauthorizedException $refused) {
            return 'refused ' . $refused->getReason() . ' ' . $refused->getStatus();
        } catch (ForbiddenException $refused) {
            return 'forbidden ' . $refused->getStatus();
        } catch (ApiKeysException $failed) {
            return 'failed ' . $failed::class . ' ' . $failed->getStatus();
        }
    }

    public function testEveryHeaderGetsTheOutcomeTheLibraryGives(): void
    {
        $store = $this->openStore();
        $key = $store->generate('header', scopes: ['contacts:read'])->secret();
        $revoked = $store->generate('revoked');
        $store->revoke($revoked->id());
        $headers = [null, '', ' ', "\t", 'Bearer', 'Bearer ', 'bearer', "Bearer\t$key", "Bearer $key", "bearer $key", "BEARER  $key",
            "  Bearer $key\t", " \tBearer $key \t", "Bearer $key==", "Bearer $key=", "Bearer =$key", "Bearer $key x", "Bearer  $key ",
            "Bearerx $key", "Basic $key", "Token $key", "Bearer $key\0", "Bearer \0$key", "\0Bearer $key", "Bearer é$key",
            "Bearer $key\xff", "\xffBearer $key", "Bearer ===", 'Bearer a', 'Bearer a.b-c_d~e+f/g', "Bearer $key,Bearer $key",
            'Bearer ' . $revoked->secret(), 'Bearer ' . $this->unknownKey(), 'Bearer ' . substr($key, 0, -1), "Bearer\n$key",
            "Bearer\r\n$key", "Bearer $key\n", str_repeat('x', 1 << 16), 'Bearer ' . str_repeat('A', 1 << 16)];
        foreach ([null, 'contacts:read', 'deals:read', "contacts:read\0", 'é', "\xff"] as $scope) {
            foreach ($headers as $header) {
                $expected = self::outcomeOf(fn () => $store->verifyHeader($header, scope: $scope));
                $what = 'header ' . json_encode($header === null ? null : mb_convert_encoding($header, 'UTF-8', 'UTF-8'))
                    . ', scope ' . json_encode($scope === null ? null : mb_convert_encoding($scope, 'UTF-8', 'UTF-8'));
                $this->assertSame($expected, self::outcomeOf(fn () => $store->verifyHeaderId($header, scope: $scope)), $what);
                // A persistent store's first call (PHP-FPM's request path):
                // the library reads the header, in the same call that finds
                // the process's handle.
                $this->assertSame($expected, self::outcomeOf(
                    fn () => KeyStore::shared($this->path, self::PEPPER)->verifyHeaderId($header, scope: $scope),
                ), "$what, first call of a persistent store");
            }
        }
    }

    public function testTheBearerTokenIsReadAsTheCoreReadsIt(): void
    {
        $this->assertSame('abc', KeyStore::bearerToken('Bearer abc'));
        $this->assertSame('abc', KeyStore::bearerToken('bearer abc'));
        $this->assertSame('abc', KeyStore::bearerToken('BEARER  abc'));
        $this->assertSame('abc', KeyStore::bearerToken("  Bearer abc\t"));
        $this->assertSame('abc==', KeyStore::bearerToken('Bearer abc=='));
        foreach (['', '   ', 'Basic dXNlcjpwYXNz', 'Bearerabc', 'Bearer', 'Bearer a b', 'Bearer ===', 'Bearer é'] as $refused) {
            $this->assertNull(KeyStore::bearerToken($refused), $refused);
        }
    }
}
