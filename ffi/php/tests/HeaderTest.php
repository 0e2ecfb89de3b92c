<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\Library;
use FFI;

require_once dirname(__DIR__) . '/scripts/flatten-header.php';

/**
 * The flattened header (ffi/php/apikeys.h) is generated from
 * include/apikeys.h, is current, and loads both ways PHP loads it:
 * FFI::cdef on the command line, FFI::load + FFI::scope under opcache.preload.
 */
final class HeaderTest extends ApiKeysTestCase
{
    private static function repoHeader(): string
    {
        return dirname(__DIR__, 3) . '/include/apikeys.h';
    }

    private static function libraryPath(): string
    {
        foreach (Library::candidatePaths() as $path) {
            if (is_file($path)) {
                return realpath($path);
            }
        }
        self::fail('libapikeys not found: set APIKEYS_LIB');
    }

    public function testTheCommittedFlattenedHeaderIsCurrent(): void
    {
        $header = file_get_contents(self::repoHeader());
        $this->assertNotSame(false, $header, 'include/apikeys.h is missing');
        $this->assertSame(
            apikeys_flatten_header($header),
            file_get_contents(Library::headerPath()),
            'ffi/php/apikeys.h is stale: run php ffi/php/scripts/flatten-header.php',
        );
    }

    public function testTheFlattenedHeaderHasTheScopeAndLibraryLinesAndNoOtherDirective(): void
    {
        $lines = file(Library::headerPath(), FILE_IGNORE_NEW_LINES);
        $directives = array_values(array_filter($lines, fn ($line) => str_starts_with(ltrim($line), '#')));
        $this->assertSame(['#define FFI_SCOPE "APIKEYS"', '#define FFI_LIB "libapikeys.so"'], $directives);
    }

    public function testTheFlattenerRefusesWhatItCannotResolve(): void
    {
        foreach (["#if FOO\nint x;\n#endif\n", "#define APIKEYS_MAX 3\n", "#endif\n"] as $header) {
            $this->assertThrows(\RuntimeException::class, fn () => apikeys_flatten_declarations($header), $header);
        }
        // The C23 enum blocks cbindgen writes resolve to the C99 branch.
        $c23 = "enum e\n#if __STDC_VERSION__ >= 202311L\n  : uint32_t\n#endif\n { A = 1 };\n"
            . "#if __STDC_VERSION__ >= 202311L\ntypedef enum e e;\n#else\ntypedef uint32_t e;\n#endif\n";
        $this->assertSame("enum e\n { A = 1 };\ntypedef uint32_t e;\n", apikeys_flatten_declarations($c23));
    }

    public function testTheRepositoryHeaderLoadsUnchangedInCdef(): void
    {
        // The C ABI promises a header PHP's FFI::cdef takes as is (DESIGN.md).
        $ffi = FFI::cdef((string) file_get_contents(self::repoHeader()), self::libraryPath());
        $this->assertSame(KeyStoreVersion::fromFfi($ffi), \ApiKeys\KeyStore::libraryVersion());
    }

    public function testTheDeclarationsLoadWithCdef(): void
    {
        $ffi = FFI::cdef(Library::declarations(), self::libraryPath());
        $this->assertSame(KeyStoreVersion::fromFfi($ffi), \ApiKeys\KeyStore::libraryVersion());
    }

    /**
     * Runs a request script in a php process started with $options and
     * $environment, as PHP-FPM would run it after preloading. At request time
     * APIKEYS_LIB points nowhere, so only a preloaded scope reaches the library.
     *
     * @param list<string> $command the start of the command line (php binary, or a wrapper)
     * @param list<string> $options
     * @param array<string, string> $environment
     */
    private function assertARequestRunsThroughTheScope(array $command, array $options, array $environment, string $storeDir, string $packageDir = ''): void
    {
        $packageDir = $packageDir === '' ? dirname(__DIR__) : $packageDir;
        $script = 'require ' . var_export($packageDir . '/tests/bootstrap.php', true) . ';'
            . 'putenv("APIKEYS_LIB=/nonexistent/libapikeys.so");'
            . 'FFI::scope("APIKEYS");'
            . '$s = new ApiKeys\KeyStore($argv[1], shared: true);'
            . '$k = $s->generate("preloaded");'
            . 'echo $s->verifyHeader("Bearer " . $k->secret())->name, "\n";';
        $argv = [...$command, ...$options, '-r', $script, $storeDir . '/keys.redb'];
        $process = proc_open($argv, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, array_merge(getenv(), $environment));
        $output = stream_get_contents($pipes[1]);
        $errors = stream_get_contents($pipes[2]);
        $exit = proc_close($process);
        $this->assertSame(0, $exit, $output . $errors);
        $this->assertSame("preloaded\n", $output, $errors);
    }

    public function testFfiPreloadOfTheHeaderServesRequests(): void
    {
        // ffi.preload: the header's FFI_LIB "libapikeys.so" goes to the system loader.
        $this->assertARequestRunsThroughTheScope(
            [PHP_BINARY],
            ['-d', 'ffi.enable=preload', '-d', 'ffi.preload=' . Library::headerPath()],
            ['LD_LIBRARY_PATH' => dirname(self::libraryPath())],
            $this->dir,
        );
    }

    public function testOpcachePreloadOfPreloadPhpServesRequests(): void
    {
        // opcache.preload runs preload.php, which honours APIKEYS_LIB at
        // preload time. PHP refuses FFI::load() with opcache.preload_user,
        // which root needs, so as root the php child runs as nobody.
        $command = [PHP_BINARY];
        $storeDir = $this->dir;
        $packageDir = dirname(__DIR__);
        $library = self::libraryPath();
        if (function_exists('posix_geteuid') && posix_geteuid() === 0) {
            $setpriv = trim((string) shell_exec('command -v setpriv'));
            if ($setpriv === '') {
                $this->fail('running as root: this test needs setpriv (util-linux) to run php as nobody');
            }
            $command = [$setpriv, '--reuid=nobody', '--regid=nogroup', '--clear-groups', PHP_BINARY];
            $storeDir = $this->dir . '/nobody';
            mkdir($storeDir);
            chmod($this->dir, 0711);
            chmod($storeDir, 0777);
            // The checkout may sit where nobody cannot read (under /root):
            // give the child its own readable copy of the package and library.
            $packageDir = $storeDir . '/package';
            self::copyReadable(dirname(__DIR__), $packageDir);
            $library = $storeDir . '/libapikeys.so';
            copy(self::libraryPath(), $library);
            chmod($library, 0755);
        }
        try {
            $this->assertARequestRunsThroughTheScope(
                $command,
                ['-d', 'opcache.enable=1', '-d', 'opcache.enable_cli=1', '-d', 'opcache.preload=' . $packageDir . '/preload.php'],
                ['APIKEYS_LIB' => $library],
                $storeDir,
                $packageDir,
            );
        } finally {
            if ($storeDir !== $this->dir) {
                self::removeTree($storeDir);
            } else {
                foreach (glob("$storeDir/*") ?: [] as $file) {
                    unlink($file);
                }
            }
        }
    }

    /** Copies the package's PHP files and header, world-readable. */
    private static function copyReadable(string $from, string $to): void
    {
        mkdir($to, 0755);
        foreach (scandir($from) ?: [] as $name) {
            $source = "$from/$name";
            if ($name === '.' || $name === '..' || $name === 'vendor') {
                continue;
            }
            if (is_dir($source)) {
                self::copyReadable($source, "$to/$name");
            } else {
                copy($source, "$to/$name");
                chmod("$to/$name", 0644);
            }
        }
    }

    private static function removeTree(string $dir): void
    {
        foreach (scandir($dir) ?: [] as $name) {
            if ($name === '.' || $name === '..') {
                continue;
            }
            $path = "$dir/$name";
            is_dir($path) && !is_link($path) ? self::removeTree($path) : unlink($path);
        }
        rmdir($dir);
    }
}

/** Reads the version through a given FFI instance. */
final class KeyStoreVersion
{
    public static function fromFfi(FFI $ffi): string
    {
        return (string) Library::string($ffi->apikeys_version());
    }
}
