<?php

declare(strict_types=1);

namespace ApiKeys\Laravel;

use ApiKeys\ApiKeysException;
use ApiKeys\HttpAnswer;
use ApiKeys\KeyStore;
use Illuminate\Auth\AuthenticationException;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Foundation\Exceptions\Handler;
use Illuminate\Support\ServiceProvider;

/**
 * Registers, for a Laravel application (8 or later; discovered by composer
 * through extra.laravel.providers):
 *
 * - the `apikeys` guard driver, and the guard `auth.guards.apikeys` if the
 *   application defines none: `Auth::guard('apikeys')`, `auth:apikeys`;
 * - the route middleware `apikeys.auth` and `apikeys.scope:<scope>,...`;
 * - KeyStore, bound to the configured store (config/apikeys.php: APIKEYS_DB,
 *   APIKEYS_PEPPER), persistent under PHP-FPM;
 * - the API's 401 (with `WWW-Authenticate: Bearer`) for the
 *   AuthenticationException that `auth:apikeys` throws, and the API's
 *   answer (401, 403 or 500) for any ApiKeysException left uncaught.
 */
final class ApiKeysServiceProvider extends ServiceProvider
{
    public const GUARD = 'apikeys';

    public function register(): void
    {
        $this->mergeConfigFrom(__DIR__ . '/config/apikeys.php', 'apikeys');
        $this->app->singleton(KeyStore::class, function ($app): KeyStore {
            $config = $app['config']['apikeys'];
            $pepper = $config['pepper'] ?? null;
            return new KeyStore((string) $config['path'], pepper: $pepper === '' ? null : $pepper, shared: (bool) ($config['shared'] ?? true));
        });
        $config = $this->app['config'];
        if ($config->get('auth.guards.' . self::GUARD) === null) {
            $config->set('auth.guards.' . self::GUARD, ['driver' => self::GUARD]);
        }
    }

    public function boot(): void
    {
        $this->app['auth']->extend(self::GUARD, function ($app): ApiKeyGuard {
            $guard = new ApiKeyGuard(fn (): KeyStore => $app->make(KeyStore::class), $app['request']);
            $app->refresh('request', $guard, 'setRequest');
            return $guard;
        });
        $router = $this->app['router'];
        $router->aliasMiddleware('apikeys.auth', RequireApiKey::class);
        $router->aliasMiddleware('apikeys.scope', RequireApiKey::class);
        $handler = $this->app->make(ExceptionHandler::class);
        if ($handler instanceof Handler) {
            $handler->renderable(function (AuthenticationException $refused) {
                return in_array(self::GUARD, $refused->guards(), true)
                    ? RequireApiKey::response(HttpAnswer::unauthorized())
                    : null;
            });
            // An ApiKeysException nobody caught (a store failure under
            // auth:apikeys, a verify() in a controller): the API's answer.
            $handler->renderable(fn (ApiKeysException $error) => RequireApiKey::response(HttpAnswer::forError($error)));
        }
    }
}
