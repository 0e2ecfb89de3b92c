<?php
// The smoke test of the installed package (scripts/test-package.sh copies
// it into a fresh composer project and runs it there, with no APIKEYS_LIB):
// the package loads the library it carries, and generate, verify and revoke
// work. Prints "N passed, M failed".

declare(strict_types=1);

require __DIR__ . '/vendor/autoload.php';

use ApiKeys\HttpAnswer;
use ApiKeys\KeyStore;
use ApiKeys\Library;
use ApiKeys\UnauthorizedException;

$passed = 0;
$failed = 0;
function check(string $what, bool $holds, string $detail = ''): void
{
    global $passed, $failed;
    $holds ? $passed++ : $failed++;
    echo ($holds ? 'ok   ' : 'FAIL ') . $what . ($holds || $detail === '' ? '' : ": $detail") . "\n";
}

$dir = sys_get_temp_dir() . '/apikeys-smoke-' . bin2hex(random_bytes(4));
mkdir($dir, 0700);
try {
    check('APIKEYS_LIB is not set', getenv('APIKEYS_LIB') === false);
    $store = new KeyStore("$dir/keys.redb", pepper: 'smoke pepper', shared: true);
    $bundled = realpath(__DIR__ . '/vendor/apikeys/apikeys/libapikeys.so');
    check('the library comes from the package', Library::loadedFrom() === $bundled, var_export(Library::loadedFrom(), true));
    $key = $store->generate('Smoke', env: 'prod', scopes: ['contacts:*']);
    check('generate', str_starts_with($key->secret(), 'flz_sk_prod_'));
    check('verify', $store->verify($key->secret(), scope: 'contacts:read')->id === $key->id());
    check('verifyHeader', $store->verifyHeader('Bearer ' . $key->secret())->name === 'Smoke');
    check('revoke', $store->revoke($key->id()) === true);
    try {
        $store->verify($key->secret());
        check('a revoked key is refused', false, 'accepted');
    } catch (UnauthorizedException $refused) {
        check('a revoked key is refused', $refused->getReason() === 'revoked', $refused->getReason());
        $answer = HttpAnswer::forError($refused);
        check('with a 401 and WWW-Authenticate: Bearer',
            $answer->status === 401 && $answer->headers['WWW-Authenticate'] === 'Bearer');
    }
    $listed = $store->list();
    check('list', count($listed) === 1 && $listed[0]->status === 'revoked');
    $store->close();
    $ini = shell_exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(__DIR__ . '/vendor/bin/apikeys-php-ini') . ' --non-root');
    check('vendor/bin/apikeys-php-ini', is_string($ini) && str_contains($ini, 'opcache.preload=' . realpath(__DIR__ . '/vendor/apikeys/apikeys/preload.php')), (string) $ini);
} catch (Throwable $error) {
    check('no exception', false, get_class($error) . ': ' . $error->getMessage());
} finally {
    array_map('unlink', glob("$dir/*") ?: []);
    rmdir($dir);
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
