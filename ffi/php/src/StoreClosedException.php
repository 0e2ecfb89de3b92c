<?php

declare(strict_types=1);

namespace ApiKeys;

/** The store was closed; open a new one. */
class StoreClosedException extends ApiKeysException
{
}
