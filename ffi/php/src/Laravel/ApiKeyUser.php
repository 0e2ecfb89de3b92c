<?php

declare(strict_types=1);

namespace ApiKeys\Laravel;

use ApiKeys\Scope;
use ApiKeys\VerifiedKey;
use Illuminate\Contracts\Auth\Authenticatable;

/**
 * The authenticated principal of the "apikeys" guard: the API key itself
 * (`$request->user()`, `Auth::guard('apikeys')->user()`). Its identifier is
 * the key's id; `owner` is the owner the key was generated with (an account
 * id, say), for the application to look its user up by.
 *
 *     if ($request->user()->tokenCan('contacts:write')) { ... }
 */
final class ApiKeyUser implements Authenticatable, \JsonSerializable
{
    public readonly string $id;
    public readonly string $name;
    public readonly ?string $env;
    public readonly ?string $owner;
    /** @var list<string> */
    public readonly array $scopes;

    public function __construct(public readonly VerifiedKey $key)
    {
        $this->id = $key->id;
        $this->name = $key->name;
        $this->env = $key->env;
        $this->owner = $key->owner;
        $this->scopes = $key->scopes;
    }

    /** Sanctum's tokenCan: whether the key holds $scope (`*` and `contacts:*` as the core reads them). */
    public function tokenCan(string $scope): bool
    {
        return Scope::covers($this->scopes, $scope);
    }

    public function tokenCant(string $scope): bool
    {
        return !$this->tokenCan($scope);
    }

    /** Sanctum's currentAccessToken(): the verified key. */
    public function currentAccessToken(): VerifiedKey
    {
        return $this->key;
    }

    public function getAuthIdentifierName(): string
    {
        return 'id';
    }

    public function getAuthIdentifier(): string
    {
        return $this->id;
    }

    /** A key has no password: only its digest exists, in the store. */
    public function getAuthPassword(): string
    {
        return '';
    }

    public function getRememberToken(): ?string
    {
        return null;
    }

    public function setRememberToken($value): void
    {
    }

    public function getRememberTokenName(): string
    {
        return '';
    }

    /** @return array<string, mixed> */
    public function jsonSerialize(): array
    {
        return ['id' => $this->id, 'name' => $this->name, 'env' => $this->env, 'owner' => $this->owner, 'scopes' => $this->scopes];
    }
}
