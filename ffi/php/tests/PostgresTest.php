<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\DatabaseUnavailableException;
use ApiKeys\KeyStore;
use ApiKeys\WrongPepperException;

/**
 * The PHP package on a PostgreSQL store: the server of PG_URL (scripts/test
 * starts one, see scripts/lib/postgres.sh; it trusts loopback, so the
 * password in the URLs below is never checked, only carried). Each test gets
 * a database of its own. Without PG_URL the tests say so and do nothing,
 * unless APIKEYS_REQUIRE_POSTGRES=1 (scripts/test), where that is a failure.
 */
final class PostgresTest extends ApiKeysTestCase
{
    private const PASSWORD = 'pw-Never-Shown-7f3a';

    private ?string $url = null;

    protected function setUp(): void
    {
        parent::setUp();
        $server = getenv('PG_URL');
        if ($server === false || $server === '') {
            if (getenv('APIKEYS_REQUIRE_POSTGRES') === '1') {
                $this->fail('PG_URL is not set: start a server with pg_start (scripts/lib/postgres.sh)');
            }
            fwrite(STDERR, "PostgresTest: PG_URL is not set, nothing tested\n");
            return;
        }
        $database = 'apikeys_php_' . bin2hex(random_bytes(4));
        $output = [];
        exec('psql -q -X ' . escapeshellarg($server) . ' -c ' . escapeshellarg("CREATE DATABASE $database") . ' 2>&1', $output, $status);
        $this->assertSame(0, $status, 'psql CREATE DATABASE: ' . implode("\n", $output));
        // The same server with a password in the URL: postgres://user:password@host:port/db.
        $this->url = (string) preg_replace(
            ['~\A(postgres(?:ql)?://[^:/@]*)@~', '~/[^/?]*(\?.*)?\z~'],
            ['$1:' . self::PASSWORD . '@', "/$database\$1"],
            $server,
        );
        $this->assertStringContainsString(self::PASSWORD, $this->url);
    }

    private function open(string $suffix = '', ?string $pepper = self::PEPPER): KeyStore
    {
        return new KeyStore($this->url . $suffix, pepper: $pepper, persistent: false);
    }

    public function testVerifyAndARevocationSeenByASecondHandle(): void
    {
        if ($this->url === null) {
            return;
        }
        $writer = $this->open();
        $key = $writer->generate('PHP on PostgreSQL', env: 'prod', scopes: ['contacts:read']);
        $this->assertSame('PHP on PostgreSQL', $writer->verify($key->secret(), scope: 'contacts:read')->name);

        // A second handle stands for another worker: its own replica, fed by the change feed.
        $reader = $this->open();
        $strict = $this->open('?apikeys_strict=1');
        $this->assertSame('accepted', $this->outcome(fn () => $reader->verify($key->secret())));
        $this->assertTrue($writer->revoke($key->id()));
        $this->assertSame('revoked', $this->outcome(fn () => $writer->verify($key->secret())));
        $this->assertSame('revoked', $this->outcome(fn () => $strict->verify($key->secret())), 'strict mode reads the database');
        // The replica hears it within the bound L (1 s); the deadline only keeps a broken feed from hanging the run.
        $deadline = microtime(true) + 30;
        while ($this->outcome(fn () => $reader->verify($key->secret())) === 'accepted' && microtime(true) < $deadline) {
            usleep(2000);
        }
        $this->assertSame('revoked', $this->outcome(fn () => $reader->verify($key->secret())));
        foreach ([$writer, $reader, $strict] as $store) {
            $store->close();
        }
    }

    public function testAnotherPepperIsRefused(): void
    {
        if ($this->url === null) {
            return;
        }
        $this->open()->close();
        $error = $this->assertThrows(WrongPepperException::class, fn () => $this->open(pepper: 'another pepper'));
        $this->assertStringNotContainsString(self::PASSWORD, $error->getMessage());
    }

    public function testTheUrlIsShownWithoutItsPassword(): void
    {
        if ($this->url === null) {
            return;
        }
        $store = $this->open();
        $this->assertStringNotContainsString(self::PASSWORD, $store->path);
        $this->assertStringContainsString('postgres@', $store->path, 'the user stays');
        $this->assertSame((string) preg_replace('~:' . self::PASSWORD . '@~', '@', $this->url), $store->path);
        foreach (['var_dump' => fn () => var_dump($store), 'print_r' => fn () => print_r($store), 'var_export' => fn () => var_export($store)] as $how => $show) {
            ob_start();
            $show();
            $this->assertStringNotContainsString(self::PASSWORD, (string) ob_get_clean(), $how);
        }
        $store->close();
    }

    public function testAnUnreachableServerIsUnavailableNeverUnauthorized(): void
    {
        if ($this->url === null) {
            return;
        }
        // A port nothing listens on: bound, then closed.
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr((string) strrchr((string) stream_socket_get_name($socket, false), ':'), 1);
        fclose($socket);
        $url = (string) preg_replace('~@[^/]*/~', "@127.0.0.1:$port/", $this->url) . '?connect_timeout=2';
        $this->assertStringContainsString(self::PASSWORD, $url);
        $error = $this->assertThrows(DatabaseUnavailableException::class, fn () => new KeyStore($url, pepper: self::PEPPER, persistent: false));
        $this->assertSame(500, KeyStore::httpAnswer($error)[0]);
        $this->assertStringNotContainsString(self::PASSWORD, $error->getMessage());
        $this->assertStringNotContainsString(self::PASSWORD, $error->getTraceAsString(), 'the URL is a sensitive parameter');
        $this->assertStringNotContainsString(self::PASSWORD, (string) $error);
        // A persistent store (PHP-FPM's) fails at its first use: the same
        // 500, whatever the request's header held.
        foreach (['Bearer flz_sk_' . str_repeat('a', 32), 'Basic x', null] as $header) {
            $store = KeyStore::shared($url, self::PEPPER);
            $error = $this->assertThrows(DatabaseUnavailableException::class, fn () => $store->verifyHeaderId($header));
            $this->assertSame(500, KeyStore::httpAnswer($error)[0]);
            $this->assertStringNotContainsString(self::PASSWORD, (string) $error . print_r($store, true) . var_export($store, true));
        }
    }
}
