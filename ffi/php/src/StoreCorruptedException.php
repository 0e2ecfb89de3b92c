<?php

declare(strict_types=1);

namespace ApiKeys;

/** Not an apikeys store, or a damaged one. */
class StoreCorruptedException extends ApiKeysException
{
}
