"""Django REST framework: an authentication class (401) and a scope
permission class (403).

```python
from rest_framework.views import APIView
from apikeys.drf import ApiKeyAuthentication, HasScope, require_scopes

class Contacts(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scopes = ["contacts:read"]          # or {"GET": [...], "POST": [...]}

    def get(self, request):
        return Response({"key": request.auth.id, "name": request.user.username})

# or, in a function view / without view attributes:
#   permission_classes = [require_scopes("contacts:read")]
```

`request.auth` is the VerifiedKey; `request.user` an `ApiKeyUser` (an
authenticated, user-like object: `.key`, `.pk` and `.id` the key id,
`.username` the key's name, `.owner`). The store is settings.APIKEYS's,
opened once per worker process (`apikeys.django.get_store`).

Answers, with the exact JSON bodies the JSONRenderer writes: a missing,
malformed, unknown, revoked or expired key is 401 with `WWW-Authenticate:
Bearer` (from `authenticate_header`); a valid key without the scope is 403
(`WWW-Authenticate: Bearer error="insufficient_scope"`); a store failure is
500. A request with no `Authorization` header, or another scheme, is left to
the next authentication class; `HasScope` then answers the 401.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Type

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .store import HttpAnswer, KeyStore, VerifiedKey
from .web import Authenticator, StoreSource, forbidden, unauthorized

__all__ = ["ApiKeyAuthentication", "ApiKeyUser", "HasScope", "require_scopes"]

BEARER = "Bearer"


def _exact(answer: HttpAnswer) -> dict:
    # A dict given to APIException passes through _get_error_details, which
    # turns `false` into the string "False": set it after construction.
    return json.loads(answer.body)


class NotAuthenticatedByKey(exceptions.NotAuthenticated):
    """401 with the exact body; DRF adds WWW-Authenticate from authenticate_header."""

    def __init__(self) -> None:
        super().__init__()
        self.detail = _exact(unauthorized())  # type: ignore[assignment]


class KeyRefused(exceptions.AuthenticationFailed):
    """401 for a presented key that is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.detail = _exact(unauthorized())  # type: ignore[assignment]


class ScopeMissing(exceptions.PermissionDenied):
    """403 for a valid key lacking a required scope."""

    auth_header = 'Bearer error="insufficient_scope"'

    def __init__(self) -> None:
        super().__init__()
        self.detail = _exact(forbidden())  # type: ignore[assignment]


class StoreUnavailable(exceptions.APIException):
    """500: the store could not answer (never a 401)."""

    status_code = 500

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__()
        self.detail = _exact(answer)  # type: ignore[assignment]


class ApiKeyUser:
    """The `request.user` of a request authenticated by an API key.

    Not a Django user and not in the database: authenticated, never staff
    or superuser, without Django permissions. Authorize with the key's
    scopes (`HasScope`) or its owner.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: VerifiedKey) -> None:
        self.key = key

    @property
    def pk(self) -> str:
        return self.key.id

    @property
    def id(self) -> str:
        return self.key.id

    @property
    def username(self) -> str:
        return self.key.name

    @property
    def owner(self) -> Optional[str]:
        return self.key.owner

    def get_username(self) -> str:
        return self.key.name

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.id})"

    def __repr__(self) -> str:
        return f"<ApiKeyUser {self.key.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKeyUser) and other.key.id == self.key.id

    def __hash__(self) -> int:
        return hash(self.key.id)


def _settings_store() -> KeyStore:
    from .django import get_store

    return get_store()


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates `Authorization: Bearer <key>` against the store.

    Subclass and set `store` (a function returning a KeyStore) to use
    another store than settings.APIKEYS's.
    """

    store = staticmethod(_settings_store)

    def authenticate(self, request: Request) -> Optional[Tuple[ApiKeyUser, VerifiedKey]]:
        header = request.META.get("HTTP_AUTHORIZATION")
        words = header.split(None, 1) if header else ()
        if not words or words[0].lower() != "bearer":
            return None  # not ours to judge: another class may authenticate it
        outcome = type(self)._authenticator().check(header)
        if isinstance(outcome, HttpAnswer):
            if outcome.status == 401:
                raise KeyRefused()
            raise StoreUnavailable(outcome)
        return ApiKeyUser(outcome), outcome

    def authenticate_header(self, request: Request) -> str:
        return BEARER

    @classmethod
    def _authenticator(cls) -> Authenticator:
        # DRF makes an authentication object per request: the Authenticator
        # (and the key details it keeps) belongs to the class.
        found = cls.__dict__.get("_shared_authenticator")
        if found is None:
            found = Authenticator(StoreSource(store=cls.store))
            cls._shared_authenticator = found  # type: ignore[attr-defined]
        return found


def _required(view: Any, method: str) -> Sequence[str]:
    scopes = getattr(view, "required_scopes", None)
    if isinstance(scopes, dict):
        scopes = scopes.get(method, scopes.get("*", ()))
    if scopes is None:
        return ()
    if isinstance(scopes, str):
        return (scopes,)
    return tuple(scopes)


class HasScope(BasePermission):
    """Allows a request authenticated by an API key that holds every scope in
    the view's `required_scopes` (a list, or a dict by HTTP method with "*"
    for the others), with the core's wildcards (`*`, `contacts:*`).

    No key: 401. A key without a scope: 403.
    """

    scopes: Sequence[str] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, VerifiedKey):
            raise NotAuthenticatedByKey()
        for scope in tuple(self.scopes) + tuple(_required(view, request.method or "")):
            if not key.has_scope(scope):
                raise ScopeMissing()
        return True


def require_scopes(*scopes: str) -> Type[HasScope]:
    """A HasScope requiring these scopes whatever the view says:
    `permission_classes = [require_scopes("contacts:read")]`."""
    for scope in scopes:
        if not isinstance(scope, str):
            raise TypeError(f"scopes must be strings, not {type(scope).__name__}")
    fixed: List[str] = list(scopes)
    return type(f"HasScope_{'_'.join(fixed) or 'any'}", (HasScope,), {"scopes": tuple(fixed)})
