"""What one ctypes call costs, by declaration, GIL handling and arguments,
against the throwaway libnoop.so (run.sh builds it). Bodies take turns
within every round; prints the median ns per call and the quartiles.

usage: python3 calls.py <libnoop.so> [rounds]
"""

import ctypes
import hashlib
import os
import platform
import sys
import threading
import time

lib_path = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 21
CALLS = 20000

memory = ctypes.create_string_buffer(8)
store_int = ctypes.addressof(memory)  # a non-NULL pointer, as an int
store_ptr = ctypes.c_void_p(store_int)  # the same as a ctypes value
keys = ["flz_sk_prod_" + os.urandom(16).hex() for _ in range(256)]  # str, as a request gives
u32 = ctypes.c_uint32


def function(loader, name, argtypes=None, restype=u32):
    """A separate function object (argtypes are per object)."""
    f = getattr(loader(lib_path), name)
    if argtypes is not None:
        f.argtypes = argtypes
    f.restype = restype
    return f


cdll = ctypes.CDLL(lib_path)
noop0_c = function(ctypes.CDLL, "noop0")
noop0_py = function(ctypes.PyDLL, "noop0")
cstr_c = function(ctypes.CDLL, "noop_cstr")
cstr_c_decl = function(ctypes.CDLL, "noop_cstr", [ctypes.c_void_p, ctypes.c_char_p])
cstr_py = function(ctypes.PyDLL, "noop_cstr")
cstr_py_decl = function(ctypes.PyDLL, "noop_cstr", [ctypes.c_void_p, ctypes.c_char_p])
cstr4_py = function(ctypes.PyDLL, "noop_cstr4")
noop6_c_decl = function(ctypes.CDLL, "noop6", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                               ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p])
noop6_c = function(ctypes.CDLL, "noop6")
noop6_py = function(ctypes.PyDLL, "noop6")
IdBuffer = ctypes.c_char * 17
shared_id = IdBuffer()
local = threading.local()
sha256 = hashlib.sha256
floor = {sha256(os.urandom(24)).digest(): i for i in range(100_000)}
for i, k in enumerate(keys):
    floor[sha256(k.encode()).digest()] = i


def body(f):
    return f


bodies = {}


def case(name):
    def add(f):
        bodies[name] = f
        return f
    return add


@case("loop + key.encode() (baseline)")
def _(n):
    for i in range(n):
        keys[i & 255].encode()


@case("CDLL f()")
def _(n):
    for i in range(n):
        noop0_c()


@case("PyDLL f()  (GIL kept)")
def _(n):
    for i in range(n):
        noop0_py()


@case("CDLL f(store, key) argtypes declared")
def _(n):
    for i in range(n):
        cstr_c_decl(store_int, keys[i & 255].encode())


@case("CDLL f(store, key) no argtypes")
def _(n):
    for i in range(n):
        cstr_c(store_ptr, keys[i & 255].encode())


@case("CDLL lib.f(store, key) looked up each call")
def _(n):
    for i in range(n):
        cdll.noop_cstr(store_ptr, keys[i & 255].encode())


@case("PyDLL f(store, key) argtypes declared")
def _(n):
    for i in range(n):
        cstr_py_decl(store_int, keys[i & 255].encode())


@case("PyDLL f(store, key) no argtypes")
def _(n):
    for i in range(n):
        cstr_py(store_ptr, keys[i & 255].encode())


@case("PyDLL f(store, key, None, id) no argtypes")
def _(n):
    for i in range(n):
        cstr4_py(store_ptr, keys[i & 255].encode(), None, shared_id)


@case("  same + thread-local id, .value.decode()")
def _(n):
    for i in range(n):
        try:
            buffer = local.id
        except AttributeError:
            buffer = local.id = IdBuffer()
        cstr4_py(store_ptr, keys[i & 255].encode(), None, buffer)
        buffer.value.decode("ascii")


@case("  same + new id buffer per call")
def _(n):
    for i in range(n):
        buffer = IdBuffer()
        cstr4_py(store_ptr, keys[i & 255].encode(), None, buffer)
        buffer.value.decode("ascii")


@case("CDLL f6 argtypes declared [key_verify today]")
def _(n):
    for i in range(n):
        k = keys[i & 255].encode()
        noop6_c_decl(store_int, k, len(k), None, 0, None)


@case("CDLL f6 no argtypes")
def _(n):
    for i in range(n):
        k = keys[i & 255].encode()
        noop6_c(store_ptr, k, len(k), None, 0, None)


@case("PyDLL f6 no argtypes")
def _(n):
    for i in range(n):
        k = keys[i & 255].encode()
        noop6_py(store_ptr, k, len(k), None, 0, None)


@case("floor: sha256 + dict of 100k")
def _(n):
    for i in range(n):
        floor.get(sha256(keys[i & 255].encode()).digest())


times = {name: [] for name in bodies}
for f in bodies.values():
    f(500)
for _ in range(rounds):
    for name, f in bodies.items():
        start = time.perf_counter_ns()
        f(CALLS)
        times[name].append((time.perf_counter_ns() - start) / CALLS)
print(f"python {platform.python_version()}, {rounds} rounds of {CALLS} calls")
for name, t in times.items():
    t.sort()
    m = len(t)
    print(f"  {name:50s} {t[m // 2]:7.1f} ns  [{t[m // 4]:.1f}, {t[3 * m // 4]:.1f}]")
