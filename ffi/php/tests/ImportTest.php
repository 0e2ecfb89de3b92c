<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\UnauthorizedException;

/**
 * Keys moved in from Laravel Sanctum, djangorestframework-api-key and Unkey
 * (imported by the command line from rows made by each source's documented
 * algorithm) verify unchanged through the package: verify, verifyId,
 * isValid, verifyHeader and verifyHeaderId, before and after their first
 * verify re-digests them. Sanctum's "id|secret" passes bearerToken().
 */
final class ImportTest extends ApiKeysTestCase
{
    private function cli(): string
    {
        $root = dirname(__DIR__, 3);
        $binary = "$root/target/debug/apikeys";
        if (!is_file($binary)) {
            passthru('cd ' . escapeshellarg($root) . ' && cargo build --quiet -p apikeys --bin apikeys', $code);
            $this->assertSame(0, $code, 'cargo build of the command line');
        }
        return $binary;
    }

    private function import(string $source, string $rows): void
    {
        $export = "{$this->dir}/$source.export";
        file_put_contents($export, $rows);
        $command = 'APIKEYS_PEPPER=' . escapeshellarg(self::PEPPER) . ' ' . escapeshellarg($this->cli())
            . ' --db ' . escapeshellarg($this->path) . ' --shared import --from ' . escapeshellarg($source)
            . ' ' . escapeshellarg($export) . ' --json';
        exec($command, $out, $code);
        $this->assertSame(0, $code, implode("\n", $out));
        $this->assertSame(1, json_decode($out[0], true)['imported']);
    }

    /** @return list<string> */
    private function legacyKeys(): array
    {
        $secret = 'Zr3kd8QmVn2Lx7Pq1Ws5Te9Yb4Uc6Ha0Jf2Gk8Mi1a2b3c4d';
        $this->import('sanctum', "id,name,token,abilities\n7,Sanctum token," . hash('sha256', $secret) . ",\"[\"\"*\"\"]\"\n");
        $drf = 'Ab3dEf9h.q8Wm2Xn5Rt7Yp1Zs4Uv6Kl3Ho9Jb0Gc';
        $this->import('drf-api-key', "prefix,name,hashed_key\nAb3dEf9h,DRF key,sha512$$" . hash('sha512', $drf) . "\n");
        $unkey = 'sk_5Hq2Nw8Lr3Kd7Mv1Xc9Tb4Zp';
        $this->import('unkey', json_encode(['hash' => base64_encode(hash('sha256', $unkey, true)), 'name' => 'Unkey key']) . "\n");
        return ["7|$secret", $drf, $unkey];
    }

    public function testListTellsEachKeysOriginAndLegacyDigest(): void
    {
        $this->legacyKeys();
        $store = $this->openStore();
        try {
            $store->generate('native');
            $listed = [];
            foreach ($store->list() as $info) {
                $listed[$info->name] = $info;
            }
            $this->assertSame(['unkey', 'sha256'], [$listed['Unkey key']->origin, $listed['Unkey key']->legacyDigest]);
            $this->assertSame([null, null], [$listed['native']->origin, $listed['native']->legacyDigest]);
        } finally {
            $store->close();
        }
    }

    public function testImportedKeysVerifyUnchangedThroughEveryCall(): void
    {
        $keys = $this->legacyKeys();
        $store = $this->openStore();
        try {
            foreach ($keys as $key) {
                $id = $store->verify($key)->id;
                $this->assertSame($id, $store->verifyId($key));
                $this->assertTrue($store->isValid($key));
                $this->assertSame($key, KeyStore::bearerToken("Bearer $key"));
                $this->assertSame($id, $store->verifyHeader("Bearer $key")->id);
                $this->assertSame($id, $store->verifyHeaderId("Bearer $key"));
            }
            $listed = [];
            foreach ($store->list() as $info) {
                $listed[$info->name] = $info;
            }
            $this->assertSame('sanctum', $listed['Sanctum token']->origin);
            $this->assertNull($listed['Sanctum token']->legacyDigest, 're-digested by its first verify');
            foreach (['7|' . str_repeat('x', 48), 'Ab3dEf9h.wrongsecret', 'sk_nope'] as $forged) {
                $this->assertFalse($store->isValid($forged));
                $this->assertThrows(UnauthorizedException::class, fn () => $store->verify($forged));
            }
        } finally {
            $store->close();
        }
    }
}
