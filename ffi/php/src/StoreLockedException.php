<?php

declare(strict_types=1);

namespace ApiKeys;

/** Another process holds the file in exclusive mode: use shared mode. */
class StoreLockedException extends ApiKeysException
{
}
