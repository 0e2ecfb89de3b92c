<?php
// opcache.preload script for PHP-FPM, where FFI is allowed only at preload
// time (ffi.enable=preload). In php.ini:
//
//   opcache.enable=1
//   opcache.preload=/path/to/ffi/php/preload.php
//   opcache.preload_user=www-data
//
// Requests then reach the library through FFI::scope('APIKEYS'), which
// ApiKeys\Library uses whenever it exists.

declare(strict_types=1);

require_once __DIR__ . '/src/Library.php';
require_once __DIR__ . '/src/ApiKeysException.php';
require_once __DIR__ . '/src/LibraryNotFoundException.php';

\ApiKeys\Library::preload();
