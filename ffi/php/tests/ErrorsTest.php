<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\ApiKeysException;
use ApiKeys\KeyStore;
use ApiKeys\StoreCorruptedException;
use ApiKeys\StoreLockedException;
use ApiKeys\UsedAfterForkException;
use ApiKeys\WrongPepperException;

/** Store-level failures arrive as PHP exceptions with the library's detail. */
final class ErrorsTest extends ApiKeysTestCase
{
    public function testWrongPepperIsRefusedWithAClearError(): void
    {
        $store = $this->openStore(shared: false);
        $secret = $store->generate('Peppered')->secret();
        $store->close();
        $error = $this->assertThrows(WrongPepperException::class, fn () => new KeyStore($this->path, pepper: 'another pepper'));
        $this->assertSame(202, $error->getStatus());
        $this->assertMatchesRegularExpression('/pepper/i', $error->getDetail());
        // Nothing was lost: the right pepper still opens it and the key still works.
        $this->assertSame('Peppered', $this->openStore()->verify($secret)->name);
    }

    public function testAFileThatIsNotAStoreIsReportedCorrupted(): void
    {
        file_put_contents($this->path, str_repeat("this is a text file, not a redb database\n", 200));
        $error = $this->assertThrows(StoreCorruptedException::class, fn () => $this->openStore());
        $this->assertSame(201, $error->getStatus());
        $this->assertNotSame('', $error->getDetail());
        $this->assertInstanceOf(ApiKeysException::class, $error);
        $this->assertStringStartsWith('this is a text file', (string) file_get_contents($this->path), 'a refused file is left as it was');
    }

    public function testASecondProcessCannotOpenAnExclusiveStore(): void
    {
        // The holder is another php process (proc_open works with or without pcntl).
        $script = 'require ' . var_export(__DIR__ . '/bootstrap.php', true) . ';'
            . '$s = new ApiKeys\KeyStore($argv[1], pepper: $argv[2], shared: false);'
            . 'echo "open\n"; fgets(STDIN); $s->close();';
        $holder = proc_open(
            [PHP_BINARY, '-r', $script, $this->path, self::PEPPER],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes,
        );
        try {
            $line = fgets($pipes[1]);
            if ($line !== "open\n") { // the holder died: its stderr says why
                $this->fail('the holder did not open the store: ' . stream_get_contents($pipes[2]));
            }
            $error = $this->assertThrows(StoreLockedException::class, fn () => $this->openStore(shared: false));
            $this->assertSame(200, $error->getStatus());
            $this->assertMatchesRegularExpression('/shared/i', $error->getDetail(), 'the message should point to shared mode');
            $this->assertSame(500, KeyStore::httpAnswer($error)[0]);
        } finally {
            fwrite($pipes[0], "done\n");
            fclose($pipes[0]);
            $stderr = stream_get_contents($pipes[2]);
            $exit = proc_close($holder);
        }
        $this->assertSame(0, $exit, $stderr);
        $this->assertSame([], $this->openStore(shared: false)->list());
    }

    public function testAHandleUsedAfterForkThrowsInTheChild(): void
    {
        if (!function_exists('pcntl_fork')) {
            $this->fail('this test needs pcntl (php-cli on Debian has it built in)');
        }
        $store = $this->openStore();
        $key = $store->generate('Forked');
        [$parentEnd, $childEnd] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
        $pid = pcntl_fork();
        if ($pid === 0) {
            fclose($parentEnd);
            try {
                $store->verify($key->secret());
                $report = 'no error';
            } catch (UsedAfterForkException) {
                $report = 'UsedAfterFork';
            } catch (\Throwable $other) { // reported to the parent instead of hidden
                $report = get_class($other) . ': ' . $other->getMessage();
            }
            try {
                $store->close(); // frees the child's copy without touching the file
            } catch (\Throwable $other) {
                $report .= ' close: ' . $other->getMessage();
            }
            fwrite($childEnd, $report);
            fclose($childEnd);
            exit(0);
        }
        fclose($childEnd);
        $report = stream_get_contents($parentEnd);
        pcntl_waitpid($pid, $status);
        $this->assertSame('UsedAfterFork', $report);
        $this->assertSame($key->id(), $store->verify($key->secret())->id, "the parent's handle is untouched");
    }

    public function testAMissingLibraryNamesTheEnvironmentVariable(): void
    {
        $missing = $this->dir . '/nowhere/libapikeys.so';
        $script = 'require ' . var_export(__DIR__ . '/bootstrap.php', true) . '; ApiKeys\KeyStore::libraryVersion();';
        $process = proc_open(
            [PHP_BINARY, '-r', $script],
            [1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes,
            null,
            array_merge(getenv(), ['APIKEYS_LIB' => $missing]),
        );
        $output = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $exit = proc_close($process);
        $this->assertNotSame(0, $exit);
        $this->assertStringContainsString('LibraryNotFoundException', $output);
        $this->assertStringContainsString('APIKEYS_LIB', $output);
        $this->assertStringContainsString($missing, $output);
    }
}
