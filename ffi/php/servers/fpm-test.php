<?php
// The package inside its real server: nginx + PHP-FPM (pm = static, 4
// workers running as www-data), once per preload recipe:
//
//   root-master  the master starts as root (ffi.preload + opcache.preload
//                + opcache.preload_user = www-data)
//   non-root     the master itself runs as www-data (opcache.preload)
//
// each with the settings `vendor/bin/apikeys-php-ini` prints, the package
// installed by composer from the artifact build-package.sh makes, and the
// store made by the command line as root (`apikeys init --owner ...`).
// Checked over real HTTP: the exact 401/403/500/200 bodies and headers; the
// store opened once per worker (every accepted answer says its worker has
// opened 1 store, and all 4 workers answer); a key revoked from the command
// line refused by the next request in every worker (each of the 4 worker
// pids answers 401); usage counts after a graceful stop equal to the
// accepted requests, including with pm.max_requests recycling workers.
//
// Run as root: ffi/php/servers/fpm-test.sh (builds what it needs first).
// Prints "ok"/"FAIL" per check and "N passed, M failed".

declare(strict_types=1);

require __DIR__ . '/FpmServer.php';

use ApiKeys\Servers\Answer;
use ApiKeys\Servers\FpmServer;
use ApiKeys\Servers\Http;
use ApiKeys\Servers\Project;

const UNAUTHORIZED_BODY = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}';
const FORBIDDEN_BODY = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}';
const INTERNAL_ERROR_BODY = '{"success":false,"error":{"code":"INTERNAL_ERROR","message":"Authentication is temporarily unavailable"}}';
const PEPPER = 'pepper of the server test';
const WORKERS = 4;

$root = dirname(__DIR__, 3);
$cli = getenv('APIKEYS_CLI') ?: "$root/target/release/apikeys";
$passed = 0;
$failed = 0;

function check(string $what, bool $holds, string $detail = ''): bool
{
    global $passed, $failed;
    $holds ? $passed++ : $failed++;
    echo ($holds ? 'ok   ' : 'FAIL ') . $what . ($holds || $detail === '' ? '' : "\n     $detail") . "\n";
    return $holds;
}

function show(?Answer $answer): string
{
    return $answer === null ? 'no answer' : "$answer->status " . json_encode($answer->headers) . " $answer->body";
}

/** @return list<string> the command line's output lines */
function cli(string $store, string ...$arguments): array
{
    global $cli;
    $output = Project::run([$cli, '--db', $store, ...$arguments], null, ['APIKEYS_PEPPER' => PEPPER]);
    return array_values(array_filter(explode("\n", $output), 'strlen'));
}

/** @return array{key: string, id: string} */
function generate(string $store, string $name, string ...$scopes): array
{
    $arguments = ['--shared', 'generate', '--name', $name, '--env', 'prod', '--json'];
    foreach ($scopes as $scope) {
        array_push($arguments, '--scope', $scope);
    }
    $made = json_decode(cli($store, ...$arguments)[0], true, flags: JSON_THROW_ON_ERROR);
    return ['key' => $made['key'], 'id' => $made['id']];
}

/** @return array<string, array<string, mixed>> the listed keys, by id */
function listed(string $store): array
{
    $keys = [];
    foreach (json_decode(implode('', cli($store, '--shared', 'list', '--json')), true, flags: JSON_THROW_ON_ERROR) as $key) {
        $keys[$key['id']] = $key;
    }
    return $keys;
}

/**
 * Sends rounds of concurrent requests holding their worker a moment, so
 * that every worker answers some, until each of $workers has answered or
 * 40 rounds have gone (a bound, not a timing). Returns every answer.
 *
 * @param list<int> $workers
 * @return list<Answer>
 */
function untilEveryWorkerAnswered(FpmServer $server, string $path, string $key, array $workers): array
{
    $answers = [];
    $seen = [];
    for ($round = 0; $round < 40 && array_diff($workers, array_keys($seen)) !== []; $round++) {
        $batch = Http::all(array_fill(0, 2 * WORKERS, [$server->url("$path?hold=30&opens=1"), ['Authorization' => "Bearer $key"]]));
        foreach ($batch as $answer) {
            if ($answer === null) {
                continue;
            }
            $answers[] = $answer;
            $seen[(int) $answer->header('x-worker-pid')] = true;
        }
    }
    return $answers;
}

/** Sends $count requests, 8 at a time; returns the answers. @return list<?Answer> */
function send(FpmServer $server, string $path, string $key, int $count): array
{
    $answers = [];
    while (count($answers) < $count) {
        $batch = min(8, $count - count($answers));
        array_push($answers, ...Http::all(array_fill(0, $batch, [$server->url("$path?opens=1"), ['Authorization' => "Bearer $key"]])));
    }
    return $answers;
}

function isUnauthorized(?Answer $answer): bool
{
    return $answer !== null && $answer->status === 401 && $answer->body === UNAUTHORIZED_BODY
        && $answer->header('www-authenticate') === 'Bearer' && $answer->header('content-type') === 'application/json';
}

function runRecipe(string $recipe, string $work, string $project): void
{
    echo "--- $recipe\n";
    $dir = "$work/$recipe";
    mkdir("$dir/store", 0755, true);
    chmod($dir, 0755);
    $store = "$dir/store/keys.redb";
    // The admin (root) makes the store for the workers' user. Root-master:
    // owned by www-data, owner-only; non-root: root keeps it, the workers'
    // group shares it.
    $owner = $recipe === 'root-master' ? [FpmServer::USER, '600'] : ['root:' . FpmServer::USER, '660'];
    cli($store, 'init', '--owner', $owner[0], '--mode', $owner[1]);
    $all = generate($store, 'everything', '*');
    $contacts = generate($store, 'contacts', 'contacts:*');
    $deals = generate($store, 'deals', 'deals:read');
    $revoked = generate($store, 'to revoke', 'contacts:read');
    $counted = generate($store, 'counted', '*');
    $recycled = generate($store, 'recycled', '*');
    $unknown = generate("$dir/elsewhere.redb", 'unknown');
    // A store the workers may not open: root's, owner-only.
    $broken = "$dir/store/root-only.redb";
    cli($broken, 'init');

    $env = ['APIKEYS_DB' => $store, 'APIKEYS_PEPPER' => PEPPER, 'APIKEYS_BROKEN_DB' => $broken];
    $server = new FpmServer($recipe, "$dir/server", $project, $env, WORKERS);
    $server->start();
    try {
        $workers = $server->workerPids();
        check("$recipe: " . WORKERS . ' workers', count($workers) === WORKERS, json_encode($workers));
        $masterUser = FpmServer::userOf($server->masterPid());
        check("$recipe: the master runs as " . ($recipe === 'root-master' ? 'root' : FpmServer::USER),
            $masterUser === ($recipe === 'root-master' ? 'root' : FpmServer::USER), $masterUser);

        $answer = Http::get($server->url('/noauth'));
        check("$recipe: /noauth 200", $answer?->status === 200 && $answer->body === '{"ok":true}', show($answer));

        $refusals = [
            'no Authorization header' => [],
            'Basic credentials' => ['Authorization' => 'Basic dXNlcjpwYXNz'],
            'Bearer garbage' => ['Authorization' => 'Bearer not-a-key'],
            'Bearer with no token' => ['Authorization' => 'Bearer'],
            'a well-formed key of another store' => ['Authorization' => 'Bearer ' . $unknown['key']],
        ];
        foreach ($refusals as $what => $headers) {
            $answer = Http::get($server->url('/auth'), $headers);
            check("$recipe: $what: 401, the seed body, WWW-Authenticate: Bearer", isUnauthorized($answer), show($answer));
        }

        $answer = Http::get($server->url('/auth'), ['Authorization' => 'Bearer ' . $all['key']]);
        check("$recipe: a valid key: 200 with its id", $answer?->status === 200
            && $answer->body === json_encode(['id' => $all['id']]), show($answer));
        foreach (['*' => $all, 'contacts:*' => $contacts] as $grant => $key) {
            $answer = Http::get($server->url('/contacts'), ['Authorization' => 'Bearer ' . $key['key']]);
            check("$recipe: a key granted $grant passes the route's contacts:read", $answer?->status === 200
                && json_decode($answer->body, true)['id'] === $key['id'], show($answer));
        }
        $answer = Http::get($server->url('/contacts'), ['Authorization' => 'Bearer ' . $deals['key']]);
        check("$recipe: a key without contacts:read: 403, the seed body", $answer?->status === 403
            && $answer->body === FORBIDDEN_BODY
            && $answer->header('www-authenticate') === 'Bearer error="insufficient_scope"', show($answer));
        $answer = Http::get($server->url('/broken'), ['Authorization' => 'Bearer ' . $all['key']]);
        check("$recipe: a store the workers may not open: 500, never 401", $answer?->status === 500
            && $answer->body === INTERNAL_ERROR_BODY && $answer->header('www-authenticate') === null, show($answer));
        $errors = (string) @file_get_contents("$dir/server/run/php-errors.log");
        check("$recipe: no PHP error logged", $errors === '', $errors);

        // Every worker opens its store once and keeps it.
        $before = untilEveryWorkerAnswered($server, '/auth', $revoked['key'], $workers);
        $pids = array_values(array_unique(array_map(fn (Answer $a) => (int) $a->header('x-worker-pid'), $before)));
        sort($pids);
        check("$recipe: every worker accepted the key", $pids === $workers, json_encode($pids));
        // Asked once each has served requests (a worker drops root just after its fork).
        $users = array_values(array_unique(array_map([FpmServer::class, 'userOf'], $workers)));
        check("$recipe: the workers run as " . FpmServer::USER, $users === [FpmServer::USER], json_encode($users));
        $accepted = array_filter($before, fn (Answer $a) => $a->status === 200);
        check("$recipe: every answer accepted it", count($accepted) === count($before), count($accepted) . ' of ' . count($before));
        $opens = array_unique(array_map(fn (Answer $a) => $a->header('x-apikeys-opens'), $accepted));
        check("$recipe: each worker opened its store once (" . count($accepted) . ' requests)', $opens === ['1'], json_encode($opens));

        // Revoked from the command line: the next request refuses it, whatever worker serves it.
        cli($store, '--shared', 'revoke', $revoked['id']);
        $after = untilEveryWorkerAnswered($server, '/auth', $revoked['key'], $workers);
        $refusedBy = array_values(array_unique(array_map(fn (Answer $a) => (int) $a->header('x-worker-pid'), $after)));
        sort($refusedBy);
        check("$recipe: after the revocation each of the " . WORKERS . ' workers answered', $refusedBy === $workers, json_encode($refusedBy));
        $notRefused = array_filter($after, fn (Answer $a) => !isUnauthorized($a));
        check("$recipe: and every answer (" . count($after) . ') was the 401', $notRefused === [], show(array_values($notRefused)[0] ?? null));

        // Usage: every accepted request counted, flushed by the workers' exit.
        $answers = send($server, '/auth', $counted['key'], 200);
        $served = count(array_filter($answers, fn (?Answer $a) => $a?->status === 200));
        check("$recipe: 200 requests of the counted key accepted", $served === 200, "$served accepted");
        check("$recipe: the workers did not change", $server->workerPids() === $workers);
        $exit = $server->stop();
        check("$recipe: graceful stop (SIGQUIT): PHP-FPM exited 0", $exit === 0, $server->logs());
        $keys = listed($store);
        check("$recipe: use_count after the stop = the accepted requests", $keys[$counted['id']]['use_count'] === $served,
            "use_count {$keys[$counted['id']]['use_count']}, served $served");
        check("$recipe: the revoked key: its accepted uses counted", $keys[$revoked['id']]['use_count'] === count($accepted),
            "use_count {$keys[$revoked['id']]['use_count']}, accepted " . count($accepted));
        check("$recipe: the revoked key: its refused uses counted as rejected", $keys[$revoked['id']]['rejected_count'] === count($after),
            "rejected_count {$keys[$revoked['id']]['rejected_count']}, refused " . count($after));
    } finally {
        $server->stop();
    }

    // pm.max_requests recycles workers: each new one opens its store once,
    // and each leaving one flushes what it counted.
    $server = new FpmServer($recipe, "$dir/recycling", $project, $env, WORKERS, maxRequests: 10);
    $server->start();
    try {
        $answers = send($server, '/auth', $recycled['key'], 120);
        $accepted = array_filter($answers, fn (?Answer $a) => $a?->status === 200);
        $pids = array_unique(array_map(fn (Answer $a) => (int) $a->header('x-worker-pid'), $accepted));
        check("$recipe, pm.max_requests = 10: 120 requests accepted", count($accepted) === 120, count($accepted) . ' accepted');
        check("$recipe, pm.max_requests = 10: served by more than " . WORKERS . ' workers (recycled)', count($pids) > WORKERS, count($pids) . ' workers');
        $opens = array_unique(array_map(fn (Answer $a) => $a->header('x-apikeys-opens'), $accepted));
        check("$recipe, pm.max_requests = 10: each worker opened its store once", $opens === ['1'], json_encode($opens));
        check("$recipe, pm.max_requests = 10: graceful stop", $server->stop() === 0, $server->logs());
        $count = listed($store)[$recycled['id']]['use_count'];
        check("$recipe, pm.max_requests = 10: use_count = the accepted requests", $count === count($accepted), "use_count $count");
    } finally {
        $server->stop();
    }
}

if (posix_geteuid() !== 0) {
    fwrite(STDERR, "run as root: the test starts PHP-FPM with a root master and workers as www-data\n");
    exit(2);
}
$work = (string) getenv('APIKEYS_SERVER_TEST_DIR');
$keep = $work !== '';
if (!$keep) {
    $work = sys_get_temp_dir() . '/apikeys-fpm-test-' . bin2hex(random_bytes(4));
}
@mkdir($work, 0755, true);
try {
    $project = Project::install($work);
    check('the package installs with one composer require, offline', is_file("$project/vendor/apikeys/apikeys/libapikeys.so"));
    foreach (['root-master', 'non-root'] as $recipe) {
        try {
            runRecipe($recipe, $work, $project);
        } catch (Throwable $error) {
            check("$recipe: ran to the end", false, get_class($error) . ': ' . $error->getMessage());
        }
    }
} catch (Throwable $error) {
    check('set-up', false, get_class($error) . ': ' . $error->getMessage());
} finally {
    if (!$keep) {
        Project::run(['rm', '-rf', $work]);
    }
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 && $passed > 0 ? 0 : 1);
