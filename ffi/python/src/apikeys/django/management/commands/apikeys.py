"""`manage.py apikeys generate|list|revoke`: the store of settings.APIKEYS.

It opens the store for the command's duration (in shared mode unless
APIKEYS["SHARED"] is False, so it runs beside the serving workers) and
closes it, flushing, before returning.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apikeys import ApiKeysError, KeyInfo, KeyStore, UnknownKey
from apikeys.django import settings

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise CommandError(f"--expires-in {text!r}: expected a number and a unit, such as 90d, 12h, 30m")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _when(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _as_json(info: KeyInfo) -> dict:
    return {
        "id": info.id,
        "name": info.name,
        "hint": info.hint,
        "env": info.env,
        "scopes": list(info.scopes),
        "owner": info.owner,
        "status": info.status,
        "created_at": _when(info.created_at),
        "expires_at": _when(info.expires_at),
        "revoked_at": _when(info.revoked_at),
        "last_used": _when(info.last_used),
        "use_count": info.use_count,
        "rejected_count": info.rejected_count,
    }


class Command(BaseCommand):
    help = "Generate, list and revoke the API keys of the store in settings.APIKEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="generate|list|revoke")
        generate = actions.add_parser("generate", help="create a key and print it once")
        generate.add_argument("--name", required=True)
        generate.add_argument("--env")
        generate.add_argument("--scope", action="append", default=[], help="repeatable: --scope contacts:read")
        generate.add_argument("--owner")
        generate.add_argument("--expires-in", help="such as 90d, 12h, 30m")
        generate.add_argument("--json", action="store_true")
        listing = actions.add_parser("list", help="keys with their usage")
        listing.add_argument("--status", default="all", choices=["all", "active", "revoked", "expired"])
        listing.add_argument("--json", action="store_true")
        revoke = actions.add_parser("revoke", help="revoke a key by its id")
        revoke.add_argument("id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with KeyStore(**settings()) as store:
                getattr(self, "_" + options["action"])(store, options)
        except UnknownKey as unknown:
            raise CommandError(f"no key has this id: {unknown.detail}") from None
        except ApiKeysError as failure:
            raise CommandError(f"{type(failure).__name__}: {failure.detail}") from None

    def _generate(self, store: KeyStore, options: dict) -> None:
        expires_at = None
        if options["expires_in"]:
            expires_at = datetime.now(timezone.utc) + _duration(options["expires_in"])
        key = store.generate(
            options["name"], env=options["env"], scopes=options["scope"], owner=options["owner"], expires_at=expires_at
        )
        if options["json"]:
            self.stdout.write(json.dumps(dict(_as_json(key.info), key=key.secret)))
        else:
            self.stdout.write(f'{key.secret}\tid={key.id} name="{key.info.name}"')
        self.stderr.write("warning: copy the key now: it is not stored and will not be shown again.")

    def _list(self, store: KeyStore, options: dict) -> None:
        keys = store.list(status=options["status"])
        if options["json"]:
            self.stdout.write(json.dumps([_as_json(info) for info in keys]))
            return
        for info in keys:
            last_used = _when(info.last_used) or "never"
            scopes = " ".join(info.scopes) or "-"
            self.stdout.write(
                f"{info.id}  {info.status:<7}  {info.hint:<24}  {info.name}  scopes={scopes}"
                f"  uses={info.use_count}  last_used={last_used}"
            )

    def _revoke(self, store: KeyStore, options: dict) -> None:
        newly = store.revoke(options["id"])
        self.stdout.write(f"revoked {options['id']}" if newly else f"{options['id']} was already revoked")
