<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ApiKeysException;
use ApiKeys\HttpAnswer;
use ApiKeys\Library;
use ApiKeys\Status;
use FFI;

/**
 * The numbers of Status.php are those of include/apikeys.h (the header
 * cbindgen generates from the C ABI), name for name, both ways; every
 * failing status has its own exception class; and HttpAnswer answers what
 * the library's apikeys_status_http answers, for every status.
 */
final class StatusTest extends ApiKeysTestCase
{
    /** Status.php constants that are not status numbers. */
    private const NOT_STATUSES = ['OPEN_SHARED', 'ID_SIZE', 'LIST_FILTERS', 'KEY_STATUSES'];

    /**
     * The enumerators of `enum $name { ... }` in a header, name => value.
     *
     * @return array<string, int>
     */
    private static function enumerators(string $header, string $name): array
    {
        $code = preg_replace(['~/\*.*?\*/~s', '~//[^\n]*~'], '', $header);
        if (!preg_match('/enum\s+' . preg_quote($name, '/') . '\s*(?:#if[^\n]*\n[^\n]*\n#endif\s*)?\{([^}]*)\}/s', $code, $match)) {
            self::fail("enum $name not found");
        }
        preg_match_all('/\b(APIKEYS_[A-Z0-9_]+)\s*=\s*(\d+)/', $match[1], $items, PREG_SET_ORDER);
        $values = [];
        foreach ($items as [, $enumerator, $value]) {
            $values[$enumerator] = (int) $value;
        }
        self::assertNotSame([], $values, "enum $name is empty");
        return $values;
    }

    /** @return array<string, string> which header => its text */
    private static function headers(): array
    {
        $repository = dirname(__DIR__, 3) . '/include/apikeys.h';
        return [
            'include/apikeys.h' => (string) file_get_contents($repository),
            'ffi/php/apikeys.h' => (string) file_get_contents(Library::headerPath()),
        ];
    }

    /** @return array<string, int> Status.php's status numbers, by name */
    private static function packageStatuses(): array
    {
        $constants = (new \ReflectionClass(Status::class))->getConstants();
        return array_diff_key($constants, array_flip(self::NOT_STATUSES));
    }

    public function testEveryStatusOfTheHeaderIsInStatusPhpWithItsNumberAndNoOther(): void
    {
        foreach (self::headers() as $which => $header) {
            $fromHeader = [];
            foreach (self::enumerators($header, 'apikeys_status') as $enumerator => $value) {
                $fromHeader[substr($enumerator, strlen('APIKEYS_'))] = $value;
            }
            $package = self::packageStatuses();
            ksort($fromHeader);
            ksort($package);
            $this->assertSame($fromHeader, $package, "Status.php against $which");
            $this->assertSame(count($package), count(array_unique($package)), 'a number is used twice');
        }
    }

    public function testTheOtherConstantsMatchTheHeader(): void
    {
        foreach (self::headers() as $which => $header) {
            $this->assertSame(self::enumerators($header, 'apikeys_open_flag')['APIKEYS_OPEN_SHARED'], Status::OPEN_SHARED, $which);
            $this->assertSame(self::enumerators($header, 'apikeys_size')['APIKEYS_ID_SIZE'], Status::ID_SIZE, $which);
            $filters = [];
            foreach (self::enumerators($header, 'apikeys_list_filter') as $enumerator => $value) {
                $filters[strtolower(substr($enumerator, strlen('APIKEYS_LIST_')))] = $value;
            }
            $this->assertSame($filters, Status::LIST_FILTERS, "list filters against $which");
            $states = [];
            foreach (self::enumerators($header, 'apikeys_key_status') as $enumerator => $value) {
                $states[$value] = strtolower(substr($enumerator, strlen('APIKEYS_KEY_')));
            }
            $this->assertSame($states, Status::KEY_STATUSES, "key states against $which");
        }
    }

    public function testEveryFailingStatusHasItsOwnExceptionClass(): void
    {
        $ffi = Library::ffi();
        foreach (self::packageStatuses() as $name => $status) {
            $description = Library::string($ffi->apikeys_status_str($status));
            $this->assertNotSame('unknown status', $description, "$name: the library does not know $status");
            if ($status === Status::OK) {
                continue;
            }
            $error = ApiKeysException::fromStatus($status);
            $this->assertNotSame(ApiKeysException::class, get_class($error), "$name ($status) has no exception class");
            $this->assertSame($status, $error->getStatus());
        }
        $this->assertInstanceOf(\ApiKeys\PermissionDeniedException::class, ApiKeysException::fromStatus(208));
        $this->assertInstanceOf(\ApiKeys\DatabaseUnavailableException::class, ApiKeysException::fromStatus(209));
        $this->assertInstanceOf(\ApiKeys\StorageException::class, ApiKeysException::fromStatus(209));
    }

    public function testHttpAnswerIsWhatTheLibraryAnswersForEveryStatus(): void
    {
        $ffi = Library::ffi();
        foreach (self::packageStatuses() as $name => $status) {
            if ($status === Status::OK) {
                continue;
            }
            $http = $ffi->new('uint16_t');
            $body = $ffi->new('const char*');
            $this->assertSame(Status::OK, $ffi->apikeys_status_http($status, FFI::addr($http), FFI::addr($body)), $name);
            $answer = HttpAnswer::forError(ApiKeysException::fromStatus($status));
            $this->assertSame($http->cdata, $answer->status, "$name: HTTP status");
            $this->assertSame(Library::string($body), $answer->body, "$name: body");
            $this->assertSame('application/json', $answer->headers['Content-Type']);
            $challenge = ['401' => HttpAnswer::UNAUTHORIZED_CHALLENGE, '403' => HttpAnswer::FORBIDDEN_CHALLENGE, '500' => null];
            $this->assertSame($challenge[(string) $answer->status], $answer->headers['WWW-Authenticate'] ?? null, "$name: WWW-Authenticate");
        }
    }

    public function testHttpAnswerKeepsTheSeedBodiesAndSendsWwwAuthenticateOnEvery401(): void
    {
        $this->assertSame('{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}', HttpAnswer::unauthorized()->body);
        $this->assertSame('{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}', HttpAnswer::forbidden()->body);
        $this->assertSame('Bearer', HttpAnswer::unauthorized()->headers['WWW-Authenticate']);
        // The array form keeps [status, body] first, for code written against it.
        [$status, $body, $headers] = \ApiKeys\KeyStore::httpAnswer(new \ApiKeys\UnauthorizedException('x', Status::REVOKED));
        $this->assertSame([401, HttpAnswer::UNAUTHORIZED_BODY, 'Bearer'], [$status, $body, $headers['WWW-Authenticate']]);
        // Anything that is not a refusal of the key is the server's problem, never a 401.
        $this->assertSame(500, HttpAnswer::forError(new \RuntimeException('db down'))->status);
        $this->assertSame(500, HttpAnswer::forError(new \ApiKeys\PermissionDeniedException('no', Status::PERMISSION_DENIED))->status);
        $this->assertSame(500, HttpAnswer::forError(new \ApiKeys\DatabaseUnavailableException('down', Status::DATABASE_UNAVAILABLE))->status);
    }
}
