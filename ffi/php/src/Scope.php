<?php

declare(strict_types=1);

namespace ApiKeys;

/**
 * Whether granted scopes cover a required one, as the core decides it
 * (src/scope.rs, scope_covers): `*` covers everything, `contacts:*` every
 * scope under `contacts:` (not `contacts:` itself), anything else only
 * itself. The required scope is matched literally. For checks on a key
 * already verified (Laravel's tokenCan); the tests compare it with the
 * library's verify on the same pairs.
 */
final class Scope
{
    /** @param list<string> $granted */
    public static function covers(array $granted, string $required): bool
    {
        foreach ($granted as $scope) {
            if ($scope === '*' || $scope === $required) {
                return true;
            }
            if (str_ends_with($scope, ':*')) {
                $prefix = substr($scope, 0, -1);
                if (str_starts_with($required, $prefix) && strlen($required) > strlen($prefix)) {
                    return true;
                }
            }
        }
        return false;
    }
}
