<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ForbiddenException;
use ApiKeys\InvalidArgumentException;
use ApiKeys\KeyStore;
use ApiKeys\StoreClosedException;
use ApiKeys\UnauthorizedException;
use ApiKeys\UnknownKeyException;

/** The whole lifecycle through the PHP API: generate, verify, list, revoke, rotate. */
final class LifecycleTest extends ApiKeysTestCase
{
    public function testGenerateReturnsAWellFormedSecretAndItsPublicInfo(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Production', env: 'prod', scopes: ['contacts:read', 'deals:*'], owner: 'team-a');
        $this->assertStringStartsWith('flz_sk_prod_', $key->secret());
        $this->assertTrue(KeyStore::isWellFormed($key->secret()));
        $info = $key->info;
        $this->assertSame(16, strlen($info->id));
        $this->assertSame($key->id(), $info->id);
        $this->assertSame('Production', $info->name);
        $this->assertSame('prod', $info->env);
        $this->assertSame(['contacts:read', 'deals:*'], $info->scopes);
        $this->assertSame('team-a', $info->owner);
        $this->assertSame('active', $info->status);
        $this->assertStringStartsWith(substr($key->secret(), 0, strlen('flz_sk_prod_') + 4), $info->hint);
        $this->assertStringNotContainsString($key->secret(), $info->hint);
        $this->assertSame('UTC', $info->createdAt->getTimezone()->getName());
        $this->assertNull($info->expiresAt);
        $this->assertNull($info->revokedAt);
        $this->assertNull($info->lastUsed);
        $this->assertSame(0, $info->useCount);
    }

    public function testDumpingOrExportingAGeneratedKeyLeavesTheSecretOut(): void
    {
        $key = $this->openStore()->generate('Logged');
        $this->assertStringNotContainsString($key->secret(), print_r($key, true));
        ob_start();
        var_dump($key);
        $dump = (string) ob_get_clean();
        $this->assertStringNotContainsString($key->secret(), $dump);
        $this->assertStringContainsString($key->id(), $dump);
        $this->assertStringNotContainsString($key->secret(), var_export($key, true));
        $this->assertStringNotContainsString($key->secret(), (string) json_encode($key));
        $this->assertThrows(\Exception::class, fn () => serialize($key));
    }

    public function testVerifyAcceptsTheKeyAndReportsWhoItIs(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Billing', env: 'prod', scopes: ['contacts:*'], owner: 'acct-42');
        $verified = $store->verify($key->secret());
        $this->assertSame($key->id(), $verified->id);
        $this->assertSame('Billing', $verified->name);
        $this->assertSame('prod', $verified->env);
        $this->assertSame(['contacts:*'], $verified->scopes);
        $this->assertSame('acct-42', $verified->owner);
        $this->assertNull($verified->expiresAt);
        $this->assertSame($key->id(), $store->verify($key->secret(), scope: 'contacts:write')->id);
    }

    public function testVerifyWithoutTheScopeIsForbiddenWithA403(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Read only', scopes: ['contacts:read']);
        $error = $this->assertThrows(ForbiddenException::class, fn () => $store->verify($key->secret(), 'contacts:write'));
        $this->assertSame(104, $error->getStatus());
        [$status, $body] = KeyStore::httpAnswer($error);
        $this->assertSame(403, $status);
        $this->assertSame(
            ['success' => false, 'error' => ['code' => 'FORBIDDEN', 'message' => 'API key does not have the required permissions']],
            json_decode($body, true),
        );
    }

    public function testMalformedAndUnknownKeysAreUnauthorizedWithOne401Body(): void
    {
        $stranger = $this->unknownKey();
        $store = $this->openStore();
        $malformed = $this->assertThrows(UnauthorizedException::class, fn () => $store->verify('flz_sk_prod_not-a-key'));
        $this->assertSame('malformed', $malformed->getReason());
        $unknown = $this->assertThrows(UnauthorizedException::class, fn () => $store->verify($stranger));
        $this->assertSame('not_found', $unknown->getReason());
        $this->assertSame(KeyStore::httpAnswer($malformed), KeyStore::httpAnswer($unknown));
        [$status, $body] = KeyStore::httpAnswer($unknown);
        $this->assertSame(401, $status);
        $this->assertSame('UNAUTHORIZED', json_decode($body, true)['error']['code']);
    }

    public function testVerifyHeaderReadsABearerToken(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Header', scopes: ['contacts:read']);
        $this->assertSame($key->id(), $store->verifyHeader('Bearer ' . $key->secret())->id);
        $this->assertSame($key->id(), $store->verifyHeader('bearer ' . $key->secret(), 'contacts:read')->id);
        $this->assertThrows(ForbiddenException::class, fn () => $store->verifyHeader('Bearer ' . $key->secret(), 'admin'));
        foreach ([null, '', 'Basic ' . $key->secret(), 'Bearer', 'Bearer ' . $key->secret() . ' extra'] as $header) {
            $error = $this->assertThrows(UnauthorizedException::class, fn () => $store->verifyHeader($header));
            $this->assertSame('bad_header', $error->getReason(), var_export($header, true));
            $this->assertSame(401, KeyStore::httpAnswer($error)[0]);
        }
    }

    public function testListReportsUseCountsAndDatesAfterFlush(): void
    {
        $store = $this->openStore();
        $used = $store->generate('Used', env: 'prod');
        $idle = $store->generate('Idle', env: 'dev');
        for ($i = 0; $i < 3; $i++) {
            $store->verify($used->secret());
        }
        $store->flush();
        $byId = [];
        foreach ($store->list() as $info) {
            $byId[$info->id] = $info;
        }
        $this->assertCount(2, $byId);
        $this->assertSame(3, $byId[$used->id()]->useCount);
        $this->assertInstanceOf(\DateTimeImmutable::class, $byId[$used->id()]->lastUsed);
        $this->assertSame('UTC', $byId[$used->id()]->lastUsed->getTimezone()->getName());
        $this->assertSame(0, $byId[$idle->id()]->useCount);
        $this->assertNull($byId[$idle->id()]->lastUsed);
    }

    public function testListFiltersByStatusAndByUnusedSince(): void
    {
        $store = $this->openStore();
        $kept = $store->generate('Kept');
        $gone = $store->generate('Gone');
        $store->verify($kept->secret());
        $store->revoke($gone->id());
        $store->flush();
        $ids = fn (array $keys) => array_map(fn ($info) => $info->id, $keys);
        $this->assertSame([$kept->id()], $ids($store->list('active')));
        $this->assertSame([$gone->id()], $ids($store->list('revoked')));
        $this->assertSame([], $store->list('expired'));
        // Far in the future: every key counts as unused since then.
        $this->assertCount(2, $store->list(unusedSince: new \DateTimeImmutable('+10 years')));
        // Before both were created: neither has been unused that long.
        $this->assertSame([], $store->list(unusedSince: new \DateTimeImmutable('2001-01-01T00:00:00Z')));
    }

    public function testRevokeIsImmediateIdempotentAndAnswers401(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Leaky');
        $store->verify($key->secret());
        $this->assertTrue($store->revoke($key->id()));
        $this->assertFalse($store->revoke($key->id()));
        $error = $this->assertThrows(UnauthorizedException::class, fn () => $store->verify($key->secret()));
        $this->assertSame('revoked', $error->getReason());
        $this->assertSame(102, $error->getStatus());
        $this->assertSame(401, KeyStore::httpAnswer($error)[0]);
        $info = $store->list()[0];
        $this->assertSame('revoked', $info->status);
        $this->assertNotNull($info->revokedAt);
    }

    public function testRevokeByTheSecretItself(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Leaked on GitHub');
        $this->assertTrue($store->revokeKey($key->secret()));
        $this->assertFalse($store->revokeKey($key->secret()));
        $this->assertSame('revoked', $this->outcome(fn () => $store->verify($key->secret())));
    }

    public function testRevokingAnUnknownKeySaysSo(): void
    {
        $stranger = $this->unknownKey();
        $store = $this->openStore();
        $error = $this->assertThrows(UnknownKeyException::class, fn () => $store->revoke('0000000000000000'));
        $this->assertSame(3, $error->getStatus());
        $this->assertNotSame('', $error->getDetail());
        $this->assertThrows(UnknownKeyException::class, fn () => $store->revokeKey($stranger));
    }

    public function testRotateKeepsTheOldKeyAliveDuringTheGracePeriod(): void
    {
        $store = $this->openStore();
        $old = $store->generate('Rotating', env: 'prod', scopes: ['contacts:read'], owner: 'o');
        $new = $store->rotate($old->id(), graceSeconds: 86400);
        $this->assertNotSame($old->id(), $new->id());
        $this->assertNotSame($old->secret(), $new->secret());
        $this->assertSame($old->id(), $new->info->rotatedFrom);
        $this->assertSame(['Rotating', 'prod', ['contacts:read'], 'o'], [$new->info->name, $new->info->env, $new->info->scopes, $new->info->owner]);
        $this->assertSame($new->id(), $store->verify($new->secret(), 'contacts:read')->id);
        $this->assertSame($old->id(), $store->verify($old->secret())->id);
        $oldInfo = array_values(array_filter($store->list(), fn ($info) => $info->id === $old->id()))[0];
        $this->assertSame($new->id(), $oldInfo->rotatedTo);
        $this->assertNotNull($oldInfo->expiresAt);
    }

    public function testRotateWithoutGraceExpiresTheOldKeyAtOnce(): void
    {
        $store = $this->openStore();
        $old = $store->generate('Compromised');
        $new = $store->rotate($old->id(), graceSeconds: 0);
        $this->assertSame('expired', $this->outcome(fn () => $store->verify($old->secret())));
        $this->assertSame($new->id(), $store->verify($new->secret())->id);
        $this->assertThrows(InvalidArgumentException::class, fn () => $store->rotate($old->id()));
    }

    public function testGenerateWithAnExpiry(): void
    {
        $store = $this->openStore();
        $expires = new \DateTimeImmutable('2100-01-01T00:00:00Z');
        $key = $store->generate('Temporary', expiresAt: $expires);
        $this->assertSame($expires->getTimestamp(), $key->info->expiresAt?->getTimestamp());
        $this->assertSame($expires->getTimestamp(), $store->verify($key->secret())->expiresAt?->getTimestamp());
        $this->assertThrows(
            InvalidArgumentException::class,
            fn () => $store->generate('Over', expiresAt: new \DateTimeImmutable('2001-01-01T00:00:00Z')),
        );
    }

    public function testKeysSurviveCloseAndReopen(): void
    {
        $first = $this->openStore(shared: false);
        $secret = $first->generate('Durable')->secret();
        $first->close();
        $second = $this->openStore(shared: false);
        $this->assertSame('Durable', $second->verify($secret)->name);
        $second->close();
    }

    public function testAClosedStoreRefusesCalls(): void
    {
        $store = $this->openStore();
        $store->close();
        $this->assertTrue($store->isClosed());
        $store->close(); // twice is fine
        $this->assertThrows(StoreClosedException::class, fn () => $store->generate('late'));
        $this->assertThrows(StoreClosedException::class, fn () => $store->verify('flz_sk_whatever'));
    }

    public function testLibraryVersion(): void
    {
        $composer = json_decode((string) file_get_contents(dirname(__DIR__) . '/composer.json'), true);
        $this->assertSame('apikeys/apikeys', $composer['name']);
        $this->assertMatchesRegularExpression('/^\d+\.\d+\.\d+/', KeyStore::libraryVersion());
    }
}
