<?php

declare(strict_types=1);

namespace ApiKeys;

/** A bug in libapikeys: it panicked, caught it and reported it. */
class NativePanicException extends ApiKeysException
{
}
