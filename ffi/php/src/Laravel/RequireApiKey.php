<?php

declare(strict_types=1);

namespace ApiKeys\Laravel;

use ApiKeys\ApiKeysException;
use ApiKeys\HttpAnswer;
use Illuminate\Contracts\Auth\Factory as AuthFactory;
use Illuminate\Http\Request;
use Illuminate\Http\Response;

/**
 * Route middleware, `apikeys.auth` (any valid key) and
 * `apikeys.scope:contacts:read` (a key holding every listed scope:
 * `apikeys.scope:contacts:read,deals:read`). It answers the API's exact
 * bodies: 401 with `WWW-Authenticate: Bearer` for a missing or refused key,
 * 403 for a missing scope, 500 when the store fails. A request it lets
 * through has the key as its user (`$request->user()`), the "apikeys" guard
 * being the default for the rest of the request.
 */
final class RequireApiKey
{
    public function __construct(private readonly AuthFactory $auth)
    {
    }

    public function handle(Request $request, \Closure $next, string ...$scopes): mixed
    {
        $guard = $this->auth->guard(ApiKeysServiceProvider::GUARD);
        try {
            $user = $guard->user();
        } catch (ApiKeysException $failure) {
            return self::response(HttpAnswer::forError($failure));
        }
        if (!$user instanceof ApiKeyUser) {
            return self::response(HttpAnswer::unauthorized());
        }
        foreach ($scopes as $scope) {
            if (!$user->tokenCan($scope)) {
                return self::response(HttpAnswer::forbidden());
            }
        }
        $this->auth->shouldUse(ApiKeysServiceProvider::GUARD);
        return $next($request);
    }

    /** The answer as a Laravel response, its body byte for byte. */
    public static function response(HttpAnswer $answer): Response
    {
        return new Response($answer->body, $answer->status, $answer->headers);
    }
}
