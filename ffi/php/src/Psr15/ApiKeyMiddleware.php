<?php

declare(strict_types=1);

namespace ApiKeys\Psr15;

use ApiKeys\ApiKeysException;
use ApiKeys\HttpAnswer;
use ApiKeys\KeyStore;
use Psr\Http\Message\ResponseFactoryInterface;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * PSR-15 middleware: lets a request through only with a valid
 * `Authorization: Bearer <key>` (holding the route's scope, if it has
 * one), and attaches the verified key to it as the request attribute
 * "apikeys.key" (an ApiKeys\VerifiedKey).
 *
 *     $auth = new ApiKeyMiddleware(
 *         fn () => KeyStore::shared('/var/lib/myapp/keys.redb', getenv('APIKEYS_PEPPER') ?: null),
 *         $psr17Factory,
 *     );
 *     $app->pipe($auth);                                   // every route: any valid key
 *     $route->middleware($auth->withScope('contacts:read')); // this route: contacts:read
 *
 *     $key = $request->getAttribute(ApiKeyMiddleware::ATTRIBUTE); // VerifiedKey: ->id, ->scopes ...
 *
 * Refusals answer with the API's exact bodies: 401 (missing, malformed,
 * unknown, revoked or expired key; one body) with `WWW-Authenticate:
 * Bearer`, 403 for a missing scope, and 500 when the store fails (never
 * 401: an outage is not a wave of bad keys). Scopes as the core matches
 * them: a key granted `*` or `contacts:*` holds `contacts:read`.
 *
 * The store may be given as a closure, called on each request: under
 * PHP-FPM, KeyStore::shared() there hands back the worker's persistent
 * store, and a store that cannot be opened answers 500.
 */
final class ApiKeyMiddleware implements MiddlewareInterface
{
    public const ATTRIBUTE = 'apikeys.key';

    /**
     * @param KeyStore|\Closure(): KeyStore $store
     * @param ?StreamFactoryInterface $streams for the refusals' bodies; without
     *        one they are written to the body of the response the factory makes
     */
    public function __construct(
        private readonly KeyStore|\Closure $store,
        private readonly ResponseFactoryInterface $responses,
        private readonly ?StreamFactoryInterface $streams = null,
        private readonly ?string $scope = null,
        private readonly string $attribute = self::ATTRIBUTE,
    ) {
    }

    /** The same middleware requiring $scope (null: none), for one route or group. */
    public function withScope(?string $scope): self
    {
        return new self($this->store, $this->responses, $this->streams, $scope, $this->attribute);
    }

    public function process(ServerRequestInterface $request, RequestHandlerInterface $handler): ResponseInterface
    {
        $header = $request->getHeaderLine('Authorization');
        try {
            $store = $this->store instanceof KeyStore ? $this->store : ($this->store)();
            $key = $store->verifyHeader($header === '' ? null : $header, $this->scope);
        } catch (ApiKeysException $refused) {
            return $this->answer(HttpAnswer::forError($refused));
        }
        return $handler->handle($request->withAttribute($this->attribute, $key));
    }

    private function answer(HttpAnswer $answer): ResponseInterface
    {
        $response = $this->responses->createResponse($answer->status);
        foreach ($answer->headers as $name => $value) {
            $response = $response->withHeader($name, $value);
        }
        if ($this->streams !== null) {
            return $response->withBody($this->streams->createStream($answer->body));
        }
        $response->getBody()->write($answer->body);
        return $response;
    }
}
