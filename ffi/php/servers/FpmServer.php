<?php
// nginx + PHP-FPM for the server tests and the benchmark, each started in a
// directory of its own: its own config files, pid files, logs and sockets,
// a free port on 127.0.0.1, nothing installed system-wide changed. The
// PHP settings of the apikeys recipe come from the installed package's
// `vendor/bin/apikeys-php-ini`, in a conf.d of the run's own added to
// Debian's (PHP_INI_SCAN_DIR), as a user would drop them in
// /etc/php/8.2/fpm/conf.d.
//
// Recipes:
// - "root-master": the FPM master starts as root, its workers run as
//   www-data (pool `user`/`group`); ffi.preload + opcache.preload +
//   opcache.preload_user.
// - "non-root": the FPM master starts as www-data (no `user` in the pool);
//   opcache.preload alone.

declare(strict_types=1);

namespace ApiKeys\Servers;

final class FpmServer
{
    public const USER = 'www-data';
    private const FPM = '/usr/sbin/php-fpm8.2';
    private const NGINX = '/usr/sbin/nginx';
    private const SYSTEM_CONF_D = '/etc/php/8.2/fpm/conf.d';

    /** @var resource|null */
    private $fpm = null;
    /** @var resource|null */
    private $nginx = null;
    private int $port = 0;
    private int $fpmPid = 0;

    /**
     * @param string $project a composer project with the package installed and public/index.php
     * @param array<string, string> $env the pool's env[] (APIKEYS_DB, APIKEYS_PEPPER, ...)
     */
    public function __construct(
        public readonly string $recipe,
        public readonly string $dir,
        public readonly string $project,
        private readonly array $env,
        public readonly int $workers = 4,
        public readonly int $maxRequests = 0,
    ) {
        if (!in_array($recipe, ['root-master', 'non-root'], true)) {
            throw new \InvalidArgumentException("unknown recipe $recipe");
        }
        if (posix_geteuid() !== 0) {
            throw new \RuntimeException('the server tests start nginx and PHP-FPM as root (the workers run as ' . self::USER . ')');
        }
    }

    public function port(): int
    {
        return $this->port;
    }

    public function url(string $path): string
    {
        return "http://127.0.0.1:{$this->port}$path";
    }

    /** Writes the configuration, starts PHP-FPM and nginx, and waits until a request goes through. */
    public function start(): void
    {
        foreach (['conf.d', 'nginx-tmp', 'run'] as $sub) {
            @mkdir("{$this->dir}/$sub", 0755, true);
        }
        chmod($this->dir, 0755);
        // The run directory holds what the FPM master writes: its pid, log and socket.
        chown("{$this->dir}/run", self::USER);
        $this->port = self::freePort();
        file_put_contents("{$this->dir}/conf.d/90-apikeys.ini", $this->recipeIni());
        file_put_contents("{$this->dir}/php-fpm.conf", $this->fpmConf());
        file_put_contents("{$this->dir}/nginx.conf", $this->nginxConf());

        $command = [self::FPM, '--nodaemonize', '--fpm-config', "{$this->dir}/php-fpm.conf"];
        if ($this->recipe === 'non-root') {
            $command = ['setpriv', '--reuid=' . self::USER, '--regid=' . self::USER, '--init-groups', ...$command];
        }
        $environment = ['PATH' => '/usr/sbin:/usr/bin:/sbin:/bin',
            'PHP_INI_SCAN_DIR' => self::SYSTEM_CONF_D . ':' . $this->dir . '/conf.d'];
        $this->fpm = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "{$this->dir}/php-fpm.out", 'a'],
            2 => ['file', "{$this->dir}/php-fpm.out", 'a']], $pipes, $this->dir, $environment);
        $this->fpmPid = proc_get_status($this->fpm)['pid'];
        $this->nginx = proc_open([self::NGINX, '-p', "{$this->dir}/", '-c', "{$this->dir}/nginx.conf"],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', "{$this->dir}/nginx.out", 'a'],
                2 => ['file', "{$this->dir}/nginx.out", 'a']], $pipes, $this->dir, ['PATH' => '/usr/sbin:/usr/bin']);
        // Bounded: 1500 tries, 20 ms apart (a loaded machine starts slowly);
        // a server that never answers fails the run with its logs.
        for ($try = 0; $try < 1500; $try++) {
            if (!proc_get_status($this->fpm)['running'] || !proc_get_status($this->nginx)['running']) {
                break;
            }
            $answer = Http::get($this->url('/noauth'));
            if ($answer !== null && $answer->status === 200 && count($this->workerPids()) === $this->workers) {
                return;
            }
            usleep(20_000);
        }
        $logs = $this->logs();
        $this->stop();
        throw new \RuntimeException("nginx + PHP-FPM ({$this->recipe}) did not start:\n$logs");
    }

    /** The pids of the FPM workers now running: the master's children. */
    public function workerPids(): array
    {
        if ($this->fpmPid === 0) {
            return [];
        }
        $children = @file_get_contents("/proc/{$this->fpmPid}/task/{$this->fpmPid}/children");
        $pids = array_map('intval', preg_split('/\s+/', trim((string) $children), -1, PREG_SPLIT_NO_EMPTY));
        sort($pids);
        return $pids;
    }

    /**
     * CPU seconds (user + system) used so far by the FPM workers and by the
     * nginx processes: the benchmark's cost per request, which the other
     * jobs of a busy machine change less than they change throughput.
     */
    public function cpuSeconds(): float
    {
        $pids = $this->workerPids();
        if ($this->nginx !== null) {
            $nginx = proc_get_status($this->nginx)['pid'];
            $children = (string) @file_get_contents("/proc/$nginx/task/$nginx/children");
            $pids = [...$pids, $nginx, ...array_map('intval', preg_split('/\s+/', trim($children), -1, PREG_SPLIT_NO_EMPTY))];
        }
        $ticks = 0;
        foreach ($pids as $pid) {
            $stat = (string) @file_get_contents("/proc/$pid/stat");
            // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
            $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));
            $ticks += (int) ($fields[11] ?? 0) + (int) ($fields[12] ?? 0);
        }
        return $ticks / 100; // USER_HZ
    }

    /** The user a process runs as. */
    public static function userOf(int $pid): string
    {
        $status = (string) @file_get_contents("/proc/$pid/status");
        preg_match('/^Uid:\s+(\d+)/m', $status, $match);
        return isset($match[1]) ? (posix_getpwuid((int) $match[1])['name'] ?? $match[1]) : '?';
    }

    public function masterPid(): int
    {
        return $this->fpmPid;
    }

    /**
     * Stops both gracefully (SIGQUIT: FPM's workers finish their request
     * and exit normally, which runs the library's exit hook) and waits for
     * them. Returns FPM's exit status.
     */
    public function stop(): int
    {
        $status = -1;
        foreach (['nginx', 'fpm'] as $which) {
            $process = $this->$which;
            if ($process === null) {
                continue;
            }
            $pid = proc_get_status($process)['pid'];
            if (proc_get_status($process)['running']) {
                posix_kill($pid, SIGQUIT);
            }
            $exit = proc_close($process); // waits
            $this->$which = null;
            if ($which === 'fpm') {
                $status = $exit;
            }
        }
        $this->fpmPid = 0;
        return $status;
    }

    public function logs(): string
    {
        $text = '';
        foreach (['php-fpm.out', 'run/php-fpm.log', 'nginx.out', 'nginx-error.log'] as $file) {
            if (is_file("{$this->dir}/$file")) {
                $text .= "--- $file\n" . file_get_contents("{$this->dir}/$file");
            }
        }
        return $text;
    }

    /** The recipe's php.ini lines, exactly as the package's command prints them. */
    private function recipeIni(): string
    {
        $command = escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg("{$this->project}/vendor/bin/apikeys-php-ini")
            . ($this->recipe === 'root-master'
                ? ' --root-master --user ' . self::USER . ' --header ' . escapeshellarg("{$this->dir}/apikeys.fpm.h")
                : ' --non-root');
        $ini = shell_exec($command);
        if (!is_string($ini) || !str_contains($ini, 'opcache.preload=')) {
            throw new \RuntimeException("$command printed no settings");
        }
        return $ini;
    }

    private function fpmConf(): string
    {
        $run = "{$this->dir}/run";
        $env = '';
        foreach ($this->env as $name => $value) {
            $env .= "env[$name] = " . self::iniValue($value) . "\n";
        }
        $user = $this->recipe === 'root-master'
            ? "user = " . self::USER . "\ngroup = " . self::USER . "\nlisten.owner = " . self::USER . "\nlisten.group = " . self::USER . "\n"
            : '';
        return <<<CONF
        [global]
        pid = $run/php-fpm.pid
        error_log = $run/php-fpm.log
        log_level = notice
        daemonize = no
        ; A graceful stop waits this long for a worker to finish its request.
        process_control_timeout = 20s

        [apikeys]
        $user
        listen = $run/php-fpm.sock
        listen.mode = 0666
        pm = static
        pm.max_children = {$this->workers}
        pm.max_requests = {$this->maxRequests}
        clear_env = yes
        catch_workers_output = yes
        decorate_workers_output = no
        php_admin_value[error_log] = $run/php-errors.log
        php_admin_flag[log_errors] = on
        php_admin_flag[display_errors] = off
        $env
        CONF;
    }

    private function nginxConf(): string
    {
        $user = 'user ' . self::USER . ';';
        $tmp = "{$this->dir}/nginx-tmp";
        return <<<CONF
        $user
        worker_processes 1;
        daemon off;
        pid {$this->dir}/nginx.pid;
        error_log {$this->dir}/nginx-error.log warn;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path $tmp/body;
            fastcgi_temp_path $tmp/fastcgi;
            proxy_temp_path $tmp/proxy;
            scgi_temp_path $tmp/scgi;
            uwsgi_temp_path $tmp/uwsgi;
            server {
                listen 127.0.0.1:{$this->port};
                location / {
                    include /etc/nginx/fastcgi_params;
                    fastcgi_param SCRIPT_FILENAME {$this->project}/public/index.php;
                    fastcgi_pass unix:{$this->dir}/run/php-fpm.sock;
                }
            }
        }
        CONF;
    }

    private static function iniValue(string $value): string
    {
        if (preg_match('/[\r\n"]/', $value)) {
            throw new \InvalidArgumentException('an env[] value holds a quote or a newline');
        }
        return '"' . $value . '"';
    }

    private static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        if ($socket === false) {
            throw new \RuntimeException("no free port: $error");
        }
        $name = stream_socket_get_name($socket, false);
        fclose($socket);
        return (int) substr((string) $name, strrpos((string) $name, ':') + 1);
    }
}

/** An HTTP answer: status, headers (lower-case names) and body. */
final class Answer
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}

/** A small HTTP/1.0 client for 127.0.0.1, with concurrent requests. */
final class Http
{
    /** @param array<string, string> $headers */
    public static function get(string $url, array $headers = []): ?Answer
    {
        return self::all([[$url, $headers]])[0];
    }

    /**
     * Sends every request at once, each on its own connection, and returns
     * the answers in order (null for a connection that failed).
     *
     * @param list<array{0: string, 1?: array<string, string>}> $requests
     * @return list<?Answer>
     */
    public static function all(array $requests): array
    {
        $sockets = [];
        $buffers = [];
        foreach ($requests as $index => $request) {
            $parts = parse_url($request[0]);
            if (($parts['host'] ?? '') !== '127.0.0.1') {
                throw new \InvalidArgumentException('only 127.0.0.1 is a target here');
            }
            $socket = @stream_socket_client("tcp://127.0.0.1:{$parts['port']}", $errno, $error, 10);
            if ($socket === false) {
                $buffers[$index] = null;
                continue;
            }
            $path = ($parts['path'] ?? '/') . (isset($parts['query']) ? '?' . $parts['query'] : '');
            $text = "GET $path HTTP/1.0\r\nHost: 127.0.0.1\r\n";
            foreach ($request[1] ?? [] as $name => $value) {
                $text .= "$name: $value\r\n";
            }
            fwrite($socket, "$text\r\n");
            stream_set_blocking($socket, false);
            $sockets[$index] = $socket;
            $buffers[$index] = '';
        }
        while ($sockets !== []) {
            $read = array_values($sockets);
            $write = $except = null;
            if (stream_select($read, $write, $except, 30) === 0) {
                break; // 30 s without a byte: the rest failed
            }
            foreach ($sockets as $index => $socket) {
                if (!in_array($socket, $read, true)) {
                    continue;
                }
                $chunk = fread($socket, 65536);
                if ($chunk === '' || $chunk === false) {
                    if (feof($socket)) {
                        fclose($socket);
                        unset($sockets[$index]);
                    }
                    continue;
                }
                $buffers[$index] .= $chunk;
            }
        }
        foreach ($sockets as $index => $socket) {
            fclose($socket);
            $buffers[$index] = null;
        }
        $answers = [];
        foreach (array_keys($requests) as $index) {
            $answers[] = self::parse($buffers[$index] ?? null);
        }
        return $answers;
    }

    private static function parse(?string $raw): ?Answer
    {
        if ($raw === null || !str_contains($raw, "\r\n\r\n")) {
            return null;
        }
        [$head, $body] = explode("\r\n\r\n", $raw, 2);
        $lines = explode("\r\n", $head);
        if (!preg_match('~^HTTP/1\.[01] (\d{3})~', array_shift($lines), $match)) {
            return null;
        }
        $headers = [];
        foreach ($lines as $line) {
            [$name, $value] = explode(':', $line, 2) + [1 => ''];
            $headers[strtolower(trim($name))] = trim($value);
        }
        return new Answer((int) $match[1], $headers, $body);
    }
}

/**
 * A composer project with the package installed the way a user installs it
 * (scripts/build-package.sh, then one `composer require` from the
 * artifact, offline) and the test application in public/.
 */
final class Project
{
    /** Builds and installs into $dir/project; returns its path. */
    public static function install(string $dir): string
    {
        $package = dirname(__DIR__); // ffi/php
        self::run([$package . '/scripts/build-package.sh', "$dir/build"]);
        $zips = glob("$dir/build/dist/apikeys-apikeys-*.zip") ?: [];
        if (count($zips) !== 1) {
            throw new \RuntimeException('build-package.sh made no package');
        }
        $version = substr(basename($zips[0], '.zip'), strlen('apikeys-apikeys-'));
        $project = "$dir/project";
        @mkdir($project, 0755, true);
        file_put_contents("$project/composer.json", json_encode([
            'name' => 'acme/server-test',
            'repositories' => [['type' => 'artifact', 'url' => "$dir/build/dist"], ['packagist.org' => false]],
        ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
        self::run(['composer', 'require', '--no-interaction', '--no-audit', '--quiet', "apikeys/apikeys:$version"], $project, [
            'COMPOSER_HOME' => "$dir/composer-home", 'COMPOSER_ALLOW_SUPERUSER' => '1', 'COMPOSER_DISABLE_NETWORK' => '1',
        ]);
        @mkdir("$project/public", 0755);
        copy(__DIR__ . '/app/public/index.php', "$project/public/index.php");
        // The workers (www-data) read the project; the master as root reads it too.
        self::run(['chmod', '-R', 'a+rX', $project]);
        chmod($dir, 0755);
        return $project;
    }

    /**
     * @param list<string> $command
     * @param array<string, string> $env added to this process's environment
     */
    public static function run(array $command, ?string $cwd = null, array $env = []): string
    {
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $cwd, $env + getenv());
        $output = stream_get_contents($pipes[1]);
        $errors = stream_get_contents($pipes[2]);
        $exit = proc_close($process);
        if ($exit !== 0) {
            throw new \RuntimeException(implode(' ', $command) . " exited with $exit:\n$output$errors");
        }
        return $output;
    }
}
