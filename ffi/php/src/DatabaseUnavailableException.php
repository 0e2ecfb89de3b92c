<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * The PostgreSQL server cannot be reached, or this machine could not confirm
 * within its revocation bound that its keys are current. Never a verdict on
 * the key: answer 500, not 401.
 */
class DatabaseUnavailableException extends StorageException
{
}
