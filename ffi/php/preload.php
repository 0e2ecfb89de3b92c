<?php
// opcache.preload script: loads apikeys.h into the FFI scope "APIKEYS",
// honouring APIKEYS_LIB (read at preload time). For a PHP that does not
// start as root:
//
//   opcache.enable=1
//   opcache.preload=/path/to/ffi/php/preload.php
//
// A PHP-FPM master started as root needs opcache.preload_user, and PHP
// refuses FFI::load() with it: use ffi.preload=/path/to/ffi/php/apikeys.h
// instead (README.md). Either way, requests reach the library through
// FFI::scope('APIKEYS'), which ApiKeys\Library uses whenever it exists.

declare(strict_types=1);

require_once __DIR__ . '/src/Library.php';
require_once __DIR__ . '/src/ApiKeysException.php';
require_once __DIR__ . '/src/LibraryNotFoundException.php';

\ApiKeys\Library::preload();
