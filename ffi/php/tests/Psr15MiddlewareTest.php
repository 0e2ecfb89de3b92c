<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\Psr15\ApiKeyMiddleware;
use ApiKeys\VerifiedKey;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * ApiKeys\Psr15\ApiKeyMiddleware against the real PSR-15 interfaces (the
 * psr extension Debian ships) and a real PSR-7/PSR-17 implementation
 * (Debian's nyholm/psr7): exact bodies and headers of every refusal, the
 * verified key as a request attribute, per-route scopes with the core's
 * wildcards, 500 on a store failure.
 *
 * Debian's PSR-15 interfaces come only with the psr extension, which
 * Laravel's packages refuse beside them, so it is unpacked aside
 * (scripts/install-test-deps) and not loaded by default: when the
 * interfaces are missing, each test runs itself in a php child that loads
 * it, and passes only if the child passed.
 */
final class Psr15MiddlewareTest extends ApiKeysTestCase
{
    private const NYHOLM = '/usr/share/php/Nyholm/Psr7/autoload.php';
    private const UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}';
    private const FORBIDDEN = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}';
    private const INTERNAL_ERROR = '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}';

    /** Where scripts/install-test-deps unpacks Debian's php8.2-psr. */
    public static function psrExtension(): string
    {
        $explicit = getenv('APIKEYS_PHP_PSR_EXTENSION');
        return is_string($explicit) && $explicit !== ''
            ? $explicit
            : '/var/cache/apikeys-test-deps/php8.2-psr' . ini_get('extension_dir') . '/psr.so';
    }

    /** Runs the calling test in a php child with the psr extension; true if it ran here instead. */
    private function inProcessWithPsr15(string $test): bool
    {
        if (interface_exists(MiddlewareInterface::class)) {
            return true;
        }
        $extension = self::psrExtension();
        if (!is_file($extension)) {
            $this->fail("the PSR-15 interfaces are missing and $extension does not exist: run scripts/install-test-deps");
        }
        $command = [PHP_BINARY, '-d', 'extension=' . $extension, dirname(__FILE__) . '/run.php', "Psr15MiddlewareTest::$test"];
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $output = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $exit = proc_close($process);
        $this->assertSame(0, $exit, "with the psr extension:\n$output");
        $this->assertStringContainsString("1 passed, 0 failed", $output, $output);
        return false;
    }

    protected function setUp(): void
    {
        parent::setUp();
        if (interface_exists(MiddlewareInterface::class)) {
            require_once self::NYHOLM;
        }
    }

    /** A handler that records the request it was handed and answers 200. */
    private function handler(): RequestHandlerInterface
    {
        return new class () implements RequestHandlerInterface {
            public ?ServerRequestInterface $handled = null;

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                $this->handled = $request;
                $key = $request->getAttribute(ApiKeyMiddleware::ATTRIBUTE);
                return (new Psr17Factory())->createResponse(200)->withHeader('X-Key', $key instanceof VerifiedKey ? $key->id : 'none');
            }
        };
    }

    /** @param list<string>|string|null $authorization */
    private function request(array|string|null $authorization): ServerRequestInterface
    {
        $request = (new Psr17Factory())->createServerRequest('GET', '/contacts');
        return $authorization === null ? $request : $request->withHeader('Authorization', $authorization);
    }

    private function assertAnswer(int $status, string $body, ?string $challenge, ResponseInterface $response, string $what): void
    {
        $this->assertSame($status, $response->getStatusCode(), "$what: status");
        $this->assertSame($body, (string) $response->getBody(), "$what: body");
        $this->assertSame('application/json', $response->getHeaderLine('Content-Type'), "$what: Content-Type");
        $this->assertSame($challenge, $response->hasHeader('WWW-Authenticate') ? $response->getHeaderLine('WWW-Authenticate') : null, "$what: WWW-Authenticate");
    }

    public function testEveryRefusedKeyGetsThe401WithWwwAuthenticateAndNeverReachesTheHandler(): void
    {
        if (!$this->inProcessWithPsr15(__FUNCTION__)) {
            return;
        }
        $store = $this->openStore();
        $revoked = $store->generate('revoked');
        $store->revoke($revoked->id());
        $middleware = new ApiKeyMiddleware($store, new Psr17Factory());
        $cases = [
            'no header' => null,
            'empty header' => '',
            'Basic' => 'Basic dXNlcjpwYXNz',
            'Bearer and nothing' => 'Bearer',
            'not a key' => 'Bearer not-a-key',
            'unknown key' => 'Bearer ' . $this->unknownKey(),
            'revoked key' => 'Bearer ' . $revoked->secret(),
            'two headers' => ['Bearer ' . $revoked->secret(), 'Bearer ' . $revoked->secret()],
        ];
        foreach ($cases as $what => $authorization) {
            $handler = $this->handler();
            $response = $middleware->process($this->request($authorization), $handler);
            $this->assertAnswer(401, self::UNAUTHORIZED, 'Bearer', $response, $what);
            $this->assertNull($handler->handled, "$what reached the handler");
        }
    }

    public function testAValidKeyReachesTheHandlerWithTheVerifiedKeyAttached(): void
    {
        if (!$this->inProcessWithPsr15(__FUNCTION__)) {
            return;
        }
        $store = $this->openStore();
        $key = $store->generate('Production', env: 'prod', scopes: ['contacts:read'], owner: 'acct_42');
        $handler = $this->handler();
        $response = (new ApiKeyMiddleware($store, new Psr17Factory()))->process($this->request('bearer ' . $key->secret()), $handler);
        $this->assertSame(200, $response->getStatusCode());
        $this->assertSame($key->id(), $response->getHeaderLine('X-Key'));
        $attached = $handler->handled?->getAttribute(ApiKeyMiddleware::ATTRIBUTE);
        $this->assertInstanceOf(VerifiedKey::class, $attached);
        $this->assertSame(['Production', 'prod', ['contacts:read'], 'acct_42'], [$attached->name, $attached->env, $attached->scopes, $attached->owner]);
    }

    public function testPerRouteScopesFollowTheCoresWildcards(): void
    {
        if (!$this->inProcessWithPsr15(__FUNCTION__)) {
            return;
        }
        $store = $this->openStore();
        $middleware = (new ApiKeyMiddleware($store, new Psr17Factory(), new Psr17Factory()))->withScope('contacts:read');
        $granted = [
            '*' => true,
            'contacts:*' => true,
            'contacts:read' => true,
            'contacts:write' => false,
            'deals:read' => false,
            'contacts:read:own' => false,
        ];
        foreach ($granted as $scope => $passes) {
            $key = $store->generate($scope, scopes: [$scope]);
            $handler = $this->handler();
            $response = $middleware->process($this->request('Bearer ' . $key->secret()), $handler);
            if ($passes) {
                $this->assertSame(200, $response->getStatusCode(), "$scope covers contacts:read");
                $this->assertSame($key->id(), $response->getHeaderLine('X-Key'));
            } else {
                $this->assertAnswer(403, self::FORBIDDEN, 'Bearer error="insufficient_scope"', $response, "$scope does not cover contacts:read");
                $this->assertNull($handler->handled);
            }
        }
        // A key without any scope passes only the routes that ask for none.
        $bare = $store->generate('bare');
        $this->assertSame(403, $middleware->process($this->request('Bearer ' . $bare->secret()), $this->handler())->getStatusCode());
        $this->assertSame(200, $middleware->withScope(null)->process($this->request('Bearer ' . $bare->secret()), $this->handler())->getStatusCode());
    }

    public function testAStoreFailureIs500NeverA401(): void
    {
        if (!$this->inProcessWithPsr15(__FUNCTION__)) {
            return;
        }
        $store = $this->openStore();
        $key = $store->generate('k');
        $store->close();
        $failures = [
            'wrong pepper' => fn () => new KeyStore($this->path, pepper: 'not the pepper', shared: true),
            'not a store' => function () {
                file_put_contents($this->dir . '/garbage.redb', str_repeat("\xAB", 8192));
                return new KeyStore($this->dir . '/garbage.redb', shared: true);
            },
            'closed store' => fn () => $store,
        ];
        foreach ($failures as $what => $open) {
            $handler = $this->handler();
            $response = (new ApiKeyMiddleware($open, new Psr17Factory()))->process($this->request('Bearer ' . $key->secret()), $handler);
            $this->assertAnswer(500, self::INTERNAL_ERROR, null, $response, $what);
            $this->assertNull($handler->handled);
        }
        // The same key through a store that opens: accepted.
        $lazy = new ApiKeyMiddleware(fn () => KeyStore::shared($this->path, self::PEPPER), new Psr17Factory());
        $this->assertSame(200, $lazy->process($this->request('Bearer ' . $key->secret()), $this->handler())->getStatusCode());
    }
}
