<?php
// A stand-in for PHPUnit\Framework\TestCase, loaded by run.php only when
// PHPUnit is not installed, so the tests run with nothing but the php CLI.
// It has the assertions these tests use, with PHPUnit's names and meaning.

declare(strict_types=1);

namespace PHPUnit\Framework;

class AssertionFailedError extends \Exception
{
}

abstract class TestCase
{
    public function __construct(private string $testName = '')
    {
    }

    public function getName(): string
    {
        return $this->testName;
    }

    protected function setUp(): void
    {
    }

    protected function tearDown(): void
    {
    }

    /** Runs one test method with its setUp and tearDown (run.php calls this). */
    final public function runMiniTest(): void
    {
        $this->setUp();
        try {
            $this->{$this->testName}();
        } finally {
            $this->tearDown();
        }
    }

    public static function fail(string $message = ''): never
    {
        throw new AssertionFailedError($message === '' ? 'failed' : $message);
    }

    private static function check(bool $holds, string $what, string $message): void
    {
        if (!$holds) {
            self::fail(($message !== '' ? "$message\n" : '') . $what);
        }
    }

    private static function show(mixed $value): string
    {
        $text = var_export($value, true);
        return strlen($text) > 300 ? substr($text, 0, 300) . '...' : $text;
    }

    public static function assertSame(mixed $expected, mixed $actual, string $message = ''): void
    {
        self::check($expected === $actual, 'expected ' . self::show($expected) . ', got ' . self::show($actual), $message);
    }

    public static function assertNotSame(mixed $expected, mixed $actual, string $message = ''): void
    {
        self::check($expected !== $actual, 'did not expect ' . self::show($actual), $message);
    }

    public static function assertEquals(mixed $expected, mixed $actual, string $message = ''): void
    {
        self::check($expected == $actual, 'expected ' . self::show($expected) . ', got ' . self::show($actual), $message);
    }

    public static function assertTrue(mixed $condition, string $message = ''): void
    {
        self::check($condition === true, 'expected true, got ' . self::show($condition), $message);
    }

    public static function assertFalse(mixed $condition, string $message = ''): void
    {
        self::check($condition === false, 'expected false, got ' . self::show($condition), $message);
    }

    public static function assertNull(mixed $actual, string $message = ''): void
    {
        self::check($actual === null, 'expected null, got ' . self::show($actual), $message);
    }

    public static function assertNotNull(mixed $actual, string $message = ''): void
    {
        self::check($actual !== null, 'expected a value, got null', $message);
    }

    public static function assertInstanceOf(string $expected, mixed $actual, string $message = ''): void
    {
        self::check($actual instanceof $expected, 'expected an instance of ' . $expected . ', got ' . get_debug_type($actual), $message);
    }

    public static function assertCount(int $expected, \Countable|iterable $haystack, string $message = ''): void
    {
        $count = is_countable($haystack) ? count($haystack) : iterator_count($haystack);
        self::check($count === $expected, "expected $expected elements, got $count", $message);
    }

    public static function assertStringStartsWith(string $prefix, string $string, string $message = ''): void
    {
        self::check(str_starts_with($string, $prefix), self::show($string) . ' does not start with ' . self::show($prefix), $message);
    }

    public static function assertStringContainsString(string $needle, string $haystack, string $message = ''): void
    {
        self::check(str_contains($haystack, $needle), self::show($haystack) . ' does not contain ' . self::show($needle), $message);
    }

    public static function assertStringNotContainsString(string $needle, string $haystack, string $message = ''): void
    {
        self::check(!str_contains($haystack, $needle), self::show($haystack) . ' contains ' . self::show($needle), $message);
    }

    public static function assertMatchesRegularExpression(string $pattern, string $string, string $message = ''): void
    {
        self::check(preg_match($pattern, $string) === 1, self::show($string) . " does not match $pattern", $message);
    }
}
