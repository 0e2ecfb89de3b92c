"""apikeys verify called from Python through ctypes, beside Python's usual
ways: sqlite3 + hashlib (SHA-256 hex, the token row) and an in-memory floor
(SHA-256 + dict lookup).

Rows: package_* call the package (ffi/python) as an application does
(verify_id, is_valid, verify); apikeys_* and check_* call the C ABI directly
through the package's declared prototypes (apikeys_key_verify with out =
NULL, apikeys_key_check); *_call_overhead are those calls with a one-byte
key. The rows of one mode take turns within every round.

usage: python3 verify.py <libapikeys.so> <store.redb> <work dir>
Prints one JSON line: median ns per verify for each approach.
"""

import hashlib
import json
import os
import platform
import sqlite3
import sys
import time

ROUNDS = 15
CALLS = 20000
SAMPLE = 256
FILLER = 100_000

lib_path, store_path, work = sys.argv[1:4]
# The package (ffi/python), as an application uses it, loading this library.
os.environ["APIKEYS_LIB"] = lib_path
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ffi", "python", "src"))
from apikeys import KeyStore  # noqa: E402
from apikeys import _native  # noqa: E402

lib = _native.lib()  # the package's CDLL, every prototype declared


def measure_together(bodies, calls=CALLS):
    """Median ns per call of each body over ROUNDS rounds of `calls` calls,
    the bodies taking turns within every round so that all see the same
    machine."""
    rounds = {}
    for name, body in bodies.items():
        body(200)  # warm-up
        rounds[name] = []
    for _ in range(ROUNDS):
        for name, body in bodies.items():
            start = time.perf_counter_ns()
            body(calls)
            rounds[name].append((time.perf_counter_ns() - start) / calls)
    return {name: sorted(times)[ROUNDS // 2] for name, times in rounds.items()}


def measure(body, calls=CALLS):
    return measure_together({"x": body}, calls)["x"]


# Sample keys, generated through the package (one durable commit each).
store = KeyStore(store_path)
keys = [store.generate(f"python bench {i}", env="prod", scopes=["contacts:read"]).secret
        for i in range(SAMPLE)]
bad_checksum = [k[:12] + k[12:][::-1] for k in keys]
mask = SAMPLE - 1
sha256 = hashlib.sha256

# The floor: SHA-256 of the key, then a dict lookup among FILLER + SAMPLE digests.
floor = {sha256(os.urandom(24)).digest(): i for i in range(FILLER)}
for i, key in enumerate(keys):
    floor[sha256(key.encode()).digest()] = FILLER + i


def floor_valid(calls):
    for i in range(calls):
        floor.get(sha256(keys[i & mask].encode()).digest())


verify = lib.apikeys_key_verify
check = lib.apikeys_key_check
validate = lib.apikeys_key_validate
results = {}
for mode, shared in (("exclusive", False), ("shared", True)):
    if shared:
        store.close()
        store = KeyStore(store_path, shared=True)
    handle = store._handle  # for the rows calling the C ABI directly
    if (verify(handle, keys[0].encode(), len(keys[0]), None, 0, None) != 0
            or store.verify_id(keys[0]) != store.verify(keys[0]).id
            or store.is_valid(bad_checksum[0])):
        raise RuntimeError(f"verify answers wrong in {mode} mode")

    # What an application calls: the package's methods.
    # verify_id: the key's id (for authorization), Unauthorized otherwise.
    def package_verify_id(calls, store=store):
        for i in range(calls):
            store.verify_id(keys[i & mask])

    # The raw C calls through the package's declared prototypes:
    # apikeys_key_verify as before (six arguments, out = NULL) ...
    def valid(calls, handle=handle):
        for i in range(calls):
            # A request hands over a str; the C ABI takes UTF-8 bytes.
            key = keys[i & mask].encode()
            verify(handle, key, len(key), None, 0, None)

    def bad(calls, handle=handle):
        for i in range(calls):
            key = bad_checksum[i & mask].encode()
            verify(handle, key, len(key), None, 0, None)

    bodies = {
        f"package_verify_id_{mode}_valid": package_verify_id,
        f"apikeys_{mode}_valid": valid,
        f"apikeys_{mode}_bad_checksum": bad,
    }
    if not shared:
        # is_valid: a boolean, no id.
        def package_is_valid(calls, store=store):
            for i in range(calls):
                store.is_valid(keys[i & mask])

        # verify: every detail of the key (name, scopes, owner, ...) as an object.
        def package_verify(calls, store=store):
            for i in range(calls):
                store.verify(keys[i & mask])

        # ... and apikeys_key_check (NUL-terminated key, no scope, no id),
        # declared, releasing the GIL: the plain ctypes way.
        def check_valid(calls, handle=handle):
            for i in range(calls):
                check(handle, keys[i & mask].encode(), None, None)

        # ... and apikeys_key_validate (the same with only store and key).
        def validate_valid(calls, handle=handle):
            for i in range(calls):
                validate(handle, keys[i & mask].encode())

        # The same calls with a one-byte key, rejected by its length before
        # any work: what each ctypes call itself costs.
        def overhead(calls, handle=handle):
            for i in range(calls):
                verify(handle, "x".encode(), 1, None, 0, None)

        def check_overhead(calls, handle=handle):
            for i in range(calls):
                check(handle, "x".encode(), None, None)

        def validate_overhead(calls, handle=handle):
            for i in range(calls):
                validate(handle, "x".encode())

        bodies.update({
            "package_is_valid_exclusive_valid": package_is_valid,
            "package_verify_exclusive_valid": package_verify,
            "check_exclusive_valid": check_valid,
            "validate_exclusive_valid": validate_valid,
            "ffi_call_overhead": overhead,
            "check_call_overhead": check_overhead,
            "validate_call_overhead": validate_overhead,
            "floor_valid": floor_valid,
        })
    results.update(measure_together(bodies))
store.close()

path = os.path.join(work, "sanctum-python.sqlite")
if os.path.exists(path):
    os.remove(path)
db = sqlite3.connect(path)
db.execute("""CREATE TABLE personal_access_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,
    tokenable_type TEXT NOT NULL, tokenable_id INTEGER NOT NULL, name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE, abilities TEXT, last_used_at TEXT, expires_at TEXT,
    created_at TEXT, updated_at TEXT)""")
rows = [(i % 5000, f"filler {i}", os.urandom(32).hex()) for i in range(FILLER)]
rows += [(i, f"python bench {i}", hashlib.sha256(k.encode()).hexdigest()) for i, k in enumerate(keys)]
with db:
    db.executemany("""INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token,
        abilities, created_at, updated_at) VALUES ('App\\Models\\User', ?, ?, ?, '["contacts:read"]',
        '2026-11-27 00:00:00', '2026-11-27 00:00:00')""", rows)


def sqlite_valid(calls):
    for i in range(calls):
        token = sha256(keys[i & mask].encode()).hexdigest()
        db.execute("SELECT * FROM personal_access_tokens WHERE token = ? LIMIT 1",
                   (token,)).fetchone()


results["sqlite_valid"] = measure(sqlite_valid, CALLS // 10)
db.close()
os.remove(path)

print(json.dumps({"host": "python", "version": platform.python_version(), "filler": FILLER,
                  "ns_per_verify": results}))
