<?php
// apikeys verify called from PHP through FFI, beside PHP's usual ways:
// Laravel Sanctum's (SHA-256 hex, PDO SQLite, statement prepared per call)
// and an in-memory floor (SHA-256 + array lookup).
//
// Rows: package_* call the package (ffi/php) as an application does
// (verifyId, isValid, verify); apikeys_* and check_* call the C ABI directly
// through the package's FFI object (apikeys_key_verify with out = NULL,
// apikeys_key_check, apikeys_key_validate); *_call_overhead are those calls with a one-byte key.
// The rows of one mode take turns within every round.
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

// The package (ffi/php), as an application uses it, loading this library.
require dirname(__DIR__, 2) . '/ffi/php/tests/bootstrap.php';
putenv("APIKEYS_LIB=$lib");

use ApiKeys\KeyStore;
use ApiKeys\Library;

/**
 * Median ns per call of each body over ROUNDS rounds of $calls calls, the
 * bodies taking turns within every round so that all see the same machine.
 *
 * @param array<string, callable(int): void> $bodies
 * @return array<string, float>
 */
function measure_together(array $bodies, int $calls = CALLS): array
{
    $rounds = [];
    foreach ($bodies as $name => $body) {
        $body(200); // warm-up
        $rounds[$name] = [];
    }
    for ($r = 0; $r < ROUNDS; $r++) {
        foreach ($bodies as $name => $body) {
            $start = hrtime(true);
            $body($calls);
            $rounds[$name][] = (hrtime(true) - $start) / $calls;
        }
    }
    $medians = [];
    foreach ($rounds as $name => $times) {
        sort($times);
        $medians[$name] = $times[intdiv(ROUNDS, 2)];
    }
    return $medians;
}

function measure(callable $body, int $calls = CALLS): float
{
    return measure_together(['x' => $body], $calls)['x'];
}

/** The store's C handle, for the rows that call the C ABI directly through the package's FFI. */
function handle_of(KeyStore $store): FFI\CData
{
    return (fn () => $this->handle)->call($store);
}

// Sample keys, generated through the package (one durable commit each).
$store = new KeyStore($storePath);
$keys = [];
for ($i = 0; $i < SAMPLE; $i++) {
    $keys[] = $store->generate("php bench $i", env: 'prod', scopes: ['contacts:read'])->secret();
}
$badChecksum = array_map(fn ($k) => substr($k, 0, 12) . strrev(substr($k, 12)), $keys);

// The floor: SHA-256 of the key, then an array lookup among FILLER + SAMPLE digests.
$floor = [];
for ($i = 0; $i < FILLER; $i++) {
    $floor[hash('sha256', random_bytes(24), true)] = $i;
}
foreach ($keys as $i => $key) {
    $floor[hash('sha256', $key, true)] = FILLER + $i;
}

$ffi = Library::ffi();
$results = [];
foreach (['exclusive' => false, 'shared' => true] as $mode => $shared) {
    if ($shared) {
        $store->close();
        $store = new KeyStore($storePath, shared: true);
    }
    $handle = handle_of($store);
    if ($ffi->apikeys_key_verify($handle, $keys[0], strlen($keys[0]), null, 0, null) !== 0
        || $store->verifyId($keys[0]) !== $store->verify($keys[0])->id
        || $store->isValid($badChecksum[0])) {
        throw new RuntimeException("verify answers wrong in $mode mode");
    }
    $bodies = [
        // What an application calls: the package's methods.
        // verifyId: the key's id (for authorization), Unauthorized otherwise.
        "package_verify_id_{$mode}_valid" => function (int $calls) use ($store, $keys) {
            for ($i = 0; $i < $calls; $i++) {
                $id = $store->verifyId($keys[$i & (SAMPLE - 1)]);
            }
        },
        // The raw C calls, through the package's FFI object: apikeys_key_verify
        // as before (six arguments, out = NULL) ...
        "apikeys_{$mode}_valid" => function (int $calls) use ($ffi, $handle, $keys) {
            for ($i = 0; $i < $calls; $i++) {
                $key = $keys[$i & (SAMPLE - 1)];
                $ffi->apikeys_key_verify($handle, $key, strlen($key), null, 0, null);
            }
        },
        "apikeys_{$mode}_bad_checksum" => function (int $calls) use ($ffi, $handle, $badChecksum) {
            for ($i = 0; $i < $calls; $i++) {
                $key = $badChecksum[$i & (SAMPLE - 1)];
                $ffi->apikeys_key_verify($handle, $key, strlen($key), null, 0, null);
            }
        },
    ];
    if (!$shared) {
        $bodies += [
            // isValid: a boolean, no id.
            'package_is_valid_exclusive_valid' => function (int $calls) use ($store, $keys) {
                for ($i = 0; $i < $calls; $i++) {
                    $ok = $store->isValid($keys[$i & (SAMPLE - 1)]);
                }
            },
            // verify: every detail of the key (name, scopes, owner, ...) as an object.
            'package_verify_exclusive_valid' => function (int $calls) use ($store, $keys) {
                for ($i = 0; $i < $calls; $i++) {
                    $verified = $store->verify($keys[$i & (SAMPLE - 1)]);
                }
            },
            // ... and apikeys_key_check (NUL-terminated key, no scope, no id).
            'check_exclusive_valid' => function (int $calls) use ($ffi, $handle, $keys) {
                for ($i = 0; $i < $calls; $i++) {
                    $ffi->apikeys_key_check($handle, $keys[$i & (SAMPLE - 1)], null, null);
                }
            },
            // ... and apikeys_key_validate (the same with only store and key).
            'validate_exclusive_valid' => function (int $calls) use ($ffi, $handle, $keys) {
                for ($i = 0; $i < $calls; $i++) {
                    $ffi->apikeys_key_validate($handle, $keys[$i & (SAMPLE - 1)]);
                }
            },
            // The same calls with a one-byte key, rejected by its length
            // before any work: what each FFI call itself costs.
            'ffi_call_overhead' => function (int $calls) use ($ffi, $handle) {
                for ($i = 0; $i < $calls; $i++) {
                    $ffi->apikeys_key_verify($handle, 'x', 1, null, 0, null);
                }
            },
            'check_call_overhead' => function (int $calls) use ($ffi, $handle) {
                for ($i = 0; $i < $calls; $i++) {
                    $ffi->apikeys_key_check($handle, 'x', null, null);
                }
            },
            'validate_call_overhead' => function (int $calls) use ($ffi, $handle) {
                for ($i = 0; $i < $calls; $i++) {
                    $ffi->apikeys_key_validate($handle, 'x');
                }
            },
            'floor_valid' => function (int $calls) use ($floor, $keys) {
                for ($i = 0; $i < $calls; $i++) {
                    $found = $floor[hash('sha256', $keys[$i & (SAMPLE - 1)], true)] ?? null;
                }
            },
        ];
    }
    $results += measure_together($bodies);
}
$store->close();

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
