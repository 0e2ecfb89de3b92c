<?php
// apikeys verify called from PHP through FFI, beside PHP's usual ways:
// Laravel Sanctum's (SHA-256 hex, PDO SQLite, statement prepared per call)
// and an in-memory floor (SHA-256 + array lookup).
//
// usage: php verify.php <libapikeys.so> <store.redb> <work dir>
// Prints one JSON line: median ns per verify for each approach.

declare(strict_types=1);

[$_, $lib, $storePath, $work] = $argv + [null, null, null, null];
if ($work === null) {
    fwrite(STDERR, "usage: php verify.php <libapikeys.so> <store.redb> <work dir>\n");
    exit(2);
}

const ROUNDS = 15;
const CALLS = 20000;
const SAMPLE = 256;
const FILLER = 100000;

$ffi = FFI::cdef(<<<'C'
typedef uint32_t apikeys_status;
typedef struct apikeys_store apikeys_store;
typedef struct apikeys_key apikeys_key;
typedef struct apikeys_verified apikeys_verified;
apikeys_status apikeys_store_open(const char *path, size_t path_len, const uint8_t *pepper,
                                  size_t pepper_len, uint32_t flags, apikeys_store **out);
apikeys_status apikeys_store_close(apikeys_store *store);
apikeys_status apikeys_key_generate(const apikeys_store *store, const char *name, size_t name_len,
                                    const char *env, size_t env_len, const char *scopes,
                                    size_t scopes_len, const char *owner, size_t owner_len,
                                    int64_t expires_at, apikeys_key **out);
apikeys_status apikeys_key_secret(const apikeys_key *key, const char **out, size_t *out_len);
apikeys_status apikeys_key_free(apikeys_key *key);
apikeys_status apikeys_key_verify(const apikeys_store *store, const char *key, size_t key_len,
                                  const char *scope, size_t scope_len, apikeys_verified **out);
const char *apikeys_last_error(void);
C, $lib);

function open_store(FFI $ffi, string $path, int $flags): FFI\CData
{
    $store = $ffi->new('apikeys_store*');
    $status = $ffi->apikeys_store_open($path, strlen($path), null, 0, $flags, FFI::addr($store));
    if ($status !== 0) {
        throw new RuntimeException("open: $status " . FFI::string($ffi->apikeys_last_error()));
    }
    return $store;
}

/** Median ns per call of $body over ROUNDS rounds of $calls calls. */
function measure(callable $body, int $calls = CALLS): float
{
    $body(200); // warm-up
    $rounds = [];
    for ($r = 0; $r < ROUNDS; $r++) {
        $start = hrtime(true);
        $body($calls);
        $rounds[] = (hrtime(true) - $start) / $calls;
    }
    sort($rounds);
    return $rounds[intdiv(ROUNDS, 2)];
}

// Sample keys, generated through the C ABI into the store (one durable commit each).
$store = open_store($ffi, $storePath, 0);
$keys = [];
for ($i = 0; $i < SAMPLE; $i++) {
    $key = $ffi->new('apikeys_key*');
    $name = "php bench $i";
    $status = $ffi->apikeys_key_generate($store, $name, strlen($name), 'prod', 4, 'contacts:read', 13,
        null, 0, 0, FFI::addr($key));
    if ($status !== 0) {
        throw new RuntimeException("generate: $status");
    }
    $ptr = $ffi->new('const char*');
    $len = $ffi->new('size_t');
    $ffi->apikeys_key_secret($key, FFI::addr($ptr), FFI::addr($len));
    $keys[] = FFI::string($ptr, $len->cdata);
    $ffi->apikeys_key_free($key);
}
$badChecksum = array_map(fn ($k) => substr($k, 0, 12) . strrev(substr($k, 12)), $keys);

$results = [];
foreach (['exclusive' => 0, 'shared' => 1] as $mode => $flags) {
    if ($mode === 'shared') {
        $ffi->apikeys_store_close($store);
        $store = open_store($ffi, $storePath, $flags);
    }
    if ($ffi->apikeys_key_verify($store, $keys[0], strlen($keys[0]), null, 0, null) !== 0) {
        throw new RuntimeException("verify of a valid key failed in $mode mode");
    }
    $results["apikeys_{$mode}_valid"] = measure(function (int $calls) use ($ffi, $store, $keys) {
        for ($i = 0; $i < $calls; $i++) {
            $key = $keys[$i & (SAMPLE - 1)];
            $ffi->apikeys_key_verify($store, $key, strlen($key), null, 0, null);
        }
    });
    $results["apikeys_{$mode}_bad_checksum"] = measure(function (int $calls) use ($ffi, $store, $badChecksum) {
        for ($i = 0; $i < $calls; $i++) {
            $key = $badChecksum[$i & (SAMPLE - 1)];
            $ffi->apikeys_key_verify($store, $key, strlen($key), null, 0, null);
        }
    });
    if ($mode === 'exclusive') {
        // The same call with a one-byte key, rejected by its length before any
        // work: what the FFI call itself costs.
        $results['ffi_call_overhead'] = measure(function (int $calls) use ($ffi, $store) {
            for ($i = 0; $i < $calls; $i++) {
                $ffi->apikeys_key_verify($store, 'x', 1, null, 0, null);
            }
        });
    }
}
$ffi->apikeys_store_close($store);

// The floor: SHA-256 of the key, then an array lookup among FILLER + SAMPLE digests.
$floor = [];
for ($i = 0; $i < FILLER; $i++) {
    $floor[hash('sha256', random_bytes(24), true)] = $i;
}
foreach ($keys as $i => $key) {
    $floor[hash('sha256', $key, true)] = FILLER + $i;
}
$results['floor_valid'] = measure(function (int $calls) use ($floor, $keys) {
    for ($i = 0; $i < $calls; $i++) {
        $found = $floor[hash('sha256', $keys[$i & (SAMPLE - 1)], true)] ?? null;
    }
});

// Laravel Sanctum: SHA-256 hex, then the token row, prepared per call.
$path = "$work/sanctum-php.sqlite";
@unlink($path);
$pdo = new PDO("sqlite:$path");
$pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
$pdo->exec('CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,
    tokenable_type TEXT NOT NULL, tokenable_id INTEGER NOT NULL, name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE, abilities TEXT, last_used_at TEXT, expires_at TEXT,
    created_at TEXT, updated_at TEXT)');
$pdo->beginTransaction();
$insert = $pdo->prepare("INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token,
    abilities, created_at, updated_at) VALUES ('App\\Models\\User', ?, ?, ?, '[\"contacts:read\"]',
    '2026-11-27 00:00:00', '2026-11-27 00:00:00')");
for ($i = 0; $i < FILLER; $i++) {
    $insert->execute([$i % 5000, "filler $i", bin2hex(random_bytes(32))]);
}
foreach ($keys as $i => $key) {
    $insert->execute([$i, "php bench $i", hash('sha256', $key)]);
}
$pdo->commit();
$results['sqlite_valid'] = measure(function (int $calls) use ($pdo, $keys) {
    for ($i = 0; $i < $calls; $i++) {
        $stmt = $pdo->prepare('SELECT * FROM personal_access_tokens WHERE token = ? LIMIT 1');
        $stmt->execute([hash('sha256', $keys[$i & (SAMPLE - 1)])]);
        $row = $stmt->fetch(PDO::FETCH_ASSOC);
    }
}, intdiv(CALLS, 10));
$pdo = null;
@unlink($path);

echo json_encode(['host' => 'php', 'version' => PHP_VERSION, 'filler' => FILLER,
    'ns_per_verify' => $results]), "\n";
