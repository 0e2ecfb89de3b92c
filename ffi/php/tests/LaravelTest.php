<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\Laravel\ApiKeysServiceProvider;
use ApiKeys\Laravel\ApiKeyUser;
use ApiKeys\Scope;
use Illuminate\Foundation\Application;
use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Illuminate\Support\Facades\Auth;

/**
 * The Laravel integration in a real Laravel 8 application (Debian's
 * php-laravel-framework), requests dispatched through its HTTP kernel: the
 * guard (`Auth::guard('apikeys')`, `auth:apikeys`), the route middleware
 * (`apikeys.auth`, `apikeys.scope:contacts:read`), tokenCan with the core's
 * wildcards, the exact bodies and headers, 500 on a store failure.
 */
final class LaravelTest extends ApiKeysTestCase
{
    private const AUTOLOAD = '/usr/share/php/Illuminate/autoload.php';
    private const UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}';
    private const FORBIDDEN = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}';
    private const INTERNAL_ERROR = '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}';

    private Application $app;
    private \Illuminate\Contracts\Http\Kernel $kernel;

    protected function setUp(): void
    {
        parent::setUp();
        if (!is_file(self::AUTOLOAD)) {
            $this->fail('Laravel is not installed: run scripts/install-test-deps (Debian: php-laravel-framework)');
        }
        require_once self::AUTOLOAD;
    }

    protected function tearDown(): void
    {
        // The application's tree (config, storage, bootstrap/cache).
        if (is_dir($this->dir . '/app')) {
            $files = new \RecursiveIteratorIterator(
                new \RecursiveDirectoryIterator($this->dir . '/app', \FilesystemIterator::SKIP_DOTS),
                \RecursiveIteratorIterator::CHILD_FIRST,
            );
            foreach ($files as $file) {
                $file->isDir() ? rmdir($file->getPathname()) : unlink($file->getPathname());
            }
            rmdir($this->dir . '/app');
        }
        parent::tearDown();
    }

    /** A Laravel application in $this->dir/app, its store at $path, with the test routes. */
    private function boot(?string $path = null, ?string $pepper = self::PEPPER): void
    {
        $base = $this->dir . '/app';
        foreach (['config', 'storage/framework/views', 'storage/logs', 'bootstrap/cache'] as $sub) {
            @mkdir("$base/$sub", 0700, true);
        }
        $config = [
            'app' => ['name' => 'apikeys-test', 'env' => 'testing', 'debug' => false, 'key' => 'base64:' . base64_encode(random_bytes(32)),
                'cipher' => 'AES-256-CBC', 'providers' => [\Illuminate\Auth\AuthServiceProvider::class, ApiKeysServiceProvider::class]],
            'auth' => ['defaults' => ['guard' => 'web'], 'guards' => []],
            'apikeys' => ['path' => $path ?? $this->path, 'pepper' => $pepper, 'shared' => true],
            'logging' => ['default' => 'null', 'channels' => ['null' => ['driver' => 'monolog', 'handler' => \Monolog\Handler\NullHandler::class]]],
        ];
        foreach ($config as $name => $values) {
            file_put_contents("$base/config/$name.php", '<?php return ' . var_export($values, true) . ';');
        }
        $app = new Application($base);
        $app->singleton(\Illuminate\Contracts\Http\Kernel::class, \Illuminate\Foundation\Http\Kernel::class);
        $app->singleton(\Illuminate\Contracts\Console\Kernel::class, \Illuminate\Foundation\Console\Kernel::class);
        $app->singleton(\Illuminate\Contracts\Debug\ExceptionHandler::class, \Illuminate\Foundation\Exceptions\Handler::class);
        $this->kernel = $app->make(\Illuminate\Contracts\Http\Kernel::class);
        $this->kernel->bootstrap();
        $router = $app['router'];
        // What an application's App\Http\Kernel names `auth`.
        $router->aliasMiddleware('auth', \Illuminate\Auth\Middleware\Authenticate::class);
        $who = fn (Request $request) => ['id' => $request->user()?->getAuthIdentifier(), 'guard' => Auth::guard('apikeys')->id()];
        $router->get('/any', $who)->middleware('apikeys.auth');
        $router->get('/contacts', $who)->middleware('apikeys.scope:contacts:read');
        $router->get('/both', $who)->middleware('apikeys.scope:contacts:read,deals:write');
        $router->get('/laravel-auth', $who)->middleware('auth:apikeys');
        $router->get('/open', fn (Request $request) => [
            'check' => Auth::guard('apikeys')->check(),
            'can' => Auth::guard('apikeys')->user()?->tokenCan('contacts:write'),
        ]);
        $this->app = $app;
    }

    private function get(string $uri, ?string $authorization = null): Response|\Illuminate\Http\JsonResponse|\Symfony\Component\HttpFoundation\Response
    {
        $server = $authorization === null ? [] : ['HTTP_AUTHORIZATION' => $authorization];
        $request = Request::create($uri, 'GET', server: $server + ['HTTP_ACCEPT' => 'application/json']);
        $response = $this->kernel->handle($request);
        $this->kernel->terminate($request, $response);
        return $response;
    }

    private function assertAnswer(int $status, string $body, ?string $challenge, \Symfony\Component\HttpFoundation\Response $response, string $what): void
    {
        $this->assertSame($status, $response->getStatusCode(), "$what: status");
        $this->assertSame($body, $response->getContent(), "$what: body");
        $this->assertSame('application/json', $response->headers->get('Content-Type'), "$what: Content-Type");
        $this->assertSame($challenge, $response->headers->get('WWW-Authenticate'), "$what: WWW-Authenticate");
    }

    public function testEveryRefusedKeyGetsThe401WithWwwAuthenticateOnEveryRouteKind(): void
    {
        $store = $this->openStore();
        $revoked = $store->generate('revoked', scopes: ['*']);
        $store->revoke($revoked->id());
        $this->boot();
        $cases = [
            'no header' => null,
            'Basic' => 'Basic dXNlcjpwYXNz',
            'Bearer and nothing' => 'Bearer',
            'not a key' => 'Bearer not-a-key',
            'unknown key' => 'Bearer ' . $this->unknownKey(),
            'revoked key' => 'Bearer ' . $revoked->secret(),
        ];
        foreach (['/any', '/contacts', '/laravel-auth'] as $route) {
            foreach ($cases as $what => $authorization) {
                $this->assertAnswer(401, self::UNAUTHORIZED, 'Bearer', $this->get($route, $authorization), "$route, $what");
            }
        }
    }

    public function testAValidKeyIsTheRequestsUserThroughTheGuard(): void
    {
        $store = $this->openStore();
        $key = $store->generate('Production', env: 'prod', scopes: ['contacts:*'], owner: 'acct_42');
        $this->boot();
        foreach (['/any', '/contacts', '/laravel-auth'] as $route) {
            $response = $this->get($route, 'Bearer ' . $key->secret());
            $this->assertSame(200, $response->getStatusCode(), "$route: " . $response->getContent());
            $this->assertSame(['id' => $key->id(), 'guard' => $key->id()], json_decode((string) $response->getContent(), true), $route);
        }
        $user = Auth::guard('apikeys')->user();
        $this->assertInstanceOf(ApiKeyUser::class, $user);
        $this->assertSame(['Production', 'prod', 'acct_42', ['contacts:*']], [$user->name, $user->env, $user->owner, $user->scopes]);
        $this->assertSame($key->id(), $user->currentAccessToken()->id);
        // The next request, without a key, does not inherit this one's user.
        $this->assertSame(['check' => false, 'can' => null], json_decode((string) $this->get('/open')->getContent(), true));
        $this->assertSame(['check' => true, 'can' => true], json_decode((string) $this->get('/open', 'Bearer ' . $key->secret())->getContent(), true));
        $this->assertTrue(Auth::guard('apikeys')->validate(['api_key' => $key->secret()]));
        $this->assertFalse(Auth::guard('apikeys')->validate(['api_key' => 'flz_sk_nope']));
    }

    public function testScopeMiddlewareAnswers403WithoutTheScope(): void
    {
        $store = $this->openStore();
        $deals = $store->generate('deals', scopes: ['deals:*']);
        $contacts = $store->generate('contacts', scopes: ['contacts:read']);
        $both = $store->generate('both', scopes: ['contacts:read', 'deals:write']);
        $this->boot();
        $this->assertAnswer(403, self::FORBIDDEN, 'Bearer error="insufficient_scope"', $this->get('/contacts', 'Bearer ' . $deals->secret()), 'deals:* on contacts:read');
        $this->assertSame(200, $this->get('/contacts', 'Bearer ' . $contacts->secret())->getStatusCode());
        $this->assertAnswer(403, self::FORBIDDEN, 'Bearer error="insufficient_scope"', $this->get('/both', 'Bearer ' . $contacts->secret()), 'one of two scopes');
        $this->assertSame(200, $this->get('/both', 'Bearer ' . $both->secret())->getStatusCode());
    }

    public function testTokenCanAgreesWithTheLibrarysScopeCheck(): void
    {
        $store = $this->openStore();
        $grants = [['*'], ['contacts:*'], ['contacts:read'], ['contacts:read', 'deals:*'], ['contacts:notes:*'], ['deals:read'], []];
        $required = ['contacts:read', 'contacts:write', 'contacts:notes:write', 'contacts:', 'contactsx:read', 'deals:read', 'deals:write', 'x'];
        foreach ($grants as $scopes) {
            $key = $store->generate('scopes', scopes: $scopes);
            $user = new ApiKeyUser($store->verify($key->secret()));
            foreach ($required as $scope) {
                $library = $store->isValid($key->secret(), scope: $scope);
                $this->assertSame($library, $user->tokenCan($scope), json_encode($scopes) . " covers $scope?");
                $this->assertSame($library, Scope::covers($scopes, $scope));
                $this->assertSame(!$library, $user->tokenCant($scope));
            }
        }
    }

    public function testAStoreFailureIs500NeverA401(): void
    {
        $store = $this->openStore();
        $key = $store->generate('k', scopes: ['*']);
        $store->close();
        $this->boot(pepper: 'not the pepper');
        foreach (['/any', '/contacts', '/laravel-auth'] as $route) {
            $this->assertAnswer(500, self::INTERNAL_ERROR, null, $this->get($route, 'Bearer ' . $key->secret()), "wrong pepper, $route");
        }
        file_put_contents($this->dir . '/garbage.redb', str_repeat("\xAB", 8192));
        $this->boot(path: $this->dir . '/garbage.redb');
        $this->assertAnswer(500, self::INTERNAL_ERROR, null, $this->get('/contacts', 'Bearer ' . $key->secret()), 'not a store');
        // No key at all needs no store: still the 401.
        $this->assertAnswer(401, self::UNAUTHORIZED, 'Bearer', $this->get('/contacts'), 'no key, broken store');
    }

    public function testTheStoreIsBoundAndTheGuardConfigured(): void
    {
        $this->boot();
        $this->assertInstanceOf(KeyStore::class, $this->app->make(KeyStore::class));
        $this->assertSame(['driver' => 'apikeys'], $this->app['config']->get('auth.guards.apikeys'));
        $this->assertTrue($this->app->make(KeyStore::class)->shared);
    }
}
