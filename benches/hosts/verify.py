"""apikeys verify called from Python through ctypes, beside Python's usual
ways: sqlite3 + hashlib (SHA-256 hex, the token row) and an in-memory floor
(SHA-256 + dict lookup).

usage: python3 verify.py <libapikeys.so> <store.redb> <work dir>
Prints one JSON line: median ns per verify for each approach.
"""

import ctypes
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
lib = ctypes.CDLL(lib_path)
c_size = ctypes.c_size_t
status_t = ctypes.c_uint32
lib.apikeys_store_open.argtypes = [ctypes.c_char_p, c_size, ctypes.c_char_p, c_size,
                                   ctypes.c_uint32, ctypes.POINTER(ctypes.c_void_p)]
lib.apikeys_store_open.restype = status_t
lib.apikeys_store_close.argtypes = [ctypes.c_void_p]
lib.apikeys_store_close.restype = status_t
lib.apikeys_key_generate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, c_size, ctypes.c_char_p,
                                     c_size, ctypes.c_char_p, c_size, ctypes.c_char_p, c_size,
                                     ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)]
lib.apikeys_key_generate.restype = status_t
lib.apikeys_key_secret.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                   ctypes.POINTER(c_size)]
lib.apikeys_key_secret.restype = status_t
lib.apikeys_key_free.argtypes = [ctypes.c_void_p]
lib.apikeys_key_free.restype = status_t
lib.apikeys_key_verify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, c_size, ctypes.c_char_p,
                                   c_size, ctypes.c_void_p]
lib.apikeys_key_verify.restype = status_t


def open_store(flags):
    store = ctypes.c_void_p()
    path = store_path.encode()
    status = lib.apikeys_store_open(path, len(path), None, 0, flags, ctypes.byref(store))
    if status != 0:
        raise RuntimeError(f"open: {status}")
    return store


def measure(body, calls=CALLS):
    """Median ns per call of body(calls) over ROUNDS rounds."""
    body(200)
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        body(calls)
        rounds.append((time.perf_counter_ns() - start) / calls)
    rounds.sort()
    return rounds[ROUNDS // 2]


store = open_store(0)
keys = []
for i in range(SAMPLE):
    key = ctypes.c_void_p()
    name = f"python bench {i}".encode()
    status = lib.apikeys_key_generate(store, name, len(name), b"prod", 4, b"contacts:read", 13,
                                      None, 0, 0, ctypes.byref(key))
    if status != 0:
        raise RuntimeError(f"generate: {status}")
    ptr, length = ctypes.c_char_p(), c_size()
    lib.apikeys_key_secret(key, ctypes.byref(ptr), ctypes.byref(length))
    keys.append(ctypes.string_at(ptr, length.value).decode())
    lib.apikeys_key_free(key)
bad_checksum = [k[:12] + k[12:][::-1] for k in keys]
mask = SAMPLE - 1
results = {}
verify = lib.apikeys_key_verify

for mode, flags in (("exclusive", 0), ("shared", 1)):
    if mode == "shared":
        lib.apikeys_store_close(store)
        store = open_store(flags)
    if verify(store, keys[0].encode(), len(keys[0]), None, 0, None) != 0:
        raise RuntimeError(f"verify of a valid key failed in {mode} mode")

    def valid(calls, store=store):
        for i in range(calls):
            # A request hands over a str; the C ABI takes UTF-8 bytes.
            key = keys[i & mask].encode()
            verify(store, key, len(key), None, 0, None)

    def bad(calls, store=store):
        for i in range(calls):
            key = bad_checksum[i & mask].encode()
            verify(store, key, len(key), None, 0, None)

    results[f"apikeys_{mode}_valid"] = measure(valid)
    results[f"apikeys_{mode}_bad_checksum"] = measure(bad)
    if mode == "exclusive":
        # The same call with a one-byte key, rejected by its length before any
        # work: what the ctypes call itself costs.
        def overhead(calls, store=store):
            for i in range(calls):
                verify(store, "x".encode(), 1, None, 0, None)

        results["ffi_call_overhead"] = measure(overhead)
lib.apikeys_store_close(store)

floor = {hashlib.sha256(os.urandom(24)).digest(): i for i in range(FILLER)}
for i, key in enumerate(keys):
    floor[hashlib.sha256(key.encode()).digest()] = FILLER + i
sha256 = hashlib.sha256


def floor_valid(calls):
    for i in range(calls):
        floor.get(sha256(keys[i & mask].encode()).digest())


results["floor_valid"] = measure(floor_valid)

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
