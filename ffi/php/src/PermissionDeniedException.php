<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * This process's user may not open (or create) the store file: getDetail()
 * names the file's owner and mode and this process's user. Under PHP-FPM,
 * the workers' user (www-data) must own the store, or share its group with
 * a group mode: `apikeys init --owner www-data` (README.md, "Ownership").
 */
class PermissionDeniedException extends ApiKeysException
{
}
