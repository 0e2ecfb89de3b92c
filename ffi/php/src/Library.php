<?php

declare(strict_types=1);

namespace ApiKeys;

use FFI;

/**
 * Finds and loads libapikeys.
 *
 * Under PHP-FPM (ffi.enable=preload, the default) FFI works only from
 * preloaded code: the header must be loaded into the "APIKEYS" scope at
 * startup (ffi.preload, or preload.php through opcache.preload), and this
 * package's classes must be preloaded too (preload.php), since PHP refuses
 * FFI::scope() and the other FFI calls from code that was not. On the
 * command line, where FFI is allowed, the library is loaded with FFI::cdef
 * instead. Either way it is looked for in APIKEYS_LIB, else this package's
 * directory (where the built package carries it), else the Cargo
 * workspace's target/release, else the system loader.
 */
final class Library
{
    public const ENV_VAR = 'APIKEYS_LIB';
    public const SCOPE = 'APIKEYS';
    public const LIBRARY_FILE = PHP_OS_FAMILY === 'Darwin' ? 'libapikeys.dylib' : 'libapikeys.so';

    private static ?FFI $ffi = null;
    private static ?string $loadedFrom = null;

    public static function ffi(): FFI
    {
        return self::$ffi ??= self::load();
    }

    /**
     * Where this request's library came from: the path FFI::cdef loaded,
     * or "FFI scope APIKEYS" when it was preloaded; null before the first use.
     */
    public static function loadedFrom(): ?string
    {
        return self::$loadedFrom;
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
     * APIKEYS scope, unless ffi.preload already did. FFI_LIB is the first
     * library of candidatePaths() that exists, by absolute path (a copy of
     * the header naming it is loaded), so the library this package carries
     * is found without APIKEYS_LIB.
     *
     * PHP refuses FFI::load() under opcache.preload_user (a master started
     * as root): there the scope must come from ffi.preload, with the header
     * that `bin/apikeys-php-ini --root-master` writes.
     */
    public static function preload(): FFI
    {
        try {
            return FFI::scope(self::SCOPE); // ffi.preload loaded it already
        } catch (FFI\Exception) {
        }
        $header = tempnam(sys_get_temp_dir(), 'apikeys-h');
        try {
            self::writeHeader($header, self::preferredLibrary());
            $ffi = FFI::load($header);
        } catch (\Error $refused) {
            // FFI\Exception, or the Error PHP throws under opcache.preload_user.
            throw new LibraryNotFoundException('FFI::load(' . self::headerPath() . ') failed: '
                . $refused->getMessage() . '. With opcache.preload_user (a master started as root), load the '
                . 'header with ffi.preload instead: `php bin/apikeys-php-ini --root-master --user USER` prints '
                . 'the settings.', null, $refused);
        } finally {
            @unlink($header);
        }
        if ($ffi === null) {
            throw new LibraryNotFoundException('FFI::load(' . self::headerPath() . ') failed; set '
                . self::ENV_VAR . ' or put ' . self::LIBRARY_FILE . ' where the system loader finds it');
        }
        return $ffi;
    }

    /**
     * Compiles and links this package's classes during opcache.preload, so
     * that their calls into FFI are allowed under ffi.enable=preload. Only
     * the classes of src/ itself: the framework integrations (src/Psr15,
     * src/Laravel) need interfaces that may not be loadable at preload time,
     * and need not be preloaded (they call FFI only through KeyStore).
     */
    public static function preloadClasses(): void
    {
        spl_autoload_register(static function (string $class): void {
            $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen(__NAMESPACE__) + 1)) . '.php';
            if (str_starts_with($class, __NAMESPACE__ . '\\') && is_file($file)) {
                require_once $file;
            }
        });
        foreach (glob(__DIR__ . '/*.php') ?: [] as $file) {
            $class = __NAMESPACE__ . '\\' . basename($file, '.php');
            class_exists($class) || interface_exists($class);
        }
    }

    /**
     * Writes the header with FFI_LIB naming $library: for ffi.preload and
     * FFI::load, which resolve FFI_LIB with dlopen() (a relative name from
     * the working directory, a bare name through the system loader).
     */
    public static function writeHeader(string $target, string $library): void
    {
        $text = preg_replace(
            '/^#define FFI_LIB .*$/m',
            '#define FFI_LIB ' . json_encode($library, JSON_UNESCAPED_SLASHES),
            (string) file_get_contents(self::headerPath()),
            1,
        );
        if (file_put_contents($target, $text) !== strlen($text)) {
            throw new LibraryNotFoundException("cannot write $target");
        }
    }

    /** The first library of candidatePaths() that exists, by absolute path; else the bare name. */
    public static function preferredLibrary(): string
    {
        $explicit = getenv(self::ENV_VAR);
        if (is_string($explicit) && $explicit !== '') {
            return $explicit;
        }
        foreach (self::candidatePaths() as $path) {
            if (str_contains($path, '/') && is_file($path)) {
                return (string) realpath($path);
            }
        }
        return self::LIBRARY_FILE;
    }

    private static function load(): FFI
    {
        try {
            $scope = FFI::scope(self::SCOPE); // preloaded: the only way under PHP-FPM
            self::$loadedFrom = 'FFI scope ' . self::SCOPE;
            return $scope;
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
                $ffi = FFI::cdef($declarations, $path);
                self::$loadedFrom = $path;
                return $ffi;
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
