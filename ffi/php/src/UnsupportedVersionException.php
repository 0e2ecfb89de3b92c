<?php

declare(strict_types=1);

namespace ApiKeys;

/** The store was written by a newer apikeys. */
class UnsupportedVersionException extends ApiKeysException
{
}
