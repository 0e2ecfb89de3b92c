<?php
// Runs every tests/*Test.php with the plain php CLI and prints
// "N passed, M failed"; exits 1 when any test failed. When PHPUnit is
// installed (Debian: apt-get install phpunit), `phpunit` runs the same tests.
//
// Usage: php tests/run.php [filter]   (filter: a substring of Class::method)

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';
if (!class_exists(\PHPUnit\Framework\TestCase::class)) {
    require __DIR__ . '/MiniUnit.php';
}

$filter = $argv[1] ?? '';
$files = glob(__DIR__ . '/*Test.php');
sort($files);
foreach ($files as $file) {
    require_once $file;
}

$passed = 0;
$failed = 0;
foreach (get_declared_classes() as $class) {
    $reflection = new ReflectionClass($class);
    if ($reflection->isAbstract() || !$reflection->isSubclassOf(\PHPUnit\Framework\TestCase::class)) {
        continue;
    }
    foreach ($reflection->getMethods(ReflectionMethod::IS_PUBLIC) as $method) {
        $label = $reflection->getShortName() . '::' . $method->getName();
        if (!str_starts_with($method->getName(), 'test') || ($filter !== '' && !str_contains($label, $filter))) {
            continue;
        }
        try {
            (new $class($method->getName()))->runMiniTest();
            $passed++;
            echo "ok   $label\n";
        } catch (Throwable $failure) {
            $failed++;
            echo "FAIL $label\n     " . get_class($failure) . ': '
                . str_replace("\n", "\n     ", $failure->getMessage()) . "\n"
                . '     at ' . $failure->getFile() . ':' . $failure->getLine() . "\n";
        }
    }
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 && $passed > 0 ? 0 : 1);
