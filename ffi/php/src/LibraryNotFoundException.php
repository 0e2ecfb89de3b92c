<?php

declare(strict_types=1);

namespace ApiKeys;

/** libapikeys could not be loaded; the message says where it looked and names APIKEYS_LIB. */
class LibraryNotFoundException extends ApiKeysException
{
}
