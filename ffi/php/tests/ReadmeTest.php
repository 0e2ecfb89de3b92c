<?php

declare(strict_types=1);

namespace ApiKeys\Tests;

use ApiKeys\Library;

/**
 * The README's PHP blocks parse (`php -l`), its ini blocks are what
 * bin/apikeys-php-ini prints (paths aside), and the classes it names exist.
 * The FPM block itself runs in servers/fpm-test.php (servers/app).
 */
final class ReadmeTest extends ApiKeysTestCase
{
    private static function readme(): string
    {
        return (string) file_get_contents(dirname(__DIR__) . '/README.md');
    }

    /** @return list<string> */
    private static function blocks(string $language): array
    {
        preg_match_all('/```' . $language . '\n(.*?)```/s', self::readme(), $matches);
        return $matches[1];
    }

    public function testEveryPhpBlockParses(): void
    {
        $blocks = self::blocks('php');
        $this->assertTrue(count($blocks) >= 4, 'the README has its PHP blocks');
        foreach ($blocks as $number => $code) {
            $file = $this->dir . "/block$number.php";
            file_put_contents($file, str_starts_with($code, '<?php') ? $code : "<?php\n$code");
            exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($file) . ' 2>&1', $output, $exit);
            $this->assertSame(0, $exit, "block $number:\n$code\n" . implode("\n", $output));
        }
    }

    public function testTheIniBlocksAreWhatTheCommandPrints(): void
    {
        $printed = [];
        foreach (['--root-master --user www-data --header ' . escapeshellarg($this->dir . '/apikeys.fpm.h'), '--non-root'] as $options) {
            $ini = (string) shell_exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(dirname(__DIR__) . '/bin/apikeys-php-ini') . " $options");
            // The README shows an application installed in /srv/app.
            $printed[] = preg_replace('~=(/\S*/)?(apikeys\.fpm\.h|preload\.php)$~m', '=/srv/app/vendor/apikeys/apikeys/$2', $ini);
        }
        $this->assertSame($printed, self::blocks('ini'));
    }

    public function testTheClassesItNamesExist(): void
    {
        require_once '/usr/share/php/Illuminate/autoload.php';
        preg_match_all('/ApiKeys\\\\[A-Za-z0-9\\\\]+/', self::readme(), $names);
        foreach (array_unique($names[0]) as $name) {
            $name = rtrim($name, '\\');
            if ($name === 'ApiKeys\\Psr15\\ApiKeyMiddleware') {
                // Loading it needs PSR-15's interfaces (Psr15MiddlewareTest loads them).
                $this->assertTrue(is_file(dirname(__DIR__) . '/src/Psr15/ApiKeyMiddleware.php'));
                continue;
            }
            $this->assertTrue(class_exists($name) || interface_exists($name) || in_array($name, ['ApiKeys\\Laravel', 'ApiKeys\\Psr15'], true),
                "README names $name");
        }
        $this->assertTrue(is_file(Library::headerPath()));
    }
}
