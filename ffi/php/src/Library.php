<?php

declare(strict_types=1);

namespace ApiKeys;

use FFI;

/**
 * Finds and loads libapikeys.
 *
 * Under PHP-FPM (ffi.enable=preload, the default) FFI works only from
 * opcache.preload: preload.php loads apikeys.h into the "APIKEYS" scope and
 * every request uses FFI::scope('APIKEYS'). On the command line, where FFI
 * is allowed, the library is loaded with FFI::cdef instead, from
 * APIKEYS_LIB, else this package's directory, else the Cargo workspace's
 * target/release, else the system loader.
 */
final class Library
{
    public const ENV_VAR = 'APIKEYS_LIB';
    public const SCOPE = 'APIKEYS';
    public const LIBRARY_FILE = PHP_OS_FAMILY === 'Darwin' ? 'libapikeys.dylib' : 'libapikeys.so';

    private static ?FFI $ffi = null;

    public static function ffi(): FFI
    {
        return self::$ffi ??= self::load();
    }

    /** The flattened header shipped with this package (FFI::load format). */
    public static function headerPath(): string
    {
        return dirname(__DIR__) . '/apikeys.h';
    }

    /** The header's declarations without the FFI_SCOPE / FFI_LIB lines, for FFI::cdef. */
    public static function declarations(): string
    {
        $header = file_get_contents(self::headerPath());
        if ($header === false) {
            throw new LibraryNotFoundException('cannot read ' . self::headerPath());
        }
        return preg_replace('/^#define FFI_(SCOPE|LIB) .*$/m', '', $header);
    }

    /** @return list<string> where the library is looked for, in order; APIKEYS_LIB alone when set */
    public static function candidatePaths(): array
    {
        $explicit = getenv(self::ENV_VAR);
        if (is_string($explicit) && $explicit !== '') {
            return [$explicit];
        }
        $paths = [dirname(__DIR__) . '/' . self::LIBRARY_FILE];
        $target = getenv('CARGO_TARGET_DIR');
        if (is_string($target) && $target !== '') {
            $paths[] = "$target/release/" . self::LIBRARY_FILE;
        }
        for ($dir = __DIR__; dirname($dir) !== $dir; $dir = dirname($dir)) {
            // A workspace root has both a Cargo.toml and the crate's ffi/ folder.
            if (is_file("$dir/Cargo.toml") && is_dir("$dir/ffi")) {
                $paths[] = "$dir/target/release/" . self::LIBRARY_FILE;
                break;
            }
        }
        $paths[] = self::LIBRARY_FILE; // the system loader: LD_LIBRARY_PATH, ld.so.cache
        return $paths;
    }

    /**
     * For opcache.preload (see preload.php): loads the header into the
     * APIKEYS scope. FFI_LIB names libapikeys.so for the system loader;
     * when APIKEYS_LIB is set, a copy naming that path is loaded instead.
     */
    public static function preload(): FFI
    {
        $header = self::headerPath();
        $explicit = getenv(self::ENV_VAR);
        if (is_string($explicit) && $explicit !== '') {
            $text = preg_replace(
                '/^#define FFI_LIB .*$/m',
                '#define FFI_LIB ' . json_encode($explicit, JSON_UNESCAPED_SLASHES),
                (string) file_get_contents($header),
            );
            $header = tempnam(sys_get_temp_dir(), 'apikeys-h');
            file_put_contents($header, $text);
        }
        try {
            $ffi = FFI::load($header);
        } finally {
            if ($header !== self::headerPath()) {
                @unlink($header);
            }
        }
        if ($ffi === null) {
            throw new LibraryNotFoundException('FFI::load(' . self::headerPath() . ') failed; set '
                . self::ENV_VAR . ' or put ' . self::LIBRARY_FILE . ' where the system loader finds it');
        }
        return $ffi;
    }

    private static function load(): FFI
    {
        try {
            return FFI::scope(self::SCOPE); // preloaded: the only way under PHP-FPM
        } catch (FFI\Exception) {
            // not preloaded: load it here (allowed on the command line)
        }
        $declarations = self::declarations();
        $tried = [];
        foreach (self::candidatePaths() as $path) {
            $bareName = !str_contains($path, '/');
            if (!$bareName && !file_exists($path)) {
                $tried[] = "$path (no such file)";
                continue;
            }
            try {
                return FFI::cdef($declarations, $path);
            } catch (FFI\Exception $e) {
                $tried[] = "$path ({$e->getMessage()})";
            }
        }
        $explicit = getenv(self::ENV_VAR);
        $hint = is_string($explicit) && $explicit !== ''
            ? self::ENV_VAR . "=\"$explicit\" does not name a loadable libapikeys"
            : 'set ' . self::ENV_VAR . ' to the path of ' . self::LIBRARY_FILE
                . ' (build it with `cargo build -p apikeys-ffi --release`), or preload it (preload.php)';
        throw new LibraryNotFoundException("cannot load libapikeys: $hint; tried: " . implode('; ', $tried));
    }

    /** A NUL-terminated C string as a PHP string; null for NULL. */
    public static function string(mixed $pointer): ?string
    {
        if ($pointer === null || is_string($pointer)) {
            return $pointer;
        }
        return FFI::isNull($pointer) ? null : FFI::string($pointer);
    }
}
