<?php

declare(strict_types=1);

namespace ApiKeys;

/** Status numbers of the C ABI (ffi/README.md): stable, never reused. */
final class Status
{
    public const OK = 0;
    public const NULL_ARGUMENT = 1;
    public const INVALID_ARGUMENT = 2;
    public const UNKNOWN_KEY = 3;
    public const MALFORMED = 100;
    public const NOT_FOUND = 101;
    public const REVOKED = 102;
    public const EXPIRED = 103;
    public const INSUFFICIENT_SCOPE = 104;
    public const BAD_HEADER = 105;
    public const LOCKED = 200;
    public const CORRUPTED = 201;
    public const WRONG_PEPPER = 202;
    public const USED_AFTER_FORK = 203;
    public const IO = 204;
    public const STORAGE = 205;
    public const UNSUPPORTED_VERSION = 206;
    public const RANDOM = 207;
    public const PERMISSION_DENIED = 208;
    public const DATABASE_UNAVAILABLE = 209;
    public const PANIC = 900;

    public const OPEN_SHARED = 1;

    /** APIKEYS_ID_SIZE: the id buffer of apikeys_key_check (16 characters and a NUL). */
    public const ID_SIZE = 17;

    /** status_filter of apikeys_key_list, by the names list() takes. */
    public const LIST_FILTERS = ['all' => 0, 'active' => 1, 'revoked' => 2, 'expired' => 3];
    /** status field of apikeys_key_info, by number. */
    public const KEY_STATUSES = [0 => 'active', 1 => 'revoked', 2 => 'expired'];
}
