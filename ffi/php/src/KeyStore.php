<?php

declare(strict_types=1);

namespace ApiKeys;

use FFI;
use FFI\CData;

/**
 * An open key store file.
 *
 *     $store = new KeyStore('/var/lib/myapp/keys.redb', pepper: getenv('APIKEYS_PEPPER'), shared: true);
 *     $key = $store->generate('Production', env: 'prod', scopes: ['contacts:*']);
 *     $store->verify($key->secret(), scope: 'contacts:read');
 *
 * shared: true lets several processes (PHP-FPM workers) open the file at
 * once; every verify then sees revocations made by any of them.
 *
 * persistent: true keeps the store open in the process between requests,
 * the way PDO keeps persistent connections: the library holds one open
 * handle per process for each path, pepper and mode, opened on the first
 * request that asks for it (after the fork, in the worker), handed to every
 * later `new KeyStore(...)` with the same arguments, and closed with its
 * usage flushed when the process exits (pm.max_requests recycling, a
 * graceful stop). close() then only lets go of this object. Such a store
 * opens at its first use: the constructor only notes its arguments, and the
 * first call (verifyHeaderId() on the request path, which then costs one
 * FFI call in all) finds or opens the process's handle, so that the
 * open's failures (missing file, wrong pepper, database down) are thrown
 * by that call. The default
 * (null) is persistent under the SAPIs that serve many requests per
 * process (php-fpm, FastCGI, Apache's module, LiteSpeed) and not on the
 * command line. KeyStore::shared() is the accessor for a request handler.
 *
 * Every call hands strings to the library as (pointer, length), reads
 * results out of library-owned handles, and frees those before returning.
 */
final class KeyStore
{
    /** The SAPIs where a process serves many requests and PHP frees everything between them. */
    private const PERSISTENT_SAPIS = ['fpm-fcgi', 'cgi-fcgi', 'apache2handler', 'litespeed'];

    /**
     * The core's bearer_token as a pattern: blanks (space, tab) around the
     * value, the scheme "bearer" in any case, one or more spaces, then the
     * token: b64token characters (RFC 6750) or "|" (Sanctum's "id|secret",
     * which the store verifies once imported) and any "=" padding.
     */
    private const BEARER = '~\A[ \t]*bearer +([A-Za-z0-9\-._\~+/|]+=*)[ \t]*\z~i';

    private FFI $ffi;
    private ?CData $handle = null;
    /**
     * A persistent store not opened yet (see the class comment): its slot in
     * self::$toOpen, which holds [path, pepper, flags]; null once opened or
     * closed. The pepper is kept in a static rather than in a property so
     * that no var_dump(), var_export(), print_r() or (array) cast of the
     * object shows it; PHP empties statics at the end of every request.
     */
    private ?int $unopened = null;
    /** @var list<array{string, ?string, int}> */
    private static array $toOpen = [];
    /** Slots appended before an identical one is looked for. */
    private const SLOTS_BEFORE_REUSE = 16;
    /** Receives the id from apikeys_key_check; read right after each call (PHP objects are not shared between threads). */
    private ?CData $idBuffer = null;
    /**
     * What closes a handle this object opened, when close() or the object's
     * end comes; null for a persistent store, which the library owns (and
     * then there is no destructor to run on every request).
     */
    private ?OwnedStoreHandle $owned = null;
    /** Whether the library owns the handle (apikeys_store_open_persistent). */
    public readonly bool $persistent;
    /**
     * The file's path, or the postgres:// URL without its password: what
     * var_dump, print_r, logs and messages may show.
     */
    public readonly string $path;

    /** The part of a postgres:// URL to drop from what is shown: ":password" before "@". */
    private const PASSWORD_IN_URL = '~\A(postgres(?:ql)?://[^:/@]*):[^@/]*@~';

    public function __construct(
        #[\SensitiveParameter] string $path,
        #[\SensitiveParameter] ?string $pepper = null,
        public readonly bool $shared = false,
        ?bool $persistent = null,
    ) {
        $this->path = str_contains($path, '://') ? (string) preg_replace(self::PASSWORD_IN_URL, '$1@', $path) : $path;
        $this->ffi = Library::ffi();
        $this->persistent = $persistent ?? in_array(PHP_SAPI, self::PERSISTENT_SAPIS, true);
        if ($this->persistent) {
            // Opened at first use: in a PHP-FPM request each call into the
            // library is cold, and the first verifyHeaderId() then opens (or
            // finds) the handle and verifies in one call.
            $flags = $shared ? Status::OPEN_SHARED : 0;
            // A request makes one such store: appended as is (a slot keyed by
            // path and pepper cost 1.9k more instructions a request of the
            // 26k authentication adds, callgrind of an FPM worker). A
            // process that makes many (a long-running script calling
            // shared() per job) reuses an identical slot once it holds a
            // few, so the list grows only with distinct stores.
            $this->unopened = count(self::$toOpen);
            self::$toOpen[] = [$path, $pepper, $flags];
            if ($this->unopened >= self::SLOTS_BEFORE_REUSE) {
                $this->reuseSlot();
            }
            return;
        }
        $out = $this->ffi->new('apikeys_store*');
        $pepperBuffer = self::bytes($this->ffi, $pepper);
        self::check($this->ffi->apikeys_store_open(
            $path,
            strlen($path),
            $pepperBuffer,
            $pepper === null ? 0 : strlen($pepper),
            $shared ? Status::OPEN_SHARED : 0,
            FFI::addr($out),
        ));
        if ($pepperBuffer !== null) {
            FFI::memset($pepperBuffer, 0, FFI::sizeof($pepperBuffer)); // our copy of a secret
        }
        $this->handle = $out;
        $this->owned = new OwnedStoreHandle($this->ffi, $out);
    }

    /**
     * The store for a request handler: shared mode, persistent (whatever
     * the SAPI), so every request of a worker process uses the one handle
     * the library keeps open for that process. Cheap to call on every
     * request: it calls nothing in the library; the store's first use opens
     * the file in a new process and looks the handle up in the others.
     */
    public static function shared(#[\SensitiveParameter] string $path, #[\SensitiveParameter] ?string $pepper = null): self
    {
        return new self($path, $pepper, shared: true, persistent: true);
    }

    /**
     * How many stores this process has opened persistently: 1 in a worker
     * that kept its store between requests, whatever the number of
     * requests it served; 0 in a new process.
     */
    public static function persistentOpens(): int
    {
        $ffi = Library::ffi();
        $opens = $ffi->new('uint64_t');
        self::check($ffi->apikeys_store_persistent_opens(FFI::addr($opens)));
        return $opens->cdata;
    }

    /**
     * Flushes usage counts and releases the file. Closing twice is fine. A
     * persistent store stays open in the process (the library closes it at
     * exit): this only lets go of this object. A store never closed is
     * closed, its usage flushed, when the object is freed.
     */
    public function close(): void
    {
        $this->handle = null;
        $this->unopened = null;
        $owned = $this->owned;
        $this->owned = null;
        $owned?->close();
    }

    public function isClosed(): bool
    {
        return $this->handle === null && $this->unopened === null;
    }

    /** Writes the coalesced usage counts (last used, use count) now. */
    public function flush(): void
    {
        self::check($this->ffi->apikeys_store_flush($this->openHandle()));
    }

    /**
     * Creates a key. Its secret is in the result, and nowhere else.
     *
     * @param list<string> $scopes such as ['contacts:read', 'deals:*']
     */
    public function generate(
        string $name,
        ?string $env = null,
        array $scopes = [],
        ?string $owner = null,
        int|\DateTimeInterface|null $expiresAt = null,
    ): GeneratedKey {
        $scopeList = self::scopes($scopes);
        $expires = $expiresAt === null ? 0 : self::unix($expiresAt, 'expiresAt');
        $out = $this->ffi->new('apikeys_key*');
        self::check($this->ffi->apikeys_key_generate(
            $this->openHandle(),
            $name,
            strlen($name),
            $env,
            $env === null ? 0 : strlen($env),
            $scopeList,
            $scopeList === null ? 0 : strlen($scopeList),
            $owner,
            $owner === null ? 0 : strlen($owner),
            $expires,
            FFI::addr($out),
        ));
        return $this->takeGenerated($out);
    }

    /** Accepts the key (holding $scope if given) or throws Unauthorized/ForbiddenException. */
    public function verify(#[\SensitiveParameter] string $key, ?string $scope = null): VerifiedKey
    {
        $out = $this->ffi->new('apikeys_verified*');
        $status = $this->ffi->apikeys_key_verify(
            $this->openHandle(),
            $key,
            strlen($key),
            $scope,
            $scope === null ? 0 : strlen($scope),
            FFI::addr($out),
        );
        return $this->takeVerified($status, $out);
    }

    /**
     * The id of the accepted key (holding $scope if given), or
     * Unauthorized/ForbiddenException: the same checks as verify(), for the
     * request that needs only to know whose key it is. One FFI call of four
     * arguments (apikeys_key_check), no handle to read and free: about half
     * the cost of verify() (ffi/README.md, "Host call cost").
     */
    public function verifyId(#[\SensitiveParameter] string $key, ?string $scope = null): string
    {
        // Inline rather than through checkKey(): a PHP method call costs
        // about a tenth of the whole.
        $handle = $this->handle ?? $this->openNow();
        $status = str_contains($key, "\0") || ($scope !== null && str_contains($scope, "\0"))
            ? $this->verifyWithLength($handle, $key, $scope)
            : $this->ffi->apikeys_key_check($handle, $key, $scope, $this->idBuffer ??= $this->ffi->new('char[' . Status::ID_SIZE . ']'));
        if ($status !== Status::OK) {
            throw ApiKeysException::fromStatus($status);
        }
        return FFI::string($this->idBuffer);
    }

    /**
     * Whether the key is accepted (holding $scope if given): false for a
     * missing, malformed, unknown, revoked or expired key or a missing scope;
     * a store failure still throws. The cheapest check: without a scope, one
     * FFI call of two arguments (apikeys_key_validate).
     */
    public function isValid(#[\SensitiveParameter] string $key, ?string $scope = null): bool
    {
        $handle = $this->handle ?? $this->openNow();
        if (str_contains($key, "\0") || ($scope !== null && str_contains($scope, "\0"))) {
            $status = $this->verifyWithLength($handle, $key, $scope);
        } elseif ($scope === null) {
            $status = $this->ffi->apikeys_key_validate($handle, $key);
        } else {
            $status = $this->ffi->apikeys_key_check($handle, $key, $scope, null);
        }
        if ($status === Status::OK) {
            return true;
        }
        if ($status >= Status::MALFORMED && $status <= Status::INSUFFICIENT_SCOPE) {
            return false;
        }
        throw ApiKeysException::fromStatus($status);
    }

    /**
     * Verifies an Authorization header value ("Bearer flz_sk_..."). A missing
     * header (null) is UnauthorizedException with reason "bad_header", so a
     * handler can pass $_SERVER['HTTP_AUTHORIZATION'] ?? null as is.
     */
    public function verifyHeader(#[\SensitiveParameter] ?string $headerValue, ?string $scope = null): VerifiedKey
    {
        $header = $headerValue ?? '';
        $out = $this->ffi->new('apikeys_verified*');
        $status = $this->ffi->apikeys_header_verify(
            $this->openHandle(),
            $header,
            strlen($header),
            $scope,
            $scope === null ? 0 : strlen($scope),
            FFI::addr($out),
        );
        return $this->takeVerified($status, $out);
    }

    /**
     * The id of the key in an Authorization header value ("Bearer
     * flz_sk_..."), or Unauthorized/ForbiddenException as verifyHeader()
     * throws them: the request path's check when the key's id is what the
     * request needs. On a persistent store's first use (a PHP-FPM request)
     * the library reads the header in the call that finds the handle;
     * otherwise the header is read here, by the rules of the core's
     * bearer_token (the tests compare the two), and the key goes to
     * verifyId(). One FFI call either way, instead of verifyHeader()'s three
     * and the VerifiedKey it builds.
     */
    public function verifyHeaderId(#[\SensitiveParameter] ?string $headerValue, ?string $scope = null): string
    {
        if ($this->handle === null && $this->unopened !== null) {
            // A persistent store not opened yet (a request's first call):
            // the library finds or opens the handle, reads the header by the
            // core's rules and verifies, in one call. A store that cannot be
            // opened fails before the header is looked at.
            [$path, $pepper, $flags] = self::$toOpen[$this->unopened];
            $status = $this->ffi->apikeys_persistent_header_check(
                $path,
                strlen($path),
                $pepper,
                $pepper === null ? 0 : strlen($pepper),
                $flags,
                $headerValue,
                $headerValue === null ? 0 : strlen($headerValue),
                $scope,
                $scope === null ? 0 : strlen($scope),
                $this->idBuffer ??= $this->ffi->new('char[' . Status::ID_SIZE . ']'),
            );
            if ($status !== Status::OK) {
                throw ApiKeysException::fromStatus($status);
            }
            return FFI::string($this->idBuffer);
        }
        $token = self::bearerToken($headerValue);
        if ($token === null) {
            // The library's answer, not a guess: a bad header, unless the
            // scope itself is refused first (not UTF-8).
            $status = $this->ffi->apikeys_header_verify($this->openHandle(), $headerValue,
                $headerValue === null ? 0 : strlen($headerValue), $scope, $scope === null ? 0 : strlen($scope), null);
            throw ApiKeysException::fromStatus($status === Status::OK ? Status::BAD_HEADER : $status);
        }
        return $this->verifyId($token, $scope);
    }

    /**
     * The token of an `Authorization: Bearer <token>` header value, or null
     * when there is none: the core's rules (RFC 6750): blanks around the
     * value ignored, the scheme case-insensitive and followed by one or more
     * spaces, the token one word of b64token characters.
     */
    public static function bearerToken(#[\SensitiveParameter] ?string $headerValue): ?string
    {
        // One compiled, cached pattern: PHP's strspn() compares every byte
        // with every byte of its mask (4 us for a key, measured), the
        // pattern takes a fraction of that. ASCII-only: /i without /u.
        return $headerValue !== null && preg_match(self::BEARER, $headerValue, $match) === 1 ? $match[1] : null;
    }

    /** Revokes by key id: true if this call revoked it, false if it already was. */
    public function revoke(string $id): bool
    {
        $newly = $this->ffi->new('bool');
        self::check($this->ffi->apikeys_key_revoke($this->openHandle(), $id, strlen($id), FFI::addr($newly)));
        return (bool) $newly->cdata;
    }

    /** Revokes by the key itself: the answer to a leaked key. */
    public function revokeKey(#[\SensitiveParameter] string $secret): bool
    {
        $newly = $this->ffi->new('bool');
        self::check($this->ffi->apikeys_key_revoke_secret(
            $this->openHandle(),
            $secret,
            strlen($secret),
            FFI::addr($newly),
        ));
        return (bool) $newly->cdata;
    }

    /**
     * A new key with the same name, env, scopes and expiry; the old one keeps
     * working for $graceSeconds (capped at its own expiry).
     */
    public function rotate(string $id, int $graceSeconds = 86400): GeneratedKey
    {
        if ($graceSeconds < 0) {
            throw new InvalidArgumentException('graceSeconds must be zero or positive');
        }
        $out = $this->ffi->new('apikeys_key*');
        self::check($this->ffi->apikeys_key_rotate($this->openHandle(), $id, strlen($id), $graceSeconds, FFI::addr($out)));
        return $this->takeGenerated($out);
    }

    /**
     * Keys with their usage, oldest first.
     *
     * @param string $status "all", "active", "revoked" or "expired"
     * @param int|\DateTimeInterface|null $unusedSince keep keys not used since then
     * @return list<KeyInfo>
     */
    public function list(string $status = 'all', int|\DateTimeInterface|null $unusedSince = null): array
    {
        $filter = Status::LIST_FILTERS[$status] ?? null;
        if ($filter === null) {
            throw new InvalidArgumentException(
                'status must be one of ' . implode(', ', array_keys(Status::LIST_FILTERS)) . ", not \"$status\""
            );
        }
        $since = $unusedSince === null ? 0 : self::unix($unusedSince, 'unusedSince');
        $out = $this->ffi->new('apikeys_list*');
        self::check($this->ffi->apikeys_key_list($this->openHandle(), $filter, $since, FFI::addr($out)));
        try {
            $count = $this->ffi->new('size_t');
            self::check($this->ffi->apikeys_list_len($out, FFI::addr($count)));
            $keys = [];
            for ($index = 0; $index < $count->cdata; $index++) {
                $item = $this->ffi->new('const struct apikeys_key_info*');
                self::check($this->ffi->apikeys_list_get($out, $index, FFI::addr($item)));
                $keys[] = self::keyInfo($item[0]);
            }
            return $keys;
        } finally {
            $this->ffi->apikeys_list_free($out);
        }
    }

    /** Whether $key has the shape and checksum of a key (no storage read). */
    public static function isWellFormed(#[\SensitiveParameter] string $key): bool
    {
        return Library::ffi()->apikeys_is_well_formed($key, strlen($key)) === Status::OK;
    }

    /** The version of the loaded libapikeys. */
    public static function libraryVersion(): string
    {
        return (string) Library::string(Library::ffi()->apikeys_version());
    }

    /**
     * [HTTP status, JSON body, headers] to answer for a failed verification:
     * 401 for every UnauthorizedException (one body: the client does not
     * learn why) with `WWW-Authenticate: Bearer`, 403 for
     * ForbiddenException, 500 for anything else. HttpAnswer::forError() is
     * the same as an object, with send().
     *
     * @return array{0: int, 1: string, 2: array<string, string>}
     */
    public static function httpAnswer(\Throwable $error): array
    {
        $answer = HttpAnswer::forError($error);
        return [$answer->status, $answer->body, $answer->headers];
    }

    /**
     * apikeys_key_check and apikeys_key_validate read the key and scope up to
     * their NUL: PHP strings
     * are NUL-terminated in memory but may hold a NUL, and a key cut there
     * must not be judged, so verifyId() and isValid() send such strings here,
     * to the (pointer, length) call, which refuses them with the library's
     * own status and message.
     */
    private function verifyWithLength(CData $handle, #[\SensitiveParameter] string $key, ?string $scope): int
    {
        return $this->ffi->apikeys_key_verify($handle, $key, strlen($key), $scope,
            $scope === null ? 0 : strlen($scope), null);
    }

    private function openHandle(): CData
    {
        return $this->handle ?? $this->openNow();
    }

    /** Trades the slot just appended for an identical earlier one, if there is one. */
    private function reuseSlot(): void
    {
        $entry = array_pop(self::$toOpen);
        $earlier = array_search($entry, self::$toOpen, true);
        if ($earlier === false) {
            self::$toOpen[] = $entry;
        } else {
            $this->unopened = $earlier;
        }
    }

    /**
     * Opens (or finds) the persistent handle of a store not opened yet; a
     * failed open throws and is tried again by the next call. Throws
     * StoreClosedException for a closed store.
     */
    private function openNow(): CData
    {
        [$path, $pepper, $flags] = self::$toOpen[$this->unopened ?? throw new StoreClosedException('the key store is closed')];
        $out = $this->ffi->new('apikeys_store*');
        // The library compares a digest of the pepper; it takes the PHP string as is.
        self::check($this->ffi->apikeys_store_open_persistent(
            $path,
            strlen($path),
            $pepper,
            $pepper === null ? 0 : strlen($pepper),
            $flags,
            FFI::addr($out),
        ));
        $this->unopened = null;
        return $this->handle = $out;
    }

    private static function check(int $status): void
    {
        if ($status !== Status::OK) {
            throw ApiKeysException::fromStatus($status);
        }
    }

    /** A uint8_t buffer holding $data (the pepper parameter is not a char *). */
    private static function bytes(FFI $ffi, #[\SensitiveParameter] ?string $data): ?CData
    {
        if ($data === null || $data === '') {
            return null;
        }
        $buffer = $ffi->new('uint8_t[' . strlen($data) . ']');
        FFI::memcpy($buffer, $data, strlen($data));
        return $buffer;
    }

    /** @param array<mixed> $scopes */
    private static function scopes(array $scopes): ?string
    {
        $encoded = [];
        foreach ($scopes as $scope) {
            if (!is_string($scope)) {
                throw new \TypeError('each scope must be a string, not ' . get_debug_type($scope));
            }
            // The C ABI separates scopes with spaces: a space inside one would split it.
            if ($scope === '' || strpbrk($scope, " \t\r\n") !== false) {
                throw new InvalidArgumentException("scope \"$scope\" must be non-empty and contain no whitespace");
            }
            $encoded[] = $scope;
        }
        return $encoded === [] ? null : implode(' ', $encoded);
    }

    /** Unix seconds; 0 would mean "none" in the C ABI, so it is refused. */
    private static function unix(int|\DateTimeInterface $when, string $what): int
    {
        $seconds = $when instanceof \DateTimeInterface ? $when->getTimestamp() : $when;
        if ($seconds <= 0) {
            throw new InvalidArgumentException("$what must be after 1970");
        }
        return $seconds;
    }

    private static function time(int $seconds): ?\DateTimeImmutable
    {
        return $seconds === 0 ? null : (new \DateTimeImmutable('@' . $seconds))->setTimezone(new \DateTimeZone('UTC'));
    }

    /** @return list<string> */
    private static function splitScopes(mixed $pointer): array
    {
        $text = Library::string($pointer) ?? '';
        return $text === '' ? [] : preg_split('/ +/', $text, -1, PREG_SPLIT_NO_EMPTY);
    }

    private static function keyInfo(CData $raw): KeyInfo
    {
        return new KeyInfo(
            id: (string) Library::string($raw->id),
            name: (string) Library::string($raw->name),
            hint: (string) Library::string($raw->hint),
            env: Library::string($raw->env),
            scopes: self::splitScopes($raw->scopes),
            owner: Library::string($raw->owner),
            rotatedFrom: Library::string($raw->rotated_from),
            rotatedTo: Library::string($raw->rotated_to),
            createdAt: self::time($raw->created_at) ?? new \DateTimeImmutable('@0'),
            expiresAt: self::time($raw->expires_at),
            revokedAt: self::time($raw->revoked_at),
            lastUsed: self::time($raw->last_used),
            useCount: $raw->use_count,
            rejectedCount: $raw->rejected_count,
            status: Status::KEY_STATUSES[$raw->status] ?? "unknown({$raw->status})",
            origin: Library::string($raw->origin),
            legacyDigest: Library::string($raw->legacy_digest),
        );
    }

    /**
     * Copies the secret and info out of a key handle, then frees it (which
     * wipes the library's copy of the secret).
     */
    private function takeGenerated(CData $handle): GeneratedKey
    {
        try {
            $pointer = $this->ffi->new('const char*');
            $length = $this->ffi->new('size_t');
            self::check($this->ffi->apikeys_key_secret($handle, FFI::addr($pointer), FFI::addr($length)));
            $secret = FFI::string($pointer, $length->cdata);
            $info = $this->ffi->new('const struct apikeys_key_info*');
            self::check($this->ffi->apikeys_key_info($handle, FFI::addr($info)));
            return new GeneratedKey($secret, self::keyInfo($info[0]));
        } finally {
            $this->ffi->apikeys_key_free($handle);
        }
    }

    private function takeVerified(int $status, CData $handle): VerifiedKey
    {
        self::check($status);
        try {
            $info = $this->ffi->new('const struct apikeys_verified_info*');
            self::check($this->ffi->apikeys_verified_info($handle, FFI::addr($info)));
            $raw = $info[0];
            return new VerifiedKey(
                id: (string) Library::string($raw->id),
                name: (string) Library::string($raw->name),
                env: Library::string($raw->env),
                scopes: self::splitScopes($raw->scopes),
                owner: Library::string($raw->owner),
                expiresAt: self::time($raw->expires_at),
            );
        } finally {
            $this->ffi->apikeys_verified_free($handle);
        }
    }
}
