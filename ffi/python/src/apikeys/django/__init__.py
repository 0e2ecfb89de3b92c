"""Django: settings, the process's store, and `manage.py apikeys`.

```python
# settings.py
INSTALLED_APPS = [..., "rest_framework", "apikeys.django"]
APIKEYS = {
    "PATH": "/var/lib/myapp/keys.redb",
    "PEPPER": os.environ["APIKEYS_PEPPER"],
    # "SHARED": True,   the default: gunicorn / uWSGI run several workers
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.drf.ApiKeyAuthentication"],
}
```

`manage.py apikeys generate --name N [--env E] [--scope S]... [--owner O]`,
`manage.py apikeys list [--status S] [--json]` and `manage.py apikeys revoke ID`
work on that store (alongside running workers in shared mode). The Django REST
framework classes are in `apikeys.drf`.
"""

from __future__ import annotations

from typing import Any, Dict

from ..process import shared_store
from ..store import KeyStore



def settings() -> Dict[str, Any]:
    """The APIKEYS setting, checked: PATH required, PEPPER and SHARED optional."""
    from django.conf import settings as django_settings
    from django.core.exceptions import ImproperlyConfigured

    configured = getattr(django_settings, "APIKEYS", None)
    if not isinstance(configured, dict) or not configured.get("PATH"):
        raise ImproperlyConfigured('apikeys: set APIKEYS = {"PATH": "/path/to/keys.redb", ...} in the settings')
    unknown = set(configured) - {"PATH", "PEPPER", "SHARED"}
    if unknown:
        raise ImproperlyConfigured(f"apikeys: unknown APIKEYS settings {sorted(unknown)}: PATH, PEPPER, SHARED")
    return {
        "path": configured["PATH"],
        "pepper": configured.get("PEPPER"),
        "shared": bool(configured.get("SHARED", True)),
    }


def get_store() -> KeyStore:
    """This worker process's store, as configured in settings.APIKEYS."""
    return shared_store(**settings())
