<?php
// opcache.preload script (bin/apikeys-php-ini prints the settings):
//
// - loads apikeys.h into the FFI scope "APIKEYS", unless ffi.preload did
//   (a master started as root, whose preload runs under
//   opcache.preload_user, where PHP refuses FFI::load()); FFI_LIB is the
//   library this package carries, else APIKEYS_LIB (read at preload time,
//   from the master's environment), else the system loader's;
// - preloads the package's classes: under ffi.enable=preload, PHP allows
//   FFI::scope() and the other FFI calls only from preloaded code.
//
// Requests then reach the library through FFI::scope('APIKEYS'), which
// ApiKeys\Library uses whenever it exists. Never open a store here: a store
// opened in the master would be shared by every worker across fork().

declare(strict_types=1);

require_once __DIR__ . '/src/ApiKeysException.php';
require_once __DIR__ . '/src/LibraryNotFoundException.php';
require_once __DIR__ . '/src/Library.php';

\ApiKeys\Library::preload();
\ApiKeys\Library::preloadClasses();
