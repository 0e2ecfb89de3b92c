<?php

declare(strict_types=1);

namespace ApiKeys;

/** The store was created with another pepper. */
class WrongPepperException extends ApiKeysException
{
}
