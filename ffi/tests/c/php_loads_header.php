<?php
// Loads include/apikeys.h unchanged with FFI::cdef and makes a round trip
// through the library: open, generate, read the secret and the info struct,
// verify, read the HTTP answer, close. Proves the header is PHP-readable.
//
// Usage: php -d ffi.enable=1 ffi/tests/c/php_loads_header.php <header> <libapikeys.so> <scratch dir>
declare(strict_types=1);

[$_, $header, $library, $scratch] = $argv;
$ffi = FFI::cdef(file_get_contents($header), $library);

$failures = 0;
$checks = 0;
function check(bool $condition, string $what): void {
    global $failures, $checks;
    $checks++;
    if (!$condition) {
        $failures++;
        fwrite(STDERR, "FAIL: $what\n");
    }
}

check(preg_match('/^\d+\.\d+\.\d+/', $ffi->apikeys_version()) === 1, 'version');
check($ffi->APIKEYS_LOCKED === 200 && $ffi->APIKEYS_OPEN_SHARED === 1, 'enum constants');
check($ffi->apikeys_status_str(202) !== 'unknown status', 'status_str');

$path = "$scratch/php.redb";
$store = $ffi->new('apikeys_store *');
check($ffi->apikeys_store_open($path, strlen($path), null, 0, $ffi->APIKEYS_OPEN_SHARED, FFI::addr($store)) === 0, 'open');

$key = $ffi->new('apikeys_key *');
$scopes = 'contacts:read';
check($ffi->apikeys_key_generate($store, 'PHP', 3, 'prod', 4, $scopes, strlen($scopes), null, 0, 0, FFI::addr($key)) === 0, 'generate');
$secret_ptr = $ffi->new('const char *');
$secret_len = $ffi->new('size_t');
check($ffi->apikeys_key_secret($key, FFI::addr($secret_ptr), FFI::addr($secret_len)) === 0, 'secret');
$secret = FFI::string($secret_ptr, $secret_len->cdata);
check(str_starts_with($secret, 'flz_sk_prod_'), 'secret prefix');
$info = $ffi->new('const struct apikeys_key_info *');
check($ffi->apikeys_key_info($key, FFI::addr($info)) === 0, 'key_info');
check(FFI::string($info->name) === 'PHP' && $info->status === $ffi->APIKEYS_KEY_ACTIVE, 'info fields');

$verified = $ffi->new('apikeys_verified *');
check($ffi->apikeys_key_verify($store, $secret, strlen($secret), 'contacts:read', 13, FFI::addr($verified)) === 0, 'verify');
$vinfo = $ffi->new('const struct apikeys_verified_info *');
check($ffi->apikeys_verified_info($verified, FFI::addr($vinfo)) === 0, 'verified_info');
check(FFI::string($vinfo->id) === FFI::string($info->id), 'verified id');
$ffi->apikeys_verified_free($verified);
// The NUL-terminated verify: PHP strings go as they are; the id comes back.
$id = $ffi->new('char[' . $ffi->APIKEYS_ID_SIZE . ']');
check($ffi->apikeys_key_check($store, $secret, 'contacts:read', $id) === 0, 'key_check');
check(FFI::string($id) === FFI::string($info[0]->id), 'key_check id');
check($ffi->apikeys_key_check($store, $secret, 'contacts:write', null) === 104, 'key_check scope');

$status = $ffi->apikeys_key_verify($store, $secret, strlen($secret), 'contacts:write', 14, null);
check($status === $ffi->APIKEYS_INSUFFICIENT_SCOPE, 'insufficient scope');
$code = $ffi->new('uint16_t');
$body = $ffi->new('const char *');
check($ffi->apikeys_status_http($status, FFI::addr($code), FFI::addr($body)) === 0, 'status_http');
check($code->cdata === 403 && str_contains(FFI::string($body), 'FORBIDDEN'), 'http answer');

$ffi->apikeys_key_free($key);
check($ffi->apikeys_store_close($store) === 0, 'close');

echo "php_loads_header: " . ($checks - $failures) . " passed, $failures failed\n";
exit($failures === 0 ? 0 : 1);
