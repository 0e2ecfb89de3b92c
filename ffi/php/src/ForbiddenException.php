<?php

declare(strict_types=1);

namespace ApiKeys;

/** A valid key without the required scope: HTTP 403. */
class ForbiddenException extends ApiKeysException
{
}
