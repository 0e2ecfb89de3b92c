<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\UnauthorizedException;

/**
 * Several worker processes on one store in shared mode, as under PHP-FPM:
 * when one revokes a key, every other rejects it on its next verify.
 * Workers are forked with pcntl_fork when available, else started as php
 * children with proc_open; either way each opens its own handle.
 */
final class MultiprocessTest extends ApiKeysTestCase
{
    private const WORKERS = 4;
    private const REVOKER = 0;

    /**
     * One worker: reports each step as a line on $results and waits for the
     * parent's word on $control. Public and static so a php child can run it.
     *
     * @param resource $control
     * @param resource $results
     */
    public static function runWorker(int $number, string $path, string $secret, string $id, $control, $results): void
    {
        try {
            $store = new KeyStore($path, pepper: self::PEPPER, shared: true);
            fwrite($results, "before {$store->verify($secret)->id}\n");
            if (fgets($control) === "revoke\n") {
                fwrite($results, 'revoked ' . var_export($store->revoke($id), true) . "\n");
                fgets($control);
            }
            try {
                $store->verify($secret);
                $after = 'accepted';
            } catch (UnauthorizedException $refused) {
                $after = $refused->getReason();
            }
            fwrite($results, "after $after\n");
            $store->close();
        } catch (\Throwable $error) { // reported to the parent, which fails the test
            fwrite($results, 'error ' . str_replace("\n", ' ', get_class($error) . ': ' . $error->getMessage()) . "\n");
        }
    }

    /** @return list<array{control: resource, results: resource, wait: callable}> */
    private function startWorkers(string $secret, string $id): array
    {
        $workers = [];
        for ($number = 0; $number < self::WORKERS; $number++) {
            if (function_exists('pcntl_fork')) {
                [$control, $childControl] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
                [$results, $childResults] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
                $pid = pcntl_fork();
                if ($pid === 0) {
                    self::runWorker($number, $this->path, $secret, $id, $childControl, $childResults);
                    exit(0);
                }
                fclose($childControl);
                fclose($childResults);
                $wait = function () use ($pid): int {
                    pcntl_waitpid($pid, $status);
                    return pcntl_wexitstatus($status);
                };
            } else {
                $script = 'require ' . var_export(__DIR__ . '/bootstrap.php', true) . ';'
                    . 'ApiKeys\Tests\MultiprocessTest::runWorker((int) $argv[1], $argv[2], $argv[3], $argv[4], STDIN, STDOUT);';
                $process = proc_open(
                    [PHP_BINARY, '-r', $script, (string) $number, $this->path, $secret, $id],
                    [0 => ['pipe', 'r'], 1 => ['pipe', 'w']],
                    $pipes,
                );
                [$control, $results] = $pipes;
                $wait = fn (): int => proc_close($process);
            }
            $workers[] = ['control' => $control, 'results' => $results, 'wait' => $wait];
        }
        return $workers;
    }

    /** @param resource $results */
    private function readStep($results, string $step): string
    {
        $line = fgets($results);
        $this->assertNotSame(false, $line, "a worker died before reporting \"$step\"");
        [$got, $value] = explode(' ', rtrim((string) $line, "\n"), 2) + [1 => ''];
        $this->assertSame($step, $got, "worker said: $line");
        return $value;
    }

    public function testARevocationInOneWorkerIsSeenByEveryOther(): void
    {
        $parent = $this->openStore();
        $key = $parent->generate('Shared', env: 'prod');
        $workers = $this->startWorkers($key->secret(), $key->id());
        try {
            foreach ($workers as $worker) {
                $this->assertSame($key->id(), $this->readStep($worker['results'], 'before'));
            }
            fwrite($workers[self::REVOKER]['control'], "revoke\n");
            $this->assertSame('true', $this->readStep($workers[self::REVOKER]['results'], 'revoked'));
            foreach ($workers as $worker) {
                fwrite($worker['control'], "check\n");
            }
            foreach ($workers as $number => $worker) {
                $this->assertSame('revoked', $this->readStep($worker['results'], 'after'), "worker $number");
            }
        } finally {
            foreach ($workers as $worker) {
                fclose($worker['control']);
                $exits[] = ($worker['wait'])();
            }
        }
        $this->assertSame(array_fill(0, self::WORKERS, 0), $exits);
        // The parent, which did nothing, sees it too.
        $this->assertSame('revoked', $this->outcome(fn () => $parent->verify($key->secret())));
    }
}
