<?php

declare(strict_types=1);

namespace ApiKeys\Laravel;

use ApiKeys\KeyStore;
use ApiKeys\UnauthorizedException;
use Illuminate\Auth\GuardHelpers;
use Illuminate\Contracts\Auth\Guard;
use Illuminate\Http\Request;

/**
 * The "apikeys" guard (`Auth::guard('apikeys')`, `auth:apikeys`): the user
 * of a request is the key in its `Authorization: Bearer` header, verified
 * once per request. A missing or refused key is no user (null); a store
 * failure throws (an ApiKeysException: a 500, never a 401).
 */
final class ApiKeyGuard implements Guard
{
    use GuardHelpers;

    private bool $resolved = false;

    /** @param \Closure(): KeyStore $store */
    public function __construct(private readonly \Closure $store, private Request $request)
    {
    }

    public function user(): ?ApiKeyUser
    {
        if ($this->user !== null || $this->resolved) {
            return $this->user;
        }
        $this->resolved = true;
        $header = $this->request->headers->get('Authorization');
        if (!is_string($header) || $header === '') {
            return null;
        }
        try {
            $key = ($this->store)()->verifyHeader($header);
        } catch (UnauthorizedException) {
            return null;
        }
        return $this->user = new ApiKeyUser($key);
    }

    /** @param array{api_key?: string} $credentials */
    public function validate(array $credentials = []): bool
    {
        $key = $credentials['api_key'] ?? null;
        return is_string($key) && ($this->store)()->isValid($key);
    }

    /** Called by Laravel when the request is rebound: the next user() reads the new one. */
    public function setRequest(Request $request): self
    {
        $this->request = $request;
        $this->user = null;
        $this->resolved = false;
        return $this;
    }
}
