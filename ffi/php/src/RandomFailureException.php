<?php

declare(strict_types=1);

namespace ApiKeys;

/** The operating system's random generator failed. */
class RandomFailureException extends ApiKeysException
{
}
