<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * The HTTP answer to send instead of serving a request whose key was not
 * accepted: the exact bodies of the API documentation and the
 * `WWW-Authenticate` header of RFC 6750, as the core's `http::Answer` has
 * them (src/http.rs; the tests compare these with what the library says).
 *
 *     } catch (ApiKeysException $refused) {
 *         HttpAnswer::forError($refused)->send();   // 401, 403 or 500
 *         exit;
 *     }
 *
 * - 401 for every UnauthorizedException (missing, malformed, unknown,
 *   revoked, expired: one body, the client does not learn which), with
 *   `WWW-Authenticate: Bearer`;
 * - 403 for ForbiddenException (a valid key without the scope), with
 *   `WWW-Authenticate: Bearer error="insufficient_scope"`;
 * - 500 for anything else (the store failed: neither accepted nor refused).
 */
final class HttpAnswer
{
    public const UNAUTHORIZED_BODY = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}';
    public const FORBIDDEN_BODY = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}';
    public const INTERNAL_ERROR_BODY = '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}';

    public const UNAUTHORIZED_CHALLENGE = 'Bearer';
    public const FORBIDDEN_CHALLENGE = 'Bearer error="insufficient_scope"';

    /** @param array<string, string> $headers */
    private function __construct(
        public readonly int $status,
        public readonly string $body,
        public readonly array $headers,
    ) {
    }

    public static function unauthorized(): self
    {
        return new self(401, self::UNAUTHORIZED_BODY, [
            'Content-Type' => 'application/json',
            'WWW-Authenticate' => self::UNAUTHORIZED_CHALLENGE,
        ]);
    }

    public static function forbidden(): self
    {
        return new self(403, self::FORBIDDEN_BODY, [
            'Content-Type' => 'application/json',
            'WWW-Authenticate' => self::FORBIDDEN_CHALLENGE,
        ]);
    }

    public static function internalError(): self
    {
        return new self(500, self::INTERNAL_ERROR_BODY, ['Content-Type' => 'application/json']);
    }

    /** The answer to a failed verification (any Throwable that is not a refusal is a 500). */
    public static function forError(\Throwable $error): self
    {
        return match (true) {
            $error instanceof UnauthorizedException => self::unauthorized(),
            $error instanceof ForbiddenException => self::forbidden(),
            default => self::internalError(),
        };
    }

    /** Sends it with PHP's own header() and echo (plain PHP, no framework). */
    public function send(): void
    {
        foreach ($this->headers as $name => $value) {
            header("$name: $value");
        }
        // After the headers: PHP makes any response carrying WWW-Authenticate
        // a 401, the 403 included, unless the status is set after it.
        http_response_code($this->status);
        echo $this->body;
    }
}
