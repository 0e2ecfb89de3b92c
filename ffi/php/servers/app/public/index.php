<?php
// The application the server tests and the benchmark serve behind nginx +
// PHP-FPM: one front controller, in a composer project that installed the
// package (vendor/). Every route goes through the same autoloader, so the
// authenticated routes and /noauth differ by the authentication alone.
//
//   /noauth      no authentication: {"ok":true}
//   /auth        the package README's code: any valid key
//   /contacts    the same, with the scope contacts:read
//   /broken      the same code on a store this worker may not open
//                (APIKEYS_BROKEN_DB): a store failure, which must be a 500
//   /sanctum     the Sanctum-style peer: SHA-256 hex of the bearer token
//                looked up in PostgreSQL (pdo_pgsql, persistent
//                connection), then UPDATE last_used_at
//
// ?opens=1 adds X-Apikeys-Opens: the stores this worker has opened.
// ?hold=MS keeps the worker busy MS milliseconds before answering: the
// server test sends concurrent requests with it so that every worker
// answers some (it asserts which worker answered, never how fast).

declare(strict_types=1);

require __DIR__ . '/../vendor/autoload.php';

use ApiKeys\ApiKeysException;
use ApiKeys\HttpAnswer;
use ApiKeys\KeyStore;

$route = strtok($_SERVER['REQUEST_URI'], '?');
header('Content-Type: application/json');
header('X-Worker-Pid: ' . getmypid());
if (isset($_GET['hold'])) {
    usleep(1000 * min(1000, (int) $_GET['hold']));
}

if ($route === '/noauth') {
    echo '{"ok":true}';
    return;
}

if ($route === '/auth' || $route === '/contacts' || $route === '/broken') {
    // The README's code: the worker's persistent store, shared mode.
    $path = getenv($route === '/broken' ? 'APIKEYS_BROKEN_DB' : 'APIKEYS_DB');
    try {
        $keyId = KeyStore::shared($path, getenv('APIKEYS_PEPPER') ?: null)
            ->verifyHeaderId($_SERVER['HTTP_AUTHORIZATION'] ?? null, scope: $route === '/contacts' ? 'contacts:read' : null);
    } catch (ApiKeysException $refused) {
        HttpAnswer::forError($refused)->send();   // 401, 403 or 500
        return;
    }
    if (isset($_GET['opens'])) {
        // For the server test: how many stores this worker has opened.
        header('X-Apikeys-Opens: ' . KeyStore::persistentOpens());
    }
    echo json_encode(['id' => $keyId]);
    return;
}

if ($route === '/sanctum') {
    $header = $_SERVER['HTTP_AUTHORIZATION'] ?? '';
    $token = strncasecmp($header, 'Bearer ', 7) === 0 ? substr($header, 7) : '';
    $db = new PDO(getenv('PG_DSN'), 'postgres', null, [PDO::ATTR_PERSISTENT => true, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $find = $db->prepare('SELECT id, name FROM personal_access_tokens WHERE token = ?');
    $find->execute([hash('sha256', $token)]);
    $row = $find->fetch(PDO::FETCH_ASSOC);
    if ($row === false) {
        HttpAnswer::unauthorized()->send();
        return;
    }
    $db->prepare('UPDATE personal_access_tokens SET last_used_at = now() WHERE id = ?')->execute([$row['id']]);
    echo json_encode(['id' => (string) $row['id'], 'name' => $row['name']]);
    return;
}

http_response_code(404);
echo '{"success":false,"error":{"code":"NOT_FOUND","message":"No such route"}}';
