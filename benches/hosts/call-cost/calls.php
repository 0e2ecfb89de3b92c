<?php
// What one PHP FFI call costs, by number and kind of arguments, against
// the throwaway libnoop.so (run.sh builds it). Bodies take turns within
// every round; prints the median ns per call and the quartiles.
//
// usage: php calls.php <libnoop.so> [rounds]
// With ffi.preload=noop.h (run.sh does it) the FFI::scope rows appear too.

declare(strict_types=1);

$lib = $argv[1] ?? exit("usage: php calls.php <libnoop.so> [rounds]\n");
$rounds = (int) ($argv[2] ?? 31);
const CALLS = 20000;

$header = (string) file_get_contents(__DIR__ . '/noop.h');
$ffi = FFI::cdef(preg_replace('/^#define .*$/m', '', $header), $lib);
$memory = $ffi->new('char[8]', false);
$store = $ffi->cast('store*', FFI::addr($memory)); // any non-NULL pointer
$id = $ffi->new('char[17]');
$keys = [];
for ($i = 0; $i < 256; $i++) {
    $keys[] = 'flz_sk_prod_' . bin2hex(random_bytes(16)); // 44 bytes, like a key
}

$bodies = [
    'loop + key fetch (baseline)' => function (int $n) use ($keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; } },
    'strlen + str_contains(NUL)' => function (int $n) use ($keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $a = strlen($k); $b = str_contains($k, "\0"); } },
    'f()' => function (int $n) use ($ffi) { for ($i = 0; $i < $n; $i++) { $ffi->noop0(); } },
    'f(store)' => function (int $n) use ($ffi, $store) { for ($i = 0; $i < $n; $i++) { $ffi->noop_store($store); } },
    'f(store, key)' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $ffi->noop_cstr($store, $keys[$i & 255]); } },
    'f(uint64 handle, key)' => function (int $n) use ($ffi, $keys) { for ($i = 0; $i < $n; $i++) { $ffi->noop_handle(12345, $keys[$i & 255]); } },
    'f(store, key, NULL)' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $ffi->noop_cstr3($store, $keys[$i & 255], null); } },
    'f(store, key, scope)' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $ffi->noop_cstr3($store, $keys[$i & 255], 'contacts:read'); } },
    'f(store, key, NULL, id)' => function (int $n) use ($ffi, $store, $keys, $id) { for ($i = 0; $i < $n; $i++) { $ffi->noop_cstr4($store, $keys[$i & 255], null, $id); } },
    'f(store, key, NULL, id) + FFI::string(id)' => function (int $n) use ($ffi, $store, $keys, $id) { for ($i = 0; $i < $n; $i++) { $ffi->noop_cstr4($store, $keys[$i & 255], null, $id); $s = FFI::string($id); } },
    'f(store, key, strlen)' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $ffi->noop_len3($store, $k, strlen($k)); } },
    'f(store, key, len, NULL, 0)' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $ffi->noop_len5($store, $k, strlen($k), null, 0); } },
    'f(store, key, len, NULL, 0, NULL) [key_verify]' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $ffi->noop6($store, $k, strlen($k), null, 0, null); } },
    '  same + new(void*) + FFI::addr out' => function (int $n) use ($ffi, $store, $keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $o = $ffi->new('void*'); $ffi->noop6($store, $k, strlen($k), null, 0, FFI::addr($o)); } },
];
$fetched = $ffi->noop_cstr; // the function read once as a CData function pointer
$bodies['$f = $ffi->f once; $f(store, key)'] = function (int $n) use ($fetched, $store, $keys) { for ($i = 0; $i < $n; $i++) { $fetched($store, $keys[$i & 255]); } };
try {
    $scoped = FFI::scope('NOOP'); // present when run with ffi.preload=noop.h
    $scopedStore = $scoped->cast('store*', FFI::addr($scoped->new('char[8]', false)));
    $bodies['FFI::scope: f(store, key)'] = function (int $n) use ($scoped, $scopedStore, $keys) { for ($i = 0; $i < $n; $i++) { $scoped->noop_cstr($scopedStore, $keys[$i & 255]); } };
    $bodies['FFI::scope: f(store, key, len, NULL, 0, NULL)'] = function (int $n) use ($scoped, $scopedStore, $keys) { for ($i = 0; $i < $n; $i++) { $k = $keys[$i & 255]; $scoped->noop6($scopedStore, $k, strlen($k), null, 0, null); } };
} catch (FFI\Exception) {
}
$bodies['hash(sha256) alone (the floor without its array)'] = function (int $n) use ($keys) { for ($i = 0; $i < $n; $i++) { $h = hash('sha256', $keys[$i & 255], true); } };

$times = [];
foreach ($bodies as $name => $body) {
    $body(500);
    $times[$name] = [];
}
for ($r = 0; $r < $rounds; $r++) {
    foreach ($bodies as $name => $body) {
        $start = hrtime(true);
        $body(CALLS);
        $times[$name][] = (hrtime(true) - $start) / CALLS;
    }
}
printf("php %s, opcache.enable_cli=%s, opcache.jit=%s, %d rounds of %d calls\n", PHP_VERSION,
    ini_get('opcache.enable_cli') ?: '0', ini_get('opcache.jit') ?: '-', $rounds, CALLS);
foreach ($times as $name => $t) {
    sort($t);
    $n = count($t);
    printf("  %-50s %7.1f ns  [%.1f, %.1f]\n", $name, $t[intdiv($n, 2)], $t[intdiv($n, 4)], $t[intdiv(3 * $n, 4)]);
}
