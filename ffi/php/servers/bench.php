<?php
// The benchmark behind servers/bench.sh (which starts the throwaway
// PostgreSQL and exports PG_URL, PGPORT): nginx + PHP-FPM (pm = static, 4
// workers, root master, the package installed by composer, the recipe of
// `apikeys-php-ini --root-master`), one server for the three routes:
//
//   /auth      apikeys: the package README's code (KeyStore::shared + verifyHeader)
//   /noauth    the same front controller without authentication
//   /sanctum   Sanctum-style: SHA-256 hex of the token looked up in
//              PostgreSQL through pdo_pgsql (persistent connection), then
//              UPDATE last_used_at
//
// wrk, 2 threads, 16 connections, BENCH_SECONDS (10) per run, the three
// routes taking turns for BENCH_ROUNDS (3) rounds; prints each run, the
// median requests/s of each route, and the ratios. Each request presents
// one of 100 keys (tokens), in turn. Not a test: it asserts only that every
// answer was a 200.

declare(strict_types=1);

require __DIR__ . '/FpmServer.php';

use ApiKeys\Servers\FpmServer;
use ApiKeys\Servers\Project;

$root = dirname(__DIR__, 3);
$cli = "$root/target/release/apikeys";
$seconds = (int) (getenv('BENCH_SECONDS') ?: 10);
$rounds = (int) (getenv('BENCH_ROUNDS') ?: 3);
$storeKeys = (int) (getenv('BENCH_KEYS') ?: 10000);
$pepper = 'pepper of the benchmark';
$pgPort = (int) getenv('PGPORT');
if ($pgPort === 0) {
    fwrite(STDERR, "PGPORT is not set: run servers/bench.sh\n");
    exit(2);
}

$work = sys_get_temp_dir() . '/apikeys-fpm-bench-' . bin2hex(random_bytes(4));
mkdir($work, 0755);
$server = null;
try {
    $project = Project::install($work);
    mkdir("$work/store", 0755);
    $store = "$work/store/keys.redb";
    $run = fn (string ...$arguments) => Project::run([$cli, '--db', $store, ...$arguments], null, ['APIKEYS_PEPPER' => $pepper]);
    $run('init', '--owner', FpmServer::USER);
    // The store holds $storeKeys keys; the requests present 100 of them.
    $keys = [];
    foreach (explode("\n", trim($run('--shared', 'generate', '--name', 'bench', '--scope', '*', '--count', (string) $storeKeys, '--json'))) as $line) {
        $keys[] = json_decode($line, true, flags: JSON_THROW_ON_ERROR)['key'];
    }
    $presented = array_slice($keys, 0, 100);

    // The Sanctum-style table, with as many tokens.
    $db = new PDO("pgsql:host=127.0.0.1;port=$pgPort;dbname=apikeys", 'postgres', null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $db->exec('CREATE TABLE personal_access_tokens (id bigserial PRIMARY KEY, name text NOT NULL, token char(64) NOT NULL UNIQUE,
        abilities text, last_used_at timestamptz, created_at timestamptz NOT NULL DEFAULT now())');
    $tokens = [];
    $insert = $db->prepare('INSERT INTO personal_access_tokens (name, token, abilities) VALUES (?, ?, ?)');
    $db->beginTransaction();
    for ($i = 0; $i < $storeKeys; $i++) {
        $token = bin2hex(random_bytes(20));
        $insert->execute(['bench', hash('sha256', $token), '["*"]']);
        if ($i < 100) {
            $tokens[] = $token;
        }
    }
    $db->commit();
    $db->exec('ANALYZE personal_access_tokens');

    $server = new FpmServer('root-master', "$work/server", $project, [
        'APIKEYS_DB' => $store, 'APIKEYS_PEPPER' => $pepper,
        'PG_DSN' => "pgsql:host=127.0.0.1;port=$pgPort;dbname=apikeys",
    ], workers: 4);
    $server->start();

    $script = function (string $name, array $secrets) use ($work): string {
        $list = implode(', ', array_map(fn ($s) => json_encode($s), $secrets));
        $file = "$work/$name.lua";
        file_put_contents($file, <<<LUA
        local secrets = { $list }
        local n = 0
        request = function()
            n = n % #secrets + 1
            return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. secrets[n] })
        end
        done = function(summary, latency, requests)
            io.write(string.format("non2xx=%d\\n", summary.errors.status))
        end
        LUA);
        return $file;
    };
    $routes = [
        'apikeys (/auth)' => ['/auth', $script('auth', $presented)],
        'no auth (/noauth)' => ['/noauth', $script('noauth', $presented)],
        'Sanctum-style on PostgreSQL (/sanctum)' => ['/sanctum', $script('sanctum', $tokens)],
    ];
    $wrk = function (string $path, string $lua, int $seconds) use ($server): array {
        $cpu = $server->cpuSeconds();
        $output = shell_exec('wrk -t2 -c16 -d' . $seconds . 's --latency -s ' . escapeshellarg($lua) . ' '
            . escapeshellarg($server->url($path)) . ' 2>&1');
        preg_match('/Requests\/sec:\s+([\d.]+)/', (string) $output, $rate);
        preg_match('/non2xx=(\d+)/', (string) $output, $non2xx);
        preg_match('/^\s+50%\s+(\S+)/m', (string) $output, $p50); // the latency distribution's line
        if (!isset($rate[1])) {
            throw new RuntimeException("wrk printed no rate:\n$output");
        }
        preg_match('/(\d+) requests in/', (string) $output, $requests);
        $cpuPerRequest = 1e6 * ($server->cpuSeconds() - $cpu) / max(1, (int) ($requests[1] ?? 0));
        return [(float) $rate[1], (int) ($non2xx[1] ?? -1), $p50[1] ?? '?', $cpuPerRequest];
    };
    foreach ($routes as [$path, $lua]) {
        $wrk($path, $lua, 2); // warm-up: every worker opens its store, PDO connects
    }
    printf("nginx + PHP-FPM 8.2, pm = static, 4 workers (root master), %d keys; wrk -t2 -c16 -d%ds, %d rounds\n",
        $storeKeys, $seconds, $rounds);
    $rates = [];
    $cpus = [];
    for ($round = 1; $round <= $rounds; $round++) {
        foreach ($routes as $name => [$path, $lua]) {
            [$rate, $non2xx, $p50, $cpu] = $wrk($path, $lua, $seconds);
            $rates[$name][] = $rate;
            $cpus[$name][] = $cpu;
            printf("  round %d  %-40s %9.0f req/s  p50 %-8s  %5.0f us CPU/request (FPM + nginx)%s\n", $round, $name, $rate, $p50, $cpu,
                $non2xx === 0 ? '' : "  ($non2xx answers not 2xx!)");
        }
    }
    $median = function (array $values): float {
        sort($values);
        $n = count($values);
        return $n % 2 ? $values[intdiv($n, 2)] : ($values[$n / 2 - 1] + $values[$n / 2]) / 2;
    };
    $m = array_map($median, $rates);
    [$auth, $noauth, $sanctum] = array_values($m);
    echo "median requests/s:\n";
    foreach ($m as $name => $rate) {
        printf("  %-40s %9.0f\n", $name, $rate);
    }
    printf("apikeys / no auth: %.2f (target >= 0.90)\n", $auth / $noauth);
    printf("apikeys / Sanctum-style: %.2f (target > 1)\n", $auth / $sanctum);
    $c = array_map($median, $cpus);
    [$authCpu, $noauthCpu, $sanctumCpu] = array_values($c);
    printf("median CPU per request (FPM workers + nginx): apikeys %.0f us, no auth %.0f us, Sanctum-style %.0f us (+ PostgreSQL's own)\n",
        $authCpu, $noauthCpu, $sanctumCpu);
    printf("authentication's CPU per request: %.0f us\n", $authCpu - $noauthCpu);
    $perRound = array_map(fn ($a, $n) => $a / $n, $rates['apikeys (/auth)'], $rates['no auth (/noauth)']);
    printf("per round, apikeys / no auth: %s (median %.2f)\n",
        implode(' ', array_map(fn ($r) => sprintf('%.2f', $r), $perRound)), $median($perRound));
} finally {
    $server?->stop();
    Project::run(['rm', '-rf', $work]);
}
