<?php

// The apikeys store of a Laravel application (publish or override as
// config/apikeys.php). Under PHP-FPM the store stays open in each worker
// between requests (a persistent handle the library keeps).
return [
    // The store file; its owner must be the workers' user (README.md, "Ownership").
    'path' => env('APIKEYS_DB', storage_path('apikeys.redb')),
    // The deployment pepper the store was created with (null: none).
    'pepper' => env('APIKEYS_PEPPER'),
    // Shared mode: every worker process opens the file (PHP-FPM).
    'shared' => true,
];
