<?php

declare(strict_types=1);

namespace ApiKeys;

/** A handle opened before fork() was used in the child: open one per worker. */
class UsedAfterForkException extends ApiKeysException
{
}
