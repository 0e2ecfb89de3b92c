<?php

declare(strict_types=1);

namespace ApiKeys;

/** Input/output or storage engine failure. */
class StorageException extends ApiKeysException
{
}
