<?php

declare(strict_types=1);

namespace ApiKeys;

/** No key has this id (revoke, rotate) or this secret (revoke by key). */
class UnknownKeyException extends ApiKeysException
{
}
