<?php

declare(strict_types=1);

namespace ApiKeys;

/** A bad argument: empty or oversize name, bad scope, invalid UTF-8... */
class InvalidArgumentException extends ApiKeysException
{
}
