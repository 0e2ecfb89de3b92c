"""Makes API keys with the real djangorestframework-api-key installed in this
interpreter (`APIKey.objects.create_key`, the library's own code and hasher),
in a throwaway SQLite database, and exports its table as CSV with a header,
the way `COPY rest_framework_api_key_apikey TO STDOUT CSV HEADER` does, plus
the keys the clients were given, one a line (for the test only).

    python make_rows.py OUT_DIR COUNT [HASHER]
        # writes OUT_DIR/apikey.csv and OUT_DIR/keys.txt

HASHER is a class of django.contrib.auth.hashers, such as
Argon2PasswordHasher: PASSWORD_HASHERS names it alone, so that
djangorestframework-api-key 1.x and 2.x, which hash with make_password, use
it with its default costs. Without it, Django's default PASSWORD_HASHERS.
"""

import csv
import datetime
import os
import sys

import django
from django.conf import settings

out, count = sys.argv[1], int(sys.argv[2])
hashers = {}
if len(sys.argv) > 3:
    hashers["PASSWORD_HASHERS"] = [f"django.contrib.auth.hashers.{sys.argv[3]}"]
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "rest_framework_api_key",
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(out, "drf.sqlite3"),
        }
    },
    USE_TZ=True,
    **hashers,
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework_api_key import __version__ as version  # noqa: E402
from rest_framework_api_key.models import APIKey  # noqa: E402


def wrong_key(key):
    """The key with its last character changed, as the Rust test makes it."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


call_command("migrate", verbosity=0)
later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
keys = []
for i in range(count):
    _, key = APIKey.objects.create_key(
        name=f"drf {version} key {i}", expiry_date=later if i == 0 else None
    )
    assert APIKey.objects.is_valid(key)
    # The same prefix with another secret: refused by the library too (the
    # Rust test presents it).
    assert not APIKey.objects.is_valid(wrong_key(key))
    keys.append(key)

with connection.cursor() as cursor:
    cursor.execute(f"SELECT * FROM {APIKey._meta.db_table}")
    columns = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
with open(os.path.join(out, "apikey.csv"), "w", newline="") as file:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
with open(os.path.join(out, "keys.txt"), "w") as file:
    file.write("".join(f"{key}\n" for key in keys))
hashed = rows[0][columns.index("hashed_key")]
print(f"djangorestframework-api-key {version}: {len(keys)} keys, hasher {hashed.split('$')[0]}")
