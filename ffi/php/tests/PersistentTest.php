<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\KeyStore;
use ApiKeys\StorageException;
use ApiKeys\StoreClosedException;
use ApiKeys\UsedAfterForkException;
use ApiKeys\WrongPepperException;

/**
 * Persistent stores (KeyStore::shared(), persistent: true): the library
 * keeps one open handle per process for each path, pepper and mode, as
 * PHP-FPM workers need (PHP frees everything between requests); close()
 * lets go of the object only; a forked child opens its own; a process that
 * exits normally has its usage flushed.
 */
final class PersistentTest extends ApiKeysTestCase
{
    public function testTheCommandLineIsNotPersistentByDefault(): void
    {
        $store = $this->openStore();
        $this->assertFalse($store->persistent);
        $store->close();
    }

    public function testEveryOpenWithTheSameArgumentsReusesTheProcesssStore(): void
    {
        $before = KeyStore::persistentOpens();
        $first = KeyStore::shared($this->path, self::PEPPER);
        $this->assertTrue($first->persistent);
        $this->assertTrue($first->shared);
        $key = $first->generate('persistent', env: 'prod');
        $first->close();
        $this->assertTrue($first->isClosed());
        for ($request = 0; $request < 50; $request++) {
            // What each request of an FPM worker does.
            $store = new KeyStore($this->path, pepper: self::PEPPER, shared: true, persistent: true);
            $this->assertSame($key->id(), $store->verifyId($key->secret()));
            unset($store);
        }
        $this->assertSame($before + 1, KeyStore::persistentOpens(), 'opened once');
        // The uses are all there, counted by the one handle.
        $this->assertSame(50, KeyStore::shared($this->path, self::PEPPER)->list()[0]->useCount);
    }

    public function testAnotherPepperIsRefusedAndOpensNothing(): void
    {
        $key = KeyStore::shared($this->path, self::PEPPER)->generate('x')->secret();
        $before = KeyStore::persistentOpens();
        // A persistent store opens at its first use: that is where a wrong
        // pepper is refused, as a store failure (500) whatever the request
        // presented, never as a refused key (401).
        foreach (['another pepper', null] as $pepper) {
            $store = KeyStore::shared($this->path, $pepper);
            $this->assertFalse($store->isClosed());
            foreach (["Bearer $key", 'Bearer ' . $this->unknownKey(), 'Basic x', null] as $header) {
                $this->assertThrows(WrongPepperException::class, fn () => $store->verifyHeaderId($header));
            }
            $this->assertThrows(WrongPepperException::class, fn () => $store->verifyId($key));
            $this->assertThrows(WrongPepperException::class, fn () => $store->isValid($key));
            $this->assertThrows(WrongPepperException::class, fn () => $store->list());
            $this->assertThrows(WrongPepperException::class, fn () => (new KeyStore($this->path, $pepper, shared: true, persistent: true))->generate('y'));
        }
        $this->assertSame($before, KeyStore::persistentOpens());
        $this->assertCount(1, KeyStore::shared($this->path, self::PEPPER)->list(), 'nothing written');
    }

    public function testAPersistentStoreOpensAtItsFirstUseAndOnlyOnce(): void
    {
        $key = KeyStore::shared($this->path, self::PEPPER)->generate('first use');
        $before = KeyStore::persistentOpens();
        // What each request of an FPM worker does: the first call of each
        // request's object finds the process's handle and verifies in one
        // call into the library.
        for ($request = 0; $request < 20; $request++) {
            $store = KeyStore::shared($this->path, self::PEPPER);
            $this->assertSame($key->id(), $store->verifyHeaderId('Bearer ' . $key->secret()));
            $this->assertSame($key->id(), $store->verifyHeaderId('Bearer ' . $key->secret()), 'then through the handle');
        }
        $this->assertSame($before, KeyStore::persistentOpens(), 'the handle the generate opened');
        $this->assertSame(40, KeyStore::shared($this->path, self::PEPPER)->list()[0]->useCount);
        // A missing file: refused at first use, tried again by the next call.
        $missing = KeyStore::shared($this->dir . '/missing/keys.redb', self::PEPPER);
        $this->assertThrows(StorageException::class, fn () => $missing->verifyHeaderId('Bearer ' . $key->secret()));
        $this->assertThrows(StorageException::class, fn () => $missing->verifyHeaderId('Bearer ' . $key->secret()));
        $missing->close();
        $this->assertTrue($missing->isClosed());
        $this->assertThrows(StoreClosedException::class, fn () => $missing->verifyHeaderId('Bearer ' . $key->secret()));
        $this->assertThrows(StoreClosedException::class, fn () => $missing->list());
    }

    public function testAProcessMakingManyStoresKeepsOnlyTheDistinctOnesToOpen(): void
    {
        $key = KeyStore::shared($this->path, self::PEPPER)->generate('many')->secret();
        $toOpen = new \ReflectionProperty(KeyStore::class, 'toOpen');
        $before = count($toOpen->getValue()); // other tests' stores, in this process
        // A long-running script asking for its store per job.
        for ($job = 0; $job < 1000; $job++) {
            $store = KeyStore::shared($this->path, self::PEPPER);
            if ($job % 100 === 0) {
                $this->assertTrue($store->isValid($key));
            }
        }
        $after = count($toOpen->getValue());
        $this->assertTrue($after <= max($before, 16) + 1, "one slot per distinct store past the first few: $before, then $after");
        $other = KeyStore::shared($this->dir . '/other-store.redb', self::PEPPER);
        $this->assertSame([], $other->list(), 'a distinct store still gets its own slot');
        $this->assertTrue(KeyStore::shared($this->path, self::PEPPER)->isValid($key));
    }

    public function testTheStoreNotYetOpenedShowsNoPepper(): void
    {
        $pepper = 'a pepper that must not show ' . bin2hex(random_bytes(8));
        (new KeyStore($this->dir . '/other.redb', $pepper))->close(); // creates the file with that pepper
        $store = KeyStore::shared($this->dir . '/other.redb', $pepper);
        ob_start();
        var_dump($store);
        debug_zval_dump($store);
        $shown = ob_get_clean() . print_r($store, true) . var_export($store, true) . json_encode((array) $store)
            . json_encode(get_object_vars($store));
        $this->assertStringNotContainsString($pepper, $shown);
        $this->assertThrows(\Exception::class, fn () => serialize($store));
        $this->assertSame([], $store->list(), 'and it opens with it');
        $this->assertStringNotContainsString($pepper, print_r($store, true) . var_export($store, true));
    }

    public function testAForkedChildOpensItsOwnStoreAndCannotUseTheParents(): void
    {
        if (!function_exists('pcntl_fork')) {
            $this->fail('this test needs pcntl (Debian: built into php-cli)');
        }
        $parent = KeyStore::shared($this->path, self::PEPPER);
        $key = $parent->generate('forked');
        [$report, $childEnd] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
        $pid = pcntl_fork();
        if ($pid === 0) {
            fclose($report);
            $lines = ['opens ' . KeyStore::persistentOpens()];
            try {
                $parent->verifyId($key->secret());
                $lines[] = 'parent handle accepted';
            } catch (UsedAfterForkException) {
                $lines[] = 'parent handle refused';
            }
            $child = KeyStore::shared($this->path, self::PEPPER);
            $lines[] = 'child ' . $child->verifyId($key->secret());
            $lines[] = 'opens ' . KeyStore::persistentOpens();
            fwrite($childEnd, implode("\n", $lines) . "\n");
            fclose($childEnd);
            // A normal exit: the library's exit hook flushes the child's use.
            exit(0);
        }
        fclose($childEnd);
        $lines = explode("\n", trim((string) stream_get_contents($report)));
        pcntl_waitpid($pid, $status);
        $this->assertSame(0, pcntl_wexitstatus($status));
        $this->assertSame(['opens 0', 'parent handle refused', 'child ' . $key->id(), 'opens 1'], $lines);
        // The parent's store still serves, and the child's use reached the file.
        $this->assertSame($key->id(), $parent->verifyId($key->secret()));
        $parent->flush();
        $fresh = new KeyStore($this->path, pepper: self::PEPPER, shared: true, persistent: false);
        $this->assertSame(2, $fresh->list()[0]->useCount);
        $fresh->close();
    }

    public function testAProcessThatExitsFlushesItsPersistentStoresUsage(): void
    {
        $admin = new KeyStore($this->path, pepper: self::PEPPER, shared: true, persistent: false);
        $key = $admin->generate('worker');
        $script = 'require ' . var_export(__DIR__ . '/bootstrap.php', true) . ';'
            . '$s = ApiKeys\KeyStore::shared($argv[1], $argv[2]);'
            . 'for ($i = 0; $i < 9; $i++) { $s->isValid($argv[3]) || exit(3); }'
            . 'exit(0);'; // no flush, no close: the library's exit hook writes the uses
        $process = proc_open([PHP_BINARY, '-d', 'ffi.enable=1', '-r', $script, $this->path, self::PEPPER, $key->secret()],
            [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $output = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($process), $output);
        $this->assertSame(9, $admin->list()[0]->useCount);
        $admin->close();
    }
}
