<?php
// Autoloading for the tests, without composer: ApiKeys\ from src/,
// ApiKeys\Tests\ from tests/. Used by run.php and by phpunit (phpunit.xml.dist).

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    $roots = ['ApiKeys\\Tests\\' => __DIR__ . '/', 'ApiKeys\\' => dirname(__DIR__) . '/src/'];
    foreach ($roots as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
